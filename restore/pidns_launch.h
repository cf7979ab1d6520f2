// crrestore --pidns: the restore runs inside a new pid namespace, so the tree gets its dumped
// pids there even when they are taken on the host.
//
//   crrestore (the launcher, host namespaces)
//     └─ init: pid 1 of a new pid namespace, in a new mount namespace with a proc of its own
//          └─ crrestore (the restorer, pid 2 there): the ordinary restore, every pid it
//             names, ptraces, reads in /proc or writes to cgroup.procs being the dumped one
//               └─ the tree's root, at its dumped pid in the namespace
//
// The launcher forwards the signals it is sent to the init, which forwards them to the root
// (to the restorer while the tree is being made); it learns the root's host pid from the
// restorer by SCM_CREDENTIALS (the kernel translates the pid), for -d's output and --pidfile.
// The init reaps every orphan of the namespace and exits when the root has exited (with the
// root's status, or the restorer's when the restore failed): the kernel then kills whatever
// is left in the namespace. The launcher's death before the tree runs (a SIGKILL mid-restore)
// closes a pipe the init watches: the init exits and the namespace dies with everything in it.
//
// A tree in a user namespace of its own (an image with UserNs): the init is made in a new user
// namespace and the pid namespace inside it at once (clone(CLONE_NEWUSER | CLONE_NEWPID)), the
// launcher writes the image's maps, and the init becomes root there before anything else. So
// the restorer and everything it makes (the tree's namespaces, the tree) belong to the new user
// namespace, and crrestore has there only the power the namespace gives.
#pragma once

#include <sys/types.h>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "schema/records.h"

namespace cr::restore {

class PidNsLaunch {
 public:
  PidNsLaunch(PidNsLaunch&& o) noexcept;
  PidNsLaunch& operator=(PidNsLaunch&&) = delete;
  PidNsLaunch(const PidNsLaunch&) = delete;
  ~PidNsLaunch();

  /// Makes the namespace and its init; returns twice, as fork does: in the caller (the
  /// launcher, `restorer()` false) and in the init's child (the restorer, `restorer()` true),
  /// which goes on with the restore. Needs CAP_SYS_ADMIN; crrestore must be single-threaded.
  /// `forward_tty_signals` false (--shell-job): a signal the terminal sends the launcher is not
  /// passed on, the tree being in the terminal's foreground group itself.
  /// With `user_ns`, the init is made in a new user namespace with those maps (and, with
  /// setgroups denied, the launcher's groups set to user_ns->groups first).
  static Result<PidNsLaunch> start(bool forward_tty_signals,
                                   const schema::UserNs* user_ns = nullptr);

  bool restorer() const { return restorer_; }

  // The restorer's side.
  /// The tree runs: tells the init which pid is the root's (`root`, as the namespace names it)
  /// and the launcher the same process (it reads the pid in its own namespace).
  Status announce_root(pid_t root);

  // The launcher's side.
  /// The root's pid in the launcher's namespace once the tree runs; an error when the restore
  /// failed (the restorer said why on stderr) or the root could not be named.
  Result<pid_t> wait_root();
  /// The launcher goes (-d) and the namespace stays: the init no longer dies with it.
  void detach();
  /// Waits for the init; returns the exit status crrestore gives: the root's (128 + signal
  /// when killed), or the restorer's when the restore failed.
  int wait_init();
  pid_t init_pid() const { return init_; }

 private:
  PidNsLaunch() = default;
  bool restorer_ = false;
  pid_t init_ = -1;    // launcher: the init's pid (host)
  int creds_fd_ = -1;  // both: a unix socket pair end; the launcher's has SO_PASSCRED
  int alive_fd_ = -1;  // launcher: write end the init watches
  int root_fd_ = -1;   // restorer: write end of the init's pipe for the root's pid
};

}  // namespace cr::restore
