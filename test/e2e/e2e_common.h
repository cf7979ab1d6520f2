// Shared steps of the e2e tests: dump a started target, restore an image, check the outcome.
// The steps report through gtest assertions and return false when the test cannot go on.
#ifndef CR_TEST_E2E_E2E_COMMON_H
#define CR_TEST_E2E_E2E_COMMON_H

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <signal.h>
#include <optional>
#include <sstream>

#include "harness.h"
#include "proc_snapshot.h"

namespace cr::e2e {

/// Sets an environment variable (for the tools the test runs) for the scope's life.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

/// The pids of `root` and its descendants.
inline std::set<pid_t> tree_of(pid_t root) {
  const std::vector<pid_t> v = tree_pids(root);
  return {v.begin(), v.end()};
}

/// Which way the target is dumped. kTwice: kill path, then the restored task is dumped and
/// restored once more (state that survives one restore must survive the next).
enum class Mode { kKill, kLeaveRunning, kTwice };

inline const char* mode_name(Mode m) {
  return m == Mode::kKill ? "kill" : m == Mode::kLeaveRunning ? "leave_running" : "twice";
}

/// The fds of `pid` as "N -> target" lines (for failure messages).
inline std::string fd_listing(pid_t pid) {
  std::string out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 256; fd++) {
    char link[512];
    std::string p = dir + "/" + std::to_string(fd);
    ssize_t n = readlink(p.c_str(), link, sizeof(link) - 1);
    if (n > 0)
      out += std::to_string(fd) + " -> " + std::string(link, static_cast<size_t>(n)) + "\n";
  }
  return out;
}

/// Polls `cond` (yielding, not sleeping) until it holds or `limit` passes.
template <class Cond>
inline bool poll_until(Cond cond, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    sched_yield();
  }
  return true;
}

/// Fails the current test if crdump / crrestore are missing: the suite is their spec.
inline bool tools_present() {
  bool ok = true;
  for (const char* t : {"crdump", "crrestore"})
    if (!tool_exists(t)) {
      ADD_FAILURE() << tool_path(t) << " does not exist: build it first";
      ok = false;
    }
  return ok;
}

// Waits until none of `pids` exists (pidfds, no sleeps), reaping what is handed to us.
inline bool all_gone(const std::set<pid_t>& pids, std::string* left) {
  for (pid_t p : pids) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
    if (fd < 0) continue;  // ESRCH: gone (and reaped)
    pollfd pfd{fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, 20000);
    ::close(fd);
    if (r != 1) {
      *left = "pid " + std::to_string(p) +
              " still runs: " + read_file("/proc/" + std::to_string(p) + "/stat");
      return false;
    }
  }
  // All have exited: the zombies come to us (a child subreaper) as their parents exit.
  bool ok = poll_until(
      [&] {
        reap_zombies();
        for (pid_t p : pids)
          if (pid_exists(p)) return false;
        return true;
      },
      std::chrono::seconds(20));
  if (!ok) *left = "a zombie of the tree is not ours to reap";
  return ok;
}

/// A crdump stopped before pass `pass` (CR_TEST_PAUSE_AT), waiting for a signal: started by
/// start_paused with `args` and its stdout to `out_fd`; `err` is what it said so far.
struct PausedDump {
  pid_t pid = -1;
  int err_fd = -1;
  std::string err;
  /// Whether it said "paused before PASS".
  bool paused(const std::string& pass) const {
    return err.find("paused before " + pass) != std::string::npos;
  }
  /// Sends `sig`, reads the rest of its stderr and waits for it (nullopt: it hangs).
  std::optional<ExitStatus> signal_and_wait(int sig) {
    ::kill(pid, sig);
    char buf[512];
    for (ssize_t n; (n = ::read(err_fd, buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
    ::close(err_fd);
    err_fd = -1;
    return wait_exit(pid, std::chrono::seconds(60));
  }
};
inline PausedDump start_paused(const std::vector<std::string>& args, const char* pass, int out_fd) {
  PausedDump d;
  int errp[2];
  if (pipe2(errp, O_CLOEXEC) != 0) return d;
  ::setenv("CR_TEST_PAUSE_AT", pass, 1);
  SpawnSpec spec;
  spec.argv = {tool_path("crdump")};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdout_fd = out_fd;
  spec.stderr_fd = errp[1];
  d.pid = spawn(spec);
  ::unsetenv("CR_TEST_PAUSE_AT");
  ::close(errp[1]);
  d.err_fd = errp[0];
  char buf[512];
  while (d.pid > 0 && d.err.find("paused before") == std::string::npos) {
    const ssize_t n = ::read(errp[0], buf, sizeof buf);
    if (n <= 0) break;
    d.err.append(buf, static_cast<size_t>(n));
  }
  return d;
}

/// Whether some mapping of `pid` is registered for userfaultfd write-protection ("uw" in
/// smaps: crdump --pre-copy's tracking).
inline bool write_tracked(pid_t pid) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/smaps"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmFlags:") && line.find(" uw") != std::string::npos) return true;
  return false;
}

