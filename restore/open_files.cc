#include "restore/open_files.h"

#include "sys/mount_tree.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <set>

#include "restore/fanotify.h"
#include "restore/ghost_files.h"
#include "restore/inet_sockets.h"
#include "restore/inotify.h"
#include "restore/netlink_sockets.h"
#include "restore/pty.h"
#include "restore/unix_sockets.h"
#include "sys/mount_tree.h"

namespace cr::restore {

namespace {

// Flags that describe how a file was created, not how it is open.
constexpr int kCreationFlags = O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY;
// Status flags F_SETFL can change on an open file.
constexpr int kSettableFlags = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

Status write_all(int fd, const uint8_t* p, size_t n, const std::string& what) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return errno_error("write " + what);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status seek_to(int fd, uint64_t pos, const std::string& path) {
  if (pos == 0) return {};
  if (::lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0)
    return errno_error(path + ": lseek to " + std::to_string(pos));
  return {};
}

Result<int> open_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), (flags & ~kCreationFlags) | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path);
  return fd;
}

// Takes `got` (an fd opened for `f`) and checks it is the kind of file the image says: nothing
// swapped in between dump and restore slips through.
Result<int> check_dumped_kind(const schema::File& f, int got) {
  struct stat st {};
  ScopedFd fd(got);
  if (::fstat(fd.get(), &st) != 0) return errno_error("fstat " + f.path);
  bool right = true;
  switch (f.kind) {
    case schema::kFileRegular:
      right = S_ISREG(st.st_mode);
      break;
    case schema::kFileDirectory:
      right = S_ISDIR(st.st_mode);
      break;
    case schema::kFileFifo:
      right = S_ISFIFO(st.st_mode);
      break;
    case schema::kFileDevice:
      right = (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) &&
              (f.rdev == 0 || static_cast<uint64_t>(st.st_rdev) == f.rdev);
      break;
    default:
      break;
  }
  if (!right) return make_error(f.path + ": not the kind of file it was at dump");
  return fd.release();
}

// A dumped path as /proc showed it: its last component was never a symlink, so one there now
// was put in since (by whoever can write the directory) and is not followed. The type is
// checked on the opened file, so nothing swapped in between dump and restore slips through.
Result<int> open_dumped(const schema::File& f, int flags, const FsIdentity* as) {
  std::optional<FsCredsScope> creds;
  if (as != nullptr) {
    CR_TRY_ASSIGN(FsCredsScope s, FsCredsScope::enter(*as));
    creds.emplace(std::move(s));
  }
  const std::string who = as == nullptr ? "" : " as uid " + std::to_string(as->fsuid);
  // O_PATH|O_NOFOLLOW holds the last component itself (a symlink shows as one), then the file
  // is opened through that hold: an open with O_NOFOLLOW would keep the flag in the file's
  // flags (fdinfo, F_GETFL), where the program never had it.
  // A file the program itself opened O_NOFOLLOW (sqlite does) is opened so again, directly.
  if ((flags & O_NOFOLLOW) != 0) {
    int got = ::open(f.path.c_str(), (flags & ~kCreationFlags) | O_CLOEXEC);
    if (got < 0 && errno == ELOOP)
      return make_error("open " + f.path + ": it is a symlink now, it was not at dump");
    if (got < 0) return errno_error("open " + f.path + who);
    return check_dumped_kind(f, got);
  }
  ScopedFd hold(::open(f.path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!hold.valid()) return errno_error("open " + f.path + who);
  struct stat st {};
  if (::fstat(hold.get(), &st) != 0) return errno_error("fstat " + f.path);
  if (S_ISLNK(st.st_mode))
    return make_error("open " + f.path + ": it is a symlink now, it was not at dump");
  const std::string via = "/proc/self/fd/" + std::to_string(hold.get());
  int got = ::open(via.c_str(), (flags & ~kCreationFlags) | O_CLOEXEC);
  if (got < 0) return errno_error("open " + f.path + who);
  return check_dumped_kind(f, got);
}

// An O_PATH fd: the path held again with the kernel's flags (O_PATH, O_NOFOLLOW, O_DIRECTORY).
// The last component is held without following first, and must be of the dumped type: a
// symlink only for an fd that held the link itself (O_NOFOLLOW), never one put in since.
Result<int> open_path_fd(const schema::File& f, const FsIdentity* as) {
  std::optional<FsCredsScope> creds;
  if (as != nullptr) {
    CR_TRY_ASSIGN(FsCredsScope s, FsCredsScope::enter(*as));
    creds.emplace(std::move(s));
  }
  const std::string who = as == nullptr ? "" : " as uid " + std::to_string(as->fsuid);
  const int flags = static_cast<int>(f.flags) & (O_PATH | O_NOFOLLOW | O_DIRECTORY);
  ScopedFd hold(::open(f.path.c_str(), O_PATH | O_NOFOLLOW | (flags & O_DIRECTORY) | O_CLOEXEC));
  if (!hold.valid()) return errno_error("open " + f.path + " (O_PATH)" + who);
  struct stat st {};
  if (::fstat(hold.get(), &st) != 0) return errno_error("fstat " + f.path);
  if ((st.st_mode & S_IFMT) != (f.mode & S_IFMT))
    return make_error(f.path + ": not the kind of file it was at dump" +
                      std::string(S_ISLNK(st.st_mode) ? " (a symlink now)" : ""));
  if ((flags & O_NOFOLLOW) != 0) return hold.release();
  // Without O_NOFOLLOW in its flags: a new open through the hold has exactly the dumped ones.
  const std::string via = "/proc/self/fd/" + std::to_string(hold.get());
  int got = ::open(via.c_str(), flags | O_CLOEXEC);
  if (got < 0) return errno_error("open " + f.path + " (O_PATH)" + who);
  return got;
}

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)  // Linux 3.17, CONFIG_CHECKPOINT_RESTORE
#endif

