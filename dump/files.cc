// The fd tables of the tree: one File per open file description (shared by dup or by fork, told
// apart with kcmp), Pipe objects with their queued bytes (peeked with tee(2), never consumed),
// Pty objects for the pty pairs whose master is in the tree (pty.cc), contents of deleted
// files, and one Fd per slot of each process.
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/text.h"
#include "dump/inet_sockets.h"
#include "dump/netlink_sockets.h"
#include "dump/passes.h"
#include "dump/unix_sockets.h"
#include "sys/linux_abi.h"

namespace cr::dump {

namespace {

struct FdEntry {
  DumpContext* proc = nullptr;
  int fd = -1;
  std::string link;  // readlink of /proc/PID/fd/N
  struct stat st {};
  Fdinfo info;
  std::vector<LockLine> locks;  // its fdinfo "lock:" lines
  uint32_t file_id = 0;
};

// A timerfd's remaining time, period and unread expirations. A periodic timer that expired
// stays stopped in the kernel (fdinfo shows no time left and one tick) until it is read or
// timerfd_gettime is called: gettime on a copy of the fd counts the periods missed since and
// starts it again, as the program's next read or gettime would have, so the next expiry and
// the ticks are the ones the program will see. A relative timer comes back with the time it
// had left (the time between dump and restore does not count); one armed with
// TFD_TIMER_ABSTIME keeps its expiry on its clock.
Status read_timerfd(const FdEntry& e, schema::File& f) {
  const std::string what = "fd " + std::to_string(e.fd) + ": timerfd";
  CR_TRY_ASSIGN(ScopedFd t, copy_task_fd(*e.proc, e.fd));
  // The clock first: now + what is left is then never later than the real expiry.
  timespec now{};
  if (::clock_gettime(static_cast<clockid_t>(e.info.clockid), &now) != 0)
    return errno_error(what + ": clock_gettime(" + std::to_string(e.info.clockid) + ")");
  itimerspec cur{};
  if (::timerfd_gettime(t.get(), &cur) != 0) return errno_error(what + ": timerfd_gettime");
  CR_TRY_ASSIGN(std::string text, e.proc->proc.read("fdinfo/" + std::to_string(e.fd)));
  CR_TRY_ASSIGN(Fdinfo info, parse_fdinfo(text));
  auto ns = [](const timespec& ts) {
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  };
  f.clockid = info.clockid;
  f.value_ns = ns(cur.it_value);
  f.interval_ns = ns(cur.it_interval);
  f.counter = info.ticks;
  if ((info.settime_flags & TFD_TIMER_ABSTIME) != 0 && f.value_ns != 0)
    f.abs_ns = ns(now) + f.value_ns;
  return {};
}

// An epoll shows no "tfd:" line in its fdinfo until it has a watch, nor an inotify an
// "inotify wd:" line: their links tell.
constexpr std::string_view kEpollLink = "anon_inode:[eventpoll]";
constexpr std::string_view kInotifyLink = "anon_inode:inotify";
constexpr std::string_view kPidfdLink = "anon_inode:[pidfd]";
constexpr std::string_view kFanotifyLink = "anon_inode:[fanotify]";

// pidfd_open flags (the file keeps them in f_flags): PIDFD_NONBLOCK is O_NONBLOCK,
// PIDFD_THREAD (6.9) is O_EXCL.
constexpr uint32_t kPidfdThread = O_EXCL;

constexpr unsigned long kMqueueMagic = 0x19800202;
constexpr unsigned long kHugetlbfsMagic = 0x958458f6;

// The filesystem type of what fd `fd` of the process is open on (0 if unknown).
unsigned long fs_magic(const DumpContext& ctx, int fd) {
  struct statfs sfs {};
  const std::string link = "/proc/" + std::to_string(ctx.pid) + "/fd/" + std::to_string(fd);
  if (::statfs(link.c_str(), &sfs) != 0) return 0;
  return static_cast<unsigned long>(sfs.f_type);
}

Error refuse(int fd, const std::string& what) {
  return make_error(fd_name(fd) + ": " + what + " not supported yet");
}

bool same_description(pid_t pa, int a, pid_t pb, int b) {
  return ::syscall(SYS_kcmp, pa, pb, KCMP_FILE, a, b) == 0;
}

bool is_tty(const struct stat& st) {
  if (!S_ISCHR(st.st_mode)) return false;
  unsigned ma = major(st.st_rdev);
  return (ma >= 136 && ma <= 143) || ma == 4 || ma == 5;
}

bool is_ptmx(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 2;
}

// The index of a Unix98 pty slave (/dev/pts/N is MKDEV(136, N)), or -1.
int64_t pts_index(const struct stat& st) {
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 136) return -1;
  return minor(st.st_rdev);
}

bool is_plain_device(const struct stat& st) {
  if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 1) return false;
  unsigned mi = minor(st.st_rdev);
  return mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9;  // null, zero, full, random, urandom
}

