// Fault injection: crdump and crrestore killed at every step of their work, the target killed
// during its dump, the output pipe closed early, the disk full. Whatever happens, the target of
// a dump carries on as if never dumped, and a restore that does not complete leaves no process.
//
// The steps are hit deterministically: CR_TEST_KILL_AT=POINT:N (common/test_hook.h) makes the
// tool SIGKILL itself the N-th time it reaches POINT ("pass": the start of each pass, "inject":
// every change an injected system call makes to a task), or, with CR_TEST_KILL_PID, kill that
// process instead. N runs from 1 until a run completes: every step has then been a kill point.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>
#include <string>

#include "e2e_common.h"
#include "proc_snapshot.h"

namespace cr::e2e {
namespace {

void note(const std::string& what, const std::string& err) {
  std::cout << "  [" << what << "] " << err;
}

// Sets an environment variable for the tools started while it lives.
// A field of /proc/<pid>/task/<tid>/status ("" if gone).
std::string status_field(pid_t pid, const std::string& tid, const std::string& field) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/task/" + tid + "/status");
  size_t at = s.find("\n" + field + ":");
  if (at == std::string::npos) return "";
  size_t start = s.find_first_not_of(" \t", at + field.size() + 2);
  return s.substr(start, s.find('\n', start) - start);
}

// Each thread of each process of the tree: its blocked-signal mask.
std::map<std::string, std::string> masks_of(const std::set<pid_t>& procs) {
  std::map<std::string, std::string> out;
  for (pid_t p : procs) {
    const std::string task = "/proc/" + std::to_string(p) + "/task";
    DIR* d = opendir(task.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.')
        out[std::to_string(p) + "/" + e->d_name] = status_field(p, e->d_name, "SigBlk");
    closedir(d);
  }
  return out;
}

// What /proc/PID/fd/FD links to ("" if gone).
std::string fd_target(pid_t pid, const char* fd) {
  char buf[256] = {};
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + fd;
  return ::readlink(link.c_str(), buf, sizeof buf - 1) > 0 ? buf : "";
}

// Whether every thread of the tree is untraced, not a zombie, and has the mask it had before.
bool recovered(const std::set<pid_t>& procs, const std::map<std::string, std::string>& masks,
               std::string* why) {
  for (const auto& [key, mask] : masks) {
    const pid_t pid = static_cast<pid_t>(std::atol(key.c_str()));
    const std::string tid = key.substr(key.find('/') + 1);
    const std::string state = status_field(pid, tid, "State");
    const std::string now = status_field(pid, tid, "SigBlk");
    const std::string tracer = status_field(pid, tid, "TracerPid");
    if (state.empty() || state[0] == 'Z' || state[0] == 'X') {
      *why = "thread " + key + " is gone (" + state + ")";
      return false;
    }
    if (tracer != "0" || now != mask) {
      *why = "thread " + key + ": SigBlk " + now + " (was " + mask + "), TracerPid " + tracer;
      return false;
    }
  }
  if (tree_of(*procs.begin()).size() != procs.size()) {
    *why = "the tree changed";
    return false;
  }
  for (pid_t p : procs) {
    if (write_tracked(p)) {  // crdump --pre-copy's userfaultfd went with crdump
      *why = "pid " + std::to_string(p) + " still has mappings registered for write tracking";
      return false;
    }
    // Nor does the task hold it: a kill between the injected userfaultfd and its close is
    // undone by the task itself (RemoteSyscalls::call_raw_undo).
    DIR* d = opendir(("/proc/" + std::to_string(p) + "/fd").c_str());
    if (d == nullptr) continue;
    bool uffd = false;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.' &&
          fd_target(p, e->d_name).find("userfaultfd") != std::string::npos)
        uffd = true;
    closedir(d);
    if (uffd) {
      *why = "pid " + std::to_string(p) + " holds a userfaultfd";
      return false;
    }
  }
  return true;
}

// Runs crdump --leave-running on `t` with CR_TEST_KILL_AT=point:1,2,... until a run completes.
// After each kill the whole tree must come back to what it was, by itself, and go on working.
void kill_crdump_at_every(const std::string& point, const std::vector<std::string>& argv,
                          const std::vector<std::string>& more = {}) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, argv);
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::set<pid_t> procs = tree_of(t.pid());
  const std::map<std::string, std::string> masks = masks_of(procs);
  int kills = 0;
  for (int n = 1; n < 2000; ++n) {
    ToolRun d;
    {
      ScopedEnv env("CR_TEST_KILL_AT", point + ":" + std::to_string(n));
      std::vector<std::string> args = {"--leave-running", "-o", dir.path("img")};
      args.insert(args.end(), more.begin(), more.end());
      args.push_back(std::to_string(t.pid()));
      d = run_tool(dir, "crdump", args);
    }
    if (d.status.ok()) break;  // past the last step
    ASSERT_TRUE(!d.status.exited && d.status.code == SIGKILL)
        << point << ":" << n << ": " << d.describe();
    ++kills;
    std::string why;
    // The threads resume on their own once their tracer is gone; wait until each has run back.
    ASSERT_TRUE(poll_until([&] { return recovered(procs, masks, &why); }, std::chrono::seconds(20)))
        << "after crdump was killed at " << point << ":" << n << ": " << why
        << "\nlog: " << t.log();
  }
  note(point,
       "crdump killed at " + std::to_string(kills) + " steps; the tree recovered each time\n");
  EXPECT_GT(kills, 0);
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << "target after " << kills << " killed dumps: " << st.describe()
                       << "\nlog: " << t.log();
}

