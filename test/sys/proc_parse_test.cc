#include "sys/proc_parse.h"

#include <gtest/gtest.h>

#include <cstring>

namespace cr::sys {
namespace {

TEST(ProcParse, MapsLineKinds) {
  const char* text =
      "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:01 1048601                    /usr/bin/cat\n"
      "55d0c0a02000-55d0c0a07000 r-xp 00002000 fd:01 1048601                    /usr/bin/cat\n"
      "55d0c1e6b000-55d0c1e8c000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f5a4a000000-7f5a4a021000 rw-s 00000000 00:01 5123                       /dev/zero "
      "(deleted)\n"
      "7f5a4b000000-7f5a4b001000 rw-p 00000000 00:00 0 \n"
      "7f5a4c000000-7f5a4c001000 r--p 00000000 08:02 77                         /tmp/with space "
      "(deleted)\n"
      "7ffc3a5e2000-7ffc3a603000 rw-p 00000000 00:00 0                          [stack]\n"
      "7ffc3a6f0000-7ffc3a6f4000 r--p 00000000 00:00 0                          [vvar]\n"
      "7ffc3a6f4000-7ffc3a6f6000 r--p 00000000 00:00 0                          [vvar_vclock]\n"
      "7ffc3a6f6000-7ffc3a6f8000 r-xp 00000000 00:00 0                          [vdso]\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
  auto maps = parse_maps(text);
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  ASSERT_EQ(maps->size(), 11u);
  const auto& m = *maps;
  EXPECT_EQ(m[0].start, 0x55d0c0a00000u);
  EXPECT_EQ(m[0].end, 0x55d0c0a02000u);
  EXPECT_TRUE(m[1].exec);
  EXPECT_EQ(m[1].offset, 0x2000u);
  EXPECT_EQ(m[1].dev_major, 0xfdu);
  EXPECT_EQ(m[1].dev_minor, 1u);
  EXPECT_EQ(m[1].inode, 1048601u);
  EXPECT_EQ(m[1].path, "/usr/bin/cat");
  EXPECT_EQ(m[2].path, "[heap]");
  EXPECT_TRUE(m[2].special());
  EXPECT_TRUE(m[3].shared);
  EXPECT_TRUE(m[3].deleted);
  EXPECT_EQ(m[3].path, "/dev/zero");
  EXPECT_EQ(m[4].path, "");
  EXPECT_FALSE(m[4].shared);
  EXPECT_EQ(m[5].path, "/tmp/with space");
  EXPECT_TRUE(m[5].deleted);
  EXPECT_EQ(m[8].path, "[vvar_vclock]");
  EXPECT_EQ(m[9].path, "[vdso]");
  EXPECT_EQ(m[10].start, 0xffffffffff600000u);
  EXPECT_EQ(m[10].path, "[vsyscall]");
}

TEST(ProcParse, MapsRangesAndNamesAsTheRestorerReadsThem) {
  const char* text =
      "55d0c0000000-55d0c0002000 r--p 00000000 fd:01 1234   /usr/bin/sleep\n"
      "7ffd1000000-7ffd1021000 rw-p 00000000 00:00 0          [stack]\n"
      "7f0000000000-7f0000001000 rw-p 00000000 00:00 0 \n"
      "7ffe00000000-7ffe00004000 r--p 00000000 00:00 0                          [vvar]\n";
  auto r = parse_maps(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].start, 0x55d0c0000000u);
  EXPECT_EQ((*r)[0].end, 0x55d0c0002000u);
  EXPECT_EQ((*r)[0].path, "/usr/bin/sleep");
  EXPECT_EQ((*r)[1].path, "[stack]");
  EXPECT_EQ((*r)[2].path, "");
  EXPECT_EQ((*r)[3].path, "[vvar]");
}

TEST(ProcParse, SmapsProtectionKey) {
  const char* text =
      "7f5a4c000000-7f5a4c001000 rw-p 00000000 00:00 0\n"
      "ProtectionKey:         3\n"
      "VmFlags: rd wr mr mw me ac lo\n"
      "7f5a4c001000-7f5a4c002000 rw-p 00000000 00:00 0\n"
      "ProtectionKey:         0\n";
  auto r = parse_smaps(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].protection_key, 3u);
  EXPECT_TRUE((*r)[0].has_flag("lo"));
  EXPECT_EQ((*r)[1].protection_key, 0u);
  EXPECT_FALSE(
      parse_smaps("7f5a4c000000-7f5a4c001000 rw-p 00000000 00:00 0\nProtectionKey: x\n").ok());
}

