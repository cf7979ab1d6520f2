// crdump's two reports that write no image: --check (what this machine's kernel offers) and
// --dry-run (what blocks the dump of a tree). Each prints on stdout and returns the exit status.
#pragma once

#include <sys/types.h>

#include "dump/dump.h"

namespace crdump {

/// One line per kernel feature (name, yes/no, what it enables or limits), then a summary;
/// 0 when everything a plain dump and restore needs works, 1 otherwise.
int print_kernel_check();

/// The blockers of a dump of `pid`, one line each, or "nothing blocks the dump"; 0 when
/// nothing does, 1 otherwise. The tree is left running.
int print_blockers(pid_t pid, const cr::dump::DumpOptions& opts);

}  // namespace crdump
