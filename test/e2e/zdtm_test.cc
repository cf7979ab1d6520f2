// The zdtm programs, each dumped and restored on three paths (kill, leave-running, twice), and
// the programs crdump must refuse. The table is the list of what the tools must handle. After
// each restore everything /proc shows about the tree must be as before the dump, but for what
// test/e2e/proc_allowlist.cc allows (proc_snapshot.h).
#include <sched.h>
#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "proc_snapshot.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

struct ZdtmCase {
  std::string name;
  std::vector<std::string> args;
  bool needs_root = false;
  std::string refused;  // empty: must dump and restore; otherwise crdump's message contains this
  std::string program;  // the zdtm program to run; empty: `name` (cases that differ by args)
  std::vector<std::string> dump_args;  // more crdump options (for every dump of the case)
  uint64_t clone_flags = 0;            // namespaces the harness starts it in (it stays in its own)
  std::vector<std::string> restore_args;  // more crrestore options (for every restore of the case)
};

std::ostream& operator<<(std::ostream& os, const ZdtmCase& c) { return os << c.name; }

const std::vector<ZdtmCase>& cases() {
  static const std::vector<ZdtmCase> all = {
      {"regs_gpr_avx", {}},
      {"fsgs_tls", {}},
      {"mem_anon", {}},
      // crdump --pre-copy: memory that stays as it was (every page restored from its pre-copy),
      // and memory that keeps changing during the rounds.
      {"mem_anon_precopy", {"16"}, false, "", "mem_anon", {"--pre-copy"}},
      {"heap_brk_precopy", {}, false, "", "heap_brk", {"--pre-copy=3"}},
      {"precopy_writer", {}, false, "", "", {"--pre-copy"}},
      // crrestore --lazy: the program runs before its memory is in; the one that writes, zaps,
      // moves and maps memory throughout does so while the pages come in, with and without a
      // pre-copy before; a tree whose children share pages with their parents; threads.
      {"mem_anon_lazy", {"16"}, false, "", "mem_anon", {}, 0, {"--lazy"}},
      {"heap_brk_lazy", {}, false, "", "heap_brk", {}, 0, {"--lazy"}},
      {"stack_deep_lazy", {}, false, "", "stack_deep", {}, 0, {"--lazy"}},
      {"precopy_writer_lazy", {}, false, "", "precopy_writer", {}, 0, {"--lazy"}},
      {"precopy_writer_precopy_lazy", {}, false, "", "precopy_writer", {"--pre-copy"}, 0, {"--lazy"}},
      {"tree_cow_lazy", {}, false, "", "tree_cow", {}, 0, {"--lazy"}},
      {"tree_busy_lazy", {}, false, "", "tree_busy", {}, 0, {"--lazy"}},
      {"threads_count16_lazy", {"16"}, false, "", "threads_count", {}, 0, {"--lazy"}},
      {"mem_edges_lazy", {}, false, "", "mem_edges", {}, 0, {"--lazy"}},
      {"lazy_random", {"64"}, false, "", "", {}, 0, {"--lazy"}},
      {"mem_edges", {}},
      {"heap_brk", {}},
      {"stack_deep", {}},
      {"file_map_private", {}},
      {"vdso_clock", {}},
      {"pid_ids", {"arg1", "arg2"}},
      {"proc_attrs", {}},
      {"creds_nonroot", {}, /*needs_root=*/true},
      {"creds_user_files", {}, /*needs_root=*/true},
      // creds_nonroot "caps" (uid 1001 keeping CAP_NET_BIND_SERVICE with SECBIT_KEEP_CAPS) is not
      // a row: an image without a root process gets no capabilities (README "Trust model"), so
      // crrestore refuses it; HostileImage covers that refusal.
      {"proc_prctl", {}, true},
      {"proc_prctl_root_pdeathsig",
       {"root_pdeathsig"},
       true,
       "signal 10 (PR_SET_PDEATHSIG) on the root",
       "proc_prctl"},
      {"signals", {}},
      {"itimer", {}},
      {"posix_timer", {}},
      {"rseq_robust", {}},
      {"sleep_nanosleep", {}},
      {"sleep_norem", {}},
      {"read_pipe", {}},
      {"poll_pipe", {}},
      {"file_offsets", {}},
      {"dev_files", {}},
      {"deleted_file", {}},
      {"pipe_data", {}},
      {"fifo_data", {}},
      {"counter_loop", {}},
      {"threads_join_pipe", {}},
      {"threads_count1", {"1"}, false, "", "threads_count"},
      {"threads_count2", {"2"}, false, "", "threads_count"},
      {"threads_count16", {"16"}, false, "", "threads_count"},
      {"threads_count200", {"200"}, false, "", "threads_count"},
      {"threads_parked", {}},
      {"threads_sighandler", {}},
      {"threads_churn", {}},
      {"tree_child_pipe", {}},
      {"tree_shared_fd", {}},
      {"tree_groups", {}},
      {"tree_zombie", {}},
      {"tree_shmem", {}},
      {"tree_shmem_user", {"user"}, /*needs_root=*/true, "", "tree_shmem"},
      {"tree_orphan", {}},
      {"tree_gone_leaders", {}},
      {"tree_clone_files", {}},
      {"tree_cow", {}},
      // Pre-copy of a tree: pages a child shares with its parent (pages_parent) and those the
      // parent's pre-copy still holds (pages_precopied) in one image; a busy tree whose
      // processes keep writing through the rounds.
      {"tree_cow_precopy", {}, false, "", "tree_cow", {"--pre-copy"}},
      {"tree_busy_precopy", {}, false, "", "tree_busy", {"--pre-copy"}},
      {"event_fds", {}},
      {"sysv_ipc", {}},
      // A root that owns its UTS namespace (unshare, hostname set): supported since issue 13.
      {"ns_uts", {"uts"}, true, "", "ns_refused"},
      // The root is pid 1 of a pid namespace of its own (the harness, outside, is its launcher),
      // with its UTS namespace too, and an IPC namespace of its own with SysV objects.
      {"pidns_tree", {}, true, "", "", {}, CLONE_NEWPID},
      {"pidns_uts", {"uts"}, true, "", "pidns_tree", {}, CLONE_NEWPID | CLONE_NEWUTS},
      {"pidns_ipc", {}, true, "", "sysv_ipc", {}, CLONE_NEWPID | CLONE_NEWUTS},
      // A root in a time namespace of its own (offsets of days: kTimensOffsets), alone and as pid
      // 1 of its own pid namespace too (a container's usual set), and one that made its own
      // cgroup namespace below where it started (and the cgroup one ns_refused makes).
      {"timens_clock", {}, true, "", "", {}, kCloneNewTime},
      {"timens_pidns", {}, true, "", "timens_clock", {}, kCloneNewTime | CLONE_NEWPID},
      {"cgroupns_root", {}, true},
      {"ns_cgroup", {"cgroup"}, true, "", "ns_refused"},
      // A mount namespace of the root's own: private mounts, a new proc, a tmpfs with files,
      // bind mounts, an unmounted /dev/shm; as pid 1 of its pid namespace (`unshare --mount
      // --pid --mount-proc`), with its UTS namespace, and in the host's pid namespace.
      {"mntns_tree", {}, true, "", "", {}, CLONE_NEWPID | CLONE_NEWNS},
      {"mntns_uts", {}, true, "", "mntns_tree", {}, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS},
      {"mntns_hostpid", {}, true, "", "mntns_tree", {}, CLONE_NEWNS},
      // With a cgroup namespace too: the host's cgroup mounts read relative to it from inside.
      {"mntns_cgroupns", {}, true, "", "mntns_tree", {}, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWCGROUP},
      // unshare(CLONE_NEWNS) alone: a copy of the host's mounts.
      {"ns_mnt", {"mnt"}, true, "", "ns_refused"},
      // Issue 13: a net namespace of the root's own (lo up with addresses, a route, sysctls, a
      // TCP listener and a UDP socket in it); as pid 1 of a container with its UTS and mount
      // namespaces; with an established connection in it; unshare(CLONE_NEWNET) (lo down).
      {"netns_lo", {"lo"}, true, "", "", {}, CLONE_NEWNET},
      {"netns_veth_pair", {"veth"}, true, "", "netns_lo", {}, CLONE_NEWNET},
      {"netns_container",
       {"lo"},
       true,
       "",
       "netns_lo",
       {},
       CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS},
      {"netns_established",
       {"established"},
       true,
       "",
       "netns_lo",
       {"--tcp-established"},
       CLONE_NEWNET},
      {"ns_net", {"net"}, true, "", "ns_refused"},
      // A POSIX message queue only the IPC namespace holds (no fd, no mqueue mount).
      {"mqueue_refused",
       {},
       true,
       "POSIX message queue /crtools_q in the tree's IPC namespace: not supported",
       "",
       {},
       CLONE_NEWIPC},
      // Refused by the final dump, after the pre-copy rounds: the tree runs on, untracked.
      {"mqueue_refused_precopy",
       {},
       true,
       "POSIX message queue /crtools_q in the tree's IPC namespace: not supported",
       "mqueue_refused",
       {"--pre-copy"},
       CLONE_NEWIPC},
      {"pty_pair", {}},
      {"pty_unread", {}, false, "pty with unread input"},
      {"pty_outside", {"outside"}, false, "outside the process tree", "pty_refused"},
      {"pty_master_only", {"master_only"}, false, "no slave open", "pty_refused"},
      {"epoll", {}},
      {"epoll_oneshot_refused", {"oneshot"}, false, "fired EPOLLONESHOT", "epoll_refused"},
      {"epoll_outside_refused", {"outside"}, false, "file is not open", "epoll_refused"},
      {"inotify_watches", {}},
      {"inotify_watches_user", {"user"}, /*needs_root=*/true, "", "inotify_watches"},
      {"inotify_queued_refused",
       {"queued"},
       false,
       "inotify with events queued",
       "inotify_refused"},
      {"inotify_deleted_refused", {"deleted"}, false, "inotify watch wd 1", "inotify_refused"},
      {"fanotify_marks", {}, /*needs_root=*/true},
      {"fanotify_marks_user", {"user"}, /*needs_root=*/true, "", "fanotify_marks"},
      {"fanotify_queued_refused",
       {"queued"},
       true,
       "fanotify with events queued",
       "fanotify_refused"},
      {"fanotify_perm_refused", {"perm"}, true, "a permission class group", "fanotify_refused"},
      {"fanotify_deleted_refused", {"deleted"}, true, "on deleted file", "fanotify_refused"},
      {"opath_fds", {}},
      {"opath_deleted_refused", {"deleted"}, false, "O_PATH fd on deleted file", "opath_fds"},
      {"pidfd_tree", {}},
      {"pidfd_outside_refused", {"outside"}, false, "pidfd of pid", "pidfd_tree"},
      {"memfd", {}},
      {"memfd_user", {"user"}, /*needs_root=*/true, "", "memfd"},
      {"memfd_hugetlb_refused", {}, false, "with MFD_HUGETLB (hugetlbfs) not supported"},
      {"unix_socketpair", {}},
      {"unix_named", {}},
      {"socket_inet_refused", {}, false, "bytes corked or not yet sent not supported yet"},
      {"socket_mcast", {"v4"}},
      {"socket_mcast6", {"v6"}, false, "", "socket_mcast"},
      {"socket_mcast_source", {"source"}, false, "", "socket_mcast"},
      {"socket_ipopts_refused",
       {"ipopts"},
       false,
       "with IP options (IP_OPTIONS) not supported yet",
       "socket_opts_refused"},
      {"unix_rights", {}},
      {"unix_rights_file", {}},
      {"unix_rights_refused",
       {},
       false,
       "fd 5: an fd in flight (SCM_RIGHTS) whose file no fd of the tree holds"},
      {"unix_backlog_refused",
       {},
       false,
       "fd 4: unix socket connected to listener 'backlog.sock', not accepted yet, with data sent "
       "to it"},
      {"unix_passcred", {}},
      {"unix_passcred_refused", {}, false, "fd 5: unix socket with credentials in flight from pid "},
      {"unix_sender_refused",
       {},
       false,
       "fd 4: unix dgram socket with datagrams queued from 'cli.sock' (their sender cannot be "
       "restored)"},
      {"unix_unlinked", {}},
      {"unix_pending", {}},
      {"socket_tcp_halfclosed", {}, false, "", "", {"--tcp-established"}},
      {"socket_tcp_pending", {}},
      {"socket_tcp_pending_refused", {}, false, "connections not yet accepted (kept only for one"},
      // Issue 11 (conformance suite).
      {"pty_owner", {}, /*needs_root=*/true},
      {"unix_seqpacket_closed", {}},
      {"unix_dgram_chain", {}},
      {"tree_zombie_group", {}},
      {"mem_wipe_droppable", {}},
      // Issue 13: mlock, mlock2(MLOCK_ONFAULT), mlockall(MCL_CURRENT|MCL_FUTURE[|MCL_ONFAULT]),
      // and a user's locks, put back as the user.
      {"mem_mlock", {}},
      {"mem_mlockall", {"all"}, false, "", "mem_mlock"},
      {"mem_mlockall_onfault", {"all_onfault"}, false, "", "mem_mlock"},
      {"mem_mlock_user", {"user"}, /*needs_root=*/true, "", "mem_mlock"},
      // Protection keys: allocated ones, keys on mappings, each thread's PKRU.
      {"mem_pkey", {}},
      {"mem_aio_refused",
       {"aio"},
       false,
       ": AIO context (io_setup) ring /[aio] not supported",
       "mem_refused"},
      {"mem_hugetlb_refused",
       {"hugetlb"},
       false,
       ": hugetlb memory /anon_hugepage not supported",
       "mem_refused"},
      {"timerfd_times", {}},
      {"memfd_exec", {}},
      {"mem_guard_eof", {}},
      {"rseq_cs", {}},
      {"deleted_cwd", {}},
      {"deleted_nodes", {}},
      {"deleted_dev_refused", {"refused"}, false, "fd 4: device ", "deleted_nodes"},
      {"deleted_tmpfile", {}},
      {"deleted_sparse", {}, /*needs_root=*/true},
      {"ghost_limit_refused",
       {"big"},
       false,
       "fd 4: deleted file ",
       "deleted_sparse",
       {"--ghost-limit", "2M"}},
      {"file_map_mode", {}},
      {"proc_files", {}},
      {"proc_outside_refused",
       {"outside"},
       false,
       "fd 4: /proc/1/stat is of process 1, outside the process tree",
       "proc_files"},
      {"tree_stopped", {}},
      {"tree_stopped_tstp", {"tstp"}, false, "", "tree_stopped"},
      {"tree_stopped_ttin", {"ttin"}, false, "", "tree_stopped"},
      {"tree_stopped_ttou", {"ttou"}, false, "", "tree_stopped"},
      {"tree_stopped_orphan_refused", {}, false, "is stopped by SIGTSTP in process group "},
      {"cgroup_member", {}, /*needs_root=*/true},
      {"file_locks", {}},
      {"file_lock_wait", {}},
      {"file_owner", {}},
      {"file_lock_owner_outside",
       {"owner_outside"},
       false,
       "(F_SETOWN) is outside the tree",
       "file_lock_refused"},
      {"file_lock_lease_breaking",
       {"lease_breaking"},
       false,
       "lease being broken",
       "file_lock_refused"},
      // The lock's thread has an fd table of its own, refused at freeze since then, before the
      // locks pass would find the lock no fd of the tree shows; the lock must still be held.
      {"file_lock_posix_unseen",
       {"posix_unseen"},
       false,
       ": an fd table of its own (unshare(CLONE_FILES)) not supported yet",
       "file_lock_refused"},
      {"threads_own_files_refused",
       {"files"},
       false,
       ": an fd table of its own (unshare(CLONE_FILES)) not supported yet",
       "threads_own_refused"},
      {"threads_own_fs_refused",
       {"fs"},
       false,
       ": a cwd, root and umask of its own (unshare(CLONE_FS)) not supported yet",
       "threads_own_refused"},
      {"threads_ns_net_refused",
       {"net"},
       true,
       ": net namespace differs from its process's: not supported yet",
       "threads_ns_refused"},
      {"threads_ns_uts_refused",
       {"uts"},
       true,
       ": uts namespace differs from its process's: not supported yet",
       "threads_ns_refused"},
      // A child that unshared its net namespace (one inside the tree's own).
      {"ns_child_net_refused", {"child_net"}, true, "is in another net namespace", "ns_refused"},
      // Issue 13: what a tree's own net namespace may not hold.
      {"netns_tun_refused", {"tun"}, true, "link 'crtun0' (tun)", "netns_lo", {}, CLONE_NEWNET},
      {"netns_bridge_refused",
       {"bridge"},
       true,
       "link 'crbr0' (bridge): only loopback and veth links",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"netns_nft_refused",
       {"nft"},
       true,
       "nftables table 'inet crtools_test_netns'",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"netns_rule_refused",
       {"rule"},
       true,
       "policy rule 100 (table 100)",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"netns_table_refused",
       {"table"},
       true,
       "(table 100): routes of tables other than main",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"netns_old_socket_refused",
       {"old_socket"},
       true,
       "socket of another net namespace than the tree's own",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"netns_stranger_refused",
       {"stranger"},
       true,
       "outside the tree, is in the tree's own net namespace",
       "netns_lo",
       {},
       CLONE_NEWNET},
      {"mntns_open_tmpfs_refused",
       {"open_tmpfs"},
       true,
       "not reachable at its path (overmounted or another mount namespace's)",
       "mntns_tree",
       {},
       CLONE_NEWPID | CLONE_NEWNS},
      {"mntns_overlay_refused",
       {"overlay"},
       true,
       "fs type overlay",
       "mntns_tree",
       {},
       CLONE_NEWPID | CLONE_NEWNS},
      {"ns_user_refused", {"user"}, true, "maps no uid 0 or no gid 0", "ns_refused"},
      {"ns_pid_refused", {"pid"}, true, "pid_for_children namespace differs", "ns_refused"},
      {"ns_time_refused", {"time"}, true, "time_for_children namespace differs", "ns_refused"},
      {"ns_child_uts_refused", {"child_uts"}, true, "is in another uts namespace", "ns_refused"},
      // Namespaces inside the tree's own: a child that made a time or cgroup namespace.
      {"ns_child_time_refused",
       {"child_time"},
       true,
       "is in another time_for_children namespace",
       "ns_refused"},
      {"ns_child_cgroup_refused",
       {"child_cgroup"},
       true,
       "is in another cgroup namespace",
       "ns_refused"},
      // Issue 13: seccomp (the checker child reads each chain back: PTRACE_SECCOMP_GET_FILTER
      // needs CAP_SYS_ADMIN).
      {"seccomp_errno", {"errno"}, true, "", "seccomp_filters"},
      {"seccomp_stack", {"stack"}, true, "", "seccomp_filters"},
      {"seccomp_kill", {"kill"}, true, "", "seccomp_filters"},
      {"seccomp_log", {"log"}, true, "", "seccomp_filters"},
      {"seccomp_thread", {"thread"}, true, "", "seccomp_filters"},
      {"seccomp_tsync", {"tsync"}, true, "", "seccomp_filters"},
      {"seccomp_fork", {"fork"}, true, "", "seccomp_filters"},
      {"seccomp_strict", {"strict"}, true, "", "seccomp_filters"},
      {"seccomp_notif_refused",
       {"notif"},
       true,
       "(0: the oldest) returns SECCOMP_RET_USER_NOTIF (its listener cannot be restored): not "
       "supported",
       "seccomp_filters"},

  };
  return all;
}

