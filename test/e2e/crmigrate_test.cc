// crmigrate (issue 15): the source is killed only once the destination says the tree runs;
// a destination that fails, on purpose here, leaves the source running as it was. Both ends
// on this host: the destination restores into a pid namespace of its own (crrestore --pidns),
// the source's pids being still taken while it waits.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <regex>
#include <sstream>
#include <string>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

// The migrated root's host pid, from crmigrate -v's last line ("... (ok PID)").
pid_t migrated_pid(const std::string& err) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex(R"(runs at the destination \(ok (\d+)\))"))) return 0;
  return static_cast<pid_t>(std::stol(m[1]));
}

// SIGTERMs the migrated program (not our child: its namespace's init is its parent) and waits
// for it to go, through a pidfd; then its log must say PASS.
void expect_migrated_passes(TempDir& dir, pid_t pid) {
  ScopedFd pfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_TRUE(pfd.valid()) << "migrated pid " << pid << " is not there";
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  pollfd p{pfd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 30000), 1) << "migrated program does not end";
  std::string log = read_file(dir.work() + "/log");
  EXPECT_NE(log.find("PASS"), std::string::npos) << "log: " << log;
}

// `more`: options of the destination's crrestore.
void command_destination_takes_over(const std::string& more) {
  if (!tools_present() || !tool_exists("crmigrate")) {
    ADD_FAILURE() << "crmigrate not built";
    return;
  }
  become_subreaper();
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("precopy_writer")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string dest =
      tool_path("crrestore") + " --pidns --ack-fd 1 " + more + " 2>" + dir.path("dest.err");
  ToolRun m = run_tool(dir, "crmigrate", {"-v", std::to_string(pid), dest});
  ASSERT_TRUE(m.status.ok()) << m.describe() << "\ndestination: " << read_file(dir.path("dest.err"));
  EXPECT_NE(m.err.find("pre-copy round 0"), std::string::npos) << m.err;
  // The source is gone (killed once the answer came) and reaped by us, its parent.
  ExitStatus src = t.wait(std::chrono::seconds(10));
  EXPECT_TRUE(!src.exited && src.code == SIGKILL) << src.describe();
  const pid_t there = migrated_pid(m.err);
  ASSERT_GT(there, 0) << m.err;
  EXPECT_NE(there, pid);  // its host pid; inside its namespace it is `pid` again
  EXPECT_NE(read_file("/proc/" + std::to_string(there) + "/status").find("NSpid:\t" + std::to_string(there) + "\t" + std::to_string(pid)),
            std::string::npos)
      << read_file("/proc/" + std::to_string(there) + "/status");
  EXPECT_FALSE(write_tracked(there));
  expect_migrated_passes(dir, there);
  reap_zombies();
}

TEST(Crmigrate, CommandDestinationTakesOverTheTree) { command_destination_takes_over(""); }

// The destination resumes the tree before its memory is in (the answer goes once it runs) and
// the source is killed then; the program writes throughout and checks every page at the end.
TEST(Crmigrate, LazyDestinationTakesOverTheTree) { command_destination_takes_over("--lazy"); }

// crrestore --listen on a loopback port: the stream and the answer on one connection.
TEST(Crmigrate, ListeningDestinationTakesOverTheTree) {
  if (!tools_present() || !tool_exists("crmigrate")) {
    ADD_FAILURE() << "crmigrate not built";
    return;
  }
  become_subreaper();
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "8"});
  ASSERT_GT(t.pid(), 0) << t.error();
  int errp[2];
  ASSERT_EQ(pipe2(errp, O_CLOEXEC), 0);
  SpawnSpec rs;
  rs.argv = {tool_path("crrestore"), "--pidns", "--listen", "127.0.0.1:0"};
  rs.stderr_fd = errp[1];
  const pid_t restorer = spawn(rs);
  ::close(errp[1]);
  ASSERT_GT(restorer, 0);
  std::string said;
  char buf[256];
  std::smatch port;
  while (!std::regex_search(said, port, std::regex(R"(listening on \S+ port (\d+)\n)"))) {
    const ssize_t n = ::read(errp[0], buf, sizeof buf);
    if (n <= 0) break;
    said.append(buf, static_cast<size_t>(n));
  }
  ASSERT_FALSE(port.empty()) << said;
  ToolRun m = run_tool(dir, "crmigrate", {"-v", std::to_string(t.pid()), "127.0.0.1:" + port[1].str()});
  ::close(errp[0]);
  ASSERT_TRUE(m.status.ok()) << m.describe();
  ExitStatus src = t.wait(std::chrono::seconds(10));
  EXPECT_TRUE(!src.exited && src.code == SIGKILL) << src.describe();
  const pid_t there = migrated_pid(m.err);
  ASSERT_GT(there, 0) << m.err;
  expect_migrated_passes(dir, there);
  auto r = wait_exit(restorer, std::chrono::seconds(30));  // its exit status is the root's
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok()) << r->describe();
}

// A destination that fails on purpose: after reading all of the stream (the source waited,
// frozen), or at once; and a restore that fails there. Each time the source carries on, no
// longer tracked, and passes its own check.
TEST(Crmigrate, FailingDestinationLeavesTheSourceRunning) {
  if (!tools_present() || !tool_exists("crmigrate")) {
    ADD_FAILURE() << "crmigrate not built";
    return;
  }
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("precopy_writer")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string pid = std::to_string(t.pid());
  const std::vector<std::pair<std::string, std::string>> dests = {
      {"cat >/dev/null; echo 'error: refusing on purpose'", "refusing on purpose"},
      {"cat >/dev/null", "closed the channel without answering"},
      {"exit 3", ""},
      {tool_path("crrestore") + " --ack-fd 1 --manage-cgroups=nonsense 2>/dev/null", ""},
      // Restored in crrestore's own pid namespace: the source still holds the pid.
      {tool_path("crrestore") + " --ack-fd 1 2>/dev/null", "the destination answered: error"},
  };
  for (const auto& [dest, says] : dests) {
    SCOPED_TRACE(dest);
    ToolRun m = run_tool(dir, "crmigrate", {pid, dest});
    EXPECT_EQ(m.status.code, 1) << m.describe();
    EXPECT_TRUE(m.one_line_error("crmigrate")) << m.err;
    EXPECT_NE(m.err.find(says), std::string::npos) << m.err;
    EXPECT_NE(m.err.find("carries on"), std::string::npos) << m.err;
    ASSERT_TRUE(pid_exists(t.pid()));
    EXPECT_FALSE(write_tracked(t.pid()));
  }
  ExitStatus end = t.terminate();
  EXPECT_TRUE(end.ok()) << end.describe() << "\nlog: " << t.log();
}

}  // namespace
}  // namespace cr::e2e
