// The fd tables of the tree: one File per open file description (shared by dup or by fork, told
// apart with kcmp), Pipe objects with their queued bytes (peeked with tee(2), never consumed),
// contents of deleted files, and one Fd per slot of each process.
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "common/text.h"
#include "dump/passes.h"
#include "dump/unix_sockets.h"

namespace cr::dump {

namespace {

constexpr uint64_t kMaxDeletedFileBytes = 64ull << 20;
constexpr size_t kFileDataChunk = 1u << 20;

struct FdEntry {
  DumpContext* proc = nullptr;
  int fd = -1;
  std::string link;  // readlink of /proc/PID/fd/N
  struct stat st {};
  Fdinfo info;
  uint32_t file_id = 0;
};

std::string fd_name(int fd) { return "fd " + std::to_string(fd); }

Error refuse(int fd, const std::string& what) {
  return make_error(fd_name(fd) + ": " + what + " not supported yet");
}

Result<std::vector<int>> list_fds(const ProcDir& proc) {
  int dfd = ::openat(proc.fd(), "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_error("open /proc/" + std::to_string(proc.pid()) + "/fd");
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    ::close(dfd);
    return errno_error("fdopendir");
  }
  std::vector<int> fds;
  while (dirent* de = ::readdir(dir)) {
    auto v = parse_uint(de->d_name);
    if (v) fds.push_back(static_cast<int>(*v));
  }
  ::closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

bool same_description(pid_t pa, int a, pid_t pb, int b) {
  return ::syscall(SYS_kcmp, pa, pb, KCMP_FILE, a, b) == 0;
}

bool is_tty(const struct stat& st) {
  if (!S_ISCHR(st.st_mode)) return false;
  unsigned ma = major(st.st_rdev);
  return (ma >= 136 && ma <= 143) || ma == 4 || ma == 5;
}

bool is_plain_device(const struct stat& st) {
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1) return false;
  unsigned mi = minor(st.st_rdev);
  return mi == 3 || mi == 5 || mi == 8 || mi == 9;  // null, zero, random, urandom
}

// The bytes queued in the pipe behind `fd`, copied with tee(2) into a pipe of our own so the
// task's pipe keeps them. Also returns the pipe's capacity.
Result<std::pair<uint32_t, std::vector<uint8_t>>> peek_pipe(const ProcDir& proc, int fd) {
  std::string name = "fd/" + std::to_string(fd);
  // A new read-side description of the same pipe, whichever end `fd` is.
  ScopedFd src(::openat(proc.fd(), name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!src.valid()) return errno_error(fd_name(fd) + ": reopen pipe");
  int cap = ::fcntl(src.get(), F_GETPIPE_SZ);
  if (cap < 0) return errno_error(fd_name(fd) + ": F_GETPIPE_SZ");
  int avail = 0;
  if (::ioctl(src.get(), FIONREAD, &avail) != 0) return errno_error(fd_name(fd) + ": FIONREAD");
  std::vector<uint8_t> data;
  if (avail == 0) return std::make_pair(static_cast<uint32_t>(cap), std::move(data));

  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd rd(p[0]), wr(p[1]);
  // As many slots as the source has, so every buffer fits.
  if (::fcntl(wr.get(), F_SETPIPE_SZ, cap) < cap)
    return errno_error(fd_name(fd) + ": F_SETPIPE_SZ " + std::to_string(cap));
  ssize_t n = ::tee(src.get(), wr.get(), static_cast<size_t>(avail), SPLICE_F_NONBLOCK);
  if (n < 0) return errno_error(fd_name(fd) + ": tee");
  if (n != avail)
    return make_error(fd_name(fd) + ": tee copied " + std::to_string(n) + " of " +
                      std::to_string(avail) + " queued bytes");
  data.resize(static_cast<size_t>(n));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t r = ::read(rd.get(), data.data() + got, data.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return errno_error(fd_name(fd) + ": read pipe copy");
    got += static_cast<size_t>(r);
  }
  return std::make_pair(static_cast<uint32_t>(cap), std::move(data));
}

Result<std::vector<uint8_t>> read_deleted(const ProcDir& proc, const FdEntry& e) {
  if (static_cast<uint64_t>(e.st.st_size) > kMaxDeletedFileBytes)
    return make_error(fd_name(e.fd) + ": deleted file " + e.link + " is larger than 64 MiB");
  std::string name = "fd/" + std::to_string(e.fd);
  ScopedFd f(::openat(proc.fd(), name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return errno_error(fd_name(e.fd) + ": reopen deleted file");
  std::vector<uint8_t> data(static_cast<size_t>(e.st.st_size));
  size_t got = 0;
  while (got < data.size()) {
    ssize_t r = ::pread(f.get(), data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno_error(fd_name(e.fd) + ": read deleted file");
    if (r == 0) break;  // shrank meanwhile (another process): keep what is there
    got += static_cast<size_t>(r);
  }
  data.resize(got);
  return data;
}

std::string anon_name(const FdEntry& e) {
  if (e.info.kind != FdinfoKind::kPlain) return std::string(fdinfo_kind_name(e.info.kind));
  std::string n = e.link.substr(e.link.find(':') + 1);
  if (n.size() >= 2 && n.front() == '[' && n.back() == ']') n = n.substr(1, n.size() - 2);
  return n;
}

class FileCollector {
 public:
  explicit FileCollector(DumpTree& tree) : tree_(tree), t_(tree.files), unix_(tree) {}

  Status run() {
    for (auto& p : tree_.procs)
      if (!p->zombie) CR_TRY(list_entries(*p));
    // Which pipe inodes have both ends inside the tree.
    for (const FdEntry& e : entries_) {
      if (!e.link.starts_with("pipe:")) continue;
      int acc = static_cast<int>(e.info.flags & O_ACCMODE);
      if (acc == O_RDONLY || acc == O_RDWR) pipe_ends_[e.st.st_ino].first = true;
      if (acc == O_WRONLY || acc == O_RDWR) pipe_ends_[e.st.st_ino].second = true;
    }
    for (size_t i = 0; i < entries_.size(); ++i) {
      FdEntry& e = entries_[i];
      e.file_id = shared_description(i);
      if (e.file_id == 0) {
        auto id = add_file(e);
        if (!id.ok()) {
          const std::string w = where(e);
          if (w.empty()) return std::move(id).error();
          return std::move(id).error().wrap(w);
        }
        e.file_id = *id;
      }
      schema::Fd rec;
      rec.pid = static_cast<uint32_t>(e.proc->pid);
      rec.fd = static_cast<uint32_t>(e.fd);
      rec.file = e.file_id;
      rec.fd_flags = (e.info.flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
      t_.fds.push_back(rec);
    }
    // Peers, listeners and names are checked once every socket of the tree is known.
    return unix_.finish();
  }

 private:
  Status list_entries(DumpContext& ctx) {
    CR_TRY_ASSIGN(std::vector<int> fds, list_fds(ctx.proc));
    for (int fd : fds) {
      FdEntry e;
      e.proc = &ctx;
      e.fd = fd;
      std::string n = std::to_string(fd);
      CR_TRY_ASSIGN(e.link, ctx.proc.readlink("fd/" + n));
      CR_TRY_ASSIGN(e.st, ctx.proc.stat("fd/" + n));
      CR_TRY_ASSIGN(std::string info, ctx.proc.read("fdinfo/" + n));
      auto parsed = parse_fdinfo(info);
      if (!parsed.ok()) return std::move(parsed).error().wrap(fd_name(fd));
      e.info = *parsed;
      entries_.push_back(std::move(e));
    }
    return {};
  }

  // Errors about another process than the root name it.
  std::string where(const FdEntry& e) const {
    return e.proc == tree_.procs.front().get() ? std::string() : "pid " + std::to_string(e.proc->pid);
  }

  // The File id of an earlier fd, in this process or another, with the same open file
  // description (dup, or inherited across fork), or 0.
  uint32_t shared_description(size_t i) const {
    const FdEntry& e = entries_[i];
    for (size_t j = 0; j < i; ++j) {
      const FdEntry& o = entries_[j];
      if (o.st.st_dev == e.st.st_dev && o.st.st_ino == e.st.st_ino && o.link == e.link &&
          same_description(o.proc->pid, o.fd, e.proc->pid, e.fd))
        return o.file_id;
    }
    return 0;
  }

  // Whether a process outside the tree has pipe `ino` open at its read end (`read_end`) or its
  // write end. Walks every process's fds: done only for a pipe missing an end in the tree.
  bool held_outside(ino_t ino, bool read_end) const {
    const std::string want = "pipe:[" + std::to_string(ino) + "]";
    DIR* procs = ::opendir("/proc");
    if (procs == nullptr) return true;  // cannot tell: the safe answer
    bool found = false;
    while (dirent* pe = ::readdir(procs)) {
      auto pid = parse_uint(pe->d_name);
      if (!pid || tree_.find(static_cast<pid_t>(*pid)) != nullptr) continue;
      auto proc = ProcDir::open(static_cast<pid_t>(*pid));
      if (!proc.ok()) continue;
      auto fds = list_fds(*proc);
      if (!fds.ok()) continue;
      for (int fd : *fds) {
        auto link = proc->readlink("fd/" + std::to_string(fd));
        if (!link.ok() || *link != want) continue;
        auto info = proc->read("fdinfo/" + std::to_string(fd));
        if (!info.ok()) continue;
        auto parsed = parse_fdinfo(*info);
        if (!parsed.ok()) continue;
        const int acc = static_cast<int>(parsed->flags & O_ACCMODE);
        if (acc == O_RDWR || (read_end ? acc == O_RDONLY : acc == O_WRONLY)) found = true;
      }
      if (found) break;
    }
    ::closedir(procs);
    return found;
  }

  // --inherit-fd names fds of the root; a child sharing that description shares its File.
  bool inherited(const FdEntry& e) const {
    if (e.proc != tree_.procs.front().get()) return false;
    const auto& v = e.proc->opts.inherit_fds;
    return std::find(v.begin(), v.end(), e.fd) != v.end();
  }

  Result<uint32_t> pipe_object(const FdEntry& e) {
    auto it = pipe_ids_.find(e.st.st_ino);
    if (it != pipe_ids_.end()) return it->second;
    CR_TRY_ASSIGN(auto peeked, peek_pipe(e.proc->proc, e.fd));
    uint32_t id = tree_.next_obj_id++;
    t_.pipes.push_back(schema::Pipe{id, static_cast<uint64_t>(e.st.st_ino), peeked.first});
    if (!peeked.second.empty()) t_.pipe_data.emplace_back(id, std::move(peeked.second));
    pipe_ids_[e.st.st_ino] = id;
    return id;
  }

  Result<uint32_t> add_file(const FdEntry& e) {
    schema::File f;
    f.kind = 0;
    f.path = e.link;
    f.flags = e.info.flags & ~static_cast<uint32_t>(O_CLOEXEC);
    f.pos = e.info.pos;
    f.mode = e.st.st_mode;
    f.size = static_cast<uint64_t>(e.st.st_size);
    f.mtime_ns = mtime_ns(e.st);
    f.dev = e.st.st_dev;
    f.ino = e.st.st_ino;
    f.rdev = e.st.st_rdev;
    std::vector<uint8_t> deleted_data;
    bool has_data = false;

    if (inherited(e)) {
      f.kind = schema::kFileExternal;
      f.key = e.link;
    } else if (e.link.starts_with("socket:") || S_ISSOCK(e.st.st_mode)) {
      f.kind = schema::kFileUnixSocket;
      f.path.clear();
      CR_TRY_ASSIGN(f.object, unix_.add(*e.proc, e.fd, e.st.st_ino));
    } else if (e.info.kind == FdinfoKind::kEventfd) {
      f.kind = schema::kFileEventfd;
      f.counter = e.info.eventfd_count;
      f.kflags = e.info.eventfd_semaphore ? uint32_t{schema::kFileEfdSemaphore} : 0u;
    } else if (e.info.kind == FdinfoKind::kSignalfd) {
      f.kind = schema::kFileSignalfd;
      f.sigmask = e.info.sigmask;
    } else if (e.info.kind == FdinfoKind::kTimerfd && (e.info.settime_flags & 2) != 0) {
      // TFD_TIMER_CANCEL_ON_SET: a restore would arm it without the cancellation.
      return refuse(e.fd, "timerfd with TFD_TIMER_CANCEL_ON_SET");
    } else if (e.info.kind == FdinfoKind::kTimerfd) {
      // The remaining time, as the kernel reports it for either kind of setting: restore
      // arms it relative to its own start.
      f.kind = schema::kFileTimerfd;
      f.clockid = e.info.clockid;
      f.value_ns = e.info.value_ns;
      f.interval_ns = e.info.interval_ns;
      f.counter = e.info.ticks;
    } else if (e.link.starts_with("anon_inode:") || e.info.kind != FdinfoKind::kPlain) {
      return refuse(e.fd, anon_name(e));
    } else if (e.link.starts_with("/memfd:")) {
      return refuse(e.fd, "memfd");
    } else if (e.link.starts_with("pipe:")) {
      auto ends = pipe_ends_[e.st.st_ino];
      // One end only in the tree: fine if nobody holds the other end (a pipe whose writer has
      // gone, as make gives its jobs for stdin); restore closes it again. If a process outside
      // the tree holds it, that process is part of the pipe: refused.
      if (!(ends.first && ends.second) && held_outside(e.st.st_ino, !ends.first))
        return make_error(fd_name(e.fd) + ": " + e.link +
                          " has its other end outside the process tree (dump with --inherit-fd " +
                          std::to_string(e.fd) + ")");
      f.kind = schema::kFilePipe;
      f.path.clear();
      CR_TRY_ASSIGN(f.pipe, pipe_object(e));
    } else if (S_ISFIFO(e.st.st_mode)) {
      f.kind = schema::kFileFifo;
      CR_TRY_ASSIGN(f.pipe, pipe_object(e));
    } else if (S_ISCHR(e.st.st_mode) && major(e.st.st_rdev) == 5 && minor(e.st.st_rdev) == 2) {
      return refuse(e.fd, "pty master " + e.link);
    } else if (is_tty(e.st)) {
      if (!e.proc->opts.shell_job)
        return make_error(fd_name(e.fd) + ": tty " + e.link +
                          " is outside the process (dump with --shell-job)");
      f.kind = schema::kFileTty;
    } else if (S_ISCHR(e.st.st_mode)) {
      if (!is_plain_device(e.st)) {
        return refuse(e.fd, "device " + e.link + " (" + std::to_string(major(e.st.st_rdev)) + ":" +
                                std::to_string(minor(e.st.st_rdev)) + ")");
      }
      f.kind = schema::kFileDevice;
    } else if (S_ISDIR(e.st.st_mode)) {
      f.kind = schema::kFileDirectory;
    } else if (S_ISREG(e.st.st_mode)) {
      constexpr std::string_view kDeleted = " (deleted)";
      if (e.st.st_nlink == 0 || e.link.ends_with(kDeleted)) {
        if (f.path.ends_with(kDeleted)) f.path.resize(f.path.size() - kDeleted.size());
        f.kind = schema::kFileDeleted;
        CR_TRY_ASSIGN(deleted_data, read_deleted(e.proc->proc, e));
        has_data = true;
      } else {
        f.kind = schema::kFileRegular;
      }
    } else {
      return refuse(e.fd, e.link);
    }
    f.id = tree_.next_obj_id++;
    t_.files.push_back(std::move(f));
    if (has_data) t_.file_data.emplace_back(t_.files.back().id, std::move(deleted_data));
    return t_.files.back().id;
  }

  DumpTree& tree_;
  FileTable& t_;
  std::vector<FdEntry> entries_;
  std::map<ino_t, std::pair<bool, bool>> pipe_ends_;  // read end seen, write end seen
  std::map<ino_t, uint32_t> pipe_ids_;
  UnixSocketCollector unix_;
};

}  // namespace

Status collect_files(DumpTree& tree) { return FileCollector(tree).run(); }

/// Writes a deleted file's contents in FileData records of at most 1 MiB each.
Status write_file_data(format::RecordWriter& out, uint32_t file, std::span<const uint8_t> data) {
  for (size_t off = 0; off < data.size(); off += kFileDataChunk) {
    schema::FileData rec{file, off};
    CR_TRY(out.write(rec, data.subspan(off, std::min(kFileDataChunk, data.size() - off))));
  }
  return {};
}

}  // namespace cr::dump