TEST(ProcParse, MapsRejectsGarbage) {
  EXPECT_FALSE(parse_maps("1000-\n").ok());
  EXPECT_FALSE(parse_maps("hello world\n").ok());
  EXPECT_FALSE(parse_maps("2000-1000 rw-p 00000000 00:00 0\n").ok());
  auto r = parse_maps_line("zz-10 rw-p 0 00:00 0");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("zz-10"), std::string::npos);
}

TEST(ProcParse, SmapsVmFlags) {
  const char* text =
      "7f5a4b000000-7f5a4b001000 rw-p 00000000 00:00 0 \n"
      "Size:                  4 kB\n"
      "Rss:                   4 kB\n"
      "VmFlags: rd wr mr mw me ac dd hg \n"
      "7f5a4c000000-7f5a4c001000 rw-s 00000000 00:01 12     /SYSV00000000 (deleted)\n"
      "Size:                  4 kB\n"
      "VmFlags: rd wr sh mr mw me ms sd\n";
  auto r = parse_smaps(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE((*r)[0].has_flag("dd"));
  EXPECT_TRUE((*r)[0].has_flag("hg"));
  EXPECT_FALSE((*r)[0].has_flag("sh"));
  EXPECT_TRUE((*r)[1].has_flag("sh"));
  EXPECT_EQ((*r)[1].path, "/SYSV00000000");
}

TEST(ProcParse, Status) {
  const char* text =
      "Name:\tsleep\n"
      "Umask:\t0022\n"
      "State:\tS (sleeping)\n"
      "Tgid:\t4242\n"
      "PPid:\t100\n"
      "Uid:\t1000\t1001\t1002\t1003\n"
      "Gid:\t2000\t2001\t2002\t2003\n"
      "Groups:\t4 24 27 \n"
      "VmLck:\t      16 kB\n"
      "RssAnon:\t    2048 kB\n"
      "Threads:\t3\n"
      "SigQ:\t2/63382\n"
      "SigPnd:\t0000000000000000\n"
      "ShdPnd:\t0000000000000100\n"
      "SigBlk:\t0000000000010000\n"
      "SigIgn:\t0000000000001000\n"
      "SigCgt:\t0000000180000200\n"
      "CapInh:\t0000000000000000\n"
      "CapPrm:\t000001fffeffffff\n"
      "CapEff:\t000001fffeffffff\n"
      "CapBnd:\t000001fffeffffff\n"
      "CapAmb:\t0000000000000000\n"
      "NoNewPrivs:\t1\n"
      "Seccomp:\t2\n"
      "Seccomp_filters:\t1\n";
  auto r = parse_status(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->name, "sleep");
  EXPECT_EQ(r->umask, 022u);
  EXPECT_EQ(r->state, 'S');
  EXPECT_EQ(r->ppid, 100);
  EXPECT_EQ(r->uid[0], 1000u);
  EXPECT_EQ(r->uid[3], 1003u);
  EXPECT_EQ(r->gid[1], 2001u);
  EXPECT_EQ(r->groups, (std::vector<uint32_t>{4, 24, 27}));
  EXPECT_EQ(r->threads, 3u);
  EXPECT_EQ(r->rss_anon_kb, 2048u);
  EXPECT_EQ(r->vm_lck_kb, 16u);
  EXPECT_EQ(r->sig_queued, 2u);
  EXPECT_EQ(r->sig_queue_limit, 63382u);
  EXPECT_EQ(r->shd_pnd, 0x100u);
  EXPECT_EQ(r->sig_ign, 0x1000u);
  EXPECT_EQ(r->sig_cgt, 0x180000200u);
  EXPECT_EQ(r->cap_prm, 0x1fffeffffffu);
  EXPECT_EQ(r->cap_inh, 0u);
  EXPECT_EQ(r->no_new_privs, 1u);
  EXPECT_EQ(r->seccomp, 2u);
  EXPECT_EQ(r->seccomp_filters, 1u);
  EXPECT_FALSE(parse_status("Name:\tx\n").ok());
}

// The ids of a process in a pid namespace below the reader's: outermost first.
TEST(ProcParse, StatusNamespaceIds) {
  const std::string base = "Name:\tsh\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nThreads:\t1\n";
  auto r = parse_status(base +
                        "NStgid:\t4242\t1\nNSpid:\t4242\t1\nNSpgid:\t4100\t0\n"
                        "NSsid:\t4242\t1\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->ns_pid, (std::vector<pid_t>{4242, 1}));
  EXPECT_EQ(r->ns_pgid, (std::vector<pid_t>{4100, 0}));
  EXPECT_EQ(r->ns_sid, (std::vector<pid_t>{4242, 1}));
  auto host = parse_status(base + "NSpid:\t77\n");
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->ns_pid, (std::vector<pid_t>{77}));
  EXPECT_TRUE(host->ns_sid.empty());
  EXPECT_FALSE(parse_status(base + "NSpid:\t77\tx\n").ok());
}

TEST(ProcParse, StatWithHostileComm) {
  // comm "a) (b" would shift every field for a parser that splits at the first ')'.
  std::string text =
      "4242 (a) (b) S 100 4242 99 34816 4242 4194304 1 2 3 4 5 6 7 8 20 0 1 0 "
      "12345 1000000 200 18446744073709551615 94000000 94100000 140720000000000 "
      "0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94200000 94300000 95000000 140720000100 "
      "140720000200 140720000300 140720000400 0\n";
  auto r = parse_stat(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pid, 4242);
  EXPECT_EQ(r->comm, "a) (b");
  EXPECT_EQ(r->state, 'S');
  EXPECT_EQ(r->ppid, 100);
  EXPECT_EQ(r->pgrp, 4242);
  EXPECT_EQ(r->session, 99);
  EXPECT_EQ(r->tty_nr, 34816u);  // 136:0, /dev/pts/0
  EXPECT_EQ(r->tpgid, 4242);
  // No controlling terminal: tpgid is printed as -1.
  std::string no_tty = text;
  no_tty.replace(no_tty.find(" 34816 4242 "), 12, " 0 -1 ");
  auto n = parse_stat(no_tty);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->tpgid, -1);
  EXPECT_EQ(r->num_threads, 1u);
  EXPECT_EQ(r->start_code, 94000000u);
  EXPECT_EQ(r->end_code, 94100000u);
  EXPECT_EQ(r->start_stack, 140720000000000u);
  EXPECT_EQ(r->start_data, 94200000u);
  EXPECT_EQ(r->end_data, 94300000u);
  EXPECT_EQ(r->start_brk, 95000000u);
  EXPECT_EQ(r->arg_start, 140720000100u);
  EXPECT_EQ(r->arg_end, 140720000200u);
  EXPECT_EQ(r->env_start, 140720000300u);
  EXPECT_EQ(r->env_end, 140720000400u);
  EXPECT_FALSE(parse_stat("4242 (x) S 1 2 3\n").ok());
}