constexpr std::string_view kDeleted = " (deleted)";

// Removed from its directory while open: the kernel keeps the name and adds " (deleted)".
bool is_deleted(const FdEntry& e) { return e.link.ends_with(kDeleted) && e.st.st_nlink == 0; }

std::string without_deleted(const std::string& link) {
  return link.ends_with(kDeleted) ? link.substr(0, link.size() - kDeleted.size()) : link;
}

// An O_TMPFILE file that was never linked: /proc names it "DIR/#INO (deleted)".
bool is_tmpfile(const std::string& path, const struct stat& st) {
  const size_t slash = path.rfind('/');
  return slash != std::string::npos &&
         path.compare(slash + 1, std::string::npos, "#" + std::to_string(st.st_ino)) == 0;
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

std::string anon_name(const FdEntry& e) {
  if (e.info.kind != FdinfoKind::kPlain) return std::string(fdinfo_kind_name(e.info.kind));
  std::string n = e.link.substr(e.link.find(':') + 1);
  if (n.size() >= 2 && n.front() == '[' && n.back() == ']') n = n.substr(1, n.size() - 2);
  return n;
}

constexpr unsigned long kProcMagic = 0x9fa0;

}  // namespace

pid_t proc_path_pid(std::string_view path) {
  if (!path.starts_with("/proc/")) return 0;
  path.remove_prefix(6);
  pid_t pid = 0;
  size_t i = 0;
  for (; i < path.size() && path[i] >= '0' && path[i] <= '9' && pid < 10000000; ++i)
    pid = pid * 10 + (path[i] - '0');
  if (i == 0 || (i < path.size() && path[i] != '/')) return 0;
  return pid;
}

Status check_proc_path(const DumpTree& tree, const DumpContext& holder, const std::string& path,
                       const std::string& what) {
  const pid_t pid = proc_path_pid(path);
  if (pid == 0) return {};
  const DumpContext* target = tree.find(pid);
  if (target == nullptr)
    return make_error(what + " " + path + " is of process " + std::to_string(pid) +
                      ", outside the process tree");
  // A thread's directory: other threads are made after the fds are in place.
  const std::string task = "/proc/" + std::to_string(pid) + "/task/";
  if (path.starts_with(task) && proc_path_pid("/proc/" + path.substr(task.size())) != pid)
    return make_error(what + " " + path + " of a thread other than the main one not supported yet");
  if (target->zombie)
    return make_error(what + " " + path + " is of zombie " + std::to_string(pid) +
                      " not supported yet");
  // Restore opens it in the holder as it builds its fd table: itself, its ancestors and its
  // children exist by then, other processes of the tree maybe not yet.
  bool ok = pid == holder.pid || target->parent == holder.pid;
  for (const DumpContext* a = &holder; !ok && a != nullptr && a->parent != 0;
       a = tree.find(a->parent))
    ok = a->parent == pid;
  if (!ok)
    return make_error(what + " " + path + " is of process " + std::to_string(pid) +
                      ", neither the holder " + std::to_string(holder.pid) +
                      " nor its ancestor or child (not supported yet)");
  return {};
}

namespace {

class FileCollector {
 public:
  explicit FileCollector(DumpTree& tree)
      : tree_(tree), t_(tree.files), unix_(tree), inet_(tree), netlink_(tree) {}

  Status run() {
    for (auto& p : tree_.procs)
      // A table shared with the parent is the parent's: its Fds are written once, there.
      if (!p->zombie && p->files_of == 0) CR_TRY(list_entries(*p));
    // Which pipe inodes have both ends inside the tree.
    for (const FdEntry& e : entries_) {
      if (!e.link.starts_with("pipe:")) continue;
      int acc = static_cast<int>(e.info.flags & O_ACCMODE);
      if (acc == O_RDONLY || acc == O_RDWR) pipe_ends_[e.st.st_ino].first = true;
      if (acc == O_WRONLY || acc == O_RDWR) pipe_ends_[e.st.st_ino].second = true;
    }
    find_ptys();
    find_shared_descriptions();
    for (size_t i = 0; i < entries_.size(); ++i) {
      FdEntry& e = entries_[i];
      e.file_id = shared_description(i);
      if (e.file_id == 0) {
        auto id = add_file(e);
        if (!id.ok()) {
          const std::string w = where(e);
          CR_TRY(tree_.refuse(e.proc->pid,
                              w.empty() ? std::move(id).error() : std::move(id).error().wrap(w)));
          continue;  // a dry run: the next fd (its File id stays 0, later passes skip it)
        }
        e.file_id = *id;
      }
      // Each holder opens a /proc file of its own at restore: one description cannot be
      // shared (inherited across fork) that way.
      auto holder = proc_holders_.find(e.file_id);
      if (holder != proc_holders_.end() && holder->second != e.proc->pid) {
        CR_TRY(tree_.refuse(
            e.proc->pid,
            make_error("pid " + std::to_string(e.proc->pid) + " " + fd_name(e.fd) + ": " + e.link +
                       " shared with process " + std::to_string(holder->second) +
                       " (one file description) not supported yet")));
        continue;
      }
      schema::Fd rec;
      rec.pid = static_cast<uint32_t>(e.proc->pid);
      rec.fd = static_cast<uint32_t>(e.fd);
      rec.file = e.file_id;
      rec.fd_flags = (e.info.flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
      t_.fds.push_back(rec);
    }
    if (Status st = check_pty_holders(tree_, t_.ptys); !st.ok())
      CR_TRY(tree_.refuse(tree_.procs.front()->pid, std::move(st).error()));
    // Peers, listeners and names are checked once every socket of the tree is known.
    CR_TRY(unix_.finish([this](int local) { return description_of(local); }));
    CR_TRY(collect_epolls());
    CR_TRY(collect_locks());
    CR_TRY(netlink_.finish());
    // Last: established TCP connections are locked and put in repair mode here, once nothing
    // else can refuse the dump.
    return inet_.finish();
  }

 private:
  Status list_entries(DumpContext& ctx) {
    CR_TRY_ASSIGN(std::vector<int> fds, ctx.proc.fds());
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
      auto locks = parse_fdinfo_locks(info);
      if (!locks.ok()) return std::move(locks).error().wrap(fd_name(fd));
      e.locks = std::move(locks).value();
      entries_.push_back(std::move(e));
    }
    return {};
  }

