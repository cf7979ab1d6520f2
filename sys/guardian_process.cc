// The child side only detaches and calls its body: glibc's fork leaves the allocator usable
// there, and the body only receives and acts.
#include "sys/guardian_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace cr::sys {

Result<GuardianProcess> GuardianProcess::start(const char* what, void (*body)(int sock)) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error(std::string(what) + ": socketpair");
  ScopedFd ours(sv[0]), theirs(sv[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error(std::string(what) + ": fork");
  if (pid == 0) {
    ours.reset();
    int s = theirs.release();
    (void)::setpgid(0, 0);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU})
      (void)::signal(sig, SIG_IGN);
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; ++fd) (void)::dup2(null, fd);
    if (s != 3) {
      (void)::dup2(s, 3);
      s = 3;
    }
    (void)::syscall(SYS_close_range, 4U, ~0U, 0U);
    body(s);
    ::_exit(0);
  }
  GuardianProcess g;
  g.sock_ = std::move(ours);
  g.pid_ = pid;
  return g;
}

GuardianProcess::GuardianProcess(GuardianProcess&& o) noexcept
    : sock_(std::move(o.sock_)), pid_(std::exchange(o.pid_, -1)) {}

GuardianProcess& GuardianProcess::operator=(GuardianProcess&& o) noexcept {
  if (this != &o) {
    end();
    sock_ = std::move(o.sock_);
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

void GuardianProcess::end() {
  sock_.reset();
  if (pid_ > 0) {
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

}  // namespace cr::sys
