// Failure paths: crdump whose output goes nowhere, a target that dies mid-dump, restoring onto
// a pid in use, and damaged images. Each must fail with one line on stderr, exit 1, and leave
// nothing behind (the target intact for crdump, no process for crrestore).
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "e2e_common.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

// A program whose image cannot fit in any pipe buffer (pipe-max-size is 1 MiB).
std::vector<std::string> mem_anon(int mib) { return {zdtm_path("mem_anon"), std::to_string(mib)}; }

// Shows the tool's message in the test output: the wording is part of what is reviewed.
void note(const std::string& what, const std::string& err) {
  std::cout << "  [" << what << "] " << err;
}

void expect_intact(Target& t) {
  ASSERT_TRUE(pid_exists(t.pid())) << "target gone";
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << "target after the failed dump: " << st.describe() << "\nlog: " << t.log();
}

TEST(CrdumpFailure, StdoutClosed) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, mem_anon(8));
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump", {std::to_string(t.pid())}, -1, /*out_fd=*/-2);
  note("stdout closed", d.err);
  EXPECT_TRUE(d.status.exited && d.status.code == 1) << d.describe();
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;
  expect_intact(t);
}

TEST(CrdumpFailure, ReaderExitsMidStream) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, mem_anon(8));
  ASSERT_GT(t.pid(), 0) << t.error();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t dumper = start_tool(dir, "crdump", {std::to_string(t.pid())}, -1, p[1], "crdump.err");
  close(p[1]);
  ASSERT_GT(dumper, 0);
  // Read the first 4 KiB, then go away like a reader that exits: crdump gets EPIPE.
  char buf[4096];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = read(p[0], buf + got, sizeof(buf) - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(p[0]);
  EXPECT_EQ(got, sizeof(buf)) << "crdump wrote less than 4 KiB";
  auto st = wait_exit(dumper, std::chrono::seconds(60));
  ASSERT_TRUE(st) << "crdump hangs after its reader went away";
  std::string err = read_file(dir.path("crdump.err"));
  note("reader gone", err);
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << " (SIGPIPE = 13), stderr: " << err;
  EXPECT_TRUE((ToolRun{*st, err}).one_line_error("crdump")) << err;
  expect_intact(t);
}

TEST(CrdumpFailure, TargetKilledWhileWriterBlocked) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, mem_anon(64));
  ASSERT_GT(t.pid(), 0) << t.error();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t dumper = start_tool(dir, "crdump", {std::to_string(t.pid())}, -1, p[1], "crdump.err");
  close(p[1]);
  ASSERT_GT(dumper, 0);
  // Wait for the first bytes, then for the pipe to fill up: crdump is blocked writing.
  pollfd pfd{p[0], POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 60000), 1) << "crdump wrote nothing";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int queued = 0, cap = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    cap = fcntl(p[0], F_GETPIPE_SZ);
    if (ioctl(p[0], FIONREAD, &queued) == 0 && queued >= cap) break;
    siginfo_t si{};
    if (waitid(P_PID, static_cast<id_t>(dumper), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid)
      break;  // crdump finished (or failed) without blocking
    sched_yield();
  }
  EXPECT_GE(queued, cap) << "pipe never filled";
  const pid_t target = t.pid();
  kill(target, SIGKILL);
  // Keep what crdump writes: the image so far (the part already in the pipe included).
  const std::string img = dir.path("img");
  int keep = open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(keep, 0);
  char buf[65536];
  size_t drained = 0;
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) {
    ASSERT_EQ(write(keep, buf, static_cast<size_t>(n)), n);
    drained += static_cast<size_t>(n);
  }
  close(keep);
  close(p[0]);
  auto st = wait_exit(dumper, std::chrono::seconds(60));
  ASSERT_TRUE(st) << "crdump hangs after the target died";
  std::string err = read_file(dir.path("crdump.err"));
  note("target killed", err);
  if (st->exited && st->code == 0) {
    // The killed task had not reached exit_mm before crdump read its last page (it waits for
    // a CPU): every page was read from the frozen task, so the image is a consistent, complete
    // snapshot. It must then check as complete.
    note("target killed", "died after its last page was read: the dump is complete");
    crit_check(dir, img);
  } else {
    EXPECT_TRUE(st->exited && st->code == 1)
        << st->describe() << " after " << drained << " more bytes, stderr: " << err;
    EXPECT_TRUE((ToolRun{*st, err}).one_line_error("crdump")) << err;
  }
  ExitStatus ts = t.wait(std::chrono::seconds(10));
  EXPECT_FALSE(ts.exited) << "target: " << ts.describe();
}