TEST(ProcParse, StatOfSelf) {
  // The live file has the field count the parser expects.
  auto proc = ProcDir::open(getpid());
  ASSERT_TRUE(proc.ok());
  auto text = proc->read("stat");
  ASSERT_TRUE(text.ok());
  auto r = parse_stat(*text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->pid, getpid());
  EXPECT_EQ(r->ppid, getppid());
  EXPECT_NE(r->start_code, 0u);
}

TEST(ProcParse, Limits) {
  const char* text =
      "Limit                     Soft Limit           Hard Limit           Units     \n"
      "Max cpu time              unlimited            unlimited            seconds   \n"
      "Max file size             unlimited            unlimited            bytes     \n"
      "Max data size             unlimited            unlimited            bytes     \n"
      "Max stack size            8388608              unlimited            bytes     \n"
      "Max core file size        0                    unlimited            bytes     \n"
      "Max resident set          unlimited            unlimited            bytes     \n"
      "Max processes             63382                63382                processes \n"
      "Max open files            1024                 1048576              files     \n"
      "Max locked memory         8388608              8388608              bytes     \n"
      "Max address space         unlimited            unlimited            bytes     \n"
      "Max file locks            unlimited            unlimited            locks     \n"
      "Max pending signals       63382                63382                signals   \n"
      "Max msgqueue size         819200               819200               bytes     \n"
      "Max nice priority         0                    0                    \n"
      "Max realtime priority     0                    0                    \n"
      "Max realtime timeout      unlimited            unlimited            us        \n";
  auto r = parse_limits(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 32u);
  const uint64_t inf = ~uint64_t{0};
  EXPECT_EQ((*r)[0], inf);               // RLIMIT_CPU soft
  EXPECT_EQ((*r)[3 * 2], 8388608u);      // RLIMIT_STACK soft
  EXPECT_EQ((*r)[3 * 2 + 1], inf);       // RLIMIT_STACK hard
  EXPECT_EQ((*r)[7 * 2], 1024u);         // RLIMIT_NOFILE soft
  EXPECT_EQ((*r)[7 * 2 + 1], 1048576u);  // RLIMIT_NOFILE hard
  EXPECT_EQ((*r)[13 * 2], 0u);           // RLIMIT_NICE
  EXPECT_EQ((*r)[15 * 2 + 1], inf);      // RLIMIT_RTTIME hard
  // A missing row is an error, not a shifted table.
  std::string cut(text);
  cut.erase(cut.find("Max locked"), cut.find("Max address") - cut.find("Max locked"));
  EXPECT_FALSE(parse_limits(cut).ok());
}

