// What the tests of crrestore --pidns share (restore_pidns_test.cc, userns_test.cc): the pids
// of a process in each pid namespace, the restore itself, and the end of the restored tree
// through crrestore's init.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "proc_snapshot.h"

namespace cr::e2e {

inline std::string link_of(const std::string& path) {
  char buf[4096] = {};
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

inline std::string pid_ns_of(pid_t pid) { return link_of("/proc/" + std::to_string(pid) + "/ns/pid"); }

// The pids of NSpid in /proc/PID/status, ours first, the innermost last (empty: gone).
inline std::vector<pid_t> nspid(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  std::vector<pid_t> v;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream ids(line.substr(6));
    long id;
    while (ids >> id) v.push_back(static_cast<pid_t>(id));
  }
  return v;
}

inline std::vector<pid_t> all_pids() {
  std::vector<pid_t> v;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return v;
  while (dirent* e = ::readdir(d)) {
    const int p = std::atoi(e->d_name);
    if (p > 0) v.push_back(p);
  }
  ::closedir(d);
  return v;
}

// pid 1 of the pid namespace `pid` is in, as we name it (0: none found).
inline pid_t ns_init_of(pid_t pid) {
  const std::string ns = pid_ns_of(pid);
  for (pid_t p : all_pids()) {
    if (pid_ns_of(p) != ns) continue;
    const std::vector<pid_t> ids = nspid(p);
    if (ids.size() >= 2 && ids.back() == 1) return p;
  }
  return 0;
}

// Runs `crrestore -d --pidns` on `img`; returns the root's pid it printed (0 on failure).
inline pid_t restore_pidns(TempDir& dir, const std::string& img, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-d", "--pidns", "-i", img};
  args.insert(args.end(), extra.begin(), extra.end());
  const std::string out = dir.path("crrestore.out");
  ToolRun r = run_tool_to_file(dir, "crrestore", args, out);
  if (!r.status.ok()) {
    ADD_FAILURE() << "crrestore --pidns: " << r.describe()
                  << "\nlog: " << read_file(dir.work() + "/log");
    return 0;
  }
  return static_cast<pid_t>(std::atol(read_file(out).c_str()));
}

inline pid_t parent_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos ? 0 : static_cast<pid_t>(std::atol(stat.c_str() + paren + 4));
}

// SIGTERM to the restored root; crrestore's init (pid 1 of the pid namespace crrestore made,
// one level below ours: the first such ancestor of the root, which may still be the
// restorer's child for a moment; the root itself may be pid 1 of a namespace of its own below
// it) exits with the root's status.
inline ExitStatus terminate_in_ns(pid_t host_root) {
  // The walk starts again when a link of it is gone meanwhile (the restorer, the root's
  // parent a moment ago, exits and is reaped as it is read).
  auto find_init = [host_root]() -> pid_t {
    for (pid_t p = parent_of(host_root); p > 1; p = parent_of(p)) {
      const std::vector<pid_t> ids = nspid(p);
      if (ids.size() == 2 && ids.back() == 1) return p;
    }
    return 0;
  };
  pid_t init = 0;
  (void)poll_until([&] { return (init = find_init()) > 1; }, std::chrono::seconds(10));
  if (init <= 1) return ExitStatus{};
  ::kill(host_root, SIGTERM);
  auto st = wait_exit(init, std::chrono::seconds(30));
  if (!st) {
    ::kill(init, SIGKILL);
    (void)wait_exit(init, std::chrono::seconds(10));
    return ExitStatus{};
  }
  return *st;
}

// Processes of ours still running with their cwd in `dir` (a restored tree's), or pid 1 of
// another pid namespace that is our child (an init left behind).
inline std::string leftovers(const TempDir& dir) {
  std::string left;
  for (pid_t p : all_pids()) {
    const std::string cwd = link_of("/proc/" + std::to_string(p) + "/cwd");
    if (cwd.rfind(dir.root(), 0) == 0) left += " " + std::to_string(p);
  }
  return left;
}

// crrestore --pidns of `img` killed at each pass of its restore in turn (the launcher, from
// the restorer's kill point): its init ends the namespace, and nothing of the tree is left;
// the restore that gets through runs and passes.
inline void expect_killed_launcher_leaves_nothing(TempDir& dir, const std::string& img) {
  bool restored = false;
  for (int n = 1; n < 200 && !restored && !::testing::Test::HasFailure(); ++n) {
    SCOPED_TRACE("pass " + std::to_string(n));
    ToolRun r;
    {
      ScopedEnv at("CR_TEST_KILL_AT", "pass:" + std::to_string(n));
      ScopedEnv who("CR_TEST_KILL_PID", "launcher");
      r = run_tool_to_file(dir, "crrestore", {"-d", "--pidns", "-i", img}, dir.path("out"));
    }
    if (r.status.ok()) {
      restored = true;
      const pid_t host = static_cast<pid_t>(std::atol(read_file(dir.path("out")).c_str()));
      ExitStatus st = terminate_in_ns(host);
      EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << read_file(dir.work() + "/log");
      break;
    }
    EXPECT_FALSE(r.status.exited) << r.describe();
    EXPECT_EQ(r.status.code, SIGKILL) << r.describe();
    // The init, handed to us (a subreaper) by the launcher's death, exits by itself; once it
    // is reaped its namespace is empty.
    for (pid_t k : child_pids(::getpid())) {
      if (nspid(k).size() < 2) continue;  // not a namespace's init
      auto st = wait_exit(k, std::chrono::seconds(20));
      EXPECT_TRUE(st.has_value()) << "the init " << k << " did not exit";
    }
    reap_zombies();
    EXPECT_EQ(leftovers(dir), "") << "processes of the tree left after the launcher's death";
  }
  EXPECT_TRUE(restored) << "never got through the restore";
}

}  // namespace cr::e2e