TEST(CrdumpFailure, NoSuchProcess) {
  if (!tools_present()) return;
  TempDir dir;
  // A pid that surely does not exist: a child of ours, already reaped.
  SpawnSpec s;
  s.argv = {"/usr/bin/true"};
  pid_t gone = spawn(s);
  ASSERT_GT(gone, 0);
  ASSERT_TRUE(wait_exit(gone, std::chrono::seconds(10)));
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(gone)});
  note("no such pid", d.err);
  EXPECT_TRUE(d.status.exited && d.status.code == 1) << d.describe();
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;
}

// Every tool says its name and version; a PID that is not one gets one line saying so.
TEST(ToolsCli, VersionAndPidArgument) {
  if (!tools_present()) return;
  TempDir dir;
  for (const char* tool : {"crdump", "crrestore", "crit", "crconvert"}) {
    if (!tool_exists(tool)) continue;
    const std::string out = dir.path(std::string(tool) + ".version");
    ToolRun r = run_tool_to_file(dir, tool, {"--version"}, out);
    EXPECT_TRUE(r.status.ok()) << tool << ": " << r.describe();
    EXPECT_EQ(read_file(out).rfind(std::string(tool) + " ", 0), 0u) << read_file(out);
    // The usage line names the program.
    const std::string help = dir.path(std::string(tool) + ".help");
    ToolRun h = run_tool_to_file(dir, tool, {"--help"}, help);
    EXPECT_TRUE(h.status.ok()) << tool << ": " << h.describe();
    EXPECT_NE(read_file(help).find(std::string("Usage: ") + tool + " "), std::string::npos)
        << read_file(help);
  }
  for (const char* bad : {"abc", "0", "-5", "12x", "99999999999"}) {
    ToolRun r = run_tool(dir, "crdump", {"-o", dir.path("img"), "--", bad});
    EXPECT_EQ(r.status.code, 1) << bad << ": " << r.describe();
    EXPECT_TRUE(r.one_line_error("crdump")) << r.err;
    EXPECT_NE(r.err.find(std::string("'") + bad + "' is not a process id"), std::string::npos)
        << r.err;
  }
}

// `crrestore -d` prints the restored root's pid on stdout (for pid=$(crrestore -d ...)); -q is
// taken (it hides warnings).
TEST(ToolsCli, DetachedRestorePrintsThePid) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, mem_anon(1));
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  const std::string out = dir.path("stdout");
  ToolRun r = run_tool_to_file(dir, "crrestore", {"-d", "-q", "-i", dir.path("img")}, out);
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(read_file(out), std::to_string(pid) + "\n");
  ExitStatus st = terminate_pid(pid);
  EXPECT_TRUE(st.ok()) << st.describe();
}

TEST(CrrestoreFailure, TruncatedZstdImage) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, mem_anon(8));
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img.zst"), {"-z"}));
  std::string img = read_file(dir.path("img.zst"));
  write_file(dir.path("bad.zst"), img.substr(0, img.size() / 2));
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("bad.zst")});
  note("cut zstd", r.err);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  reap_zombies();
  EXPECT_FALSE(pid_exists(pid)) << "pid " << pid << " left behind";
  kill_child(pid);
  ASSERT_TRUE(restore_detached(dir, dir.path("img.zst"), pid));
  expect_restored_passes(dir, pid);
}

TEST(CrrestoreFailure, PidInUse) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("pid_ids"), "arg1", "arg2"});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d =
      run_tool(dir, "crdump", {"--leave-running", "-o", dir.path("img"), std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  note("pid in use", r.err);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("in use"), std::string::npos) << r.err;
  expect_intact(t);
}

// A pty pair's index held by another process (here the original, left running): crrestore
// says so in one line before it creates any process, and the original is undisturbed.
TEST(CrrestoreFailure, PtyIndexInUse) {
  if (!tools_present()) return;
  test::DevptsLock devpts;  // other tests' ptys must not move between dump and restore
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("pty_pair")});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d =
      run_tool(dir, "crdump", {"--leave-running", "-o", dir.path("img"), std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  note("pty index in use", r.err);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("pty /dev/pts/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is in use"), std::string::npos) << r.err;
  expect_intact(t);
}

