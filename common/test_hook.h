// Fault injection for the tests (test/e2e/fault_injection_test.cc): CR_TEST_KILL_AT="POINT:N"
// makes the process SIGKILL itself the N-th time (counted from 1) it reaches the named point,
// so a test can kill crdump or crrestore at every step of its work in turn, deterministically.
// With CR_TEST_KILL_PID=PID it kills that process there instead (a target dying mid-dump);
// CR_TEST_KILL_PID=launcher calls what set_test_kill_launcher registered (crrestore --pidns:
// the restorer, inside the new pid namespace, cannot signal its launcher outside it).
// Without the variable a point costs one relaxed load.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

namespace cr {

namespace test_hook_detail {
struct KillAt {
  std::string point;  // empty: no hook
  long n = 0;
  pid_t victim = 0;  // 0: ourselves
  bool launcher = false;
  std::function<void()> kill_launcher;
  std::atomic<long> seen{0};
  KillAt() {
    const char* v = std::getenv("CR_TEST_KILL_AT");
    if (v == nullptr) return;
    const char* colon = std::strrchr(v, ':');
    if (colon == nullptr) return;
    point.assign(v, colon);
    n = std::atol(colon + 1);
    if (const char* pid = std::getenv("CR_TEST_KILL_PID")) {
      launcher = std::strcmp(pid, "launcher") == 0;
      victim = static_cast<pid_t>(std::atol(pid));
    }
  }
};
inline KillAt& kill_at() {
  static KillAt k;
  return k;
}
}  // namespace test_hook_detail

/// A step of the work where the tests may kill this process (see above).
inline void test_kill_point(const char* point) {
  auto& k = test_hook_detail::kill_at();
  if (k.point.empty() || k.point != point) return;
  if (++k.seen != k.n) return;
  if (k.launcher && k.kill_launcher) {
    k.kill_launcher();
  } else if (k.victim > 0) {
    ::kill(k.victim, SIGKILL);
  } else {
    ::raise(SIGKILL);
  }
}

/// How the kill point reaches the launcher (CR_TEST_KILL_PID=launcher).
inline void set_test_kill_launcher(std::function<void()> f) {
  test_hook_detail::kill_at().kill_launcher = std::move(f);
}

}  // namespace cr