TEST(FaultInjection, CrdumpKilledAtEveryInjectionStepCounter) {
  kill_crdump_at_every("inject", {zdtm_path("counter_loop")});
}

TEST(FaultInjection, CrdumpKilledAtEveryInjectionStepThreads) {
  kill_crdump_at_every("inject", {zdtm_path("threads_count"), "4"});
}

TEST(FaultInjection, CrdumpKilledAtEveryInjectionStepTree) {
  kill_crdump_at_every("inject", {zdtm_path("tree_busy"), "3"});
}

// crdump --pre-copy killed at every step of the pre-copy (each process given its userfaultfd,
// each protect, each round before its scan and between protecting and reading, the settle)
// and at every injected call of the start and of the final dump: the tree recovers each time,
// untracked (recovered() looks for registered mappings), and precopy_writer's own check passes.
TEST(FaultInjection, CrdumpPreCopyKilledAtEveryStep) {
  kill_crdump_at_every("precopy", {zdtm_path("precopy_writer")}, {"--pre-copy=3"});
  kill_crdump_at_every("inject", {zdtm_path("precopy_writer")}, {"--pre-copy=2"});
}

TEST(FaultInjection, CrdumpKilledAtEveryPass) {
  kill_crdump_at_every("pass", {zdtm_path("tree_busy"), "4"});
}

// A 12-process tree restored with crrestore killed at the start of each pass in turn: nothing
// of the tree may stay, and the next run restores it (the last one completes and passes).
void kill_crrestore_at_every(const std::string& point, int stride) {
  if (!tools_present()) return;
  become_subreaper();
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_busy"), "12"});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::set<pid_t> pids = tree_of(t.pid());
  ASSERT_EQ(pids.size(), 12u);
  const pid_t root = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  int kills = 0;
  for (int n = 1; n < 100000; n += stride) {
    ToolRun r;
    {
      ScopedEnv env("CR_TEST_KILL_AT", point + ":" + std::to_string(n));
      r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
    }
    if (r.status.ok()) {
      note(point,
           "crrestore killed at " + std::to_string(kills) + " steps, then restored the tree\n");
      EXPECT_GT(kills, 0);
      expect_restored_passes(dir, root);
      return;
    }
    ASSERT_TRUE(!r.status.exited && r.status.code == SIGKILL)
        << point << ":" << n << ": " << r.describe();
    ++kills;
    std::string left;
    ASSERT_TRUE(all_gone(pids, &left))
        << "crrestore killed at " << point << ":" << n << ": " << left;
  }
  ADD_FAILURE() << "crrestore never completed";
}

TEST(FaultInjection, CrrestoreKilledAtEveryPass) { kill_crrestore_at_every("pass", 1); }

TEST(FaultInjection, CrrestoreKilledAtInjectionSteps) { kill_crrestore_at_every("inject", 97); }

