// The /proc comparison of the zdtm suite (proc_snapshot.h), fed canned /proc text; and one
// live check that two snapshots of an idle process agree.
#include "proc_snapshot.h"

#include <gtest/gtest.h>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

TEST(ProcSnapshot, StatusKeepsStateDropsCounters) {
  Snapshot s;
  add_status(s, "7/",
             "Name:\tcat\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t0\t0\t0\t0\n"
             "VmHWM:\t  1000 kB\nVmSize:\t  5000 kB\nSigQ:\t1/3000\nSigBlk:\t0000000000004000\n"
             "voluntary_ctxt_switches:\t12\nNoNewPrivs:\t1\n");
  EXPECT_EQ(s["7/status/Umask"], "0022");
  EXPECT_EQ(s["7/status/State"], "running");
  EXPECT_EQ(s["7/status/Uid"], "0\t0\t0\t0");
  EXPECT_EQ(s["7/status/VmSize"], "5000 kB");
  EXPECT_EQ(s["7/status/SigBlk"], "0000000000004000");
  EXPECT_EQ(s["7/status/NoNewPrivs"], "1");
  EXPECT_FALSE(s.count("7/status/VmHWM"));
  EXPECT_FALSE(s.count("7/status/SigQ"));
  EXPECT_FALSE(s.count("7/status/voluntary_ctxt_switches"));

  Snapshot z;
  add_status(z, "8/", "State:\tZ (zombie)\n");
  EXPECT_EQ(z["8/status/State"], "Z (zombie)");
}

TEST(ProcSnapshot, StatCountsFieldsAfterTheLastParen) {
  // comm "a) (b": a parser splitting at the first ')' would shift every field.
  std::string text =
      "42 (a) (b) T 1 42 42 34816 42 4194304 100 0 0 0 5 6 0 0 20 0 1 0 999 "
      "1000 200 18446744073709551615 4194304 4196000 140000 0 0 0 0 0 0 0 0 0 "
      "17 1 0 0 0 0 0 6000 6100 7000 8000 8100 8200 8300 0\n";
  Snapshot s;
  add_stat(s, "42/", text);
  EXPECT_EQ(s["42/stat/state"], "T");
  EXPECT_EQ(s["42/stat/ppid"], "1");
  EXPECT_EQ(s["42/stat/pgrp"], "42");
  EXPECT_EQ(s["42/stat/tty_nr"], "34816");
  EXPECT_EQ(s["42/stat/flags/0x00400000"], "1");  // PF_RANDOMIZE, one entry per bit
  EXPECT_FALSE(s.count("42/stat/flags/0x00000040"));
  EXPECT_EQ(s["42/stat/priority"], "20");
  EXPECT_EQ(s["42/stat/num_threads"], "1");
  EXPECT_EQ(s["42/stat/exit_signal"], "17");
  EXPECT_EQ(s["42/stat/policy"], "0");
  EXPECT_EQ(s["42/stat/env_end"], "8300");
  EXPECT_EQ(s["42/stat/exit_code"], "0");
  // Times and fault counts are not state.
  for (auto& [k, v] : s) EXPECT_EQ(k.find("time"), std::string::npos) << k;
}

TEST(ProcSnapshot, KernelAssignedInodesBecomeOrdinals) {
  Canon c;
  EXPECT_EQ(canon_link("pipe:[5000]", c), "pipe:[#1]");
  EXPECT_EQ(canon_link("socket:[7000]", c), "socket:[#2]");
  EXPECT_EQ(canon_link("pipe:[5000]", c), "pipe:[#1]");  // the same pipe: the same name
  EXPECT_EQ(canon_link("anon_inode:[eventfd]", c), "anon_inode:[eventfd]");
  EXPECT_EQ(canon_link("/tmp/x [1]", c), "/tmp/x [1]");
  // Two trees whose pipes have other numbers but the same sharing compare equal.
  Canon c2;
  EXPECT_EQ(canon_link("pipe:[9]", c2), "pipe:[#1]");
  EXPECT_EQ(canon_link("socket:[8]", c2), "socket:[#2]");
}