TEST(ProcParse, Fdinfo) {
  auto plain = parse_fdinfo("pos:\t1234\nflags:\t02100002\nmnt_id:\t23\nino:\t3\n");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->pos, 1234u);
  EXPECT_EQ(plain->flags, 02100002u);
  EXPECT_EQ(plain->mnt_id, 23u);
  EXPECT_EQ(plain->kind, FdinfoKind::kPlain);

  auto ev = parse_fdinfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1057\neventfd-count:  5\neventfd-id: 3\n");
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->kind, FdinfoKind::kEventfd);
  auto ep = parse_fdinfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\ntfd:        5 events:       19 data:             "
      "   5  pos:0 ino:3 sdev:3\n");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->kind, FdinfoKind::kEpoll);
  auto sfd =
      parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\nsigmask:\t0000000000000200\n");
  ASSERT_TRUE(sfd.ok());
  EXPECT_EQ(sfd->kind, FdinfoKind::kSignalfd);
  auto in = parse_fdinfo(
      "pos:\t0\nflags:\t00\nmnt_id:\t15\nino:\t1\ninotify wd:1 ino:2 sdev:3 mask:fff "
      "ignored_mask:0\n");
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->kind, FdinfoKind::kInotify);
  auto tfd = parse_fdinfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\nclockid: 1\nticks: 0\nsettime flags: "
      "0\nit_value: (0, 0)\nit_interval: (0, 0)\n");
  ASSERT_TRUE(tfd.ok());
  EXPECT_EQ(tfd->kind, FdinfoKind::kTimerfd);
  EXPECT_FALSE(parse_fdinfo("mnt_id:\t1\n").ok());
}

