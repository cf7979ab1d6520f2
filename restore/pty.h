// Pseudo-terminal pairs: made anew in crrestore with their dumped index and state, before the
// tree is forked (their fds are carriers like every file), and the controlling terminal and
// foreground group given back inside the restored processes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"

namespace cr::restore {

/// The pairs of one restore. devpts hands out the lowest free index, so a pair is made by
/// opening /dev/ptmx until the dumped index comes back (the lower ones are closed again).
class PtyMaker {
 public:
  /// An fd on the master of `p` (one open file description: a second one is refused).
  Result<int> open_master(const schema::Pty& p, uint32_t flags);
  /// A new open file description of the slave /dev/pts/<index>.
  Result<int> open_slave(const schema::Pty& p, uint32_t flags);
  /// Lock and exclusive mode, set once every slave is open (either would stop the opens).
  Status finish();

 private:
  struct Pair {
    const schema::Pty* rec = nullptr;
    ScopedFd master;
    ScopedFd slave;  // ours, for the slave-side requests
    bool master_used = false;
  };
  Result<Pair*> make(const schema::Pty& p);
  std::map<uint32_t, Pair> pairs_;  // by Pty id
};

/// Runs in a restored process right after its setsid() or setpgid(): a session leader takes the
/// pty it had as its controlling terminal back (TIOCSCTTY; the processes it forks inherit it), a
/// group leader makes its group the foreground one again (TIOCSPGRP). `carriers` (File id ->
/// fd) are the tree's files inherited from crrestore.
Status restore_controlling_tty(const ProcessImage& shared, const schema::Process& p,
                               const std::map<uint32_t, int>& carriers);

/// --shell-job, in a restored process right after its setsid() or setpgid(): a session leader
/// whose controlling terminal was the shell's terminal (ShellTty.sid) takes it back through a
/// tty File of the tree (TIOCSCTTY), a group leader that was its foreground group makes its
/// group the foreground one again. The terminal being another session's (crrestore run from a
/// shell on it) is no error: `warning` says it stays without one.
Status restore_shell_ctty(const ProcessImage& shared, const schema::Process& p,
                          const std::map<uint32_t, int>& carriers, std::string& warning);

/// --shell-job: the termios the job's terminal had (ShellTty) set on `fd`, the terminal
/// crrestore connected it to; unless crrestore is in the background of that terminal (then
/// the modes are not the job's to set yet: `warning` says so). `resized`: its window size now
/// differs from the dumped one (the window's is kept: it is the real one).
Status set_shell_tty_modes(const schema::ShellTty& t, int fd, std::string& warning, bool& resized);

}  // namespace cr::restore
