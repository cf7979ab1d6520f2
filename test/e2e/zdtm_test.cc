// The zdtm programs, each dumped and restored on two paths (kill, leave-running), and the
// programs crdump must refuse. The table is the list of what the tools must handle.
#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

struct ZdtmCase {
  std::string name;
  std::vector<std::string> args;
  bool needs_root = false;
  std::string refused;  // empty: must dump and restore; otherwise crdump's message contains this
  std::string program;  // the zdtm program to run; empty: `name` (cases that differ by args)
};

std::ostream& operator<<(std::ostream& os, const ZdtmCase& c) { return os << c.name; }

const std::vector<ZdtmCase>& cases() {
  static const std::vector<ZdtmCase> all = {
      {"regs_gpr_avx", {}},
      {"fsgs_tls", {}},
      {"mem_anon", {}},
      {"mem_edges", {}},
      {"heap_brk", {}},
      {"stack_deep", {}},
      {"file_map_private", {}},
      {"vdso_clock", {}},
      {"pid_ids", {"arg1", "arg2"}},
      {"proc_attrs", {}},
      {"creds_nonroot", {}, /*needs_root=*/true},
      {"creds_nonroot_caps", {"caps"}, true, "", "creds_nonroot"},
      {"proc_prctl", {}, true},
      {"proc_prctl_root_pdeathsig", {"root_pdeathsig"}, true, "signal 10 (PR_SET_PDEATHSIG) on the root", "proc_prctl"},
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
      {"tree_orphan", {}},
      {"tree_gone_leaders", {}},
      {"tree_clone_files", {}},
      {"event_fds", {}},
      {"sysv_ipc", {}},
      {"pty_pair", {}},
      {"pty_unread", {}, false, "pty with unread input"},
      {"pty_outside", {"outside"}, false, "outside the process tree", "pty_refused"},
      {"pty_master_only", {"master_only"}, false, "no slave open", "pty_refused"},
      {"epoll", {}},
      {"epoll_oneshot_refused", {"oneshot"}, false, "fired EPOLLONESHOT", "epoll_refused"},
      {"epoll_outside_refused", {"outside"}, false, "file is not open", "epoll_refused"},
      {"memfd", {}},
      {"memfd_hugetlb_refused", {}, false, "with MFD_HUGETLB (hugetlbfs) not supported"},
      {"unix_socketpair", {}},
      {"unix_named", {}},
      {"socket_inet_refused", {}, false, "fd 4: socket of family inet (AF_INET) not supported yet"},
      {"unix_rights_refused", {}, false, "unix socket with file descriptors in flight"},
      {"unix_backlog_refused", {}, false,
       "fd 4: listening unix socket 'backlog.sock' with 1 connections not yet accepted"},
      {"unix_passcred_refused", {}, false,
       "fd 5: unix socket with credentials in flight (SO_PASSCRED) not supported yet"},
      {"unix_sender_refused", {}, false,
       "fd 4: unix dgram socket with datagrams queued from 'cli.sock' (their sender cannot be "
       "restored)"},
      {"unix_unlinked_refused", {}, false, "fd 4: unix socket bound to 'gone.sock': the file was"},
      {"ns_uts_refused", {"uts"}, true, "uts namespace differs from crdump's", "ns_refused"},
      {"ns_net_refused", {"net"}, true, "net namespace differs from crdump's", "ns_refused"},
      {"ns_mnt_refused", {"mnt"}, true, "mnt namespace differs from crdump's", "ns_refused"},
      {"ns_cgroup_refused", {"cgroup"}, true, "cgroup namespace differs from crdump's", "ns_refused"},
      {"ns_user_refused", {"user"}, true, "user namespace differs from crdump's", "ns_refused"},
      {"ns_pid_refused", {"pid"}, true, "pid_for_children namespace differs", "ns_refused"},
      {"ns_time_refused", {"time"}, true, "time_for_children namespace differs", "ns_refused"},
      {"ns_child_uts_refused", {"child_uts"}, true, "is in another uts namespace", "ns_refused"},

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
  Target t = Target::start(dir, argv_of(c));
  ASSERT_GT(t.pid(), 0) << t.error();
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

INSTANTIATE_TEST_SUITE_P(All, ZdtmBaseline, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// --- Dump + restore on both paths. ---------------------------------------------------------
class ZdtmDumpRestore : public ::testing::TestWithParam<std::tuple<ZdtmCase, Mode>> {};

TEST_P(ZdtmDumpRestore, RestoredPasses) {
  const auto& [c, mode] = GetParam();
  if (!root_ok(c)) GTEST_SKIP() << c.name << " needs root to change credentials";
  if (!tools_present()) return;
  auto devpts = pty_lock(c);
  TempDir dir;
  Target t = Target::start(dir, argv_of(c));
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, mode, img)) {
    dir.keep();
    return;
  }
  if (!restore_detached(dir, img, pid)) {
    dir.keep();
    return;
  }
  if (mode == Mode::kTwice &&
      !(redump_restored(dir, pid, dir.path("img2")) && restore_detached(dir, dir.path("img2"), pid))) {
    dir.keep();
    return;
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
  Target t = Target::start(dir, argv_of(c));
  ASSERT_GT(t.pid(), 0) << t.error();
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    std::vector<std::string> args = {"-o", dir.path("img")};
    if (mode == Mode::kLeaveRunning) args.push_back("--leave-running");
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
