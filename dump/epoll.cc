// The watches of the tree's epolls: one EpollItem per "tfd:" line of an epoll's fdinfo. The
// line names the target by the fd number it was added under, which may since have been closed
// or reused, so the target File is found by asking the kernel: kcmp(KCMP_EPOLL_TFD) compares
// the file behind that watch with a file the tree has open.
#include <fcntl.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump/passes.h"

namespace cr::dump {

namespace {

// The bits a fired EPOLLONESHOT watch keeps (fs/eventpoll.c EP_PRIVATE_BITS): it reports
// nothing until the program re-arms it with EPOLL_CTL_MOD.
constexpr uint32_t kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

bool disarmed_oneshot(uint32_t events) {
  return (events & EPOLLONESHOT) != 0 && (events & ~kPrivateBits) == 0;
}

// -1 on error (errno set), 0 when `fd` of `pid` is the file of watch (tfd, toff) of epoll
// `efd` in `epoll_pid`, another value when it is not.
long same_target(pid_t pid, int fd, pid_t epoll_pid, int efd, int tfd, int toff) {
  kcmp_epoll_slot slot{};
  slot.efd = static_cast<__u32>(efd);
  slot.tfd = static_cast<__u32>(tfd);
  slot.toff = static_cast<__u32>(toff);
  return ::syscall(SYS_kcmp, pid, epoll_pid, KCMP_EPOLL_TFD, fd, &slot);
}

// Whether the file at `fd` of `pid` has any event ready now (a copy of the fd through a pidfd,
// polled without waiting).
Result<bool> any_event_ready(const DumpTree& tree, pid_t pid, int fd) {
  CR_TRY_ASSIGN(ScopedFd copy, copy_task_fd(tree, pid, fd));
  pollfd p{copy.get(), POLLIN | POLLOUT | POLLPRI | POLLRDHUP, 0};
  int n = ::poll(&p, 1, 0);
  if (n < 0) return errno_error("poll fd " + std::to_string(fd) + " of " + std::to_string(pid));
  return n > 0;
}

}  // namespace

Status collect_epoll_items(DumpTree& tree, const std::vector<EpollRef>& epolls,
                           const std::vector<OpenFileRef>& open) {
  const pid_t root = tree.procs.front()->pid;
  for (const EpollRef& ep : epolls) {
    const std::string where =
        (ep.pid == root ? std::string() : "pid " + std::to_string(ep.pid) + ": ") + "fd " +
        std::to_string(ep.fd) + ": epoll";
    for (size_t k = 0; k < ep.watches.size(); ++k) {
      const EpollWatch& w = ep.watches[k];
      // The kernel counts watches with the same fd number in the order fdinfo lists them.
      int toff = 0;
      for (size_t j = 0; j < k; ++j) toff += ep.watches[j].tfd == w.tfd;
      const std::string watch = where + " watch of fd " + std::to_string(w.tfd);
      const OpenFileRef* target = nullptr;
      // The fd it was added under, in the epoll's own process, is the likely one: try it first.
      for (int pass = 0; pass < 2 && target == nullptr; ++pass)
        for (const OpenFileRef& o : open) {
          const bool likely = o.pid == ep.pid && o.fd == w.tfd;
          if ((pass == 0) != likely || o.ino != w.ino) continue;
          long r = same_target(o.pid, o.fd, ep.pid, ep.fd, w.tfd, toff);
          if (r < 0) return errno_error(watch + ": kcmp(KCMP_EPOLL_TFD)");
          if (r == 0) {
            target = &o;
            break;
          }
        }
      if (target == nullptr) {
        CR_TRY(tree.refuse(ep.pid, make_error(watch + " (inode " + std::to_string(w.ino) +
                                              "): its file is not open in the process tree: "
                                              "not supported yet")));
        continue;  // a dry run: the next watch
      }
      if (disarmed_oneshot(w.events)) {
        // Restore disarms it by letting it fire once: that needs an event ready on the file.
        CR_TRY_ASSIGN(bool ready, any_event_ready(tree, target->pid, target->fd));
        if (!ready) {
          CR_TRY(tree.refuse(ep.pid,
                             make_error(watch + ": a fired EPOLLONESHOT watch on a file with no "
                                                "event ready (restore cannot disarm it): not "
                                                "supported yet")));
          continue;
        }
      }
      schema::EpollItem item;
      item.epoll = ep.file_id;
      item.target = target->file_id;
      item.tfd = static_cast<uint32_t>(w.tfd);
      item.events = w.events;
      item.data = w.data;
      tree.files.epoll_items.push_back(item);
    }
  }
  return {};
}

}  // namespace cr::dump
