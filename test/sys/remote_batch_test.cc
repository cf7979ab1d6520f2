// Live tests of remote batches on a forked child: many calls for one resume, results feeding
// later calls, the stop at the first failure, the area filling up, single calls after.
#include "sys/remote_batch.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

asm(R"(
  .text
  .globl cr_batch_test_syscall
cr_batch_test_syscall:
  syscall
  ret
)");
extern "C" char cr_batch_test_syscall[];

namespace cr::sys {
namespace {

void trap_handler(int) {}

struct Child {
  pid_t pid = -1;
  Tracee tracee;
  std::optional<RemoteSyscalls> rs;
  uint64_t page = 0;  // rwx: the loop at its start, then the area

  void start() {
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::signal(SIGTRAP, trap_handler);  // a batch's int3 must leave it alone
      Tracee::traceme_and_stop();
      ::_exit(0);
    }
    auto t = Tracee::adopt_stopped_child(pid, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    ASSERT_TRUE(t.ok()) << t.error().message;
    tracee = std::move(t).value();
    auto r = RemoteSyscalls::create(tracee, reinterpret_cast<uint64_t>(cr_batch_test_syscall));
    ASSERT_TRUE(r.ok()) << r.error().message;
    rs.emplace(std::move(r).value());
    auto m = rs->call("mmap", SYS_mmap, 0, 4 * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS, ~uint64_t{0}, 0);
    ASSERT_TRUE(m.ok()) << m.error().message;
    page = *m;
    auto code = batch_code();
    ASSERT_TRUE(tracee.write_mem(page, code.data(), code.size()).ok());
  }
  RemoteBatch batch(uint64_t area_size = 3 * 4096) {
    return RemoteBatch(*rs, page, page + 4096, area_size);
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, __WALL);
    }
  }
};

TEST(RemoteBatch, RunsEveryCallForOneResume) {
  Child c;
  ASSERT_NO_FATAL_FAILURE(c.start());
  RemoteBatch b = c.batch();
  const uint64_t before = Tracee::resumes();
  ASSERT_TRUE(b.add("getpid", SYS_getpid, {}).ok());
  ASSERT_TRUE(
      b.add("mmap", SYS_mmap, {0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, ~uint64_t{0}, 0})
          .ok());
  ASSERT_TRUE(b.add("getppid", SYS_getppid, {}).ok());
  auto st = b.run();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(Tracee::resumes() - before, 1u);
  EXPECT_EQ(b.result(0), c.pid);
  EXPECT_GT(b.result(1), 0);
  EXPECT_EQ(b.result(2), ::getpid());
  // Single calls go on as before, with SIGTRAP blocked again.
  auto pid = c.rs->call("getpid", SYS_getpid);
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  EXPECT_EQ(*pid, static_cast<uint64_t>(c.pid));
  auto mask = c.tracee.get_sigmask();
  ASSERT_TRUE(mask.ok());
  EXPECT_NE(*mask & (uint64_t{1} << (SIGTRAP - 1)), 0u);
  // The int3 left the task's SIGTRAP handler in place.
  auto sa = c.rs->call("rt_sigaction", SYS_rt_sigaction, SIGTRAP, 0, c.page + 4096, 8);
  ASSERT_TRUE(sa.ok()) << sa.error().message;
  uint64_t handler = 0;
  ASSERT_TRUE(c.tracee.read_mem(c.page + 4096, &handler, sizeof handler).ok());
  EXPECT_EQ(handler, reinterpret_cast<uint64_t>(&trap_handler));
  ASSERT_TRUE(c.rs->finish().ok());
}

TEST(RemoteBatch, AResultFeedsLaterCalls) {
  Child c;
  ASSERT_NO_FATAL_FAILURE(c.start());
  RemoteBatch b = c.batch();
  ASSERT_TRUE(b.reserve(3, 16).ok());
  auto path = b.put_str("/dev/null");
  ASSERT_TRUE(path.ok());
  auto open = b.add("open", SYS_openat,
                    {static_cast<uint64_t>(AT_FDCWD), *path, O_RDONLY | O_CLOEXEC, 0, 0, 0});
  ASSERT_TRUE(open.ok());
  auto getfd = b.add("fcntl", SYS_fcntl, {0, F_GETFD, 0, 0, 0, 0});
  ASSERT_TRUE(getfd.ok());
  ASSERT_TRUE(b.use_result(*getfd, 0, *open).ok());
  auto close = b.add("close", SYS_close, {});
  ASSERT_TRUE(b.use_result(*close, 0, *open).ok());
  auto st = b.run();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_GE(b.result(*open), 0);
  EXPECT_EQ(b.result(*getfd), FD_CLOEXEC);
  EXPECT_EQ(b.result(*close), 0);
}

TEST(RemoteBatch, StopsAtTheFirstFailureUnlessItMayFail) {
  Child c;
  ASSERT_NO_FATAL_FAILURE(c.start());
  RemoteBatch b = c.batch();
  ASSERT_TRUE(b.add("close", SYS_close, {~uint64_t{0}}, {}, RemoteBatch::kMayFail).ok());
  ASSERT_TRUE(b.add("getpid", SYS_getpid, {}).ok());
  ASSERT_TRUE(b.add("close", SYS_close, {~uint64_t{0}}, "fd -1").ok());
  ASSERT_TRUE(b.add("getppid", SYS_getppid, {}).ok());
  auto st = b.run();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, EBADF);
  EXPECT_NE(st.error().message.find("fd -1: remote close in task"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(b.result(0), -EBADF);
  EXPECT_EQ(b.result(1), c.pid);
  EXPECT_EQ(b.size(), 3u);  // the last call never ran
  // The task is still ours to drive.
  auto pid = c.rs->call("getpid", SYS_getpid);
  ASSERT_TRUE(pid.ok()) << pid.error().message;
}

TEST(RemoteBatch, RunsWhatIsQueuedWhenTheAreaIsFull) {
  Child c;
  ASSERT_NO_FATAL_FAILURE(c.start());
  RemoteBatch b = c.batch(4 * RemoteBatch::kEntrySize + 32);
  ASSERT_TRUE(b.reserve(1, 16).ok());
  auto path = b.put_str("/dev/null");
  ASSERT_TRUE(path.ok());
  auto open = b.add("open", SYS_openat,
                    {static_cast<uint64_t>(AT_FDCWD), *path, O_RDONLY | O_CLOEXEC, 0, 0, 0});
  ASSERT_TRUE(open.ok());
  const uint64_t before = Tracee::resumes();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(b.reserve(1, 0).ok());
    auto f = b.add("fcntl", SYS_fcntl, {0, F_GETFD, 0, 0, 0, 0});
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(b.use_result(*f, 0, *open).ok());  // across runs too
  }
  auto st = b.run();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_GE(Tracee::resumes() - before, 3u);
  for (size_t i = 1; i <= 10; ++i) EXPECT_EQ(b.result(i), FD_CLOEXEC) << i;
  EXPECT_FALSE(b.reserve(5, 0).ok());
}

}  // namespace
}  // namespace cr::sys