// eventfd, signalfd and timerfd: made anew with their dumped state.
Result<int> open_event_fd(const schema::File& f) {
  const int nonblock = (f.flags & O_NONBLOCK) != 0 ? O_NONBLOCK : 0;
  if (f.kind == schema::kFileEventfd) {
    if (f.counter > 0xfffffffffffffffeull) return make_error("eventfd count out of range");
    int flags = EFD_CLOEXEC | (nonblock ? EFD_NONBLOCK : 0) |
                ((f.kflags & schema::kFileEfdSemaphore) != 0 ? EFD_SEMAPHORE : 0);
    // eventfd() takes an unsigned int: start from 0 and add the count with a write.
    int fd = ::eventfd(0, flags);
    if (fd < 0) return errno_error("eventfd");
    if (f.counter != 0 && ::write(fd, &f.counter, sizeof f.counter) != sizeof f.counter) {
      ::close(fd);
      return errno_error("eventfd: restore count " + std::to_string(f.counter));
    }
    return fd;
  }
  if (f.kind == schema::kFileSignalfd) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig <= 64; ++sig)
      if ((f.sigmask >> (sig - 1)) & 1) sigaddset(&set, sig);
    int fd = ::signalfd(-1, &set, SFD_CLOEXEC | (nonblock ? SFD_NONBLOCK : 0));
    if (fd < 0) return errno_error("signalfd");
    return fd;
  }
  int fd =
      ::timerfd_create(static_cast<int>(f.clockid), TFD_CLOEXEC | (nonblock ? TFD_NONBLOCK : 0));
  if (fd < 0) return errno_error("timerfd_create(clock " + std::to_string(f.clockid) + ")");
  if (f.value_ns != 0) {
    // A relative timer gets the time it had left; an absolute one its expiry (already past:
    // it fires at once, and a periodic one counts the periods missed).
    const uint64_t value = f.abs_ns != 0 ? f.abs_ns : f.value_ns;
    itimerspec spec{};
    spec.it_value = {static_cast<time_t>(value / 1000000000),
                     static_cast<long>(value % 1000000000)};
    spec.it_interval = {static_cast<time_t>(f.interval_ns / 1000000000),
                        static_cast<long>(f.interval_ns % 1000000000)};
    if (::timerfd_settime(fd, f.abs_ns != 0 ? TFD_TIMER_ABSTIME : 0, &spec, nullptr) != 0) {
      ::close(fd);
      return errno_error("timerfd_settime");
    }
  }
  if (f.counter != 0 && ::ioctl(fd, TFD_IOC_SET_TICKS, &f.counter) != 0) {
    ::close(fd);
    return errno_error("timerfd: restore " + std::to_string(f.counter) + " unread expirations");
  }
  return fd;
}

