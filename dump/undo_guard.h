// UndoGuard: what crdump changes on the tree's sockets and in the firewall, undone even when
// crdump is killed (SIGKILL, OOM) in the middle of a dump.
//
// Injected system calls heal themselves (sys/sigreturn_frame.h), but some of crdump's changes
// live in the kernel outside the tasks: a connection in TCP_REPAIR mode, SO_PEEK_OFF or
// SO_PASSCRED set on a socket whose queue is being read, the network lock's nftables table. A
// killed crdump would leave them, and the tree would run on with broken connections. So crdump
// forks a guardian first: a small process of its own group that holds a copy of each socket
// before it is changed, with the setsockopt that puts it back, and the name of the table before
// it is made. When crdump's end of their socket closes without a forget_all() first, the
// guardian undoes everything, newest first, and exits. A dump that ends (either way) undoes its
// changes itself, or hands the connections to crrestore, and then calls forget_all().
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "sys/guardian_process.h"

namespace cr::dump {

class UndoGuard {
 public:
  /// Forks the guardian. Call it before anything is changed and before crdump starts threads.
  static Result<UndoGuard> start();
  // Destroyed (or assigned over), the guardian ends: what is still registered is undone, and
  // it is reaped.

  bool active() const { return proc_.active(); }
  /// Before crdump changes an option of socket `fd`: if crdump dies before forget_all(), the
  /// guardian sets (level, name) to `value` on it. Inactive guard: nothing.
  Status on_death_setopt(int fd, int level, int name, int value);
  /// Before the network lock's table is made: if crdump dies, the guardian deletes it.
  Status on_death_delete_table(const std::string& table);
  /// Everything registered is done with: the guardian drops its socket copies (a connection
  /// in repair mode closes silently) and forgets the table, then answers; returns after that,
  /// so that no copy of ours holds an address crrestore binds next.
  void forget_all();

 private:
  Status send(uint32_t op, int fd, int level, int name, int value, const std::string& text);
  sys::GuardianProcess proc_;
};

}  // namespace cr::dump
