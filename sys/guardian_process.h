// A guardian process: forked to act should its parent die (crdump's undo guard, crrestore's
// lazy-restore guard). The parent keeps one end of a seqpacket socket pair, the child runs its
// body on the other; when the parent's end closes (it finished, or it died) the child sees the
// end of the socket. The child leaves the parent's process group (a ^C there is the parent's to
// handle), ignores the signals a terminal or a supervisor sends a group, and holds nothing of
// the parent's but its socket (fd 3; 0-2 on /dev/null).
#pragma once

#include <sys/types.h>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::sys {

class GuardianProcess {
 public:
  /// Forks; the child calls `body(3)` (its socket), which must not return. Call it before the
  /// parent starts threads. `what` names it in errors.
  static Result<GuardianProcess> start(const char* what, void (*body)(int sock));
  GuardianProcess() = default;
  GuardianProcess(GuardianProcess&& o) noexcept;
  GuardianProcess& operator=(GuardianProcess&& o) noexcept;
  GuardianProcess(const GuardianProcess&) = delete;
  GuardianProcess& operator=(const GuardianProcess&) = delete;
  ~GuardianProcess() { end(); }

  bool active() const { return sock_.valid(); }
  int sock() const { return sock_.get(); }
  /// Closes our end (the guardian acts on what it holds, or not if told so before) and reaps it.
  void end();

 private:
  ScopedFd sock_;
  pid_t pid_ = -1;
};

}  // namespace cr::sys