class Opener {
 public:
  Opener(const ProcessImage& img, const RestoreOptions& opts,
         const std::map<uint32_t, ShmemHandle>& shmems, const Privileges& priv,
         LateUnixQueues& late)
      : img_(img), opts_(opts), shmems_(shmems), priv_(priv), late_(late), ghosts_(img, priv) {
    for (const schema::InotifyWatch& w : img.inotify_watches)
      inotify_watches_[w.file].push_back(&w);
    for (const schema::FanotifyMark& m : img.fanotify_marks) fanotify_marks_[m.file].push_back(&m);
  }
  ~Opener() {
    for (auto& [id, ends] : pipes_) {
      if (ends.r >= 0) ::close(ends.r);
      if (ends.w >= 0) ::close(ends.w);
    }
  }

  /// What can only be set once every file is open (pty lock and exclusive mode).
  Status finish() { return ptys_.finish(); }

  /// A file opened before its turn (in flight in a unix socket's queue): its fd, now ours.
  int take_early(uint32_t id) {
    auto it = early_.find(id);
    if (it == early_.end()) return -1;
    return it->second.release();
  }

  // A File in flight in a unix socket's queue, opened while the sockets are built: once, kept
  // for its holders (the loop in open_files takes it), its fd lent for the sendmsg.
  Result<int> open_early(const schema::File& f) {
    if (auto it = early_.find(f.id); it != early_.end()) return it->second.get();
    if (f.kind == schema::kFileUnixSocket || f.kind == schema::kFileProcPid ||
        f.kind == schema::kFilePidfd)
      return make_error("file " + std::to_string(f.id) + " cannot be opened in flight");
    CR_TRY_ASSIGN(int fd, open(f));
    early_[f.id].reset(fd);
    return fd;
  }

