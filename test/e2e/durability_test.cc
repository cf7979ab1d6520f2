// Durability of crdump's output and its answer to signals, signed images, and error messages
// that name the culprit (issue 16 items 3, 5, 6, 10).
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

void note(const std::string& what, const std::string& err) {
  std::cout << "  [" << what << "] " << err;
}

void expect_intact(Target& t) {
  ASSERT_TRUE(pid_exists(t.pid())) << "target gone";
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << "target after the failed dump: " << st.describe() << "\nlog: " << t.log();
}

// No crdump-XXXXXX temporaries left beside the output.
bool no_temporaries(TempDir& dir) {
  DIR* d = opendir(dir.root().c_str());
  if (d == nullptr) return false;
  bool clean = true;
  while (dirent* e = readdir(d))
    if (std::string(e->d_name).find(".crdump-") != std::string::npos) clean = false;
  closedir(d);
  return clean;
}

TEST(CrdumpOutput, FailedDumpNeverReplacesAGoodImage) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string img = dir.path("img");
  write_file(img, "a good image, say");
  // A refused dump (an inet socket) and a dump of no process: the file stays as it was.
  Target t = Target::start(dir, {zdtm_path("socket_inet_refused")});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump", {"-o", img, std::to_string(t.pid())});
  note("refused", d.err);
  EXPECT_EQ(d.status.code, 1) << d.describe();
  EXPECT_EQ(read_file(img), "a good image, say");
  EXPECT_TRUE(no_temporaries(dir));
  expect_intact(t);
}

TEST(CrdumpOutput, GoodDumpReplacesTheFileWhole) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string img = dir.path("img");
  write_file(img, "old");
  Target t = Target::start(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, img));
  EXPECT_TRUE(no_temporaries(dir));
  crit_check(dir, img);
  ASSERT_TRUE(restore_detached(dir, img, pid));
  expect_restored_passes(dir, pid);
}

// A signal at each of several passes: crdump stops there (CR_TEST_PAUSE_AT), gets SIGTERM,
// SIGINT or SIGHUP, and must resume the tree, end the stream with an error record, exit 1.
TEST(CrdumpSignals, CancelAtEachPassLeavesTheTreeRunning) {
  if (!tools_present()) return;
  const std::pair<const char*, int> cases[] = {
      {"freeze", SIGTERM}, {"sharing", SIGINT},    {"vmas", SIGHUP},   {"files", SIGTERM},
      {"remote", SIGTERM}, {"write-head", SIGINT}, {"pages", SIGTERM}, {"finish", SIGHUP},
  };
  for (const auto& [pass, sig] : cases) {
    SCOPED_TRACE(pass);
    TempDir dir;
    Target t = Target::start(dir, {zdtm_path("mem_anon"), "2"});
    ASSERT_GT(t.pid(), 0) << t.error();
    const std::string img = dir.path("img");
    ScopedFd out(::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    // Wait for the pause line (a pipe read, no timing).
    PausedDump d = start_paused({std::to_string(t.pid())}, pass, out.get());
    ASSERT_GT(d.pid, 0);
    ASSERT_TRUE(d.paused(pass)) << d.err;
    auto st = d.signal_and_wait(sig);
    ASSERT_TRUE(st) << "crdump hangs after the signal";
    note(pass, d.err);
    EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << ", stderr: " << d.err;
    EXPECT_NE(d.err.find("cancelled by SIG"), std::string::npos) << d.err;
    if (tool_exists("crit")) {
      ToolRun c = run_tool(dir, "crit", {"check", img});
      EXPECT_EQ(c.status.code, 1) << c.describe();
      EXPECT_NE(c.err.find("image incomplete: cancelled by SIG"), std::string::npos) << c.err;
    }
    expect_intact(t);
  }
}

TEST(SignedImage, RestoresWithItsKeyAndIsRefusedWithAnother) {
  if (!tools_present()) return;
  TempDir dir;
  write_file(dir.path("key"), "the signing key");
  write_file(dir.path("other"), "another key");
  Target t = Target::start(dir, {zdtm_path("pipe_data")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, img, {"--sign-key", dir.path("key")}));
  if (tool_exists("crit")) {
    EXPECT_TRUE(run_tool(dir, "crit", {"check", "--verify-key", dir.path("key"), img}).status.ok());
    ToolRun c = run_tool(dir, "crit", {"check", "--verify-key", dir.path("other"), img});
    EXPECT_EQ(c.status.code, 1) << c.describe();
  }
  ToolRun bad = run_tool(dir, "crrestore", {"-d", "--verify-key", dir.path("other"), "-i", img});
  note("wrong key", bad.err);
  EXPECT_EQ(bad.status.code, 1) << bad.describe();
  EXPECT_TRUE(bad.one_line_error("crrestore")) << bad.err;
  EXPECT_NE(bad.err.find("signature mismatch"), std::string::npos) << bad.err;
  EXPECT_FALSE(pid_exists(pid)) << "a refused restore created the process";
  // The right key restores it, from stdin (a pipe: the stream is buffered first).
  ScopedFd in(::open(img.c_str(), O_RDONLY | O_CLOEXEC));
  ToolRun good = run_tool(dir, "crrestore", {"-d", "--verify-key", dir.path("key")}, in.get());
  ASSERT_TRUE(good.status.ok()) << good.describe();
  expect_restored_passes(dir, pid);
}

TEST(SignedImage, UnsignedImageIsRefusedWithAKey) {
  if (!tools_present()) return;
  TempDir dir;
  write_file(dir.path("key"), "the signing key");
  Target t = Target::start(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  ToolRun r =
      run_tool(dir, "crrestore", {"-d", "--verify-key", dir.path("key"), "-i", dir.path("img")});
  note("unsigned", r.err);
  EXPECT_EQ(r.status.code, 1) << r.describe();
  EXPECT_NE(r.err.find("not signed"), std::string::npos) << r.err;
  EXPECT_FALSE(pid_exists(pid));
}

// PTRACE_SEIZE fails with EPERM when another tracer holds the task: the message names it.
TEST(CulpritMessages, SeizeNamesTheTracerAlreadyAttached) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(t.pid(), 0) << t.error();
  ASSERT_EQ(::ptrace(PTRACE_SEIZE, t.pid(), nullptr, nullptr), 0) << strerror(errno);
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  note("traced", d.err);
  EXPECT_EQ(d.status.code, 1) << d.describe();
  EXPECT_NE(d.err.find("already traced by pid " + std::to_string(::getpid())), std::string::npos)
      << d.err;
  // A seized tracee detaches only from a stop.
  ASSERT_EQ(::ptrace(PTRACE_INTERRUPT, t.pid(), nullptr, nullptr), 0) << strerror(errno);
  int st = 0;
  ASSERT_EQ(::waitpid(t.pid(), &st, __WALL), t.pid()) << strerror(errno);
  ASSERT_EQ(::ptrace(PTRACE_DETACH, t.pid(), nullptr, nullptr), 0) << strerror(errno);
  expect_intact(t);
}

TEST(CulpritMessages, PidInUseNamesTheHolder) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d =
      run_tool(dir, "crdump", {"--leave-running", "-o", dir.path("img"), std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  note("pid in use", r.err);
  EXPECT_EQ(r.status.code, 1) << r.describe();
  EXPECT_NE(r.err.find("is in use by 'counter_loop' (alive"), std::string::npos) << r.err;
  expect_intact(t);
}

}  // namespace
}  // namespace cr::e2e
