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
#include "sys/guardian_process.h"
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

void guardian(int s) {
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
}

}  // namespace

Result<UndoGuard> UndoGuard::start() {
  UndoGuard g;
  CR_TRY_ASSIGN(g.proc_, sys::GuardianProcess::start("undo guard", guardian));
  return g;
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
  if (sys::send_with_fds(proc_.sock(), &m, sizeof m, fds, MSG_NOSIGNAL) !=
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
  while (::recv(proc_.sock(), &ok, 1, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace cr::dump
