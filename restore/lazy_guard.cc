// The guardian's side runs in a child forked from crrestore (glibc's fork leaves the allocator
// usable there); it only receives, signals, reads /proc and probes its userfaultfds.
#include "restore/lazy_guard.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "sys/fd_passing.h"
#include "sys/guardian_process.h"

namespace cr::restore {

namespace {

struct Msg {
  char op;  // 'p': a process (pid, its pidfd); 'u': a userfaultfd; 'r': release
  int32_t pid;
};

// Signals a process by pidfd; false once it is gone.
bool signal_fd(int pidfd, int sig) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

// The children of every thread of `pid`, as /proc shows them (CONFIG_PROC_CHILDREN).
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(task.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const std::string path = task + "/" + e->d_name + "/children";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[4096];
    std::string text;
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    for (char* p = text.data(); *p != '\0';) {
      char* end = nullptr;
      const long v = std::strtol(p, &end, 10);
      if (end == p) break;
      out.push_back(static_cast<pid_t>(v));
      p = end;
    }
  }
  ::closedir(d);
  return out;
}

// True while the address space the userfaultfd belongs to may exist. The probe is a
// UFFDIO_COPY from memory of ours that cannot be read: it never places anything (the copy
// fails first, EFAULT, or finds no mapping there, ENOENT), but a gone address space is
// refused before that (ESRCH).
bool mm_alive(int uffd, const void* unreadable) {
  uffdio_copy c{};
  c.dst = 4096;
  c.src = reinterpret_cast<uint64_t>(unreadable);
  c.len = 4096;
  if (::ioctl(uffd, UFFDIO_COPY, &c) == 0) return true;
  // EINVAL: a kernel that checks the address against mmap_min_addr first cannot tell; the
  // processes that were found are dead by now.
  return errno != ESRCH && errno != EBADF && errno != EINVAL;
}

[[noreturn]] void kill_and_hold(std::vector<std::pair<pid_t, int>>& procs, std::vector<int>& uffds) {
  // Stopped first, so that none forks while its children are looked for; the children found
  // are stopped too, until a look finds nobody new. Then all are killed.
  for (auto& [pid, fd] : procs) (void)signal_fd(fd, SIGSTOP);
  for (int round = 0; round < 100; ++round) {
    bool found = false;
    for (size_t i = 0; i < procs.size(); ++i) {
      for (pid_t c : children_of(procs[i].first)) {
        if (std::any_of(procs.begin(), procs.end(), [c](const auto& p) { return p.first == c; }))
          continue;
        const int fd = static_cast<int>(::syscall(SYS_pidfd_open, c, 0));
        if (fd < 0) continue;
        (void)signal_fd(fd, SIGSTOP);
        procs.emplace_back(c, fd);
        found = true;
      }
    }
    if (!found) break;
  }
  for (auto& [pid, fd] : procs) (void)signal_fd(fd, SIGKILL);
  for (auto& [pid, fd] : procs) {
    pollfd p{fd, POLLIN, 0};
    (void)::poll(&p, 1, 10000);  // readable once it has exited
  }
  // Each userfaultfd stays open until its address space is gone: closed earlier, the pages
  // still missing would read as zeros to whoever runs there (a process that left the tree).
  void* unreadable = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  while (!uffds.empty()) {
    uffds.erase(std::remove_if(uffds.begin(), uffds.end(),
                               [unreadable](int fd) {
                                 if (mm_alive(fd, unreadable)) return false;
                                 ::close(fd);
                                 return true;
                               }),
                uffds.end());
    if (!uffds.empty()) ::poll(nullptr, 0, 10);
  }
  ::_exit(0);
}

void guardian(int s) {
  std::vector<std::pair<pid_t, int>> procs;
  std::vector<int> uffds;
  Msg m{};
  int fd = -1;
  while (sys::recv_fixed_with_fd(s, &m, sizeof m, fd)) {
    if (m.op == 'p' && fd >= 0) {
      procs.emplace_back(m.pid, fd);
    } else if (m.op == 'u' && fd >= 0) {
      uffds.push_back(fd);
    } else if (m.op == 'r') {
      ::_exit(0);
    } else if (fd >= 0) {
      ::close(fd);
    }
  }
  kill_and_hold(procs, uffds);
}

}  // namespace

Result<LazyGuard> LazyGuard::start() {
  LazyGuard g;
  CR_TRY_ASSIGN(g.proc_, sys::GuardianProcess::start("lazy guard", guardian));
  return g;
}

Status LazyGuard::send(char op, pid_t pid, int fd) {
  Msg m{op, pid};
  const int fds[1] = {fd};
  const ssize_t n = sys::send_with_fds(proc_.sock(), &m, sizeof m,
                                       fd >= 0 ? std::span<const int>(fds) : std::span<const int>(),
                                       MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(sizeof m)) return errno_error("lazy guard: send");
  return {};
}

Status LazyGuard::watch(pid_t pid) {
  ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return errno_error("lazy guard: pidfd_open " + std::to_string(pid));
  return send('p', pid, pidfd.get());
}

Status LazyGuard::hold(int uffd) { return send('u', 0, uffd); }

void LazyGuard::release() {
  if (proc_.active()) (void)send('r', 0, -1);
  proc_.end();
}

}  // namespace cr::restore