// The target killed at the start of each pass of its dump: crdump fails in one line (or
// completes, if the target died after everything was read) and never hangs. Only the root is
// killed: its children, orphaned and busy, are ended here by pid (read before the dump).
TEST(FaultInjection, TargetKilledAtEveryPass) {
  if (!tools_present()) return;
  become_subreaper();  // the killed root's children become ours, to be ended
  for (int n = 1; n < 100; ++n) {
    TempDir dir;
    Target t = Target::start(dir, {zdtm_path("tree_busy"), "3"});
    ASSERT_GT(t.pid(), 0) << t.error();
    const std::vector<pid_t> tree = tree_pids(t.pid());
    struct EndChildren {
      const std::vector<pid_t>& pids;
      pid_t root;
      ~EndChildren() {
        for (pid_t p : pids)
          if (p != root) kill_child(p);
        reap_zombies();
      }
    } end_children{tree, t.pid()};
    ToolRun d;
    {
      ScopedEnv at("CR_TEST_KILL_AT", "pass:" + std::to_string(n));
      ScopedEnv who("CR_TEST_KILL_PID", std::to_string(t.pid()));
      d = run_tool(dir, "crdump",
                   {"--leave-running", "-o", dir.path("img"), std::to_string(t.pid())});
    }
    ASSERT_FALSE(d.timed_out) << "crdump hangs when the target dies at pass " << n;
    // Past the last pass the target was never killed: it is still running and passes.
    ExitStatus ts = d.status.ok() ? t.terminate() : t.wait(std::chrono::seconds(20));
    reap_zombies();
    if (ts.ok()) {
      note("target killed",
           "at each of " + std::to_string(n - 1) + " passes, crdump failed cleanly\n");
      return;
    }
    EXPECT_EQ(ts.code, SIGKILL) << ts.describe();
    if (d.status.ok()) {
      crit_check(dir, dir.path("img"));  // it died after its last read
    } else {
      EXPECT_TRUE(d.status.exited && d.status.code == 1) << "pass " << n << ": " << d.describe();
      EXPECT_TRUE(d.one_line_error("crdump")) << "pass " << n << ": " << d.err;
    }
  }
  ADD_FAILURE() << "the target was killed at every one of 99 passes?";
}

void expect_intact(Target& t) {
  ASSERT_TRUE(pid_exists(t.pid())) << "target gone";
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << "target after the failed dump: " << st.describe() << "\nlog: " << t.log();
}

// crdump | head -c 1000: crdump fails with a message, the target carries on.
TEST(FaultInjection, OutputClosedAfter1000Bytes) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "8"});
  ASSERT_GT(t.pid(), 0) << t.error();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t dumper = start_tool(dir, "crdump", {std::to_string(t.pid())}, -1, p[1], "crdump.err");
  close(p[1]);
  ASSERT_GT(dumper, 0);
  char buf[1000];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = read(p[0], buf + got, sizeof buf - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(p[0]);
  EXPECT_EQ(got, sizeof buf);
  auto st = wait_exit(dumper, std::chrono::seconds(60));
  ASSERT_TRUE(st) << "crdump hangs after its reader went away";
  std::string err = read_file(dir.path("crdump.err"));
  note("head -c 1000", err);
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << ", stderr: " << err;
  EXPECT_TRUE((ToolRun{*st, err}).one_line_error("crdump")) << err;
  expect_intact(t);
}

// crdump -o onto a 1 MiB tmpfs with an 8 MiB image: crdump fails with a message, the target
// carries on.
TEST(FaultInjection, DiskFull) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string small = dir.path("small");
  ASSERT_EQ(mkdir(small.c_str(), 0700), 0);
  if (::mount("cr-fault-tmpfs", small.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs: " << strerror(errno);
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "8"});
  ToolRun d;
  if (t.pid() > 0) d = run_tool(dir, "crdump", {"-o", small + "/img", std::to_string(t.pid())});
  ::umount2(small.c_str(), MNT_DETACH);
  ASSERT_GT(t.pid(), 0) << t.error();
  note("disk full", d.err);
  EXPECT_TRUE(d.status.exited && d.status.code == 1) << d.describe();
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;
  expect_intact(t);
}

}  // namespace
}  // namespace cr::e2e
