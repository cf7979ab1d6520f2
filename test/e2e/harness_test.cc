// Checks of the harness itself (no crdump/crrestore needed): readiness, fd plumbing, the
// work-dir snapshot used on the leave-running path.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

TEST(Harness, ReadyOnExecForPlainPrograms) {
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/sleep", "1000"}, Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  ExitStatus st = t.terminate();
  EXPECT_FALSE(st.exited);
  EXPECT_EQ(st.code, SIGTERM);
}

TEST(Harness, ExecFailureIsReported) {
  TempDir dir;
  Target t = Target::start(dir, {dir.path("no-such-program")});
  EXPECT_EQ(t.pid(), -1);
  EXPECT_NE(t.error().find("cannot start " + dir.path("no-such-program") + ": No such file"),
            std::string::npos)
      << t.error();
}

TEST(Harness, ProgramGetsExactlyItsFds) {
  TempDir dir;
  // The ready pipe is fd 3; nothing else beyond 0-2 (the script closes 3 as its "ready").
  Target t = Target::start(dir, {"/usr/bin/bash", "-c",
                                 "trap 'exit 0' TERM; ls /proc/$$/fd > fds; exec 3>&-; "
                                 "while :; do :; done"});
  ASSERT_GT(t.pid(), 0) << t.error();
  EXPECT_TRUE(t.terminate().ok()) << t.log();
  EXPECT_EQ(read_file(dir.work() + "/fds"), "0\n1\n2\n3\n");
}

TEST(Harness, ClosedStdoutStaysClosed) {
  TempDir dir;
  SpawnSpec s;
  s.argv = {"/usr/bin/bash", "-c", "[ -e /proc/$$/fd/1 ] && exit 3; exit 0"};
  s.stdout_fd = -2;
  pid_t pid = spawn(s);
  ASSERT_GT(pid, 0);
  auto st = wait_exit(pid, std::chrono::seconds(10));
  ASSERT_TRUE(st);
  EXPECT_TRUE(st->ok()) << st->describe();
}

TEST(Harness, WorkSnapshotKeepsInodesAndDropsNewFiles) {
  TempDir dir;
  write_file(dir.work() + "/a", "before");
  const struct timespec old_times[2] = {{0, UTIME_OMIT}, {1000000, 42}};
  ASSERT_EQ(utimensat(AT_FDCWD, (dir.work() + "/a").c_str(), old_times, 0), 0);
  struct stat st0, st1;
  ASSERT_EQ(stat((dir.work() + "/a").c_str(), &st0), 0);
  dir.snapshot_work();
  write_file(dir.work() + "/a", "after, longer");
  write_file(dir.work() + "/b", "new");
  dir.restore_work();
  EXPECT_EQ(read_file(dir.work() + "/a"), "before");
  ASSERT_EQ(stat((dir.work() + "/a").c_str(), &st1), 0);
  EXPECT_EQ(st0.st_ino, st1.st_ino);
  EXPECT_EQ(st1.st_mtim.tv_sec, 1000000);
  EXPECT_EQ(st1.st_mtim.tv_nsec, 42);
  EXPECT_NE(access((dir.work() + "/b").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace cr::e2e
