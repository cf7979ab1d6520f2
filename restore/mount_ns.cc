#include "restore/mount_ns.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "common/scoped_fd.h"
#include "restore/context.h"
#include "sys/mount_tree.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

Result<std::vector<sys::MountLine>> own_mounts() {
  ScopedFd f(::open("/proc/thread-self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return errno_error("open /proc/thread-self/mountinfo");
  std::string text;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(f.get(), buf, sizeof buf);
    if (n < 0) return errno_error("read /proc/thread-self/mountinfo");
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  return sys::parse_mountinfo(text);
}

timespec to_ts(uint64_t ns) {
  return {static_cast<time_t>(ns / 1000000000ull), static_cast<long>(ns % 1000000000ull)};
}

// The files of tmpfs `m`, just mounted at its mount point: made below its root by fd (no path
// of the image is followed out of it: safe_relative_path was checked when the image was read,
// and O_NOFOLLOW keeps a symlink made earlier from leading elsewhere).
Status fill_tmpfs(const schema::Mount& m, const std::string& at,
                  const std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& tmpfs) {
  ScopedFd top(::open(at.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!top.valid()) return errno_error("open tmpfs " + m.mount_point);
  const int dir = top.get();
  std::vector<const schema::TmpfsEntry*> dirs;  // their times last: filling them changes them
  for (const auto& [e, data] : tmpfs) {
    if (e.mount != m.id) continue;
    const std::string where = "tmpfs " + m.mount_point + ": " + (e.path.empty() ? "/" : e.path);
    const char* name = e.path.empty() ? "." : e.path.c_str();
    const mode_t perm = static_cast<mode_t>(e.mode & 07777);
    if (S_ISDIR(e.mode)) {
      if (!e.path.empty() && ::mkdirat(dir, name, 0700) != 0) return errno_error(where + ": mkdir");
      dirs.push_back(&e);
    } else if (S_ISLNK(e.mode)) {
      const std::string target(data.begin(), data.end());
      if (::symlinkat(target.c_str(), dir, name) != 0) return errno_error(where + ": symlink");
    } else if (S_ISREG(e.mode)) {
      ScopedFd f(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!f.valid()) return errno_error(where + ": create");
      for (size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(f.get(), data.data() + done, data.size() - done);
        if (n < 0) return errno_error(where + ": write");
        done += static_cast<size_t>(n);
      }
    } else if (S_ISCHR(e.mode) || S_ISBLK(e.mode)) {
      const std::string text(data.begin(), data.end());
      unsigned ma = 0, mi = 0;
      char end = 0;
      if (std::sscanf(text.c_str(), "%u:%u%c", &ma, &mi, &end) != 2)
        return make_error(where + ": device number '" + text + "' is not MAJOR:MINOR");
      if (::mknodat(dir, name, (e.mode & S_IFMT) | 0600, makedev(ma, mi)) != 0)
        return errno_error(where + ": mknod");
    } else {
      return make_error(where + ": not a file, directory, symlink or device node");
    }
    if (::fchownat(dir, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_error(where + ": chown");
    // After chown, which clears setuid and setgid bits.
    if (!S_ISLNK(e.mode) && ::fchmodat(dir, name, perm, 0) != 0)
      return errno_error(where + ": chmod");
    if (!S_ISDIR(e.mode)) {
      const timespec t[2] = {to_ts(e.atime_ns), to_ts(e.mtime_ns)};
      if (::utimensat(dir, name, t, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_error(where + ": utimes");
    }
  }
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    const schema::TmpfsEntry& e = **it;
    const timespec t[2] = {to_ts(e.atime_ns), to_ts(e.mtime_ns)};
    if (::utimensat(dir, e.path.empty() ? "." : e.path.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0)
      return errno_error("tmpfs " + m.mount_point + ": " + e.path + ": utimes");
  }
  return {};
}

// Mount options without a "ro" of their own.
std::string without_ro(const std::string& options) {
  std::string out;
  size_t start = 0;
  while (start <= options.size()) {
    size_t comma = options.find(',', start);
    if (comma == std::string::npos) comma = options.size();
    const std::string opt = options.substr(start, comma - start);
    if (!opt.empty() && opt != "ro") out += (out.empty() ? "" : ",") + opt;
    start = comma + 1;
  }
  return out;
}

// A tmpfs that was read-only (an empty one over a masked directory), once its files are made:
// the filesystem and the mount as they were.
Status read_only_tmpfs(const schema::Mount& m, const std::string& at) {
  const unsigned long flags = sys::mount_flags(m.options);
  const bool sb_ro = without_ro(m.super_options) != m.super_options;
  if ((flags & MS_RDONLY) == 0 && !sb_ro) return {};
  if (sb_ro && ::mount(nullptr, at.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | (flags & ~MS_RDONLY),
                       m.super_options.c_str()) != 0)
    return errno_error("remount tmpfs " + m.mount_point + " read-only");
  if ((flags & MS_RDONLY) != 0 &&
      ::mount(nullptr, at.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0)
    return errno_error("remount tmpfs " + m.mount_point + " " + m.options);
  return {};
}

// `m` mounted at `at` (its mount point, below the new root while a pivoted one is built).
Status mount_one(const schema::Mount& m, const std::string& at, const std::string& stage,
                 const std::map<std::string, ScopedFd>& sources) {
  const unsigned long flags = sys::mount_flags(m.options);
  const std::string what = "mount " + m.fstype + " at " + m.mount_point;
  switch (m.kind) {
    case schema::kMountBind:
    case schema::kMountBindTree: {
      // A host path by the fd held since before anything moved; a path of the tree's where
      // the mounts made so far put it.
      const std::string from =
          m.kind == schema::kMountBind
              ? "/proc/self/fd/" + std::to_string(sources.at(m.bind_from).get())
              : (stage == "/" ? m.bind_from : stage + m.bind_from);
      if (::mount(from.c_str(), at.c_str(), nullptr, MS_BIND, nullptr) != 0)
        return errno_error(what + " (a bind of " + m.bind_from + ")");
      // A bind takes its options from a remount of its own.
      if (flags != 0 &&
          ::mount(nullptr, at.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0)
        return errno_error(what + ": remount " + m.options);
      return {};
    }
    case schema::kMountTmpfs: {
      // Writable while its files are made (read_only_tmpfs makes it read-only after).
      if (::mount(m.source.c_str(), at.c_str(), m.fstype.c_str(), flags & ~MS_RDONLY,
                  without_ro(m.super_options).c_str()) != 0)
        return errno_error(what + " (" + m.super_options + ")");
      return {};
    }
    case schema::kMountProc:
    case schema::kMountSysfs:
    case schema::kMountDevpts:
    case schema::kMountMqueue: {
      // The filesystem's own options as they were; "rw"/"ro" among them the kernel takes too.
      // A devpts mount is a new instance (Linux 4.7 on); an mqueue one shows the IPC
      // namespace the root is in, the tree's.
      if (::mount(m.source.c_str(), at.c_str(), m.fstype.c_str(), flags,
                  m.super_options.c_str()) != 0)
        return errno_error(what + " (" + m.super_options + ")");
      return {};
    }
    default:
      return make_error(what + ": kind " + std::to_string(m.kind) + " is not a new mount");
  }
}

// The host paths binds are made from, each held (O_PATH) before any mount moves.
Result<std::map<std::string, ScopedFd>> bind_sources(const std::vector<schema::Mount>& mounts) {
  std::map<std::string, ScopedFd> sources;
  for (const schema::Mount& m : mounts) {
    if (m.kind != schema::kMountBind || sources.count(m.bind_from) != 0) continue;
    ScopedFd f(::open(m.bind_from.c_str(), O_PATH | O_CLOEXEC));
    if (!f.valid())
      return errno_error("open " + m.bind_from + ", the source of bind mount " + m.mount_point);
    sources.emplace(m.bind_from, std::move(f));
  }
  return sources;
}

// The result must be the tree's list exactly: a restore that goes on is a right one.
Status check_rebuilt(const std::vector<schema::Mount>& mounts) {
  CR_TRY_ASSIGN(std::vector<sys::MountLine> now, own_mounts());
  const auto all = sys::match_mounts(mounts, now, false);
  if (all.size() != mounts.size() || now.size() != mounts.size())
    return make_error("the rebuilt mount namespace has " + std::to_string(now.size()) +
                      " mounts, " + std::to_string(all.size()) + " of them the image's " +
                      std::to_string(mounts.size()));
  return {};
}


}  // namespace

Result<std::vector<schema::Mount>> apply_external_mounts(
    std::vector<schema::Mount> mounts, const std::map<std::string, std::string>& external,
    const std::vector<sys::MountLine>& lines, bool where_found) {
  for (const auto& entry : external) {
    // Named, not a structured binding: clang (the fuzz build) cannot capture those.
    const std::string& point = entry.first;
    const std::string& path = entry.second;
    const std::string what = "--external mnt[" + point + "]:" + path;
    auto m = std::find_if(mounts.begin(), mounts.end(),
                          [&](const schema::Mount& r) { return r.mount_point == point; });
    // The root only where it is a bind already (pivoted): its new place.
    if (m == mounts.end() || (m == mounts.begin() && m->kind != schema::kMountBind) ||
        (m->kind != schema::kMountBind && m->kind != schema::kMountHost)) {
      if (where_found) continue;
      return make_error(what + ": the image has no bind or host mount at " + point);
    }
    char real[PATH_MAX];
    if (path.empty() || path[0] != '/' || ::realpath(path.c_str(), real) == nullptr)
      return make_error(what + ": " + path + " is not an absolute path that exists");
    const std::string at = real;
    // The mount the path is on: the last (uppermost) whose mount point is a prefix of it.
    const sys::MountLine* on = nullptr;
    for (const sys::MountLine& l : lines) {
      const bool under = l.mount_point == "/" || at == l.mount_point ||
                         at.starts_with(l.mount_point + "/");
      if (under && (on == nullptr || l.mount_point.size() >= on->mount_point.size())) on = &l;
    }
    if (on == nullptr) return make_error(what + ": no mount of crrestore's holds " + at);
    const std::string rel = on->mount_point == "/" ? at : at.substr(on->mount_point.size());
    std::string root = on->root == "/" ? rel : on->root + rel;
    if (root.empty()) root = "/";
    m->kind = schema::kMountBind;
    m->bind_from = at;
    m->fstype = on->fstype;
    m->source = on->source;
    m->root = root;
  }
  return mounts;
}

std::vector<schema::Mount> move_cgroup_binds(
    std::vector<schema::Mount> mounts,
    const std::map<std::string, std::pair<std::string, std::string>>& moved) {
  auto tokens = [](const std::string& list) {
    std::set<std::string> out;
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      if (comma > start) out.insert(list.substr(start, comma - start));
      start = comma + 1;
    }
    return out;
  };
  auto below = [](const std::string& path, const std::string& dir) {
    return dir == "/" || path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
  };
  for (schema::Mount& m : mounts) {
    if (m.kind != schema::kMountBind || (m.fstype != "cgroup" && m.fstype != "cgroup2")) continue;
    // The hierarchy: cgroup2's is "", a v1 mount's the controllers its options name.
    const std::set<std::string> opts = tokens(m.super_options);
    const std::pair<std::string, std::string>* to = nullptr;
    for (const auto& [hierarchy, paths] : moved) {
      const bool v2 = hierarchy.empty();
      if (v2 != (m.fstype == "cgroup2")) continue;
      bool all = true;
      for (const auto& c : tokens(hierarchy)) all = all && opts.count(c) != 0;
      if (all) to = &paths;
    }
    if (to == nullptr || to->first == to->second || !below(m.root, to->first)) continue;
    const std::string& before = to->first;
    const std::string tail = m.root.substr(before == "/" ? 0 : before.size());
    // bind_from is the hierarchy's mount point plus the root below that mount's own root: the
    // longest end of `before` that bind_from (less the tail) ends with is that part.
    const std::string head = m.bind_from.substr(0, m.bind_from.size() - tail.size());
    size_t k = std::string::npos;
    for (size_t i = 0; i < before.size(); ++i)
      if (before[i] == '/' && head.ends_with(before.substr(i))) {
        k = i;
        break;
      }
    if (k == std::string::npos || !to->second.starts_with(before.substr(0, k))) continue;
    const std::string mount_point = head.substr(0, head.size() - (before.size() - k));
    m.bind_from = mount_point + to->second.substr(k) + tail;
    m.root = to->second == "/" ? (tail.empty() ? "/" : tail) : to->second + tail;
  }
  return mounts;
}

Status prepare_mounts(RestoreContext& root) {
  auto& opts = root.opts;
  std::vector<schema::Mount>& mounts = root.shared.mounts;
  if (mounts.empty()) {
    if (!opts.root.empty())
      return make_error("root " + opts.root + ": the tree has no mount namespace of its own");
    if (opts.external_mounts_where_found) opts.external_mounts.clear();
    return {};
  }
  // Where the tree's cgroups are now, by hierarchy, from the root's at the dump.
  if (!opts.cgroup_roots.empty()) {
    std::map<std::string, std::pair<std::string, std::string>> moved;
    for (const schema::CgroupMember& member : root.shared.cgroup_members) {
      if (static_cast<pid_t>(member.pid) != root.pid() || member.tid != member.pid) continue;
      for (uint64_t id : member.cgroups) {
        auto cg = root.shared.cgroups.find(static_cast<uint32_t>(id));
        if (cg == root.shared.cgroups.end()) continue;
        auto now = opts.cgroup_roots.find(cg->second.cg.controllers);
        if (now != opts.cgroup_roots.end())
          moved[cg->second.cg.controllers] = {cg->second.cg.path, now->second};
      }
    }
    mounts = move_cgroup_binds(std::move(mounts), moved);
  }
  std::map<std::string, std::string> external = std::move(opts.external_mounts);
  opts.external_mounts.clear();
  // With the cgroups named, the tree's cgroup binds follow them, whatever else names their
  // mount points (runc's ext_mnt for cgroup v1 gives runc's own cgroups there).
  if (!opts.cgroup_roots.empty())
    for (const schema::Mount& m : mounts)
      if (m.fstype == "cgroup" || m.fstype == "cgroup2") external.erase(m.mount_point);
  if (!opts.root.empty()) {
    if (!sys::pivoted_root(mounts))
      return make_error("root " + opts.root +
                        ": the tree's root is a copy of crdump's, not a directory it was pivoted "
                        "into");
    external["/"] = opts.root;
  }
  if (external.empty()) return {};
  CR_TRY_ASSIGN(std::vector<sys::MountLine> lines, own_mounts());
  CR_TRY_ASSIGN(mounts, apply_external_mounts(std::move(mounts), external, lines,
                                              opts.external_mounts_where_found));
  return {};
}

namespace {

// A pivoted root (sys::pivoted_root): the root's directory bound on itself, every other mount
// made below it in order, its own options last, then pivot_root into it and the copy of
// crrestore's namespace let go whole. Paths of crrestore's stay reachable until the pivot.
Status build_pivoted(const std::vector<schema::Mount>& mounts,
                     const std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& tmpfs) {
  const schema::Mount& top = mounts.front();
  const std::string stage = top.bind_from;
  if (stage.empty() || stage[0] != '/' || stage == "/")
    return make_error("the tree's root " + stage + " is not a directory to pivot into");
  auto held = bind_sources(mounts);
  if (!held.ok()) return std::move(held).error();
  const std::map<std::string, ScopedFd> sources = std::move(held).value();
  if (::mount(stage.c_str(), stage.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return errno_error("bind the tree's root " + stage);
  for (size_t i = 1; i < mounts.size(); ++i) {
    const schema::Mount& m = mounts[i];
    const std::string at = stage + m.mount_point;
    CR_TRY(mount_one(m, at, stage, sources));
    if (m.kind == schema::kMountTmpfs) {
      CR_TRY(fill_tmpfs(m, at, tmpfs));
      CR_TRY(read_only_tmpfs(m, at));
    }
  }
  const unsigned long flags = sys::mount_flags(top.options);
  if (flags != 0 &&
      ::mount(nullptr, stage.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0)
    return errno_error("remount the tree's root " + top.options);
  ScopedFd dir(::open(stage.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid() || ::fchdir(dir.get()) != 0) return errno_error("enter " + stage);
  // pivot_root(".", "."): the old root ends up on top of the new one, and is detached whole.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return errno_error("pivot_root into " + stage);
  if (::umount2(".", MNT_DETACH) != 0) return errno_error("detach crrestore's root");
  if (::chdir("/") != 0) return errno_error("chdir /");
  return {};
}

}  // namespace

Status rebuild_mount_ns(
    const std::vector<schema::Mount>& image_mounts,
    const std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>>& tmpfs,
    const std::map<std::string, std::string>& external) {
  // Nothing of ours reaches crrestore's namespace, nor the other way.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return errno_error("make the new mount namespace private");
  if (sys::pivoted_root(image_mounts)) {
    if (!external.empty())
      return make_error("external mounts of a pivoted root are applied before (prepare_mounts)");
    CR_TRY(build_pivoted(image_mounts, tmpfs));
    return check_rebuilt(image_mounts);
  }
  CR_TRY_ASSIGN(std::vector<sys::MountLine> copy, own_mounts());
  CR_TRY_ASSIGN(const std::vector<schema::Mount> mounts,
                apply_external_mounts(image_mounts, external, copy, false));
  const auto kept = sys::match_mounts(mounts, copy, true);
  for (const schema::Mount& m : mounts)
    if (m.kind == schema::kMountHost && kept.count(m.id) == 0)
      return make_error("mount " + m.mount_point + " (" + m.fstype + " " + m.source + ", root " +
                        m.root + ") of the image is not in crrestore's mount namespace");
  // The sources of binds, held before anything is detached.
  auto held = bind_sources(mounts);
  if (!held.ok()) return std::move(held).error();
  const std::map<std::string, ScopedFd> sources = std::move(held).value();
  // What the tree did not have, deepest (latest) first; a parent's detach takes its children,
  // whose own detach then finds nothing there (EINVAL) or another mount (checked at the end).
  std::map<uint32_t, bool> keep;
  for (const auto& [rec, line] : kept) keep[line] = true;
  for (auto it = copy.rbegin(); it != copy.rend(); ++it) {
    if (keep.count(it->id) != 0) continue;
    if (::umount2(it->mount_point.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
      return errno_error("detach " + it->mount_point);
  }
  for (const schema::Mount& m : mounts) {
    if (m.kind == schema::kMountHost) continue;
    CR_TRY(mount_one(m, m.mount_point, "/", sources));
    if (m.kind == schema::kMountTmpfs) {
      CR_TRY(fill_tmpfs(m, m.mount_point, tmpfs));
      CR_TRY(read_only_tmpfs(m, m.mount_point));
    }
  }
  return check_rebuilt(mounts);
}


Status reopen_in_namespace(const std::map<uint32_t, schema::File>& files,
                           const std::map<uint32_t, int>& carriers) {
  for (const auto& [id, fd] : carriers) {
    auto it = files.find(id);
    if (it == files.end()) continue;
    const schema::File& f = it->second;
    int flags = 0;
    switch (f.kind) {
      case schema::kFileRegular:
      case schema::kFileDevice:
        flags = static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC);
        break;
      case schema::kFileDirectory:
        flags = (static_cast<int>(f.flags) & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_DIRECTORY;
        break;
      case schema::kFilePath:
        flags = static_cast<int>(f.flags) & (O_PATH | O_NOFOLLOW | O_DIRECTORY);
        break;
      default:
        continue;  // not on a mount of a path (pipes, sockets, event fds ...)
    }
    const std::string what = "file " + std::to_string(id) + " (" + f.path + ")";
    ScopedFd again(::open(f.path.c_str(), flags | O_CLOEXEC | O_NOCTTY));
    if (!again.valid()) return errno_error(what + ": open in the tree's mount namespace");
    struct stat a {
    }, b{};
    if (::fstat(fd, &a) != 0 || ::fstat(again.get(), &b) != 0) return errno_error(what + ": fstat");
    // A device by its number: a pivoted tree's node of it is its own (its /dev tmpfs).
    const bool same = f.kind == schema::kFileDevice
                          ? (a.st_mode & S_IFMT) == (b.st_mode & S_IFMT) && a.st_rdev == b.st_rdev
                          : a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    if (!same)
      return make_error(what + ": another file in the tree's mount namespace than crrestore's");
    if (f.kind == schema::kFileRegular || f.kind == schema::kFileDirectory) {
      const off_t pos = ::lseek(fd, 0, SEEK_CUR);
      if (pos >= 0 && ::lseek(again.get(), pos, SEEK_SET) != pos)
        return errno_error(what + ": seek to " + std::to_string(pos));
    }
    const int fd_flags = ::fcntl(fd, F_GETFD);
    if (fd_flags < 0 || ::dup3(again.get(), fd, (fd_flags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0) != fd)
      return errno_error(what + ": put in place of fd " + std::to_string(fd));
  }
  return {};
}

}  // namespace cr::restore