TEST(ProcParse, FdinfoInotify) {
  // As 6.18 prints it: every number in hex (wd 0x1a is 26).
  auto in = parse_fdinfo(
      "pos:\t0\nflags:\t04000\nmnt_id:\t17\nino:\t1044\n"
      "inotify wd:1a ino:64006 sdev:fe00000 mask:4000002 ignored_mask:0 fhandle-bytes:8 "
      "fhandle-type:1 f_handle:0640060069b7b2e3\n"
      "inotify wd:2 ino:2f5e sdev:800001 mask:80000300 ignored_mask:0\n");
  ASSERT_TRUE(in.ok()) << in.error().message;
  EXPECT_EQ(in->kind, FdinfoKind::kInotify);
  EXPECT_EQ(in->flags, 04000u);
  ASSERT_EQ(in->inotify_watches.size(), 2u);
  const InotifyWatch& a = in->inotify_watches[0];
  EXPECT_EQ(a.wd, 0x1a);
  EXPECT_EQ(a.ino, 0x64006u);
  EXPECT_EQ(a.sdev, 0xfe00000u);
  EXPECT_EQ(a.mask, 0x4000002u);
  EXPECT_EQ(a.handle_type, 1);
  EXPECT_EQ(a.handle, (std::vector<uint8_t>{0x06, 0x40, 0x06, 0x00, 0x69, 0xb7, 0xb2, 0xe3}));
  // A filesystem that cannot encode a handle: no handle fields.
  EXPECT_EQ(in->inotify_watches[1].wd, 2);
  EXPECT_TRUE(in->inotify_watches[1].handle.empty());
  // An inotify without watches shows no line: its fd's link tells (dump/files.cc).
  auto empty = parse_fdinfo("pos:\t0\nflags:\t02000000\nmnt_id:\t17\nino:\t1044\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->inotify_watches.empty());

  EXPECT_FALSE(parse_inotify_watch("inotify wd:0 ino:1 sdev:1 mask:2 ignored_mask:0").ok());
  EXPECT_FALSE(parse_inotify_watch("inotify wd:1 ino:1 sdev:1 ignored_mask:0").ok());
  EXPECT_FALSE(parse_inotify_watch("inotify wd:1 ino:1 sdev:1 mask:2 fhandle-bytes:8 "
                                   "fhandle-type:1 f_handle:0640")
                   .ok());  // fewer bytes than it says
  EXPECT_FALSE(parse_inotify_watch("inotify wd:1 ino:zz sdev:1 mask:2").ok());
  EXPECT_FALSE(parse_fdinfo("pos:\t0\nflags:\t0\ninotify wd:1 ino:1 sdev:1\n").ok());
}

TEST(ProcParse, FdinfoFanotify) {
  // As 6.18 prints it (newest mark first): a filesystem mark, an inode mark with a handle,
  // an ignored mask surviving modification, a mount mark.
  auto f = parse_fdinfo(
      "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1044\n"
      "fanotify flags:203 event-flags:8000\n"
      "fanotify sdev:fe00000 mflags:0 mask:100 ignored_mask:0\n"
      "fanotify ino:a72149 sdev:fe00000 mflags:0 mask:48000100 ignored_mask:0 fhandle-bytes:8 "
      "fhandle-type:1 f_handle:4921a700b29854d9\n"
      "fanotify ino:a7214a sdev:fe00000 mflags:440 mask:a ignored_mask:20 fhandle-bytes:8 "
      "fhandle-type:1 f_handle:4a21a700b2e3d279\n"
      "fanotify mnt_id:1b mflags:200 mask:28 ignored_mask:0\n"
      "fanotify mnt_ns:f0000001 mflags:0 mask:1 ignored_mask:0\n");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->kind, FdinfoKind::kFanotify);
  EXPECT_EQ(f->fanotify_flags, 0x203u);
  EXPECT_EQ(f->fanotify_event_flags, 0x8000u);
  ASSERT_EQ(f->fanotify_marks.size(), 5u);
  const FanotifyMark& fs = f->fanotify_marks[0];
  EXPECT_EQ(fs.type, FanotifyMark::kFilesystem);
  EXPECT_EQ(fs.sdev, 0xfe00000u);
  EXPECT_EQ(fs.mask, 0x100u);
  const FanotifyMark& in = f->fanotify_marks[1];
  EXPECT_EQ(in.type, FanotifyMark::kInode);
  EXPECT_EQ(in.ino, 0xa72149u);
  EXPECT_EQ(in.mask, 0x48000100u);
  EXPECT_EQ(in.handle_type, 1);
  EXPECT_EQ(in.handle, (std::vector<uint8_t>{0x49, 0x21, 0xa7, 0x00, 0xb2, 0x98, 0x54, 0xd9}));
  EXPECT_EQ(f->fanotify_marks[2].mflags, 0x440u);
  EXPECT_EQ(f->fanotify_marks[2].ignored_mask, 0x20u);
  const FanotifyMark& mnt = f->fanotify_marks[3];
  EXPECT_EQ(mnt.type, FanotifyMark::kMount);
  EXPECT_EQ(mnt.mnt_id, 0x1bu);
  EXPECT_EQ(mnt.mflags, 0x200u);
  // A mark this build does not know: kept, for crdump to refuse by its text.
  EXPECT_EQ(f->fanotify_marks[4].type, FanotifyMark::kUnknown);
  EXPECT_EQ(f->fanotify_marks[4].line, "fanotify mnt_ns:f0000001 mflags:0 mask:1 ignored_mask:0");
  // A group without marks shows only its flags.
  auto empty = parse_fdinfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1044\nfanotify flags:4 event-flags:8000\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->kind, FdinfoKind::kFanotify);
  EXPECT_EQ(empty->fanotify_flags, 4u);
  EXPECT_TRUE(empty->fanotify_marks.empty());

  EXPECT_FALSE(parse_fanotify_mark("fanotify ino:1 sdev:1 mask:2 ignored_mask:0").ok());  // mflags
  EXPECT_FALSE(parse_fanotify_mark("fanotify ino:1 sdev:1 mflags:0 mask:2 ignored_mask:0 "
                                   "fhandle-bytes:8 fhandle-type:1 f_handle:0640")
                   .ok());  // fewer bytes than it says
  EXPECT_FALSE(parse_fanotify_mark("fanotify mnt_id:zz mflags:0 mask:2 ignored_mask:0").ok());
  EXPECT_FALSE(parse_fdinfo("pos:\t0\nflags:\t0\nfanotify flags:2\n").ok());
}

TEST(ProcParse, FdinfoPidfd) {
  auto p =
      parse_fdinfo("pos:\t0\nflags:\t02004202\nmnt_id:\t4\nino:\t8172\nPid:\t8171\nNSpid:\t8171\n");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->kind, FdinfoKind::kPidfd);
  EXPECT_EQ(p->pidfd_pid, 8171);
  EXPECT_EQ(p->flags, 02004202u);
  auto gone = parse_fdinfo("pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t9\nPid:\t-1\n");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->pidfd_pid, -1);
  EXPECT_FALSE(parse_fdinfo("pos:\t0\nflags:\t02\nPid:\tx\n").ok());
}