/// Runs `crit check IMG` when crit has been built.
inline void crit_check(TempDir& dir, const std::string& img) {
  if (!tool_exists("crit")) return;
  ToolRun r = run_tool(dir, "crit", {"check", img});
  EXPECT_TRUE(r.status.ok()) << "crit check " << img << ": " << r.describe();
}

/// Dumps `t` to `img`. Kill path: crdump kills it and we reap it. Leave-running path: the
/// original must then pass on SIGTERM (or exit 0 by itself if `self_exiting`), and the work dir
/// goes back to its dump-time state. `left_running`, if set, is called on the leave-running
/// path while the original is still running untouched (before its SIGTERM).
inline bool dump_target(TempDir& dir, Target& t, Mode mode, const std::string& img,
                        std::vector<std::string> extra = {}, bool self_exiting = false,
                        const std::function<void()>& left_running = {}) {
  std::vector<std::string> args = {"-o", img};
  if (mode == Mode::kLeaveRunning) args.push_back("--leave-running");
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(std::to_string(t.pid()));
  ToolRun d = run_tool(dir, "crdump", args);
  if (!d.status.ok()) {
    ADD_FAILURE() << "crdump " << mode_name(mode) << ": " << d.describe() << "\nlog: " << t.log();
    return false;
  }
  dir.snapshot_work();
  if (mode != Mode::kLeaveRunning) {
    ExitStatus st = t.wait(std::chrono::seconds(10));
    // The root's children, killed too, were handed to us (a child subreaper) as zombies when
    // the root died: reaping them frees their pids for the restore.
    reap_zombies();
    if (st.exited || st.code != SIGKILL) {
      ADD_FAILURE() << "after crdump the target should die of SIGKILL, got " << st.describe()
                    << "\nlog: " << t.log();
      return false;
    }
  } else {
    if (left_running) left_running();
    // Its descendants come to us (a child subreaper) as it ends, some only to die a moment
    // later (a shell's trap kills its sleep and exits without waiting): each one of ours is
    // waited for and reaped, or its pid (or a zombie's session id) would still be taken
    // when the restore wants it back.
    const std::vector<pid_t> below = tree_pids(t.pid());
    ExitStatus st = self_exiting ? t.wait(std::chrono::seconds(60)) : t.terminate();
    for (size_t i = 1; i < below.size(); ++i) {
      const std::string stat = read_file("/proc/" + std::to_string(below[i]) + "/stat");
      const size_t paren = stat.rfind(')');
      if (paren != std::string::npos &&
          std::atoi(stat.c_str() + paren + 4) == static_cast<int>(::getpid()))
        (void)wait_exit(below[i], std::chrono::seconds(5));
    }
    reap_zombies();
    std::string log = t.log();
    if (!st.ok()) {
      ADD_FAILURE() << "original after crdump --leave-running: " << st.describe()
                    << "\nlog: " << log;
      return false;
    }
    write_file(dir.path("log.original"), log);
    dir.restore_work();
    crit_check(dir, img);
  }
  return true;
}

/// Runs bin/<tool> with its stdout into the file `path` (made anew).
inline ToolRun run_tool_to_file(TempDir& dir, const std::string& tool,
                                const std::vector<std::string>& args, const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << "create " << path;
  ToolRun r = run_tool(dir, tool, args, -1, fd);
  if (fd >= 0) ::close(fd);
  return r;
}

/// `crit encode` of the JSON text `json` into the image `img` (the JSON kept beside it).
inline ToolRun crit_encode(TempDir& dir, const std::string& json, const std::string& img) {
  write_file(img + ".json", json);
  return run_tool(dir, "crit", {"encode", "-o", img, img + ".json"});
}

/// `crrestore -d -i img`: on success the restored pid is running as our child.
inline bool restore_detached(TempDir& dir, const std::string& img, pid_t pid,
                             const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"-d", "-i", img};
  args.insert(args.end(), extra.begin(), extra.end());
  ToolRun r = run_tool(dir, "crrestore", args);
  if (!r.status.ok()) {
    ADD_FAILURE() << "crrestore -d: " << r.describe()
                  << "\nlog: " << read_file(dir.work() + "/log");
    kill_child(pid);
    return false;
  }
  if (!pid_exists(pid)) {
    ADD_FAILURE() << "crrestore -d exited 0 but pid " << pid << " does not exist";
    return false;
  }
  return true;
}

