// Unmodified Debian programs (bash, python3, sleep) dumped and restored, and the zstd pipelines
// around the tools (external zstd both ways, crdump -z, and a second dump of a restored task).
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

const Mode kModes[] = {Mode::kKill, Mode::kLeaveRunning};  // kTwice: see zdtm_test.cc

std::string fd_listing(pid_t pid) {
  std::string out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 256; fd++) {
    char link[512];
    std::string p = dir + "/" + std::to_string(fd);
    ssize_t n = readlink(p.c_str(), link, sizeof(link) - 1);
    if (n > 0) out += std::to_string(fd) + " -> " + std::string(link, static_cast<size_t>(n)) + "\n";
  }
  return out;
}

// bash counts with builtins only (no child) and writes the count when done. It is dumped
// mid-way; the restored bash, run in the foreground by crrestore, finishes with the right count.
TEST(RealPrograms, BashCountingLoop) {
  if (!tools_present()) return;
  const std::string want = "400000 1200000\n";
  const std::string script =
      "exec 3>&-; i=0; k=0; while [ $i -lt 400000 ]; do i=$((i+1)); k=$((k+3)); done; "
      "echo \"$i $k\" > count";
  for (Mode mode : kModes) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/bash", "-c", script});
    ASSERT_GT(t.pid(), 0) << t.error();
    std::string fds = fd_listing(t.pid());
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) {
      ADD_FAILURE() << "bash fds at dump time:\n" << fds;
      continue;
    }
    ASSERT_NE(access((dir.work() + "/count").c_str(), F_OK), 0)
        << "the loop finished before the dump did: make it longer";
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (bash's exit status): " << r.describe()
                               << "\nlog: " << read_file(dir.work() + "/log");
    EXPECT_EQ(read_file(dir.work() + "/count"), want);
  }
}

// python3 holds a dict and a file at an offset and waits for SIGTERM (sigwait: no window
// between a flag check and pause()); on SIGTERM it checks both and exits 0.
TEST(RealPrograms, PythonDictAndFile) {
  if (!tools_present()) return;
  const std::string script = R"(
import os, signal, sys
d = {i: str(i) * 3 for i in range(10000)}
f = open('pydata', 'w+')
f.write('0123456789' * 1000)
f.flush()
f.seek(1234)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.close(3)
signal.sigwait([signal.SIGTERM])
ok = len(d) == 10000 and all(d[i] == str(i) * 3 for i in range(10000))
pos = f.tell()
data = f.read(6)
if ok and pos == 1234 and data == '456789':
    print('PASS', file=sys.stderr)
    sys.exit(0)
print('FAIL: dict ok=%s offset=%d read=%r' % (ok, pos, data), file=sys.stderr)
sys.exit(1)
)";
  for (Mode mode : kModes) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    std::string fds = fd_listing(pid);
    if (!dump_target(dir, t, mode, dir.path("img"))) {
      ADD_FAILURE() << "python3 fds at dump time:\n" << fds;
      continue;
    }
    if (!restore_detached(dir, dir.path("img"), pid)) continue;
    expect_restored_passes(dir, pid);
  }
}

// `sleep 2` (ready = exec done): dumped, restored in the foreground, exits 0.
TEST(RealPrograms, Sleep2) {
  if (!tools_present()) return;
  for (Mode mode : kModes) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/sleep", "2"}, Target::Ready::kOnExec);
    ASSERT_GT(t.pid(), 0) << t.error();
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) continue;
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (sleep's exit status): " << r.describe();
  }
}

// Foreground crrestore exits with the restored process's own exit status, not just 0/1.
TEST(RealPrograms, ForegroundRestorePassesExitStatusOn) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(
      dir, {"/usr/bin/bash", "-c", "exec 3>&-; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 42"});
  ASSERT_GT(t.pid(), 0) << t.error();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
  EXPECT_TRUE(r.status.exited && r.status.code == 42) << "want bash's exit 42: " << r.describe();
}

// crdump | zstd > a.zst; crrestore -d -i a.zst (crrestore reads zstd itself); then the restored
// task is dumped again with crdump -z and restored through zstd -dc | crrestore -d.
TEST(Pipelines, ZstdBothWaysAndRedump) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "8"});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int zst = open(dir.path("a.zst").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t dumper = start_tool(dir, "crdump", {"--leave-running", std::to_string(pid)}, -1, p[1], "crdump.err");
  SpawnSpec z;
  z.argv = {"/usr/bin/zstd", "-q", "-c"};
  z.stdin_fd = p[0];
  z.stdout_fd = zst;
  pid_t zstd = spawn(z);
  close(p[0]);
  close(p[1]);
  close(zst);
  auto ds = wait_exit(dumper, std::chrono::seconds(60));
  auto zs = wait_exit(zstd, std::chrono::seconds(60));
  ASSERT_TRUE(ds && ds->ok()) << "crdump | zstd: crdump " << (ds ? ds->describe() : "hung") << ", "
                              << read_file(dir.path("crdump.err"));
  ASSERT_TRUE(zs && zs->ok()) << "zstd " << (zs ? zs->describe() : "hung");
  dir.snapshot_work();
  ExitStatus orig = t.terminate();
  ASSERT_TRUE(orig.ok()) << "original: " << orig.describe() << "\nlog: " << t.log();
  dir.restore_work();

  ASSERT_TRUE(restore_detached(dir, dir.path("a.zst"), pid)) << "crrestore reading a .zst file";
  // Second generation: dump the restored task itself, compressed by crdump.
  ToolRun d2 = run_tool(dir, "crdump", {"-z", "-o", dir.path("b.zst"), std::to_string(pid)});
  if (!d2.status.ok()) {
    kill_child(pid);
    FAIL() << "crdump -z of the restored task: " << d2.describe();
  }
  auto killed = wait_exit(pid, std::chrono::seconds(10));
  ASSERT_TRUE(killed && !killed->exited && killed->code == SIGKILL)
      << "restored task after crdump: " << (killed ? killed->describe() : "still running");
  int q[2];
  ASSERT_EQ(pipe2(q, O_CLOEXEC), 0);
  int in = open(dir.path("b.zst").c_str(), O_RDONLY | O_CLOEXEC);
  SpawnSpec unz;
  unz.argv = {"/usr/bin/zstd", "-q", "-d", "-c"};
  unz.stdin_fd = in;
  unz.stdout_fd = q[1];
  pid_t unzstd = spawn(unz);
  close(q[1]);
  close(in);
  pid_t restorer = start_tool(dir, "crrestore", {"-d"}, q[0], -1, "crrestore.err");
  close(q[0]);
  auto us = wait_exit(unzstd, std::chrono::seconds(60));
  auto rs = wait_exit(restorer, std::chrono::seconds(60));
  EXPECT_TRUE(us && us->ok()) << "zstd -dc: " << (us ? us->describe() : "hung");
  ASSERT_TRUE(rs && rs->ok()) << "zstd -dc | crrestore -d: " << (rs ? rs->describe() : "hung")
                              << ", " << read_file(dir.path("crrestore.err"));
  expect_restored_passes(dir, pid);
}

}  // namespace
}  // namespace cr::e2e