TEST(ProcSnapshot, FdinfoLines) {
  Canon c;
  Snapshot s;
  canon_link("pipe:[777]", c);
  add_fdinfo(s, "9/", 3, "pipe:[777]", "pos:\t0\nflags:\t02000000\nmnt_id:\t15\nino:\t777\n", c);
  EXPECT_EQ(s["9/fdinfo/3/pos"], "0");
  EXPECT_EQ(s["9/fdinfo/3/flags"], "02000000");
  EXPECT_EQ(s["9/fdinfo/3/mnt_id"], "15");
  EXPECT_EQ(s["9/fdinfo/3/ino"], "#1");

  // A regular file keeps its inode; its locks lose their place in the system's list.
  add_fdinfo(s, "9/", 4, "/tmp/f",
             "pos:\t10\nflags:\t0100002\nmnt_id:\t30\nino:\t1234\n"
             "lock:\t12: POSIX  ADVISORY  WRITE 9 00:2a:1234 0 EOF\n"
             "lock:\t3: FLOCK  ADVISORY  READ 9 00:2a:1234 0 EOF\n",
             c);
  EXPECT_EQ(s["9/fdinfo/4/ino"], "1234");
  EXPECT_EQ(s["9/fdinfo/4/lock/0"], "FLOCK ADVISORY READ 9 00:2a:1234 0 EOF");
  EXPECT_EQ(s["9/fdinfo/4/lock/1"], "POSIX ADVISORY WRITE 9 00:2a:1234 0 EOF");

  // epoll: keyed by the watched fd; the target's inode (hex) named as its fd's was.
  add_fdinfo(s, "9/", 5, "anon_inode:[eventpoll]",
             "pos:\t0\nflags:\t02\nmnt_id:\t16\nino:\t55\n"
             "tfd:        4 events:       19 data:                4  pos:10 ino:4d2 sdev:2a\n"
             "tfd:        3 events:       1 data:                3  pos:0 ino:309 sdev:f\n"
             "tfd:        3 events:       4 data:                7  pos:0 ino:4d2 sdev:2a\n",
             c);
  EXPECT_EQ(s["9/fdinfo/5/tfd/3/0"], "events: 1 data: 3 pos:0 ino:#1 sdev:f");
  EXPECT_EQ(s["9/fdinfo/5/tfd/3/1"], "events: 4 data: 7 pos:0 ino:1234 sdev:2a");
  EXPECT_EQ(s["9/fdinfo/5/tfd/4/0"], "events: 19 data: 4 pos:10 ino:1234 sdev:2a");

  // timerfd: the time left is a clock reading.
  add_fdinfo(s, "9/", 6, "anon_inode:[timerfd]",
             "clockid: 1\nticks: 0\nsettime flags: 00\nit_value: (0, 4999)\nit_interval: (1, 0)\n",
             c);
  EXPECT_EQ(s["9/fdinfo/6/it_interval"], "(1, 0)");
  EXPECT_FALSE(s.count("9/fdinfo/6/it_value"));
}

TEST(ProcSnapshot, SmapsFlagsOneEntryEach) {
  Canon c;
  Snapshot s;
  add_smaps(s, "5/",
            "00400000-00401000 r-xp 00000000 08:01 1234 /usr/bin/x\n"
            "Size:                  4 kB\n"
            "VmFlags: rd ex mr mw me dw\n"
            "7f0000000000-7f0000002000 rw-s 00000000 00:01 4321 /memfd:buf (deleted)\n"
            "VmFlags: rd wr sh mr mw me ms\n",
            c);
  EXPECT_EQ(s["5/maps/400000-401000"], "r-xp 0 8:1 1234 /usr/bin/x");
  EXPECT_EQ(s["5/maps/7f0000000000-7f0000002000"], "rw-s 0 0:1 #1 /memfd:buf (deleted)");
  EXPECT_EQ(s["5/smaps/400000-401000/VmFlags/dw"], "1");
  EXPECT_EQ(s["5/smaps/7f0000000000-7f0000002000/VmFlags/sh"], "1");
  EXPECT_FALSE(s.count("5/smaps/400000-401000/VmFlags/wr"));
}

TEST(ProcSnapshot, VmasSplitOnlyByAccountingCompareMerged) {
  // The original: a read-only segment, then the RELRO part (mapped writable, so charged).
  const std::string original =
      "7f00000000-7f00053000 r--p 0017c000 fe:00 42 /usr/lib/libc.so.6\n"
      "VmFlags: rd mr mw me\n"
      "7f00053000-7f00057000 r--p 001cf000 fe:00 42 /usr/lib/libc.so.6\n"
      "VmFlags: rd mr mw me ac\n"
      "7f00057000-7f00059000 rw-p 001d3000 fe:00 42 /usr/lib/libc.so.6\n"
      "VmFlags: rd wr mr mw me ac\n";
  // The restored one: both charged, so the kernel made them one VMA.
  const std::string restored =
      "7f00000000-7f00057000 r--p 0017c000 fe:00 42 /usr/lib/libc.so.6\n"
      "VmFlags: rd mr mw me ac\n"
      "7f00057000-7f00059000 rw-p 001d3000 fe:00 42 /usr/lib/libc.so.6\n"
      "VmFlags: rd wr mr mw me ac\n";
  Canon c1, c2;
  Snapshot a, b;
  add_smaps(a, "1/", original, c1);
  add_smaps(b, "1/", restored, c2);
  auto d = diff(a, b, "x", {});
  ASSERT_EQ(d.size(), 1u) << describe_unallowed(d);
  EXPECT_EQ(d[0].key, "1/smaps/7f00000000-7f00057000/VmFlags/ac");
  EXPECT_EQ(d[0].before, "part");
  EXPECT_EQ(d[0].after, "1");
  EXPECT_EQ(a["1/maps/7f00000000-7f00057000"], "r--p 17c000 254:0 42 /usr/lib/libc.so.6");
  // Pieces whose offsets do not follow on are not merged.
  std::string error;
  auto m = merged_maps("1000-2000 r--p 00000000 fe:00 42 /x\n2000-3000 r--p 00005000 fe:00 42 /x\n",
                       &error);
  EXPECT_EQ(m.size(), 2u) << error;
}