/// Dumps a restored task (our child) with the kill path and reaps it.
inline bool redump_restored(TempDir& dir, pid_t pid, const std::string& img,
                            std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"-o", img};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(std::to_string(pid));
  ToolRun d = run_tool(dir, "crdump", args);
  if (!d.status.ok()) {
    ADD_FAILURE() << "crdump of the restored task: " << d.describe()
                  << "\nlog: " << read_file(dir.work() + "/log");
    kill_child(pid);
    return false;
  }
  dir.snapshot_work();
  auto st = wait_exit(pid, std::chrono::seconds(10));
  reap_zombies();  // the rest of the tree, as in dump_target
  if (!st || st->exited || st->code != SIGKILL) {
    ADD_FAILURE() << "restored task after crdump: " << (st ? st->describe() : "still running");
    kill_child(pid);
    return false;
  }
  return true;
}

/// SIGTERMs the restored pid and expects it to pass.
inline void expect_restored_passes(TempDir& dir, pid_t pid) {
  ExitStatus st = terminate_pid(pid);
  EXPECT_TRUE(st.ok()) << "restored process: " << st.describe() << " (not waited for = not our "
                       << "child or hung)\nlog: " << read_file(dir.work() + "/log");
  if (st.ok()) {
    std::string log = read_file(dir.work() + "/log");
    EXPECT_NE(log.find("PASS"), std::string::npos) << "exit 0 without PASS; log: " << log;
  }
}

/// The namespace link /proc/PID/ns/KIND ("" if gone).
inline std::string ns_of(pid_t pid, const char* kind) {
  char buf[64] = {};
  const std::string link = "/proc/" + std::to_string(pid) + "/ns/" + kind;
  return ::readlink(link.c_str(), buf, sizeof buf - 1) > 0 ? buf : "";
}

/// A python3 outside the tree joins namespace `kind` (`flag`: its CLONE_NEW* for setns) of
/// `pid`, then says ready and waits for SIGTERM.
inline Target start_stranger(TempDir& other, pid_t pid, const char* kind, const char* flag) {
  const std::string join = std::string("import ctypes, os, signal, sys\nfd = os.open('/proc/") +
                           std::to_string(pid) + "/ns/" + kind +
                           "', os.O_RDONLY)\n"
                           "if ctypes.CDLL(None, use_errno=True).setns(fd, " +
                           flag +
                           ") != 0: sys.exit(3)\n"
                           "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
                           "os.close(3)\n"
                           "signal.sigwait([signal.SIGTERM])\n"
                           "print('PASS', file=sys.stderr)\n";
  return Target::start(other, {"/usr/bin/python3", "-I", "-c", join});
}

/// crdump of `t` and its dry run refuse, naming `stranger` as in the tree's own `kind`
/// namespace.
inline void expect_stranger_refused(TempDir& dir, Target& t, const Target& stranger,
                                    const char* kind) {
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_FALSE(d.status.ok()) << d.describe();
  EXPECT_NE(
      d.err.find("pid " + std::to_string(stranger.pid()) +
                 " ('python3'), outside the tree, is in the tree's own " + kind + " namespace"),
      std::string::npos)
      << d.err;
  const std::string out = dir.path("dry-run.out");
  ToolRun dry = run_tool_to_file(dir, "crdump", {"--dry-run", std::to_string(t.pid())}, out);
  EXPECT_EQ(dry.status.code, 1) << dry.describe();
  EXPECT_NE(read_file(out).find(std::string("outside the tree, is in the tree's own ") + kind),
            std::string::npos)
      << read_file(out);
}

/// A tree that owns namespaces, started by `start` in a fresh directory, dumped (killed, then
/// left running), restored detached at its pid and expected to pass its own checks; `before`
/// and `after` check it (by its root's pid) before the dump and after the restore.
inline void container_round_trips(const char* label, const std::function<Target(TempDir&)>& start,
                                  const std::function<void(pid_t)>& before,
                                  const std::function<void(pid_t)>& after) {
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = start(dir);
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    before(pid);
    if (!dump_target(dir, t, mode, dir.path("img"))) continue;
    if (!restore_detached(dir, dir.path("img"), pid)) continue;
    after(pid);
    expect_restored_passes(dir, pid);
    std::cout << "  [" << label << " " << mode_name(mode) << "] " << read_file(dir.work() + "/log");
  }
}

}  // namespace cr::e2e

#endif
