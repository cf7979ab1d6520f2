// What the new task does for itself before it stops for crrestore: fd table, cwd, umask,
// personality, rlimits, name, session and process group, default signal dispositions. It runs
// crrestore's own code in the child's copy of crrestore's memory.
//
// It reports over a pipe (close-on-exec, lifted above the fd table): lines "W<text>" are
// warnings, a line "E<text>" is the error it exited with (status 1).
#pragma once

#include <string>
#include <vector>

#include "restore/context.h"

namespace cr::restore {

/// Runs in the child created by clone_with_pid. Never returns: it stops itself with
/// PTRACE_TRACEME + SIGSTOP on success, or _exit(1) after writing "E<message>" to `report_fd`.
[[noreturn]] void child_main(const RestoreContext& ctx, int report_fd);

/// The child's report, read in the parent once the child stopped or exited.
struct ChildReport {
  std::vector<std::string> warnings;
  std::string error;
};
ChildReport read_child_report(int fd);

}  // namespace cr::restore