  // The pty pairs whose master the tree holds, each with one of its slave fds in the tree.
  void find_ptys() {
    for (const FdEntry& e : entries_) {
      if (!is_ptmx(e.st) || e.info.tty_index < 0) continue;
      PtyEnds& p = ptys_[static_cast<uint32_t>(e.info.tty_index)];
      if (p.master_pid != 0) continue;
      p.index = static_cast<uint32_t>(e.info.tty_index);
      p.master_pid = e.proc->pid;
      p.master_fd = e.fd;
    }
    for (const FdEntry& e : entries_) {
      const int64_t idx = pts_index(e.st);
      auto it = idx < 0 ? ptys_.end() : ptys_.find(static_cast<uint32_t>(idx));
      if (it == ptys_.end() || it->second.slave_pid != 0) continue;
      it->second.slave_pid = e.proc->pid;
      it->second.slave_fd = e.fd;
      it->second.slave_st = e.st;
    }
  }

  // A slave of a pair whose master the tree holds (the same devpts instance as the slave
  // read_pty checks against /dev/pts).
  bool is_tree_pty_slave(const FdEntry& e) const {
    const int64_t idx = pts_index(e.st);
    auto it = idx < 0 ? ptys_.end() : ptys_.find(static_cast<uint32_t>(idx));
    return it != ptys_.end() && it->second.slave_st.st_dev == e.st.st_dev;
  }

  Result<uint32_t> pty_object(uint32_t index) {
    auto it = pty_ids_.find(index);
    if (it != pty_ids_.end()) return it->second;
    CR_TRY_ASSIGN(schema::Pty p, read_pty(tree_, ptys_.at(index)));
    p.id = tree_.next_obj_id++;
    t_.ptys.push_back(std::move(p));
    pty_ids_[index] = t_.ptys.back().id;
    return t_.ptys.back().id;
  }

  Status collect_epolls() {
    std::vector<EpollRef> epolls;
    std::vector<OpenFileRef> open;
    std::set<uint32_t> seen;
    for (const FdEntry& e : entries_) {
      open.push_back({e.proc->pid, e.fd, static_cast<uint64_t>(e.st.st_ino), e.file_id});
      if (e.link == kEpollLink && seen.insert(e.file_id).second)
        epolls.push_back({e.proc->pid, e.fd, e.file_id, e.info.epoll_watches});
    }
    return collect_epoll_items(tree_, epolls, open);
  }

  Status collect_locks() {
    std::map<uint32_t, uint32_t> kinds;
    for (const schema::File& f : t_.files) kinds[f.id] = f.kind;
    std::vector<LockedFd> fds;
    fds.reserve(entries_.size());
    for (FdEntry& e : entries_) {
      const uint32_t kind = kinds[e.file_id];
      // An O_PATH fd holds no lock and has no owner (fcntl F_GETOWN_EX fails on it): skipped
      // as the files that are not the tree's are.
      const bool external =
          kind == schema::kFileExternal || kind == schema::kFileTty || kind == schema::kFilePath;
      fds.push_back({e.proc->pid, e.fd, e.file_id, external, std::move(e.locks)});
    }
    return collect_file_locks(tree_, fds);
  }

  // Errors about another process than the root name it.
  std::string where(const FdEntry& e) const {
    return e.proc == tree_.procs.front().get() ? std::string()
                                               : "pid " + std::to_string(e.proc->pid);
  }

