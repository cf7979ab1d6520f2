#include "restore/ghost_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <optional>
#include <string>

namespace cr::restore {

namespace {

constexpr int kCreationFlags = O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY;
constexpr std::string_view kDeleted = " (deleted)";

std::string without_deleted(std::string path) {
  if (path.size() > kDeleted.size() && path.ends_with(kDeleted))
    path.resize(path.size() - kDeleted.size());
  return path;
}

std::string dir_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes a node with `make` at `path`, or at a temporary name in its directory when something
// else has that name now. Returns the name used.
Result<std::string> place(const std::string& path, uint32_t id,
                          const std::function<int(const char*)>& make, const std::string& what) {
  if (make(path.c_str()) == 0) return path;
  if (errno != EEXIST) return errno_error("recreate " + what + " " + path);
  const std::string tmp =
      dir_of(path) + "/.crrestore-" + std::to_string(::getpid()) + "-" + std::to_string(id);
  if (make(tmp.c_str()) == 0) return tmp;
  return errno_error("recreate " + what + " " + path + " as " + tmp);
}

// Removes the name `name` (a file or a directory) when it goes out of scope.
struct RemoveName {
  std::string name;
  bool dir = false;
  ~RemoveName() {
    if (!name.empty()) dir ? ::rmdir(name.c_str()) : ::unlink(name.c_str());
  }
};

Result<int> reopen(int fd, uint32_t flags, const std::string& what) {
  const std::string via = "/proc/self/fd/" + std::to_string(fd);
  int got = ::open(via.c_str(), (static_cast<int>(flags) & ~kCreationFlags) | O_CLOEXEC);
  if (got < 0) return errno_error("reopen " + what);
  return got;
}

Status seek_to(int fd, uint64_t pos, const std::string& what) {
  if (pos != 0 && ::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0)
    return errno_error(what + ": lseek to " + std::to_string(pos));
  return {};
}

timespec ts_of(uint64_t ns) {
  if (ns == 0) return {0, UTIME_OMIT};  // an image older than the field
  return {static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
}

// The devices a deleted node may stand for: mem devices, which give no access a process does
// not have anyway (null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9).
bool allowed_device(uint64_t rdev) {
  if (major(rdev) != 1) return false;
  const unsigned mi = minor(rdev);
  return mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9;
}

// For a restricted image, the filesystem identity of the process holding `f` until the scope
// ends: the node is made in a directory that user may write, owned by it, chowned only as the
// user could (README "Trust model"). Nothing for an unrestricted one.
Result<std::optional<FsCredsScope>> act_as(const Privileges& priv, const schema::File& f) {
  std::optional<FsCredsScope> creds;
  if (const FsIdentity* as = priv.for_file(f.id)) {
    CR_TRY_ASSIGN(FsCredsScope s, FsCredsScope::enter(*as));
    creds.emplace(std::move(s));
  }
  return creds;
}

}  // namespace

Status GhostMaker::set_attrs(int fd, const schema::File& f) const {
  if (::fchown(fd, f.uid, f.gid) != 0)
    return errno_error("chown " + f.path + " to " + std::to_string(f.uid) + ":" +
                       std::to_string(f.gid));
  mode_t mode = f.mode & 07777;
  if (!owner_root_) mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
  if (::fchmod(fd, mode) != 0) return errno_error("chmod " + f.path);
  const timespec ts[2] = {ts_of(f.atime_ns), ts_of(f.mtime_ns)};
  if (::futimens(fd, ts) != 0) return errno_error("set times of " + f.path);
  return {};
}

Result<int> GhostMaker::open_file(const schema::File& f) {
  CR_TRY_ASSIGN(auto creds, act_as(priv_, f));
  const std::string path = without_deleted(f.path);
  ScopedFd w;
  RemoveName gone;
  // An O_TMPFILE file opened for writing, with no status flag F_SETFL cannot set, keeps the
  // description O_TMPFILE made (its flags show __O_TMPFILE | O_DIRECTORY, as the dumped one's
  // did); anything else is reopened through /proc below, without those bits.
  constexpr uint32_t kSettable = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
  constexpr uint32_t kLargefile = 0100000;  // the kernel's O_LARGEFILE (0 in x86_64 libc)
  const uint32_t accmode = f.flags & O_ACCMODE;
  const bool keep_tmpfile =
      (f.kflags & schema::kFileGhostTmpfile) != 0 && (accmode == O_RDWR || accmode == O_WRONLY) &&
      (f.flags & ~(O_ACCMODE | static_cast<uint32_t>(O_TMPFILE) | kLargefile | O_CLOEXEC |
                   kSettable | static_cast<uint32_t>(kCreationFlags))) == 0;
  if ((f.kflags & schema::kFileGhostTmpfile) != 0) {
    w.reset(::open(dir_of(path).c_str(),
                   O_TMPFILE | (keep_tmpfile ? static_cast<int>(accmode) : O_RDWR) | O_CLOEXEC,
                   0600));
    if (!w.valid()) return errno_error("O_TMPFILE in " + dir_of(path));
  } else {
    CR_TRY_ASSIGN(gone.name, place(
                                 path, f.id,
                                 [&w](const char* n) {
                                   w.reset(::open(n, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
                                   return w.valid() ? 0 : -1;
                                 },
                                 "deleted file"));
    // Gone from the directory at once: from here on it is reached through its fd only.
    if (::unlink(gone.name.c_str()) != 0) return errno_error("unlink " + gone.name);
    gone.name.clear();
  }
  auto it = img_.file_data.find(f.id);
  if (it != img_.file_data.end())
    for (const auto& [off, bytes] : it->second.chunks) {
      size_t done = 0;
      while (done < bytes.size()) {
        ssize_t n = ::pwrite(w.get(), bytes.data() + done, bytes.size() - done,
                             static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return errno_error("write deleted file " + path);
        done += static_cast<size_t>(n);
      }
    }
  // Written extents only: the rest up to the size stays (or becomes) a hole.
  if (::ftruncate(w.get(), static_cast<off_t>(f.size)) != 0)
    return errno_error("ftruncate " + path);
  ScopedFd fd;
  if (keep_tmpfile) {
    if ((f.flags & kSettable) != 0 &&
        ::fcntl(w.get(), F_SETFL, static_cast<int>(f.flags & kSettable)) != 0)
      return errno_error("F_SETFL on deleted file " + path);
    fd = std::move(w);
  } else {
    // An O_TMPFILE open shows __O_TMPFILE | O_DIRECTORY in its flags: not for a reopen.
    CR_TRY_ASSIGN(int got, reopen(w.get(), f.flags & ~static_cast<uint32_t>(O_TMPFILE),
                                  "deleted file " + path));
    fd = ScopedFd(got);
  }
  CR_TRY(set_attrs(fd.get(), f));
  CR_TRY(seek_to(fd.get(), f.pos, path));
  return fd.release();
}

Result<int> GhostMaker::open_node(const schema::File& f,
                                  const std::function<Status(int wfd)>& fill) {
  CR_TRY_ASSIGN(auto creds, act_as(priv_, f));
  const std::string path = without_deleted(f.path);
  const int flags = (static_cast<int>(f.flags) & ~kCreationFlags) | O_CLOEXEC;
  ScopedFd fd;
  if (S_ISDIR(f.mode)) {
    RemoveName gone{"", true};
    CR_TRY_ASSIGN(gone.name, place(
                                 path, f.id, [](const char* n) { return ::mkdir(n, 0700); },
                                 "deleted directory"));
    fd.reset(::open(gone.name.c_str(), flags | O_DIRECTORY));
    if (!fd.valid()) return errno_error("open deleted directory " + gone.name);
    CR_TRY(set_attrs(fd.get(), f));
    CR_TRY(seek_to(fd.get(), f.pos, path));
    return fd.release();
  }
  if (S_ISFIFO(f.mode)) {
    ScopedFd& hold = fifos_[f.pipe];
    if (!hold.valid()) {
      RemoveName gone;
      CR_TRY_ASSIGN(gone.name, place(
                                   path, f.id, [](const char* n) { return ::mkfifo(n, 0600); },
                                   "deleted FIFO"));
      // O_RDWR: neither end waits for a peer, and the queued bytes go in through it.
      hold.reset(::open(gone.name.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
      if (!hold.valid()) return errno_error("open deleted FIFO " + gone.name);
      if (fill) CR_TRY(fill(hold.get()));
    }
    CR_TRY_ASSIGN(int got, reopen(hold.get(), f.flags, "deleted FIFO " + path));
    fd.reset(got);
    CR_TRY(set_attrs(fd.get(), f));
    return fd.release();
  }
  if (S_ISCHR(f.mode)) {
    if (!allowed_device(f.rdev))
      return make_error("deleted device node " + path + " (" + std::to_string(major(f.rdev)) + ":" +
                        std::to_string(minor(f.rdev)) +
                        ") is not a memory device crrestore may create");
    RemoveName gone;
    CR_TRY_ASSIGN(gone.name, place(
                                 path, f.id,
                                 [&f](const char* n) {
                                   return ::mknod(n, S_IFCHR | 0600, static_cast<dev_t>(f.rdev));
                                 },
                                 "deleted device node"));
    fd.reset(::open(gone.name.c_str(), flags));
    if (!fd.valid()) return errno_error("open deleted device node " + gone.name);
    CR_TRY(set_attrs(fd.get(), f));
    return fd.release();
  }
  return make_error("deleted node " + path + ": file type " + std::to_string(f.mode & S_IFMT) +
                    " unknown");
}

}  // namespace cr::restore
