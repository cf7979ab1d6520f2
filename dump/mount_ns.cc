// The tree's own mount namespace (its root's, made with `unshare --mount`): its mount list as
// Mount records, classified against crdump's namespace (sys/mount_tree), each tmpfs's files as
// TmpfsEntry records, and the check that makes the rest of the dump valid there: every path the
// image holds (cwd, exe, mapped files, open files, unix socket names) must lead to the same
// file in the tree's namespace (through /proc/ROOT/root) and in crdump's, because restore
// resolves some paths in crrestore's namespace (opened files) and others in the rebuilt one
// (cwd, mappings). A file on the tree's own tmpfs, under a path the tree unmounted or
// overmounted, is refused by name.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "dump/passes.h"
#include "sys/mount_tree.h"

namespace cr::dump {

namespace {

constexpr size_t kMaxTmpfsEntries = 100000;

struct TmpfsWalk {
  const schema::Mount& mount;
  dev_t dev;
  uint64_t limit;  // bytes of file contents in all (--ghost-limit; 0: none)
  uint64_t& bytes;
  std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& out;

  std::string where(const std::string& rel) const {
    return "tmpfs " + mount.mount_point + ": " + (rel.empty() ? "its root" : rel);
  }

  Status add(int dirfd, const std::string& name, const std::string& rel, const struct stat& st) {
    if (out.size() >= kMaxTmpfsEntries)
      return make_error("tmpfs " + mount.mount_point + ": more than " +
                        std::to_string(kMaxTmpfsEntries) + " files: not supported");
    schema::TmpfsEntry e;
    e.mount = mount.id;
    e.path = rel;
    e.mode = st.st_mode;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.atime_ns = static_cast<uint64_t>(st.st_atim.tv_sec) * 1000000000ull +
                 static_cast<uint64_t>(st.st_atim.tv_nsec);
    e.mtime_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                 static_cast<uint64_t>(st.st_mtim.tv_nsec);
    std::vector<uint8_t> data;
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      const ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n < 0) return errno_error(where(rel) + ": readlink");
      data.assign(target.begin(), target.begin() + n);
    } else if (S_ISREG(st.st_mode)) {
      // A second name would come back as two files.
      if (st.st_nlink != 1)
        return make_error(where(rel) + ": a file with " + std::to_string(st.st_nlink) +
                          " hard links not supported");
      bytes += static_cast<uint64_t>(st.st_size);
      if (limit != 0 && bytes > limit)
        return make_error(where(rel) + ": the tmpfs contents exceed " + std::to_string(limit) +
                          " bytes (--ghost-limit)");
      ScopedFd f(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC));
      if (!f.valid()) return errno_error(where(rel) + ": open");
      data.resize(static_cast<size_t>(st.st_size));
      size_t got = 0;
      while (got < data.size()) {
        const ssize_t n =
            ::pread(f.get(), data.data() + got, data.size() - got, static_cast<off_t>(got));
        if (n < 0) return errno_error(where(rel) + ": read");
        if (n == 0) break;
        got += static_cast<size_t>(n);
      }
      if (got != data.size()) return make_error(where(rel) + ": changed while read");
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      // A container's /dev: made again with mknod (root's restore only: the mount namespace
      // is refused to others).
      const std::string dev =
          std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev));
      data.assign(dev.begin(), dev.end());
    } else if (!S_ISDIR(st.st_mode)) {
      return make_error(where(rel) + ": a " + (S_ISSOCK(st.st_mode) ? "socket" : "FIFO") +
                        " on the tree's own tmpfs not supported");
    }
    out.emplace_back(std::move(e), std::move(data));
    return {};
  }

  // `dirfd` is the directory `rel` (already added); its entries, parents before children.
  Status walk(int dirfd, const std::string& rel) {
    const int again = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (again < 0) return errno_error(where(rel) + ": open");
    DIR* d = ::fdopendir(again);
    if (d == nullptr) {
      ::close(again);
      return errno_error(where(rel) + ": fdopendir");
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    std::vector<std::string> names;
    while (struct dirent* de = ::readdir(d)) {
      const std::string_view n = de->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    for (const std::string& name : names) {
      const std::string sub = rel.empty() ? name : rel + "/" + name;
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_error(where(sub) + ": stat");
      // Another mount on this directory (a Mount record of its own, made after this tmpfs):
      // the directory is kept as a mount point, what is under it is not this tmpfs's.
      if (S_ISDIR(st.st_mode) && st.st_dev != dev) {
        st.st_mode = S_IFDIR | 0755;
        CR_TRY(add(dirfd, name, sub, st));
        continue;
      }
      CR_TRY(add(dirfd, name, sub, st));
      if (!S_ISDIR(st.st_mode)) continue;
      ScopedFd child(
          ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child.valid()) return errno_error(where(sub) + ": open");
      CR_TRY(walk(child.get(), sub));
    }
    return {};
  }
};

// `path` (absolute, as the tree sees it) leads to the same file in the tree's namespace and in
// crdump's (where a pivoted root puts it: sys::host_path); a name missing in both is checked by
// its directory.
Status same_in_both(pid_t root, const std::vector<schema::Mount>& mounts, const std::string& path,
                    const std::string& what) {
  if (path.empty() || path[0] != '/') return {};
  const std::string in_tree = "/proc/" + std::to_string(root) + "/root" + path;
  const std::optional<std::string> host = sys::host_path(mounts, path);
  if (!host)
    return make_error(what + " " + path +
                      ": on a mount of the tree's own (restore opens it outside the tree's "
                      "mount namespace): not supported");
  struct stat a {
  }, b{};
  const bool ha = ::lstat(host->c_str(), &a) == 0;
  const int ea = errno;
  const bool hb = ::lstat(in_tree.c_str(), &b) == 0;
  const int eb = errno;
  if (ha && hb && a.st_dev == b.st_dev && a.st_ino == b.st_ino) return {};
  if (!ha && !hb && ea == ENOENT && eb == ENOENT && path != "/") {
    const size_t slash = path.rfind('/');
    return same_in_both(root, mounts, slash == 0 ? "/" : path.substr(0, slash), what);
  }
  return make_error(what + " " + path +
                    ": another file in the tree's own mount namespace than in crdump's (on a "
                    "mount of the tree's own, or under a path it unmounted or overmounted): "
                    "not supported");
}

Status check_paths(DumpTree& tree) {
  const pid_t root = tree.procs.front()->pid;
  std::set<std::string> seen;
  auto check = [&](pid_t pid, const std::string& path, const std::string& what) -> Status {
    if (!seen.insert(path).second) return {};
    Status st = same_in_both(root, tree.ns.mounts, path, what);
    if (!st.ok()) return tree.refuse(pid, std::move(st).error());
    return {};
  };
  for (const auto& p : tree.procs) {
    if (p->zombie) continue;
    const std::string who = "pid " + std::to_string(p->pid) + ": ";
    if (p->fs.root != "/")
      CR_TRY(tree.refuse(p->pid, make_error(who + "root directory " + p->fs.root +
                                            " (chroot) inside the tree's own mount namespace "
                                            "not supported")));
    CR_TRY(check(p->pid, p->fs.cwd, who + "cwd"));
    CR_TRY(check(p->pid, p->mm.exe_path, who + "executable"));
    for (const schema::Vma& v : p->vmas)
      if (v.kind == schema::kVmaFilePrivate || v.kind == schema::kVmaFileShared)
        CR_TRY(check(p->pid, v.path, who + "mapped file"));
  }
  const pid_t any = tree.procs.front()->pid;
  // Restore hands shared memory to a task of a pid namespace of the tree's own through
  // crrestore's /proc/PID/fd: the tree's own /proc does not show crrestore.
  if (tree.ns.own_pid && !tree.shmems.empty())
    CR_TRY(tree.refuse(tree.shmems.front().pid,
                       make_error("shared memory (a memfd or a MAP_SHARED anonymous mapping) in "
                                  "a tree with its own pid and mount namespaces not supported "
                                  "yet")));
  for (const schema::File& f : tree.files.files) {
    // Files opened by crrestore in its own namespace that the tree's root cannot open again
    // by path in the rebuilt one (restore/mount_ns.cc, reopen_in_namespace).
    const char* kind = f.kind == schema::kFileFifo        ? "a FIFO"
                       : f.kind == schema::kFileDeleted   ? "a deleted file"
                       : f.kind == schema::kFileGhostNode ? "a deleted node"
                       : f.kind == schema::kFilePtyMaster ? "a pty master"
                       : f.kind == schema::kFilePtySlave  ? "a pty"
                       : f.kind == schema::kFileInotify   ? "an inotify instance"
                       : f.kind == schema::kFileFanotify  ? "a fanotify group"
                                                          : nullptr;
    if (kind != nullptr) {
      CR_TRY(tree.refuse(any, make_error("open file " + f.path + ": " + kind +
                                         " in a tree with its own mount namespace not "
                                         "supported yet")));
      continue;
    }
    if (f.kind == schema::kFileProcPid) {
      CR_TRY(tree.refuse(any, make_error("open file " + f.path +
                                         ": a /proc file in a tree with its own mount "
                                         "namespace not supported")));
      continue;
    }
    // A device is reopened by its path in the rebuilt namespace: there it must be a node of
    // the same device (a container's /dev/null for the host's its runtime gave it).
    if (f.kind == schema::kFileDevice) {
      struct stat st {};
      const std::string in_tree = "/proc/" + std::to_string(root) + "/root" + f.path;
      if (::stat(in_tree.c_str(), &st) != 0 || (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) ||
          static_cast<uint64_t>(st.st_rdev) != f.rdev)
        CR_TRY(tree.refuse(any, make_error("open device " + f.path +
                                           ": the tree's mount namespace has no node of the "
                                           "same device at that path: not supported")));
      continue;
    }
    // A pivoted tree's file must be the one its path leads to below the root: readlink shows
    // a file of a mount outside the tree's namespace (a runtime's log file given as stdout)
    // by its host path, which inside leads elsewhere or nowhere.
    if (sys::pivoted_root(tree.ns.mounts) && (f.dev != 0 || f.ino != 0) &&
        (f.kind == schema::kFileRegular || f.kind == schema::kFileDirectory ||
         f.kind == schema::kFilePath)) {
      const auto host = sys::host_path(tree.ns.mounts, f.path);
      struct stat st {};
      if (!host || ::stat(host->c_str(), &st) != 0 || static_cast<uint64_t>(st.st_dev) != f.dev ||
          static_cast<uint64_t>(st.st_ino) != f.ino) {
        CR_TRY(tree.refuse(any, make_error("open file " + f.path +
                                           ": not the file at that path below the tree's root "
                                           "(a file from outside its mount namespace, as a "
                                           "runtime's log given as stdout): not supported")));
        continue;
      }
    }
    CR_TRY(check(any, f.path, "open file"));
  }
  for (const schema::UnixSocket& u : tree.files.unix_sockets) {
    if (u.name.empty() || u.name[0] == '\0') continue;  // unnamed, abstract
    std::string name(u.name.begin(), u.name.end());
    name.resize(::strnlen(name.c_str(), name.size()));
    if (name[0] != '/') {
      CR_TRY(check(any, u.dir, "unix socket's directory"));
    } else {
      CR_TRY(check(any, name, "unix socket name"));
    }
  }
  return {};
}

// Any process outside the tree in its mount namespace: the restored namespace is a new one.
Status check_mnt_leaks(DumpTree& tree) {
  CR_TRY_ASSIGN(std::vector<int> pids, ProcDir::all_pids());
  for (int pid : pids) {
    if (tree.find(pid) != nullptr) continue;
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) continue;  // gone meanwhile
    auto m = proc->readlink("ns/mnt");
    if (!m.ok() || *m != tree.ns.mnt_link) continue;
    std::string comm = "?";
    if (auto s = proc->read("stat"); s.ok())
      if (auto st = parse_stat(*s); st.ok()) comm = st->comm;
    CR_TRY(tree.refuse(tree.procs.front()->pid,
                       make_error("pid " + std::to_string(pid) + " ('" + comm +
                                  "'), outside the tree, is in the tree's own mount namespace: "
                                  "the restored namespace would not hold it (not supported)")));
  }
  return {};
}