  // The File that crdump's fd `local` is the open file description of (an fd in flight in a
  // unix socket's queue, received by peeking): a tree's fd's, or one only queues hold.
  Result<uint32_t> description_of(int local) {
    struct stat st {};
    if (::fstat(local, &st) != 0) return errno_error("fstat of an fd in flight");
    for (const FdEntry& o : entries_)
      if (o.file_id != 0 && o.st.st_dev == st.st_dev && o.st.st_ino == st.st_ino &&
          same_description(::getpid(), local, o.proc->pid, o.fd))
        return o.file_id;
    for (const auto& [held, id] : in_flight_only_)
      if (same_description(::getpid(), local, ::getpid(), held.get())) return id;
    return add_in_flight_only(local, st);
  }

  // A file only queues hold (its sender closed its own fd after sending it): a regular file or
  // directory still at its path comes back opened there, with its flags and offset (as the
  // image's owner, for a restricted image). Anything else, or one with a lock on it, is
  // refused: its state is not where a File of the tree's would be read from.
  Result<uint32_t> add_in_flight_only(int local, const struct stat& st) {
    const std::string what = "an fd in flight (SCM_RIGHTS) whose file no fd of the tree holds";
    CR_TRY_ASSIGN(ProcDir self, ProcDir::open(::getpid()));
    const std::string n = std::to_string(local);
    CR_TRY_ASSIGN(const std::string link, self.readlink("fd/" + n));
    CR_TRY_ASSIGN(const std::string text, self.read("fdinfo/" + n));
    CR_TRY_ASSIGN(Fdinfo info, parse_fdinfo(text));
    CR_TRY_ASSIGN(auto locks, parse_fdinfo_locks(text));
    struct statfs sfs {};
    const bool odd_fs = ::fstatfs(local, &sfs) != 0 || sfs.f_type == kProcMagic ||
                        sfs.f_type == kMqueueMagic || sfs.f_type == kHugetlbfsMagic;
    const bool plain = (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) &&
                       info.kind == FdinfoKind::kPlain && (info.flags & O_PATH) == 0 &&
                       link.starts_with("/") && !link.ends_with(kDeleted) && st.st_nlink > 0 &&
                       !odd_fs && locks.empty() && !tree_.ns.own_mnt;
    if (!plain)
      return make_error(what + " (" + link +
                        ") not supported yet: only a regular file or directory at its path, "
                        "unlocked, in crdump's mount namespace");
    struct stat at {};
    if (::stat(link.c_str(), &at) != 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino)
      return make_error(what + " (" + link + ") not reachable at its path not supported");
    schema::File f = file_fields(link, st, info);
    f.kind = S_ISDIR(st.st_mode) ? schema::kFileDirectory : schema::kFileRegular;
    f.id = tree_.next_obj_id++;
    t_.files.push_back(std::move(f));
    ScopedFd keep(::fcntl(local, F_DUPFD_CLOEXEC, 0));  // to know it in another message
    if (!keep.valid()) return errno_error(what + ": dup");
    in_flight_only_.emplace_back(std::move(keep), t_.files.back().id);
    return t_.files.back().id;
  }

  uint32_t shared_description(size_t i) const {
    const size_t j = first_of_[i];
    return j < i ? entries_[j].file_id : 0;
  }

  // For every entry, the first entry (itself, or an earlier one) with the same open file
  // description. The entries of one file (device, inode, link) are sorted in kcmp's order of
  // their descriptions and equal neighbours joined, not compared pairwise: a thousand
  // processes that each opened /dev/null took half a million kcmp calls that way. A kcmp that
  // fails (a task gone) leaves that file's entries to the pairwise comparison.
  void find_shared_descriptions() {
    first_of_.resize(entries_.size());
    std::map<std::tuple<dev_t, ino_t, std::string_view>, std::vector<size_t>> files;
    for (size_t i = 0; i < entries_.size(); ++i) {
      first_of_[i] = i;
      const FdEntry& e = entries_[i];
      files[{e.st.st_dev, e.st.st_ino, std::string_view(e.link)}].push_back(i);
    }
    auto order = [this](size_t a, size_t b) {
      const FdEntry& x = entries_[a];
      const FdEntry& y = entries_[b];
      return ::syscall(SYS_kcmp, x.proc->pid, y.proc->pid, KCMP_FILE, x.fd, y.fd);
    };
    for (auto& [key, v] : files) {
      if (v.size() < 2) continue;
      bool ordered = true;
      std::vector<size_t> sorted = kcmp_sorted(v, [&](size_t a, size_t b) {
        const long r = order(a, b);
        if (r != 0 && r != 1 && r != 2) ordered = false;
        return r == 1;
      });
      if (ordered) {
        // Runs of equal descriptions: each joined to its first entry in the tree's order.
        for (size_t k = 0; k < sorted.size();) {
          size_t end = k + 1;
          while (end < sorted.size() && order(sorted[k], sorted[end]) == 0) ++end;
          size_t first = sorted[k];
          for (size_t m = k; m < end; ++m) first = std::min(first, sorted[m]);
          for (size_t m = k; m < end; ++m) first_of_[sorted[m]] = first;
          k = end;
        }
        continue;
      }
      for (size_t a = 0; a < v.size(); ++a)
        for (size_t b = 0; b < a; ++b)
          if (first_of_[v[b]] == v[b] && order(v[b], v[a]) == 0) {
            first_of_[v[a]] = v[b];
            break;
          }
    }
  }