// Damaged images: the dump of an 8 MiB program, cut or with one byte flipped.
class CrrestoreDamaged : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!tools_present()) GTEST_FAIL() << "tools missing";
    Target t = Target::start(dir_, mem_anon(8));
    ASSERT_GT(t.pid(), 0) << t.error();
    pid_ = t.pid();
    ASSERT_TRUE(dump_target(dir_, t, Mode::kKill, dir_.path("img")));
    image_ = read_file(dir_.path("img"));
    ASSERT_GT(image_.size(), 8u << 20);
  }

  // Restoring `bad` fails cleanly; then the intact image still restores and passes, which shows
  // the failure came from the damage.
  void expect_refused(const std::string& bad, const std::string& what) {
    write_file(dir_.path("bad"), bad);
    ToolRun r = run_tool(dir_, "crrestore", {"-d", "-i", dir_.path("bad")});
    note(what, r.err);
    EXPECT_TRUE(r.status.exited && r.status.code == 1) << what << ": " << r.describe();
    EXPECT_TRUE(r.one_line_error("crrestore")) << what << ": " << r.err;
    reap_zombies();
    if (pid_exists(pid_)) {
      ADD_FAILURE() << what << ": pid " << pid_ << " left behind";
      kill_child(pid_);
    }
    ASSERT_TRUE(restore_detached(dir_, dir_.path("img"), pid_));
    expect_restored_passes(dir_, pid_);
  }

  TempDir dir_;
  pid_t pid_ = -1;
  std::string image_;
};

TEST_F(CrrestoreDamaged, ByteFlippedInTheMiddle) {
  std::string bad = image_;
  bad[bad.size() / 2] ^= 0x5a;
  expect_refused(bad, "flipped byte at " + std::to_string(bad.size() / 2));
}

TEST_F(CrrestoreDamaged, TruncatedToHalf) {
  expect_refused(image_.substr(0, image_.size() / 2), "half image");
}

TEST_F(CrrestoreDamaged, LastByteCut) {
  expect_refused(image_.substr(0, image_.size() - 1), "last byte cut");
}

TEST_F(CrrestoreDamaged, Empty) { expect_refused("", "empty image"); }

TEST_F(CrrestoreDamaged, NotAnImage) { expect_refused(read_file("/etc/passwd"), "/etc/passwd"); }

}  // namespace
}  // namespace cr::e2e

namespace cr::e2e {
namespace {

// Issue 11: a dump that succeeded reported failure when, after crdump had killed the tree, a
// zombie of it was reaped by its new parent (init, or a subreaper) before crdump's kill reached
// it (ESRCH). Here that parent is a subreaper that reaps at once: the tree's root has a child
// holding many zombies, which go to the reaper as soon as their parent dies, while crdump is
// still killing them one by one. crdump must exit 0 with nothing on stderr.
TEST(CrdumpKill, ZombiesReapedByTheirNewParentMeanwhile) {
  if (!tools_present()) return;
  TempDir dir;
  int to_test[2];
  ASSERT_EQ(::pipe(to_test), 0);
  const pid_t reaper = ::fork();
  ASSERT_GE(reaper, 0);
  if (reaper == 0) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    // The tree holds nothing of ours: /dev/null as 0-2, nothing else once it is ready.
    const int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
    ::dup2(to_test[1], 3);
    ::close_range(4, ~0u, 0);
    int ready[2];
    if (::pipe(ready) != 0) ::_exit(2);
    const pid_t root = ::fork();
    if (root == 0) {
      ::close(3);
      ::close(ready[0]);
      if (::fork() == 0) {  // the zombies' parent
        for (int i = 0; i < 300; ++i) {
          pid_t z = ::fork();
          if (z == 0) ::_exit(0);
          siginfo_t si;
          if (z < 0 || ::waitid(P_PID, static_cast<id_t>(z), &si, WEXITED | WNOWAIT) != 0)
            ::_exit(3);
        }
        ::close(ready[1]);
        for (;;) ::pause();
      }
      ::close(ready[1]);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c;
    (void)!::read(ready[0], &c, 1);  // EOF: both closed their ends
    (void)!::write(3, &root, sizeof root);
    ::close(3);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
    ::_exit(0);
  }
  ::close(to_test[1]);
  pid_t root = 0;
  ASSERT_EQ(::read(to_test[0], &root, sizeof root), static_cast<ssize_t>(sizeof root));
  ::close(to_test[0]);
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(root)});
  EXPECT_TRUE(d.status.exited && d.status.code == 0) << d.describe();
  EXPECT_EQ(d.err, "");
  int st = 0;
  ASSERT_EQ(::waitpid(reaper, &st, 0), reaper);  // it exits once the whole tree is reaped
}

}  // namespace
}  // namespace cr::e2e