// A pty comes back at its /dev/pts index: while a case with ptys runs, no other test may make
// one (it could take the index between the dump and the restore).
std::optional<test::DevptsLock> pty_lock(const ZdtmCase& c) {
  std::optional<test::DevptsLock> lock;
  const std::string& prog = c.program.empty() ? c.name : c.program;
  if (prog.starts_with("pty")) lock.emplace();
  return lock;
}

std::vector<ZdtmCase> select(bool refused) {
  std::vector<ZdtmCase> out;
  for (auto& c : cases())
    if (c.refused.empty() != refused) out.push_back(c);
  return out;
}

std::vector<std::string> argv_of(const ZdtmCase& c) {
  std::vector<std::string> argv = {zdtm_path(c.program.empty() ? c.name : c.program)};
  argv.insert(argv.end(), c.args.begin(), c.args.end());
  return argv;
}

bool root_ok(const ZdtmCase& c) { return !c.needs_root || geteuid() == 0; }

// --- Every program passes on its own (no dump): checks the programs and the protocol. -----
class ZdtmBaseline : public ::testing::TestWithParam<ZdtmCase> {};

TEST_P(ZdtmBaseline, PassesWithoutDump) {
  const ZdtmCase& c = GetParam();
  if (!root_ok(c)) GTEST_SKIP() << c.name << " needs root to change credentials";
  auto devpts = pty_lock(c);
  TempDir dir;
  Target t = Target::start(dir, argv_of(c), Target::Ready::kClosesFd3, c.clone_flags);
  ASSERT_GT(t.pid(), 0) << t.error();
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

INSTANTIATE_TEST_SUITE_P(All, ZdtmBaseline, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// --- Dump + restore on both paths. ---------------------------------------------------------
class ZdtmDumpRestore : public ::testing::TestWithParam<std::tuple<ZdtmCase, Mode>> {};

// The /proc comparison (proc_snapshot.h): `before` and `after` are snapshots of the same pids
// at the same point of the program (quiescent, before SIGTERM). Known bugs are printed, other
// allowed differences are silent, anything else fails the test.
void expect_same_proc(const ZdtmCase& c, const std::string& what, const Snapshot& before,
                      const Snapshot& after) {
  std::vector<Difference> d = diff(before, after, c.name, zdtm_allowlist());
  for (const Difference& x : d)
    if (x.allowed && x.allowed->known_bug)
      std::cout << "  [known bug] " << c.name << " " << what << ": " << x.key << ": '" << x.before
                << "' -> '" << x.after << "'\n";
  std::string bad = describe_unallowed(d);
  EXPECT_TRUE(bad.empty()) << what << ": /proc differs from before the dump (fix it, or allow it "
                           << "in test/e2e/proc_allowlist.cc with the reason):\n"
                           << bad;
}

// Waits until the tree is back at the point where the program waits for SIGTERM, then reads it.
// A busy program (zdtm_busy) is read at once the first time, and later when the threads that
// were blocked then are blocked again.
Snapshot settled_snapshot(const ZdtmCase& c, pid_t pid, const std::string& what,
                          const Snapshot* like = nullptr) {
  const bool busy = zdtm_busy(c.name);
  if (busy && !like) {
    // Its main thread may still be on its way into test_wait's sigsuspend: give it a moment
    // (a program whose main thread computes never gets there; then nothing is lost).
    const Snapshot leader = {{std::to_string(pid) + "/syscall", "blocked"}};
    (void)wait_quiescent(pid, std::chrono::seconds(2), &leader);
  } else if (!wait_quiescent(pid, std::chrono::seconds(10), busy ? like : nullptr)) {
    ADD_FAILURE() << what << ": a thread of the tree is still running 10 s on; a program that "
                  << "keeps working after ready goes into zdtm_busy() (proc_allowlist.cc)";
  }
  return take_snapshot(pid);
}

TEST_P(ZdtmDumpRestore, RestoredPasses) {
  const auto& [c, mode] = GetParam();
  if (!root_ok(c)) GTEST_SKIP() << c.name << " needs root to change credentials";
  if (!tools_present()) return;
  auto devpts = pty_lock(c);
  TempDir dir;
  Target t = Target::start(dir, argv_of(c), Target::Ready::kClosesFd3, c.clone_flags);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  const Snapshot before = settled_snapshot(c, pid, "original");
  // --leave-running must leave the original as it was.
  auto left = [&]() {
    expect_same_proc(c, "original after crdump --leave-running", before,
                     settled_snapshot(c, pid, "original after crdump", &before));
  };
  if (!dump_target(dir, t, mode, img, c.dump_args, false, left)) {
    dir.keep();
    return;
  }
  if (!restore_detached(dir, img, pid, c.restore_args)) {
    dir.keep();
    return;
  }
  const Snapshot after = settled_snapshot(c, pid, "restored", &before);
  expect_same_proc(c, "restored", before, after);
  if (mode == Mode::kTwice) {
    if (!(redump_restored(dir, pid, dir.path("img2"), c.dump_args) &&
          restore_detached(dir, dir.path("img2"), pid, c.restore_args))) {
      dir.keep();
      return;
    }
    expect_same_proc(c, "restored twice", after,
                     settled_snapshot(c, pid, "restored twice", &after));
  }
  expect_restored_passes(dir, pid);
  if (HasFailure()) {
    dir.keep();
    std::cerr << "kept " << dir.root() << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(All, ZdtmDumpRestore,
                         ::testing::Combine(::testing::ValuesIn(select(false)),
                                            ::testing::Values(Mode::kKill, Mode::kLeaveRunning,
                                                              Mode::kTwice)),
                         [](const auto& info) {
                           return std::get<0>(info.param).name + "_" +
                                  mode_name(std::get<1>(info.param));
                         });

// --- Refusals: crdump says what it refuses, in one line, and the target is untouched. ------
class ZdtmRefused : public ::testing::TestWithParam<ZdtmCase> {};

TEST_P(ZdtmRefused, DumpRefusedTargetIntact) {
  const ZdtmCase& c = GetParam();
  if (!tools_present()) return;
  auto devpts = pty_lock(c);
  TempDir dir;
  Target t = Target::start(dir, argv_of(c), Target::Ready::kClosesFd3, c.clone_flags);
  ASSERT_GT(t.pid(), 0) << t.error();
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    std::vector<std::string> args = {"-o", dir.path("img")};
    if (mode == Mode::kLeaveRunning) args.push_back("--leave-running");
    args.insert(args.end(), c.dump_args.begin(), c.dump_args.end());
    args.push_back(std::to_string(t.pid()));
    ToolRun d = run_tool(dir, "crdump", args);
    EXPECT_TRUE(d.status.exited && d.status.code == 1) << mode_name(mode) << ": " << d.describe();
    EXPECT_TRUE(d.one_line_error("crdump")) << "want one line 'crdump: ...': " << d.err;
    EXPECT_NE(d.err.find(c.refused), std::string::npos)
        << "message should name '" << c.refused << "': " << d.err;
    ASSERT_TRUE(pid_exists(t.pid())) << "target gone after a refused dump";
    if (mode == Mode::kKill) std::cout << "  [refused] " << d.err;
  }
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << "target after refused dumps: " << st.describe() << "\nlog: " << t.log();
}

INSTANTIATE_TEST_SUITE_P(All, ZdtmRefused, ::testing::ValuesIn(select(true)),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cr::e2e