  // `v` sorted by `less` (a merge sort: it stays within bounds even if a failed kcmp makes
  // `less` inconsistent; the caller then discards the order).
  template <class Less>
  static std::vector<size_t> kcmp_sorted(std::vector<size_t> v, Less less) {
    std::vector<size_t> tmp(v.size());
    for (size_t width = 1; width < v.size(); width *= 2) {
      for (size_t lo = 0; lo < v.size(); lo += 2 * width) {
        const size_t mid = std::min(lo + width, v.size());
        const size_t hi = std::min(lo + 2 * width, v.size());
        size_t a = lo, b = mid, out = lo;
        while (a < mid && b < hi) tmp[out++] = less(v[b], v[a]) ? v[b++] : v[a++];
        while (a < mid) tmp[out++] = v[a++];
        while (b < hi) tmp[out++] = v[b++];
      }
      v.swap(tmp);
    }
    return v;
  }

  // Whether a process outside the tree has pipe `ino` open at its read end (`read_end`) or its
  // write end. Walks every process's fds: done only for a pipe missing an end in the tree.
  bool held_outside(ino_t ino, bool read_end) const {
    const std::string want = "pipe:[" + std::to_string(ino) + "]";
    return any_outside_process(tree_, [&](const ProcDir& proc, const std::vector<int>& fds) {
      for (int fd : fds) {
        auto link = proc.readlink("fd/" + std::to_string(fd));
        if (!link.ok() || *link != want) continue;
        auto info = proc.read("fdinfo/" + std::to_string(fd));
        if (!info.ok()) continue;
        auto parsed = parse_fdinfo(*info);
        if (!parsed.ok()) continue;
        const int acc = static_cast<int>(parsed->flags & O_ACCMODE);
        if (acc == O_RDWR || (read_end ? acc == O_RDONLY : acc == O_WRONLY)) return true;
      }
      return false;
    });
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

  // An O_PATH fd: a hold on a path, with no access to what is there. Restore opens the path
  // again with the same flags; a symlink (O_PATH|O_NOFOLLOW on a link) is the link itself.
  Status check_path_fd(const FdEntry& e, schema::File& f) const {
    const std::string what = fd_name(e.fd) + ": O_PATH fd";
    if (!e.link.starts_with("/")) return make_error(what + " on " + e.link + " not supported yet");
    if (e.st.st_nlink == 0 || e.link.ends_with(kDeleted))
      return make_error(what + " on deleted file " + without_deleted(e.link) + " not supported");
    if (proc_path_pid(e.link) != 0 && fs_magic(*e.proc, e.fd) == kProcMagic)
      return make_error(what + " on " + e.link + " not supported yet");
    // The path must lead to this very file (lstat: a symlink is the fd's file itself).
    struct stat at {};
    if (::lstat(e.link.c_str(), &at) != 0 || at.st_dev != e.st.st_dev || at.st_ino != e.st.st_ino)
      return make_error(what + " on " + e.link +
                        " not reachable at its path (overmounted or another mount namespace's)");
    f.kind = schema::kFilePath;
    f.flags &= static_cast<uint32_t>(O_PATH | O_NOFOLLOW | O_DIRECTORY);
    f.pos = 0;
    return {};
  }

  bool is_tree_thread(pid_t tid) const {
    for (const auto& p : tree_.procs)
      for (const auto& t : p->threads)
        if (t.tid == tid) return true;
    return false;
  }

  // A pidfd of a process of the tree, opened again by its holder once that process exists:
  // itself, an ancestor or a child (as a /proc/PID file, check_proc_path).
  Status check_pidfd(const FdEntry& e, schema::File& f) const {
    const std::string what = fd_name(e.fd) + ": pidfd";
    const int64_t pid = e.info.pidfd_pid;
    if (pid < 0)
      return make_error(what + " of a process that has exited and been reaped not supported");
    if (pid == 0)
      return make_error(what + " of a process outside crdump's pid namespace not supported");
    const DumpContext* target = tree_.find(static_cast<pid_t>(pid));
    if (target == nullptr)
      return make_error(what + " of pid " + std::to_string(pid) +
                        (is_tree_thread(static_cast<pid_t>(pid))
                             ? ", a thread other than the main one, not supported yet"
                             : ", outside the process tree, not supported"));
    const DumpContext& holder = *e.proc;
    bool ok = pid == holder.pid || target->parent == holder.pid;
    for (const DumpContext* a = &holder; !ok && a != nullptr && a->parent != 0;
         a = tree_.find(a->parent))
      ok = a->parent == pid;
    if (!ok)
      return make_error(what + " of pid " + std::to_string(pid) + ", neither the holder " +
                        std::to_string(holder.pid) +
                        " nor its ancestor or child, not supported yet");
    if ((e.info.flags &
         ~static_cast<uint32_t>(O_ACCMODE | O_NONBLOCK | O_CLOEXEC | kPidfdThread)) != 0)
      return make_error(what + " with flags " + std::to_string(e.info.flags) + " not supported");
    f.kind = schema::kFilePidfd;
    f.pidfd_pid = static_cast<uint32_t>(pid);
    f.mode = 0;
    return {};
  }

  // What a File says of any open file: where, how opened, at what offset, and its inode.
  static schema::File file_fields(const std::string& link, const struct stat& st,
                                  const Fdinfo& info) {
    schema::File f;
    f.kind = 0;
    f.path = link;
    f.flags = info.flags & ~static_cast<uint32_t>(O_CLOEXEC);
    f.pos = info.pos;
    f.mode = st.st_mode;
    f.size = static_cast<uint64_t>(st.st_size);
    f.mtime_ns = mtime_ns(st);
    f.dev = st.st_dev;
    f.ino = st.st_ino;
    f.rdev = st.st_rdev;
    f.uid = st.st_uid;
    f.gid = st.st_gid;
    f.atime_ns = static_cast<uint64_t>(st.st_atim.tv_sec) * 1000000000ull +
                 static_cast<uint64_t>(st.st_atim.tv_nsec);
    return f;
  }

  Result<uint32_t> add_file(const FdEntry& e) {
    schema::File f = file_fields(e.link, e.st, e.info);
    std::optional<GhostData> ghost;

    if (inherited(e)) {
      f.kind = schema::kFileExternal;
      f.key = e.link;
    } else if ((e.info.flags & O_PATH) != 0) {
      // Before the kinds below: an O_PATH fd on a socket, FIFO or device gives no access to it.
      CR_TRY(check_path_fd(e, f));
    } else if (e.link == kInotifyLink) {
      f.kind = schema::kFileInotify;
      f.path.clear();
      CR_TRY_ASSIGN(pending_watches_,
                    read_inotify_watches(*e.proc, e.fd, e.info, fd_name(e.fd) + ": inotify"));
    } else if (e.link == kFanotifyLink) {
      f.kind = schema::kFileFanotify;
      f.path.clear();
      CR_TRY_ASSIGN(FanotifyState fan,
                    read_fanotify(*e.proc, e.fd, e.info, fd_name(e.fd) + ": fanotify"));
      pending_fanotify_ = std::move(fan);
    } else if (e.link == kPidfdLink || e.info.kind == FdinfoKind::kPidfd) {
      f.path.clear();
      CR_TRY(check_pidfd(e, f));
    } else if (e.link.starts_with("socket:") || S_ISSOCK(e.st.st_mode)) {
      f.path.clear();
      CR_TRY_ASSIGN(bool is_unix, unix_.knows(e.st.st_ino));
      int family = AF_UNIX;
      ScopedFd copy;
      if (!is_unix) {
        CR_TRY_ASSIGN(copy, copy_task_fd(*e.proc, e.fd));
        int v = 0;
        socklen_t len = sizeof v;
        if (::getsockopt(copy.get(), SOL_SOCKET, SO_DOMAIN, &v, &len) != 0)
          return errno_error(fd_name(e.fd) + ": getsockopt SO_DOMAIN");
        family = v;
      }
      if (tree_.ns.own_net) {
        // Restore makes every socket in the tree's new namespace: one made elsewhere (before
        // the tree's unshare, or passed in from outside) would change namespace silently.
        ScopedFd probe;
        if (!copy.valid()) {
          CR_TRY_ASSIGN(probe, copy_task_fd(*e.proc, e.fd));
        }
        ScopedFd ns(::ioctl(copy.valid() ? copy.get() : probe.get(), SIOCGSKNS));
        struct stat nst {};
        if (!ns.valid() || ::fstat(ns.get(), &nst) != 0)
          return errno_error(fd_name(e.fd) + ": SIOCGSKNS");
        if ("net:[" + std::to_string(nst.st_ino) + "]" != tree_.ns.net_link)
          return refuse(e.fd,
                        "socket of another net namespace than the tree's own (made before the "
                        "tree's unshare, or passed in)");
      }
      if (family == AF_INET || family == AF_INET6) {
        f.kind = schema::kFileInetSocket;
        CR_TRY_ASSIGN(f.object, inet_.add(*e.proc, e.fd, e.st.st_ino, std::move(copy), family));
      } else if (family == AF_NETLINK) {
        f.kind = schema::kFileNetlinkSocket;
        CR_TRY_ASSIGN(f.object, netlink_.add(*e.proc, e.fd, e.st.st_ino, std::move(copy)));
      } else {
        f.kind = schema::kFileUnixSocket;
        CR_TRY_ASSIGN(f.object, unix_.add(*e.proc, e.fd, e.st.st_ino));
      }
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
      f.kind = schema::kFileTimerfd;
      CR_TRY(read_timerfd(e, f));
    } else if (e.link == kEpollLink) {
      // Its watches are EpollItems, collected once every File has its id.
      f.kind = schema::kFileEpoll;
    } else if (e.link.starts_with("anon_inode:") || e.info.kind != FdinfoKind::kPlain) {
      return refuse(e.fd, anon_name(e));
    } else if (e.link.starts_with("/memfd:") && S_ISREG(e.st.st_mode) && e.st.st_nlink == 0) {
      // Its contents, seals and name are the Shmem object's, shared with every other fd and
      // mapping of it in the tree; this description keeps its flags and offset.
      f.kind = schema::kFileMemfd;
      CR_TRY_ASSIGN(const ShmemObject* o,
                    shmem_object(*e.proc, "fd/" + std::to_string(e.fd), e.st, e.link));
      f.object = o->rec.id;
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
    } else if (S_ISFIFO(e.st.st_mode) && is_deleted(e)) {
      // Made anew at restore (mknod, opened, unlinked); its ends in the tree share it by `pipe`.
      f.kind = schema::kFileGhostNode;
      f.path = without_deleted(e.link);
      CR_TRY_ASSIGN(f.pipe, pipe_object(e));
    } else if (S_ISFIFO(e.st.st_mode)) {
      f.kind = schema::kFileFifo;
      CR_TRY_ASSIGN(f.pipe, pipe_object(e));
    } else if (proc_path_pid(e.link) != 0 && (S_ISREG(e.st.st_mode) || S_ISDIR(e.st.st_mode)) &&
               fs_magic(*e.proc, e.fd) == kProcMagic) {
      CR_TRY(check_proc_path(tree_, *e.proc, e.link, fd_name(e.fd) + ":"));
      f.kind = schema::kFileProcPid;
    } else if (is_ptmx(e.st)) {
      if (e.info.tty_index < 0) return refuse(e.fd, "pty master " + e.link + " without tty-index");
      // Each open of a ptmx makes a pair: a second description with this index is another
      // devpts instance's pair.
      if (pty_ids_.count(static_cast<uint32_t>(e.info.tty_index)) != 0)
        return refuse(e.fd, "a second pty master with index " + std::to_string(e.info.tty_index) +
                                " (another devpts instance)");
      f.kind = schema::kFilePtyMaster;
      CR_TRY_ASSIGN(f.object, pty_object(static_cast<uint32_t>(e.info.tty_index)));
    } else if (is_tree_pty_slave(e)) {
      f.kind = schema::kFilePtySlave;
      CR_TRY_ASSIGN(f.object, pty_object(static_cast<uint32_t>(pts_index(e.st))));
    } else if (is_tty(e.st)) {
      if (!e.proc->opts.shell_job)
        return make_error(fd_name(e.fd) + ": tty " + e.link +
                          " is outside the process (dump with --shell-job)");
      f.kind = schema::kFileTty;
      // The first tty fd's terminal is the job's: crrestore connects all of them to one.
      if (!t_.shell_tty) {
        CR_TRY_ASSIGN(t_.shell_tty, read_shell_tty(tree_, e.proc->pid, e.fd, e.st, e.link));
      }
    } else if (S_ISCHR(e.st.st_mode)) {
      if (!is_plain_device(e.st)) {
        return refuse(e.fd, "device " + e.link + " (" + std::to_string(major(e.st.st_rdev)) + ":" +
                                std::to_string(minor(e.st.st_rdev)) + ")");
      }
      f.kind = schema::kFileDevice;
      // A node made with mknod and removed: restore makes one of the same device (only the
      // memory devices above, which give no access a process could not have anyway).
      if (is_deleted(e)) {
        f.kind = schema::kFileGhostNode;
        f.path = without_deleted(e.link);
      }
    } else if (S_ISDIR(e.st.st_mode) && is_deleted(e)) {
      f.kind = schema::kFileGhostNode;
      f.path = without_deleted(e.link);
    } else if (S_ISDIR(e.st.st_mode)) {
      f.kind = schema::kFileDirectory;
    } else if (S_ISREG(e.st.st_mode) && fs_magic(*e.proc, e.fd) == kMqueueMagic) {
      return refuse(e.fd, "POSIX message queue " + e.link);
    } else if (S_ISREG(e.st.st_mode) && fs_magic(*e.proc, e.fd) == kHugetlbfsMagic) {
      return refuse(e.fd, "hugetlbfs file " + e.link);
    } else if (S_ISREG(e.st.st_mode)) {
      if (e.st.st_nlink == 0 || e.link.ends_with(kDeleted)) {
        f.path = without_deleted(f.path);
        // Its shared mappings restore as shared memory of their own: with an fd on the same
        // file too, writes through one would no longer show in the other.
        for (const ShmemObject& o : tree_.shmems)
          if (o.dev == e.st.st_dev && o.rec.ino == static_cast<uint64_t>(e.st.st_ino))
            return refuse(e.fd, "deleted file " + f.path + " that is also mapped shared");
        f.kind = schema::kFileDeleted;
        if (is_tmpfile(f.path, e.st)) f.kflags |= schema::kFileGhostTmpfile;
        CR_TRY_ASSIGN(ghost, read_ghost_extents(*e.proc, e.fd, e.st, f.path));
      } else {
        // Restore opens it by path: the path must lead to this very file (not so for a POSIX
        // message queue, whose "/name" is on the mqueue filesystem, or for an overmounted file).
        struct stat at {};
        if (::stat(f.path.c_str(), &at) != 0 || at.st_dev != e.st.st_dev ||
            at.st_ino != e.st.st_ino)
          return refuse(e.fd, e.link +
                                  " not reachable at its path (overmounted or another "
                                  "mount namespace's)");
        f.kind = schema::kFileRegular;
      }
    } else {
      return refuse(e.fd, e.link);
    }
    f.id = tree_.next_obj_id++;
    if (f.kind == schema::kFileProcPid || f.kind == schema::kFilePidfd)
      proc_holders_[f.id] = e.proc->pid;
    for (schema::InotifyWatch& w : pending_watches_) {
      w.file = f.id;
      t_.inotify_watches.push_back(std::move(w));
    }
    pending_watches_.clear();
    if (pending_fanotify_) {
      pending_fanotify_->group.file = f.id;
      t_.fanotify_groups.push_back(pending_fanotify_->group);
      for (schema::FanotifyMark& m : pending_fanotify_->marks) {
        m.file = f.id;
        t_.fanotify_marks.push_back(std::move(m));
      }
      pending_fanotify_.reset();
    }
    t_.files.push_back(std::move(f));
    if (ghost) {
      ghost->file = t_.files.back().id;
      t_.file_data.push_back(std::move(*ghost));
    }
    return t_.files.back().id;
  }

  DumpTree& tree_;
  FileTable& t_;
  std::vector<FdEntry> entries_;
  // Files only queues hold (add_in_flight_only): a copy of each description, and its File.
  std::vector<std::pair<ScopedFd, uint32_t>> in_flight_only_;
  std::vector<size_t> first_of_;                      // find_shared_descriptions
  std::map<ino_t, std::pair<bool, bool>> pipe_ends_;  // read end seen, write end seen
  std::map<ino_t, uint32_t> pipe_ids_;
  std::map<uint32_t, PtyEnds> ptys_;      // by pts index: the tree's pty pairs
  std::map<uint32_t, uint32_t> pty_ids_;  // pts index -> Pty id
  UnixSocketCollector unix_;
  InetSocketCollector inet_;
  NetlinkSocketCollector netlink_;
  std::map<uint32_t, pid_t> proc_holders_;  // kFileProcPid, kFilePidfd File id -> its holder
  std::vector<schema::InotifyWatch> pending_watches_;  // of the inotify File being added
  std::optional<FanotifyState> pending_fanotify_;      // of the fanotify File being added
};

}  // namespace

Status collect_files(DumpTree& tree) { return FileCollector(tree).run(); }

bool any_outside_process(const DumpTree& tree,
                         const std::function<bool(const ProcDir&, const std::vector<int>&)>& fn) {
  auto pids = ProcDir::all_pids();
  if (!pids.ok()) return true;  // cannot tell: the safe answer is "held"
  for (int pid : *pids) {
    if (tree.find(pid) != nullptr) continue;
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) continue;  // gone meanwhile
    auto fds = proc->fds();
    if (!fds.ok()) continue;
    if (fn(*proc, *fds)) return true;
  }
  return false;
}

Result<ScopedFd> copy_task_fd(DumpContext& proc, int fd) {
  // One pidfd per process for the whole dump: the owner of every open file description is
  // read through a copy, and a process with many files would pay a pidfd_open and a close
  // for each.
  if (!proc.pidfd.valid()) {
    proc.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, proc.pid, 0)));
    if (!proc.pidfd.valid()) return errno_error("pidfd_open(" + std::to_string(proc.pid) + ")");
  }
  ScopedFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, proc.pidfd.get(), fd, 0)));
  if (!copy.valid())
    return errno_error("pid " + std::to_string(proc.pid) + " " + fd_name(fd) + ": pidfd_getfd");
  return copy;
}

Result<ScopedFd> copy_task_fd(const DumpTree& tree, pid_t pid, int fd) {
  DumpContext* proc = tree.find(pid);
  if (proc == nullptr) return make_error("pid " + std::to_string(pid) + " is not in the tree");
  return copy_task_fd(*proc, fd);
}

}  // namespace cr::dump
