// The guardian's side runs in a child forked from crdump (glibc's fork leaves the allocator
// usable there); it only receives, sets socket options, closes and runs nft.
#include "dump/undo_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "sys/fd_passing.h"
#include "sys/netlock.h"

namespace cr::dump {

namespace {

enum Op : uint32_t {
  kSetOpt = 1,    // with an fd: setsockopt(level, name, value) on it if crdump dies
  kTable = 2,     // `text`: delete this nftables table if crdump dies
  kForget = 3,    // drop everything, answer one byte
};

struct Msg {
  uint32_t op;
  int32_t level, name, value;
  char text[64];
};

[[noreturn]] void guardian(int s) {
  // Out of crdump's process group (a ^C there is crdump's to handle), deaf to the signals a
  // terminal or a supervisor sends the group, holding nothing of crdump's but its socket.
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
  struct Undo {
    int fd, level, name, value;
  };
  std::vector<Undo> undo;
  std::vector<std::string> tables;
  Msg m{};
  int fd = -1;
  while (sys::recv_fixed_with_fd(s, &m, sizeof m, fd)) {
    if (m.op == kSetOpt && fd >= 0) {
      undo.push_back({fd, m.level, m.name, m.value});
    } else if (m.op == kTable) {
      tables.emplace_back(m.text, strnlen(m.text, sizeof m.text));
    } else if (m.op == kForget) {
      for (const Undo& u : undo) ::close(u.fd);
      undo.clear();
      tables.clear();
      const char ok = 1;
      (void)::send(s, &ok, 1, MSG_NOSIGNAL);
    }
    if (m.op != kSetOpt && fd >= 0) ::close(fd);
  }
  // crdump is gone without saying it was done: everything back, newest change first.
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    (void)::setsockopt(it->fd, it->level, it->name, &it->value, sizeof it->value);
    ::close(it->fd);
  }
  for (const auto& t : tables) (void)sys::netlock_delete(t);
  ::_exit(0);
}

}  // namespace

Result<UndoGuard> UndoGuard::start() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error("undo guard: socketpair");
  ScopedFd ours(sv[0]), theirs(sv[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return errno_error("undo guard: fork");
  if (pid == 0) {
    ours.reset();
    guardian(theirs.release());
  }
  UndoGuard g;
  g.sock_ = std::move(ours);
  g.pid_ = pid;
  return g;
}

UndoGuard::UndoGuard(UndoGuard&& o) noexcept
    : sock_(std::move(o.sock_)), pid_(std::exchange(o.pid_, -1)) {}

UndoGuard& UndoGuard::operator=(UndoGuard&& o) noexcept {
  if (this != &o) {
    end();
    sock_ = std::move(o.sock_);
    pid_ = std::exchange(o.pid_, -1);
  }
  return *this;
}

UndoGuard::~UndoGuard() { end(); }

void UndoGuard::end() {
  sock_.reset();  // the guardian sees the end: it undoes what is left, and exits
  if (pid_ > 0) {
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_ = -1;
}

Status UndoGuard::send(uint32_t op, int fd, int level, int name, int value,
                       const std::string& text) {
  if (!active()) return {};
  Msg m{};
  m.op = op;
  m.level = level;
  m.name = name;
  m.value = value;
  if (text.size() >= sizeof m.text) return make_error("undo guard: name too long: " + text);
  std::memcpy(m.text, text.data(), text.size());
  const std::span<const int> fds(&fd, fd >= 0 ? 1 : 0);
  if (sys::send_with_fds(sock_.get(), &m, sizeof m, fds, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof m))
    return errno_error("undo guard: send");
  return {};
}

Status UndoGuard::on_death_setopt(int fd, int level, int name, int value) {
  return send(kSetOpt, fd, level, name, value, {});
}

Status UndoGuard::on_death_delete_table(const std::string& table) {
  return send(kTable, -1, 0, 0, 0, table);
}

void UndoGuard::forget_all() {
  if (!active()) return;
  if (!send(kForget, -1, 0, 0, 0, {}).ok()) return;
  char ok;
  while (::recv(sock_.get(), &ok, 1, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace cr::dump