TEST(ProcParse, Timers) {
  const char* text =
      "ID: 0\n"
      "signal: 14/00000000deadbeef\n"
      "notify: signal/pid.4242\n"
      "ClockID: 1\n"
      "ID: 3\n"
      "signal: 34/0000000000000000\n"
      "notify: signal/tid.4243\n"
      "ClockID: 0\n"
      "ID: 7\n"
      "signal: 0/0000000000000000\n"
      "notify: none/pid.4242\n"
      "ClockID: 7\n";
  auto r = parse_timers(text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].id, 0u);
  EXPECT_EQ((*r)[0].signo, 14u);
  EXPECT_EQ((*r)[0].sigval, 0xdeadbeefu);
  EXPECT_EQ((*r)[0].notify, 0u);
  EXPECT_EQ((*r)[0].notify_tid, 4242u);
  EXPECT_EQ((*r)[0].clock_id, 1u);
  EXPECT_EQ((*r)[1].id, 3u);
  EXPECT_EQ((*r)[1].notify, 4u);  // SIGEV_THREAD_ID
  EXPECT_EQ((*r)[1].notify_tid, 4243u);
  EXPECT_EQ((*r)[2].notify, 1u);  // SIGEV_NONE
  EXPECT_EQ((*r)[2].clock_id, 7u);
  auto empty = parse_timers("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parse_timers("signal: 14/0\n").ok());
}

TEST(ProcParse, AuxvAndPersonality) {
  uint64_t raw[] = {6, 4096, 25, 0x7ffd0000, 0, 0, 99, 99};
  std::string_view bytes(reinterpret_cast<const char*>(raw), sizeof raw);
  EXPECT_EQ(parse_auxv(bytes), (std::vector<uint64_t>{6, 4096, 25, 0x7ffd0000, 0, 0}));
  auto p = parse_personality("00400000\n");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p, 0x400000u);
  EXPECT_FALSE(parse_personality("xyz").ok());
}

TEST(Fdinfo, PtyMasterIndex) {
  // /dev/ptmx as the kernel shows it: the index of the slave it made.
  auto m = parse_fdinfo("pos:\t0\nflags:\t02100002\nmnt_id:\t24\nino:\t91\ntty-index:\t7\n");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->kind, FdinfoKind::kPlain);
  EXPECT_EQ(m->tty_index, 7);
  auto plain = parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t24\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->tty_index, -1);
  EXPECT_FALSE(parse_fdinfo("pos:\t0\nflags:\t02\ntty-index:\tx\n").ok());
}

TEST(Fdinfo, EventFdsState) {
  auto e = parse_fdinfo(
      "pos:\t0\nflags:\t02004002\nmnt_id:\t17\nino:\t1039\n"
      "eventfd-count:               1f\neventfd-id: 1\neventfd-semaphore: 1\n");
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(e->kind, FdinfoKind::kEventfd);
  EXPECT_EQ(e->eventfd_count, 0x1fu);
  EXPECT_TRUE(e->eventfd_semaphore);
  auto s = parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t17\nsigmask:\t0000000000000202\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, FdinfoKind::kSignalfd);
  EXPECT_EQ(s->sigmask, 0x202u);
  auto t = parse_fdinfo(
      "pos:\t0\nflags:\t02\nmnt_id:\t17\nclockid: 1\nticks: 3\nsettime flags: 01\n"
      "it_value: (999, 500000000)\nit_interval: (1, 0)\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->kind, FdinfoKind::kTimerfd);
  EXPECT_EQ(t->clockid, 1u);
  EXPECT_EQ(t->ticks, 3u);
  EXPECT_EQ(t->settime_flags, 1u);
  EXPECT_EQ(t->value_ns, 999500000000ull);
  EXPECT_EQ(t->interval_ns, 1000000000ull);
  EXPECT_FALSE(parse_fdinfo("pos:\t0\nflags:\t02\nit_value: (x, 1)\nclockid: 1\nticks: 0\n").ok());
}

TEST(ProcParse, ChildrenListsEveryPid) {
  EXPECT_EQ(parse_children("4012 4013 4100 "), (std::vector<pid_t>{4012, 4013, 4100}));
  EXPECT_EQ(parse_children("7\n"), (std::vector<pid_t>{7}));
  EXPECT_TRUE(parse_children("").empty());
}

// ---- epoll watches (fs/eventpoll.c ep_show_fdinfo's format, as 6.18 prints it)

