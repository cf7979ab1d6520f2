#include "sys/file_locks.h"

#include <gtest/gtest.h>

namespace cr::sys {
namespace {

// As this kernel (6.18) printed them for flock, lockf, an OFD lock, a lease and a waiter.
constexpr std::string_view kProcLocks =
    "1: LEASE  ACTIVE    READ 11855 fe:00:10953499 0 EOF\n"
    "2: OFDLCK ADVISORY  READ -1 fe:00:10953498 3 9\n"
    "3: POSIX  ADVISORY  READ 11855 fe:00:10953497 100 EOF\n"
    "4: POSIX  ADVISORY  WRITE 11855 fe:00:10953497 5 14\n"
    "4: -> POSIX  ADVISORY  WRITE 11860 fe:00:10953497 0 EOF\n"
    "5: FLOCK  ADVISORY  WRITE 11855 fe:00:10953496 0 EOF\n";

TEST(FileLocks, ProcLocks) {
  auto r = parse_proc_locks(kProcLocks);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 6u);
  const LockLine& lease = (*r)[0];
  EXPECT_EQ(lease.kind, "LEASE");
  EXPECT_EQ(lease.mode, "ACTIVE");
  EXPECT_EQ(lease.type, "READ");
  EXPECT_EQ(lease.pid, 11855);
  EXPECT_EQ(lease.dev, "fe:00");
  EXPECT_EQ(lease.ino, 10953499u);
  EXPECT_EQ(lease.start, 0u);
  EXPECT_EQ(lease.end, LockLine::kToEof);
  const LockLine& ofd = (*r)[1];
  EXPECT_EQ(ofd.kind, "OFDLCK");
  EXPECT_EQ(ofd.pid, -1);
  EXPECT_EQ(ofd.start, 3u);
  EXPECT_EQ(ofd.end, 9u);
  EXPECT_FALSE((*r)[3].blocked);
  EXPECT_EQ((*r)[3].type, "WRITE");
  const LockLine& waiter = (*r)[4];
  EXPECT_TRUE(waiter.blocked);
  EXPECT_EQ(waiter.kind, "POSIX");
  EXPECT_EQ(waiter.pid, 11860);
  EXPECT_EQ((*r)[5].kind, "FLOCK");
  EXPECT_EQ((*r)[3].text(), "POSIX ADVISORY WRITE 11855 fe:00:10953497 5 14");
}

TEST(FileLocks, FdinfoLockLines) {
  constexpr std::string_view kFdinfo =
      "pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t10953497\n"
      "lock:\t1: POSIX  ADVISORY  WRITE 11855 fe:00:10953497 5 14\n"
      "lock:\t2: POSIX  ADVISORY  READ 11855 fe:00:10953497 100 EOF\n";
  auto r = parse_fdinfo_locks(kFdinfo);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].start, 5u);
  EXPECT_EQ((*r)[0].end, 14u);
  EXPECT_EQ((*r)[1].type, "READ");
  EXPECT_EQ((*r)[1].end, LockLine::kToEof);
  auto none = parse_fdinfo_locks("pos:\t0\nflags:\t02\n");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(FileLocks, BrokenLinesAreErrors) {
  EXPECT_FALSE(parse_lock_line("1: POSIX ADVISORY WRITE x fe:00:1 0 EOF").ok());
  EXPECT_FALSE(parse_lock_line("1: POSIX ADVISORY WRITE 5 fe:00:1 0").ok());
  EXPECT_FALSE(parse_lock_line("POSIX ADVISORY WRITE 5 fe:00:1 0 EOF").ok());
  EXPECT_FALSE(parse_lock_line("1: POSIX ADVISORY WRITE 5 nodev 0 EOF").ok());
  auto breaking = parse_lock_line("1: LEASE  BREAKING  UNLCK 7 fe:00:12 0 EOF");
  ASSERT_TRUE(breaking.ok());
  EXPECT_EQ(breaking->mode, "BREAKING");
  EXPECT_EQ(breaking->type, "UNLCK");
}

}  // namespace
}  // namespace cr::sys