  Result<int> open(const schema::File& f) {
    switch (f.kind) {
      case schema::kFileRegular:
      case schema::kFileDevice: {
        CR_TRY_ASSIGN(int fd, open_dumped(f, static_cast<int>(f.flags), priv_.for_file(f.id)));
        if (f.kind == schema::kFileRegular) CR_TRY(seek_to(fd, f.pos, f.path));
        return fd;
      }
      case schema::kFileDirectory: {
        CR_TRY_ASSIGN(
            int fd, open_dumped(f, static_cast<int>(f.flags) | O_DIRECTORY, priv_.for_file(f.id)));
        CR_TRY(seek_to(fd, f.pos, f.path));
        return fd;
      }
      case schema::kFilePipe:
        return open_pipe_end(f);
      case schema::kFileFifo:
        return open_fifo(f);
      case schema::kFileDeleted:
        return ghosts_.open_file(f);
      case schema::kFileGhostNode:
        return ghosts_.open_node(f, [this, &f](int wfd) {
          return f.pipe != 0 ? fill_pipe(wfd, f.pipe, "deleted fifo " + f.path) : Status{};
        });
      case schema::kFileTty:
        return open_tty(f);
      case schema::kFileExternal: {
        auto it = opts_.inherit_fds.find(f.key);
        if (it == opts_.inherit_fds.end())
          return make_error("file '" + f.key + "' is external: give --inherit-fd fd[N]:" + f.key);
        int fd = ::fcntl(it->second, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return errno_error("--inherit-fd fd[" + std::to_string(it->second) + "]");
        return fd;
      }
      case schema::kFileEventfd:
      case schema::kFileSignalfd:
      case schema::kFileTimerfd:
        return open_event_fd(f);
      case schema::kFilePtyMaster:
        return ptys_.open_master(img_.ptys.at(f.object), f.flags);
      case schema::kFilePtySlave:
        return ptys_.open_slave(img_.ptys.at(f.object), f.flags);
      case schema::kFileEpoll: {
        // Empty here: its watches are added once every file is open (restore/epoll.cc).
        int fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) return errno_error("epoll_create1");
        if ((f.flags & kSettableFlags) != 0 &&
            ::fcntl(fd, F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0) {
          ::close(fd);
          return errno_error("epoll: F_SETFL");
        }
        return fd;
      }
      case schema::kFileInotify: {
        auto it = inotify_watches_.find(f.id);
        return open_inotify(f, it == inotify_watches_.end() ? kNoWatches : it->second,
                            priv_.for_file(f.id));
      }
      case schema::kFileFanotify: {
        auto it = fanotify_marks_.find(f.id);
        return open_fanotify(f, img_.fanotify_groups.at(f.id),
                             it == fanotify_marks_.end() ? kNoMarks : it->second,
                             priv_.for_file(f.id));
      }
      case schema::kFilePath:
        return open_path_fd(f, priv_.for_file(f.id));
      case schema::kFileMemfd:
        return open_memfd(f);
      case schema::kFileUnixSocket:
        return open_unix_socket(f);
      case schema::kFileInetSocket:
        return open_inet_socket(f);
      case schema::kFileNetlinkSocket:
        return open_netlink_socket(f);
      default:
        return make_error("file " + std::to_string(f.id) + ": unknown kind");
    }
  }

 private:
  struct Ends {
    int r = -1, w = -1;
    bool r_used = false, w_used = false;
  };

  Status fill_pipe(int wfd, uint32_t pipe_id, const std::string& what) {
    auto it = img_.pipes.find(pipe_id);
    if (it == img_.pipes.end()) return {};
    const PipeImage& p = it->second;
    if (p.pipe.capacity != 0 && ::fcntl(wfd, F_SETPIPE_SZ, static_cast<int>(p.pipe.capacity)) < 0)
      return errno_error(what + ": F_SETPIPE_SZ " + std::to_string(p.pipe.capacity));
    // More data than the pipe holds would block this write forever (no reader yet).
    const int cap = ::fcntl(wfd, F_GETPIPE_SZ);
    if (cap < 0) return errno_error(what + ": F_GETPIPE_SZ");
    if (p.data.size() > static_cast<size_t>(cap))
      return make_error(what + ": " + std::to_string(p.data.size()) +
                        " bytes of data are more than the pipe's capacity of " +
                        std::to_string(cap));
    return write_all(wfd, p.data.data(), p.data.size(), what + " data");
  }

  Result<int> open_pipe_end(const schema::File& f) {
    Ends& e = pipes_[f.pipe];
    const std::string what = "pipe " + std::to_string(f.pipe);
    if (e.r < 0) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) return errno_error(what + ": pipe2");
      e.r = fds[0];
      e.w = fds[1];
      CR_TRY(fill_pipe(e.w, f.pipe, what));
    }
    const bool write_end = (f.flags & O_ACCMODE) == O_WRONLY;
    bool& used = write_end ? e.w_used : e.r_used;
    int fd = write_end ? e.w : e.r;
    if (used) {
      // A second open file description of the same end (a reopen through /proc): make one.
      CR_TRY_ASSIGN(fd,
                    open_path("/proc/self/fd/" + std::to_string(fd), static_cast<int>(f.flags)));
    } else {
      used = true;
      fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return errno_error(what + ": dup");
    }
    if (::fcntl(fd, F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0)
      return errno_error(what + ": F_SETFL");
    return fd;
  }