TEST(ProcSnapshot, LimitsAndLocks) {
  std::string limits =
      "Limit                     Soft Limit           Hard Limit           Units     \n";
  const char* names[16] = {
      "Max cpu time",       "Max file size",     "Max data size",         "Max stack size",
      "Max core file size", "Max resident set",  "Max processes",         "Max open files",
      "Max locked memory",  "Max address space", "Max file locks",        "Max pending signals",
      "Max msgqueue size",  "Max nice priority", "Max realtime priority", "Max realtime timeout"};
  for (int i = 0; i < 16; i++) {
    std::string row = names[i];
    row.resize(26, ' ');
    row += i == 7 ? "1024                 4096                 files     \n"
                  : "unlimited            unlimited            units     \n";
    limits += row;
  }
  Snapshot s;
  add_limits(s, "3/", limits);
  EXPECT_EQ(s["3/limits/nofile"], "1024 4096");
  EXPECT_EQ(s["3/limits/cpu"], "18446744073709551615 18446744073709551615");

  Snapshot l;
  add_locks(l,
            "1: POSIX  ADVISORY  WRITE 3 00:2a:99 0 EOF\n"
            "2: FLOCK  ADVISORY  WRITE 4444 00:2a:98 0 EOF\n"
            "3: -> POSIX  ADVISORY  WRITE 3 00:2a:99 0 EOF\n",
            {3});
  EXPECT_EQ(l.size(), 2u);
  EXPECT_EQ(l["3/locks/00:2a:99/0/0"], "-> POSIX ADVISORY WRITE EOF");
  EXPECT_EQ(l["3/locks/00:2a:99/0/1"], "POSIX ADVISORY WRITE EOF");
}

TEST(ProcSnapshot, NamespacesOfTheHarnessAreHost) {
  Canon c;
  EXPECT_EQ(canon_ns("ipc:[4026531839]", "ipc:[4026531839]", c), "host");
  EXPECT_EQ(canon_ns("ipc:[4026532000]", "ipc:[4026531839]", c), "ipc:#1");
  Canon c2;
  EXPECT_EQ(canon_ns("ipc:[4026532999]", "ipc:[4026531839]", c2), "ipc:#1");
}

TEST(ProcSnapshot, DiffNamesWhatNoEntryAllows) {
  Snapshot before = {{"1/fdinfo/3/mnt_id", "15"},
                     {"1/status/Umask", "0022"},
                     {"1/fd/4", "/tmp/x"},
                     {"1/comm", "a"}};
  Snapshot after = {{"1/fdinfo/3/mnt_id", "16"},
                    {"1/status/Umask", "0077"},
                    {"1/fd/5", "/tmp/x"},
                    {"1/comm", "a"}};
  std::vector<AllowEntry> allow = {
      {"*", "*/fdinfo/*/mnt_id", "reopened through another mount"},
      {"other_case", "*/status/Umask", "not this case"},
      {"some*", "*/fd/4", "a known bug", true},
  };
  auto d = diff(before, after, "some_case", allow);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].key, "1/fd/4");
  EXPECT_EQ(d[0].after, "<absent>");
  ASSERT_TRUE(d[0].allowed);
  EXPECT_TRUE(d[0].allowed->known_bug);
  EXPECT_EQ(d[1].key, "1/fd/5");
  EXPECT_EQ(d[1].before, "<absent>");
  EXPECT_FALSE(d[1].allowed);
  EXPECT_TRUE(d[2].allowed);   // mnt_id
  EXPECT_FALSE(d[3].allowed);  // Umask: the entry is for another case
  EXPECT_EQ(describe_unallowed(d),
            "1/fd/5: '<absent>' -> '/tmp/x'\n1/status/Umask: '0022' -> '0077'\n");
}

TEST(ProcSnapshot, EveryAllowEntryHasAReason) {
  for (const AllowEntry& e : zdtm_allowlist()) {
    EXPECT_TRUE(e.reason && *e.reason) << e.key_glob;
    EXPECT_TRUE(e.case_glob && *e.case_glob) << e.key_glob;
  }
}

// A live process read twice while it waits: nothing may differ (the comparison is not flaky).
TEST(ProcSnapshot, IdleProcessReadsTheSameTwice) {
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/sleep", "1000"}, Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  ASSERT_TRUE(wait_quiescent(t.pid(), std::chrono::seconds(10)));
  Snapshot a = take_snapshot(t.pid());
  Snapshot b = take_snapshot(t.pid());
  EXPECT_EQ(a.at(std::to_string(t.pid()) + "/comm"), "sleep");
  EXPECT_EQ(a.at(std::to_string(t.pid()) + "/fd/0"), "/dev/null");
  EXPECT_GT(a.size(), 200u);
  EXPECT_EQ(describe_unallowed(diff(a, b, "idle", {})), "");
  t.terminate();
}

}  // namespace
}  // namespace cr::e2e
