// The pre-copy part of crdump --pre-copy and crmigrate: the start and the rounds, each round
// told on stderr with -v, a cancel signal looked for before each. On failure the tracking is
// ended and the stream ends with an error record; the tree runs on. `optional` (crdump's own
// choice under --leave-running): a start that fails (but for a cancel) is no error, the dump
// goes on without (null), the stream untouched.
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "dump/precopy.h"
#include "format/record_writer.h"
#include "tools/cancel.h"

namespace cr::tools {

inline Result<std::unique_ptr<dump::PreCopy>> run_precopy(const char* tool, pid_t pid,
                                                          const dump::DumpOptions& opts,
                                                          format::RecordWriter& out,
                                                          const dump::PrecopyPolicy& policy,
                                                          bool verbose, bool optional = false) {
  std::unique_ptr<dump::PreCopy> precopy;
  Status st = [&]() -> Status {
    auto started = dump::PreCopy::start(pid, opts, out);
    // A cancel is never a reason to go on (the start takes none today: the signals wait,
    // blocked, for the rounds' checkpoint; one taken here would otherwise be lost).
    if (!started.ok() && optional && started.error().code != ECANCELED) {
      if (verbose)
        std::fprintf(stderr, "%s: no pre-copy (%s): the tree is frozen for all of the dump\n",
                     tool, started.error().message.c_str());
      return {};
    }
    CR_TRY_ASSIGN(precopy, std::move(started));
    return precopy->run(
        policy,
        [&](const dump::PrecopyRound& r) {
          if (verbose)
            std::fprintf(stderr,
                         "%s: pre-copy round %u: %.1f MiB written since, %.1f MiB sent, %.3f ms\n",
                         tool, r.round, static_cast<double>(r.dirty_bytes) / (1 << 20),
                         static_cast<double>(r.sent_bytes) / (1 << 20), r.seconds * 1e3);
        },
        [tool] { return checkpoint(tool, "pre-copy"); });
  }();
  if (st.ok() && !precopy) return precopy;  // optional, not started
  if (!st.ok()) {
    precopy.reset();  // the tracking ends with it
    out.fail(st.error().message);
    return std::move(st).error();
  }
  return precopy;
}

}  // namespace cr::tools