TEST(ProcParse, EpollWatchLines) {
  auto ep = parse_fdinfo(
      "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\n"
      "tfd:        5 events:       19 data:                5  pos:0 ino:3f1 sdev:e\n"
      "tfd:        7 events: 80000019 data: ffffffffdeadbeef  pos:12 ino:a sdev:f\n"
      "tfd:      123 events: 40000000 data:     123456789abc  pos:-1 ino:0 sdev:0\n");
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->kind, FdinfoKind::kEpoll);
  ASSERT_EQ(ep->epoll_watches.size(), 3u);
  const EpollWatch& a = ep->epoll_watches[0];
  EXPECT_EQ(a.tfd, 5);
  EXPECT_EQ(a.events, 0x19u);  // EPOLLIN | EPOLLERR | EPOLLHUP
  EXPECT_EQ(a.data, 5u);
  EXPECT_EQ(a.ino, 0x3f1u);
  EXPECT_EQ(a.sdev, 0xeu);
  const EpollWatch& b = ep->epoll_watches[1];
  EXPECT_EQ(b.tfd, 7);
  EXPECT_EQ(b.events, 0x80000019u);  // EPOLLET
  EXPECT_EQ(b.data, 0xffffffffdeadbeefull);
  EXPECT_EQ(b.pos, 12u);
  const EpollWatch& c = ep->epoll_watches[2];
  EXPECT_EQ(c.tfd, 123);
  EXPECT_EQ(c.events, 0x40000000u);  // a fired EPOLLONESHOT: only the flag bits stay
  EXPECT_EQ(c.data, 0x123456789abcull);
  EXPECT_EQ(c.pos, 0u);  // negative positions are not kept
}

TEST(ProcParse, EpollWithoutWatchesIsPlainText) {
  // An epoll with no watch prints no tfd line: the fd's link (anon_inode:[eventpoll]) tells.
  auto ep = parse_fdinfo("pos:\t0\nflags:\t02\nmnt_id:\t16\nino:\t1057\n");
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->epoll_watches.empty());
}

TEST(ProcParse, EpollWatchErrorsQuoteTheLine) {
  for (const char* line :
       {"tfd:        5 events:       19", "tfd: x events: 19 data: 5 pos:0 ino:1 sdev:2",
        "tfd: 5 events: zz data: 5", "tfd: 5 events: 19 data:", "tfd: 5 events 19 data: 5"}) {
    auto w = parse_epoll_watch(line);
    ASSERT_FALSE(w.ok()) << line;
    EXPECT_NE(w.error().message.find(line), std::string::npos) << w.error().message;
  }
  auto ok = parse_epoll_watch("tfd: 9 events: 1 data: 0 pos:0 ino:1 sdev:2");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->tfd, 9);
}

TEST(ProcParse, MemfdName) {
  EXPECT_EQ(memfd_name("/memfd:crtools (deleted)"), std::optional<std::string>("crtools"));
  // Names may be empty, hold spaces, colons, slashes, or end like the suffix itself.
  EXPECT_EQ(memfd_name("/memfd: (deleted)"), std::optional<std::string>(""));
  EXPECT_EQ(memfd_name("/memfd:a b:c/d (deleted)"), std::optional<std::string>("a b:c/d"));
  EXPECT_EQ(memfd_name("/memfd:x (deleted) (deleted)"), std::optional<std::string>("x (deleted)"));
  EXPECT_EQ(memfd_name("/memfd:nosuffix"), std::optional<std::string>("nosuffix"));
  EXPECT_EQ(memfd_name("/tmp/memfd:x (deleted)"), std::nullopt);
  EXPECT_EQ(memfd_name("/dev/zero (deleted)"), std::nullopt);
  EXPECT_EQ(memfd_name("anon_inode:[memfd]"), std::nullopt);
}

TEST(ProcParse, IgmpGroupsPerDevice) {
  auto g = parse_igmp(
      "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
      "1\tlo        :     2      V3\n"
      "\t\t\t\t030201EF     1 0:00000000\t\t0\n"
      "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
      "4\teth0      :     1      V3\n"
      "\t\t\t\t010000E0     1 0:00000000\t\t0\n");
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ((*g)[0].ifindex, 1);
  EXPECT_EQ((*g)[0].device, "lo");
  EXPECT_EQ((*g)[0].group, (std::vector<uint8_t>{239, 1, 2, 3}));
  EXPECT_EQ((*g)[2].device, "eth0");
  EXPECT_EQ((*g)[2].group, (std::vector<uint8_t>{224, 0, 0, 1}));
  EXPECT_FALSE(parse_igmp("Idx\n\t\t\t\t030201EF 1\n").ok());  // a group before any device
}

