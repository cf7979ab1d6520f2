// The signals that cancel a dump (crdump, crmigrate): SIGINT, SIGTERM, SIGHUP, SIGQUIT stay
// blocked, and the dump looks for one between passes (DumpOptions::checkpoint), so a tracee is
// never left half-injected and the tree carries on.
#pragma once

#include <signal.h>
#include <string.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/result.h"

namespace cr::tools {

inline sigset_t cancel_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  return set;
}

inline Status cancelled(int sig) {
  return make_error(std::string("cancelled by SIG") + sigabbrev_np(sig) + " (the tree carries on)",
                    ECANCELED);
}

/// Before each pass: a pending cancel signal ends the dump; CR_TEST_PAUSE_AT=PASS (a test
/// hook) waits for one before that pass, saying so on stderr as `tool: paused before PASS`.
inline Status checkpoint(const char* tool, std::string_view pass) {
  const sigset_t set = cancel_signals();
  static const char* pause_at = std::getenv("CR_TEST_PAUSE_AT");
  if (pause_at != nullptr && pass == pause_at) {
    std::fprintf(stderr, "%s: paused before %s\n", tool, pause_at);
    std::fflush(stderr);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return cancelled(sig);
  }
  const timespec zero{};
  const int sig = sigtimedwait(&set, nullptr, &zero);
  if (sig > 0) return cancelled(sig);
  return {};
}

}  // namespace cr::tools
