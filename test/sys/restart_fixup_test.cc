// sys::restart_fixup on canned registers: what a task stopped inside a system call gets back.
#include <errno.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <sys/user.h>

#include "sys/tracee.h"

namespace cr::sys {
namespace {

constexpr uint64_t kRip = 0x401002;  // just after a 2-byte `syscall` at 0x401000

user_regs_struct stopped_in(long nr, long rax) {
  user_regs_struct r{};
  r.orig_rax = static_cast<uint64_t>(nr);
  r.rax = static_cast<uint64_t>(rax);
  r.rip = kRip;
  return r;
}

TEST(RestartFixup, RestartCodesRerunTheCall) {
  for (long code : {512L, 513L, 514L}) {  // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
    user_regs_struct r = stopped_in(SYS_read, -code);
    EXPECT_FALSE(restart_fixup(r).empty());
    EXPECT_EQ(r.rax, static_cast<uint64_t>(SYS_read));
    EXPECT_EQ(r.rip, kRip - 2);
  }
}

TEST(RestartFixup, NanosleepResumesFromRem) {
  user_regs_struct r = stopped_in(SYS_nanosleep, -516);  // ERESTART_RESTARTBLOCK
  r.rdi = 0x1000;  // req
  r.rsi = 0x2000;  // rem, written by the kernel when interrupted
  restart_fixup(r);
  EXPECT_EQ(r.rdi, 0x2000u);
  EXPECT_EQ(r.rax, static_cast<uint64_t>(SYS_nanosleep));
  EXPECT_EQ(r.rip, kRip - 2);
}

TEST(RestartFixup, NanosleepWithoutRemStartsOverInsteadOfEintr) {
  user_regs_struct r = stopped_in(SYS_nanosleep, -516);
  r.rdi = 0x1000;
  r.rsi = 0;
  restart_fixup(r);
  EXPECT_EQ(r.rdi, 0x1000u);
  EXPECT_EQ(r.rax, static_cast<uint64_t>(SYS_nanosleep)) << "not -EINTR";
  EXPECT_EQ(r.rip, kRip - 2);
}

TEST(RestartFixup, ClockNanosleepResumesFromRem) {
  user_regs_struct r = stopped_in(SYS_clock_nanosleep, -516);
  r.rdx = 0x1000;
  r.r10 = 0x3000;
  restart_fixup(r);
  EXPECT_EQ(r.rdx, 0x3000u);
  EXPECT_EQ(r.rip, kRip - 2);
}

TEST(RestartFixup, FinishedCallsAndNonSyscallStopsAreLeftAlone) {
  user_regs_struct done = stopped_in(SYS_read, 5);
  EXPECT_TRUE(restart_fixup(done).empty());
  EXPECT_EQ(done.rax, 5u);
  EXPECT_EQ(done.rip, kRip);
  user_regs_struct err = stopped_in(SYS_read, -EINTR);
  EXPECT_TRUE(restart_fixup(err).empty());
  user_regs_struct user = stopped_in(-1, -512);  // not in a syscall: orig_rax < 0
  EXPECT_TRUE(restart_fixup(user).empty());
  EXPECT_EQ(user.rip, kRip);
}

TEST(RestartFixup, EpollWaitEndedWithEintrWaitsAgain) {
  for (long nr : {long{SYS_epoll_wait}, long{SYS_epoll_pwait}, 441L /* epoll_pwait2 */}) {
    user_regs_struct r = stopped_in(nr, -EINTR);
    r.rdi = 5;  // epfd, untouched
    EXPECT_TRUE(rerun_interrupted_epoll_wait(r)) << nr;
    EXPECT_EQ(r.rax, static_cast<uint64_t>(nr));
    EXPECT_EQ(r.rip, kRip - 2);
    EXPECT_EQ(r.rdi, 5u);
  }
}

TEST(RestartFixup, EpollRerunLeavesEverythingElse) {
  user_regs_struct got = stopped_in(SYS_epoll_wait, 2);  // returned two events
  EXPECT_FALSE(rerun_interrupted_epoll_wait(got));
  EXPECT_EQ(got.rax, 2u);
  EXPECT_EQ(got.rip, kRip);
  user_regs_struct read_eintr = stopped_in(SYS_read, -EINTR);  // not an epoll wait
  EXPECT_FALSE(rerun_interrupted_epoll_wait(read_eintr));
  EXPECT_EQ(read_eintr.rip, kRip);
  user_regs_struct user = stopped_in(-1, -EINTR);  // not in a syscall
  EXPECT_FALSE(rerun_interrupted_epoll_wait(user));
  // restart_fixup alone does not touch it: the kernel's own EINTR is the default.
  user_regs_struct plain = stopped_in(SYS_epoll_pwait, -EINTR);
  EXPECT_TRUE(restart_fixup(plain).empty());
  EXPECT_EQ(plain.rip, kRip);
}

}  // namespace
}  // namespace cr::sys