TEST(ProcParse, NetTcpSockets) {
  auto t = parse_proc_net_tcp(
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
      "inode\n"
      "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 "
      "1612 1 00000000aa6cf7bd 100 0 0 10 0\n"
      "   1: 0100007F:1F90 0100007F:A4C2 01 00000000:00000005 00:00000000 00000000     0        0 "
      "0 1 00000000aa6cf7bd 20 4 30 10 -1\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].local, (std::vector<uint8_t>{127, 0, 0, 1}));
  EXPECT_EQ((*t)[0].local_port, 8080u);
  EXPECT_EQ((*t)[0].state, 10u);
  EXPECT_EQ((*t)[0].rx_queue, 1u);
  EXPECT_EQ((*t)[0].inode, 1612u);
  EXPECT_EQ((*t)[1].remote_port, 0xA4C2u);
  EXPECT_EQ((*t)[1].state, 1u);
  EXPECT_EQ((*t)[1].rx_queue, 5u);
  EXPECT_EQ((*t)[1].inode, 0u);
  auto six = parse_proc_net_tcp(
      "  sl  local_address                         remote_address                        st\n"
      "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
      "00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n");
  ASSERT_TRUE(six.ok()) << six.error().message;
  ASSERT_EQ((*six)[0].local.size(), 16u);
  EXPECT_EQ((*six)[0].local[15], 1);  // ::1
  EXPECT_FALSE(parse_proc_net_tcp("hdr\n   0: 0100007F 00000000:0000 0A\n").ok());
}

TEST(ProcParse, Igmp6Groups) {
  auto g = parse_igmp6("1    lo              ff150000000000000000000000001234     1 00000004 0\n");
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->size(), 1u);
  EXPECT_EQ((*g)[0].device, "lo");
  ASSERT_EQ((*g)[0].group.size(), 16u);
  EXPECT_EQ((*g)[0].group[0], 0xff);
  EXPECT_EQ((*g)[0].group[15], 0x34);
  EXPECT_FALSE(parse_igmp6("1 lo ff15\n").ok());
}

}  // namespace
TEST(ProcParse, TimensOffsets) {
  auto t =
      parse_timens_offsets("monotonic           0         0\nboottime            0         0\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->monotonic_sec, 0);
  t = parse_timens_offsets("monotonic       86400       123\nboottime          -17 999999999\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->monotonic_sec, 86400);
  EXPECT_EQ(t->monotonic_nsec, 123u);
  EXPECT_EQ(t->boottime_sec, -17);
  EXPECT_EQ(t->boottime_nsec, 999999999u);
  EXPECT_FALSE(parse_timens_offsets("monotonic 1 0\n").ok());  // no boottime line
  EXPECT_FALSE(parse_timens_offsets("monotonic 1 1000000000\nboottime 0 0\n").ok());
  EXPECT_FALSE(parse_timens_offsets("monotonic 1 0\nboottime 0 0 7\n").ok());
  EXPECT_FALSE(parse_timens_offsets("realtime 1 0\nboottime 0 0\n").ok());
  EXPECT_FALSE(parse_timens_offsets("monotonic 1 0\nmonotonic 2 0\nboottime 0 0\n").ok());
}

// /proc/PID/uid_map as crdump (in the parent namespace) reads it, and the translation both ways.
TEST(ProcParse, IdMap) {
  auto m = parse_id_map("         0       4343          1\n         1     100000      65536\n");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, (std::vector<uint64_t>{0, 4343, 1, 1, 100000, 65536}));
  const IdMap map{*m};
  EXPECT_EQ(map.inside(4343), 0u);
  EXPECT_EQ(map.inside(100000), 1u);
  EXPECT_EQ(map.inside(165535), 65536u);
  EXPECT_EQ(map.inside(165536), IdMap::kUnmapped);
  EXPECT_EQ(map.inside(0), IdMap::kUnmapped);
  EXPECT_EQ(map.outside(0), 4343u);
  EXPECT_EQ(map.outside(2), 100001u);
  EXPECT_EQ(map.outside(65537), IdMap::kUnmapped);
  auto empty = parse_id_map("");  // not written yet
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_FALSE(parse_id_map("0 0\n").ok());
  EXPECT_FALSE(parse_id_map("0 0 0\n").ok());            // an empty range
  EXPECT_FALSE(parse_id_map("0 4294967295 2\n").ok());   // beyond 32 bits
  EXPECT_FALSE(parse_id_map("0 0 1 7\n").ok());
}

}  // namespace cr::sys
