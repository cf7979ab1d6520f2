// Creating the restored task with its dumped PID: clone3 with set_tid, and the guard that kills
// it if the restore fails.
#pragma once

#include <sys/types.h>

#include <functional>
#include <vector>

#include "common/result.h"

namespace cr::restore {

/// Called in the restorer of `crrestore --pidns`: a pid in use is then one of the new
/// namespace's own, and "pid N is in use" stops suggesting --pidns.
void pid_in_use_in_own_namespace();

/// Owns a child of crrestore until the restore hands it over: if still armed on destruction it
/// is killed (SIGKILL) and reaped, so a failed restore leaves nothing behind.
class ChildGuard {
 public:
  ChildGuard() = default;
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ChildGuard(ChildGuard&& o) noexcept;
  ChildGuard& operator=(ChildGuard&& o) noexcept;
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  ~ChildGuard() { kill_and_reap(); }

  pid_t pid() const { return pid_; }
  /// Hands the child over (it runs on); returns its pid.
  pid_t release();
  /// A thread created in the child and traced by us: reaped before the leader on a kill, as
  /// the kernel reports a leader's exit only once its traced threads are reaped.
  void add_thread(pid_t tid) { threads_.push_back(tid); }
  /// SIGKILL and waitpid (threads, then the leader), if armed.
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
  std::vector<pid_t> threads_;
};

/// Creates a child process whose PID is `pid` (clone3 with set_tid, exit signal SIGCHLD; a
/// fork, sharing only what `share` names: CLONE_FILES, CLONE_FS). The child runs `child_main`,
/// which must not return (it is _exit(127) if it does). EEXIST becomes "pid N is in use".
///
/// The child is a raw clone: glibc's fork handlers do not run, so `child_main` may use only
/// what is safe in a single-threaded fork child (crrestore is single-threaded at this point).
///
/// `ns_pid` != 0: the child is in a pid namespace below the caller's, with that pid there
/// (set_tid {ns_pid, pid}): the namespace is new with CLONE_NEWPID in `share` (the child is its
/// init), else the caller's own pid_for_children (the caller is inside it). CLONE_NEWUTS and
/// CLONE_NEWNS may be in `share` too. The guard holds the pid as the caller sees it.
Result<ChildGuard> clone_with_pid(pid_t pid, const std::function<void()>& child_main,
                                  uint64_t share = 0, pid_t ns_pid = 0);

/// clone_with_pid, but into a session (`new_session`) or process group whose leader, pid
/// `leader`, has exited: a helper with that pid makes the session (setsid) or group (setpgid),
/// clones the child with CLONE_PARENT, so that its parent is the caller, and exits; the caller
/// reaps it. The group or session lives on in its member.
/// `ns_pid`, `ns_leader`: their ids in the tree's own pid namespace (0: none); `ns_flags`
/// (CLONE_NEWPID, CLONE_NEWUTS, CLONE_NEWNS) make the namespaces for the child (a root whose leader
/// is gone).
Result<ChildGuard> clone_into_gone_leaders(pid_t pid, pid_t leader, bool new_session,
                                           const std::function<void()>& child_main,
                                           pid_t ns_pid = 0, pid_t ns_leader = 0,
                                           uint64_t ns_flags = 0);

}  // namespace cr::restore
