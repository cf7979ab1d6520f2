// LazyGuard: the tree of a lazy restore (crrestore --lazy) never runs on with a page it should
// not have, even when crrestore is killed.
//
// Once the tree runs, its missing pages wait in crrestore's userfaultfds; were the last copy of
// one closed, the kernel would unregister its mappings and every missing page would read as
// zeros. So crrestore forks a guardian first (before it starts threads): a small process of its
// own group that receives a copy of each userfaultfd and a pidfd of each process. When
// crrestore's end of their socket closes without release() first, the guardian stops the tree's
// processes and their children (a process forked during the fill), kills them, and holds the
// userfaultfds until the kernel says each address space is gone; only then does it exit. A
// process it could not find (it left the tree during the fill) waits on its first missing page
// for as long as the guardian lives: it never reads a zero page where data was.
#pragma once

#include <sys/types.h>

#include "common/result.h"
#include "sys/guardian_process.h"

namespace cr::restore {

class LazyGuard {
 public:
  /// Forks the guardian. Call it before crrestore starts threads.
  static Result<LazyGuard> start();
  // Destroyed without release(): the guardian kills what it watches (a failed restore, or
  // crrestore's own failure); then it is reaped.

  bool active() const { return proc_.active(); }
  /// A process of the tree (pid in crrestore's pid namespace).
  Status watch(pid_t pid);
  /// A userfaultfd the guardian holds a copy of.
  Status hold(int uffd);
  /// Every page is in and the userfaultfds are closed: the guardian exits without a kill.
  void release();

 private:
  Status send(char op, pid_t pid, int fd);
  sys::GuardianProcess proc_;
};

}  // namespace cr::restore