  Result<int> open_fifo(const schema::File& f) {
    // Holding it O_RDWR first means the dumped open (read-only or write-only) does not wait
    // for a peer, and gives us a way to put the queued bytes back.
    CR_TRY_ASSIGN(int rw, open_dumped(f, O_RDWR | O_NONBLOCK, priv_.for_file(f.id)));
    ScopedFd rw_owner(rw);
    // Both ends of one FIFO name the same Pipe: its bytes go in once.
    if (f.pipe != 0 && filled_fifos_.insert(f.pipe).second)
      CR_TRY(fill_pipe(rw, f.pipe, "fifo " + f.path));
    return open_dumped(f, static_cast<int>(f.flags), priv_.for_file(f.id));
  }

  // A description of its own on the memfd crrestore made (its inode: the same contents and
  // seals, "/memfd:NAME (deleted)" in /proc), with the dumped flags and offset.
  Result<int> open_memfd(const schema::File& f) {
    auto it = shmems_.find(f.object);
    if (it == shmems_.end() || it->second.kind != schema::kShmemMemfd)
      return make_error("memfd file " + std::to_string(f.id) + " names shmem " +
                        std::to_string(f.object) + ", not a memfd of the image");
    // memfd_create's own description does not count as a writer of the inode, a reopen for
    // writing does, and exec refuses a file with writers (ETXTBSY): the first read-write File
    // of each memfd is crrestore's memfd_create description itself (a program that writes a
    // memfd and then execs it held that one), the others are reopens as they were.
    ScopedFd fd;
    const bool read_write = (f.flags & O_ACCMODE) == O_RDWR;
    if (read_write && memfd_created_.insert(f.object).second) {
      fd.reset(::fcntl(it->second.fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!fd.valid()) return errno_error("memfd \"" + it->second.name + "\": dup");
      if (::fcntl(fd.get(), F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0)
        return errno_error("memfd \"" + it->second.name + "\": F_SETFL");
    } else {
      CR_TRY_ASSIGN(int got, open_path("/proc/self/fd/" + std::to_string(it->second.fd.get()),
                                       static_cast<int>(f.flags)));
      fd.reset(got);
    }
    CR_TRY(seek_to(fd.get(), f.pos, "memfd \"" + it->second.name + "\""));
    return fd.release();
  }

  // The first socket builds every socket of the image (they refer to each other); each File
  // then takes its own. A socket has one open file description: its File.
  Result<int> open_unix_socket(const schema::File& f) {
    if (!unix_built_) {
      CR_TRY_ASSIGN(unix_, create_unix_sockets(
                               img_.unix_sockets, priv_, img_.files,
                               [this](const schema::File& f) { return open_early(f); }, late_));
      unix_built_ = true;
    }
    auto it = unix_.find(f.object);
    if (it == unix_.end() || !it->second.valid())
      return make_error("file " + std::to_string(f.id) + ": unix socket " +
                        std::to_string(f.object) + " opened twice");
    ScopedFd s = std::move(it->second);
    if (::fcntl(s.get(), F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0)
      return errno_error("unix socket " + std::to_string(f.object) + ": F_SETFL");
    return s.release();
  }

  Result<int> open_inet_socket(const schema::File& f) {
    if (!inet_built_) {
      CR_TRY_ASSIGN(inet_, create_inet_sockets(img_.inet_sockets, priv_, opts_.tcp_close));
      inet_built_ = true;
    }
    auto it = inet_.find(f.object);
    if (it == inet_.end() || !it->second.valid())
      return make_error("file " + std::to_string(f.id) + ": inet socket " +
                        std::to_string(f.object) + " opened twice");
    ScopedFd s = std::move(it->second);
    if (::fcntl(s.get(), F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0)
      return errno_error("inet socket " + std::to_string(f.object) + ": F_SETFL");
    return s.release();
  }

  // A socket has one open file description, its File: each is made once, for it.
  Result<int> open_netlink_socket(const schema::File& f) {
    if (!netlink_made_.insert(f.object).second)
      return make_error("file " + std::to_string(f.id) + ": netlink socket " +
                        std::to_string(f.object) + " opened twice");
    CR_TRY_ASSIGN(ScopedFd s,
                  create_netlink_socket(img_.netlink_sockets.at(f.object), priv_.restricted()));
    if (::fcntl(s.get(), F_SETFL, static_cast<int>(f.flags) & kSettableFlags) != 0)
      return errno_error("netlink socket " + std::to_string(f.object) + ": F_SETFL");
    return s.release();
  }

  Result<int> open_tty(const schema::File& f) {
    if (!opts_.shell_job) return make_error("fd on a terminal: restore with --shell-job");
    if (opts_.terminal >= 0) {
      int fd = ::fcntl(opts_.terminal, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return errno_error("dup fd " + std::to_string(opts_.terminal) + ", the terminal");
      return fd;
    }
    return open_path("/dev/tty", static_cast<int>(f.flags) | O_NOCTTY);
  }

  const ProcessImage& img_;
  const RestoreOptions& opts_;
  const std::map<uint32_t, ShmemHandle>& shmems_;
  const Privileges& priv_;
  LateUnixQueues& late_;
  std::set<uint32_t> memfd_created_;  // memfds whose memfd_create description a File took
  std::map<uint32_t, Ends> pipes_;
  PtyMaker ptys_;
  GhostMaker ghosts_;
  std::set<uint32_t> filled_fifos_;
  std::map<uint32_t, ScopedFd> unix_;  // by UnixSocket id, until its File takes it
  bool unix_built_ = false;
  std::map<uint32_t, ScopedFd> inet_;  // by InetSocket id, until its File takes it
  bool inet_built_ = false;
  std::set<uint32_t> netlink_made_;     // NetlinkSocket ids a File took
  std::map<uint32_t, ScopedFd> early_;  // Files opened to go in flight, until the loop takes them
  // By kFileInotify File id.
  std::map<uint32_t, std::vector<const schema::InotifyWatch*>> inotify_watches_;
  static inline const std::vector<const schema::InotifyWatch*> kNoWatches;
  // By kFileFanotify File id, in stream order.
  std::map<uint32_t, std::vector<const schema::FanotifyMark*>> fanotify_marks_;
  static inline const std::vector<const schema::FanotifyMark*> kNoMarks;
};

}  // namespace

Result<std::vector<FdSource>> open_files(const ProcessImage& img, const RestoreOptions& opts,
                                         const std::map<uint32_t, ShmemHandle>& shmems,
                                         const Privileges& priv, LateUnixQueues& late) {
  Opener opener(img, opts, shmems, priv, late);
  std::vector<FdSource> out;
  std::set<uint32_t> done;
  for (const auto& fd : img.fds) {
    if (!done.insert(fd.file).second) continue;
    const schema::File& f = img.files.at(fd.file);
    // Opened by its holder once the process it belongs to exists (child_setup.cc).
    if (f.kind == schema::kFileProcPid || f.kind == schema::kFilePidfd) continue;
    if (int early = opener.take_early(fd.file); early >= 0) {
      out.push_back({fd.file, early});
      continue;
    }
    // A tree whose root was pivoted names its files as it sees them; crrestore opens them
    // where its own namespace has them (reopen_in_namespace puts the tree's own in place).
    std::optional<schema::File> moved;
    if (sys::pivoted_root(img.mounts) && !f.path.empty() && f.path[0] == '/' &&
        (f.kind == schema::kFileRegular || f.kind == schema::kFileDirectory ||
         f.kind == schema::kFilePath || f.kind == schema::kFileDevice)) {
      const std::optional<std::string> host = sys::host_path(img.mounts, f.path);
      // A device's node may be the tree's own (its /dev tmpfs): the same device is opened here.
      if (!host && f.kind != schema::kFileDevice)
        return make_error("fd " + std::to_string(fd.fd) + ": " + f.path +
                          " is on a mount of the tree's own");
      moved = f;
      if (host) moved->path = *host;
    }
    auto r = opener.open(moved ? *moved : f);
    if (!r.ok()) return std::move(r).error().wrap("fd " + std::to_string(fd.fd));
    out.push_back({fd.file, *r});
  }
  auto st = opener.finish();
  if (!st.ok()) {
    for (const FdSource& s : out) ::close(s.fd);
    return std::move(st).error();
  }
  return out;
}

}  // namespace cr::restore