// An mqueue mount lists the POSIX message queues of the IPC namespace it was made in: crtools
// does not dump queues, so one there is refused by name (the new instance would be empty).
Status check_mqueue_empty(DumpTree& tree, const schema::Mount& m) {
  const pid_t root = tree.procs.front()->pid;
  const std::string path = "/proc/" + std::to_string(root) + "/root" + m.mount_point;
  ScopedFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return errno_error("open the tree's mqueue mount " + m.mount_point);
  DIR* d = ::fdopendir(dir.release());
  if (d == nullptr) return errno_error("fdopendir " + m.mount_point);
  std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
  while (struct dirent* de = ::readdir(d)) {
    const std::string_view n = de->d_name;
    if (n == "." || n == "..") continue;
    return tree.refuse(root, make_error("POSIX message queue /" + std::string(n) + " (mqueue " +
                                        m.mount_point + "): not supported"));
  }
  return {};
}

}  // namespace

Status collect_mount_ns(DumpTree& tree) {
  if (!tree.ns.own_mnt) return {};
  DumpContext& root = *tree.procs.front();
  const std::string who = "pid " + std::to_string(root.pid) + ": ";
  CR_TRY_ASSIGN(std::string tree_text, root.proc.read("mountinfo"));
  CR_TRY_ASSIGN(std::string host_text, ProcDir::open(::getpid())->read("mountinfo"));
  CR_TRY_ASSIGN(std::vector<MountLine> tree_lines, parse_mountinfo(tree_text));
  CR_TRY_ASSIGN(std::vector<MountLine> host_lines, parse_mountinfo(host_text));
  auto classified = sys::classify_mounts(tree_lines, host_lines);
  if (!classified.ok()) {
    CR_TRY(
        tree.refuse(root.pid, std::move(classified).error().wrap(who.substr(0, who.size() - 2))));
    return {};
  }
  tree.ns.mounts = std::move(classified).value();
  uint64_t bytes = 0;
  for (size_t i = 0; i < tree.ns.mounts.size(); ++i) {
    const schema::Mount& m = tree.ns.mounts[i];
    if (m.kind == schema::kMountMqueue) {
      CR_TRY(check_mqueue_empty(tree, m));
      continue;
    }
    if (m.kind != schema::kMountTmpfs) continue;
    dev_t dev = 0;
    for (const MountLine& l : tree_lines)
      if (l.id == m.id) dev = makedev(l.major, l.minor);
    const std::string path = "/proc/" + std::to_string(root.pid) + "/root" + m.mount_point;
    ScopedFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st {};
    if (!dir.valid() || ::fstat(dir.get(), &st) != 0)
      return errno_error("open the tree's tmpfs " + m.mount_point);
    TmpfsWalk w{m, dev, tree.procs.front()->opts.ghost_limit, bytes, tree.ns.tmpfs};
    Status s = st.st_dev != dev ? make_error("tmpfs " + m.mount_point +
                                             ": overmounted at its mount point: "
                                             "not supported")
                                : w.add(dir.get(), ".", "", st);
    if (s.ok()) s = w.walk(dir.get(), "");
    if (!s.ok()) CR_TRY(tree.refuse(root.pid, std::move(s).error()));
  }
  CR_TRY(check_paths(tree));
  return check_mnt_leaks(tree);
}

}  // namespace cr::dump
