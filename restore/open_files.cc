#include "restore/open_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>

#include "restore/pty.h"
#include "restore/unix_sockets.h"

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
  int fd = ::timerfd_create(static_cast<int>(f.clockid), TFD_CLOEXEC | (nonblock ? TFD_NONBLOCK : 0));
  if (fd < 0) return errno_error("timerfd_create(clock " + std::to_string(f.clockid) + ")");
  if (f.value_ns != 0) {
    itimerspec spec{};
    spec.it_value = {static_cast<time_t>(f.value_ns / 1000000000),
                     static_cast<long>(f.value_ns % 1000000000)};
    spec.it_interval = {static_cast<time_t>(f.interval_ns / 1000000000),
                        static_cast<long>(f.interval_ns % 1000000000)};
    if (::timerfd_settime(fd, 0, &spec, nullptr) != 0) {
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
         const std::map<uint32_t, ShmemHandle>& shmems)
      : img_(img), opts_(opts), shmems_(shmems) {}
  ~Opener() {
    for (auto& [id, ends] : pipes_) {
      if (ends.r >= 0) ::close(ends.r);
      if (ends.w >= 0) ::close(ends.w);
    }
  }

  /// What can only be set once every file is open (pty lock and exclusive mode).
  Status finish() { return ptys_.finish(); }

  Result<int> open(const schema::File& f) {
    switch (f.kind) {
      case schema::kFileRegular:
      case schema::kFileDevice: {
        CR_TRY_ASSIGN(int fd, open_path(f.path, static_cast<int>(f.flags)));
        if (f.kind == schema::kFileRegular) CR_TRY(seek_to(fd, f.pos, f.path));
        return fd;
      }
      case schema::kFileDirectory: {
        CR_TRY_ASSIGN(int fd, open_path(f.path, static_cast<int>(f.flags) | O_DIRECTORY));
        CR_TRY(seek_to(fd, f.pos, f.path));
        return fd;
      }
      case schema::kFilePipe:
        return open_pipe_end(f);
      case schema::kFileFifo:
        return open_fifo(f);
      case schema::kFileDeleted:
        return open_deleted(f);
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
      case schema::kFileMemfd:
        return open_memfd(f);
      case schema::kFileUnixSocket:
        return open_unix_socket(f);
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
    CR_TRY_ASSIGN(int rw, open_path(f.path, O_RDWR | O_NONBLOCK));
    ScopedFd rw_owner(rw);
    // Both ends of one FIFO name the same Pipe: its bytes go in once.
    if (f.pipe != 0 && filled_fifos_.insert(f.pipe).second)
      CR_TRY(fill_pipe(rw, f.pipe, "fifo " + f.path));
    return open_path(f.path, static_cast<int>(f.flags));
  }

  Result<int> open_deleted(const schema::File& f) {
    std::string path = f.path;
    const std::string suffix = " (deleted)";
    if (path.size() > suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0)
      path.resize(path.size() - suffix.size());
    std::string dir = path.substr(0, path.rfind('/'));
    if (dir.empty()) dir = "/";
    const std::string tmp =
        dir + "/.crrestore-" + std::to_string(::getpid()) + "-" + std::to_string(f.id);
    int w = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, f.mode & 07777);
    if (w < 0) return errno_error("recreate deleted file " + path + " as " + tmp);
    ScopedFd wfd(w);
    struct Unlink {
      const std::string& p;
      ~Unlink() { ::unlink(p.c_str()); }
    } unlink_tmp{tmp};
    auto it = img_.file_data.find(f.id);
    if (it != img_.file_data.end())
      for (const auto& [off, bytes] : it->second.chunks)
        if (::pwrite(w, bytes.data(), bytes.size(), static_cast<off_t>(off)) !=
            static_cast<ssize_t>(bytes.size()))
          return errno_error("write deleted file " + tmp);
    if (::ftruncate(w, static_cast<off_t>(f.size)) != 0) return errno_error("ftruncate " + tmp);
    CR_TRY_ASSIGN(int fd, open_path(tmp, static_cast<int>(f.flags)));
    CR_TRY(seek_to(fd, f.pos, path));
    return fd;
  }

  // A description of its own on the memfd crrestore made (its inode: the same contents and
  // seals, "/memfd:NAME (deleted)" in /proc), with the dumped flags and offset.
  Result<int> open_memfd(const schema::File& f) {
    auto it = shmems_.find(f.object);
    if (it == shmems_.end() || it->second.kind != schema::kShmemMemfd)
      return make_error("memfd file " + std::to_string(f.id) + " names shmem " +
                        std::to_string(f.object) + ", not a memfd of the image");
    CR_TRY_ASSIGN(int got, open_path("/proc/self/fd/" + std::to_string(it->second.fd.get()),
                                     static_cast<int>(f.flags)));
    ScopedFd fd(got);
    CR_TRY(seek_to(fd.get(), f.pos, "memfd \"" + it->second.name + "\""));
    return fd.release();
  }

  // The first socket builds every socket of the image (they refer to each other); each File
  // then takes its own. A socket has one open file description: its File.
  Result<int> open_unix_socket(const schema::File& f) {
    if (!unix_built_) {
      CR_TRY_ASSIGN(unix_, create_unix_sockets(img_.unix_sockets));
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

  Result<int> open_tty(const schema::File& f) {
    if (!opts_.shell_job) return make_error("fd on a terminal: restore with --shell-job");
    if (::isatty(STDERR_FILENO) == 1) {
      int fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return errno_error("dup stderr for the terminal");
      return fd;
    }
    return open_path("/dev/tty", static_cast<int>(f.flags) | O_NOCTTY);
  }

  const ProcessImage& img_;
  const RestoreOptions& opts_;
  const std::map<uint32_t, ShmemHandle>& shmems_;
  std::map<uint32_t, Ends> pipes_;
  PtyMaker ptys_;
  std::set<uint32_t> filled_fifos_;
  std::map<uint32_t, ScopedFd> unix_;  // by UnixSocket id, until its File takes it
  bool unix_built_ = false;
};

}  // namespace

Result<std::vector<FdSource>> open_files(const ProcessImage& img, const RestoreOptions& opts,
                                         const std::map<uint32_t, ShmemHandle>& shmems) {
  Opener opener(img, opts, shmems);
  std::vector<FdSource> out;
  std::set<uint32_t> done;
  for (const auto& fd : img.fds) {
    if (!done.insert(fd.file).second) continue;
    const schema::File& f = img.files.at(fd.file);
    auto r = opener.open(f);
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
