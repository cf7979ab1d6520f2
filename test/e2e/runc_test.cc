// runc with crcriu as its criu (`runc --criu crcriu`): a busybox container, built here as an
// OCI bundle (`runc spec`, its default mounts, masked and read-only paths, pid, net, IPC, UTS and
// mount namespaces) with a bind-mounted host directory, counts into a log there. It is
// checkpointed (--leave-running, then for real), restored, checkpointed and restored again; the
// log must go on from where it was, one number after another, never starting over.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <sstream>

#include "e2e_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

const std::string kRunc = "/usr/sbin/runc";
const std::string kBusybox = "/bin/busybox";

struct Cmd {
  ExitStatus status;
  std::string err;
  std::string out;
  std::string describe() const { return status.describe() + ", stderr: " + err + out; }
};

// Runs argv with stdin /dev/null, stdout and stderr to files of `dir` (or /dev/null too:
// `runc run -d` gives the container its own stdio).
Cmd run(TempDir& dir, const std::vector<std::string>& argv, const std::string& name,
        bool quiet = false) {
  const std::string out = dir.path(name + ".out"), err = dir.path(name + ".err");
  int o = quiet ? -1 : ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int e = quiet ? -1 : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdout_fd = o;
  spec.stderr_fd = e;
  const pid_t pid = spawn(spec);
  if (o >= 0) ::close(o);
  if (e >= 0) ::close(e);
  Cmd c;
  if (pid > 0) {
    auto st = wait_exit(pid, std::chrono::seconds(120));
    if (st) {
      c.status = *st;
    } else {
      kill_child(pid);
    }
  }
  if (!quiet) {
    c.err = read_file(err);
    c.out = read_file(out);
  }
  return c;
}

// The log's numbers; `consecutive` false unless they are 1, 2, 3, ... with no gap or restart.
std::vector<long> numbers(const std::string& log, bool& consecutive) {
  std::vector<long> v;
  std::istringstream in(log);
  std::string line;
  consecutive = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    v.push_back(std::stol(line));
    if (v.back() != static_cast<long>(v.size())) consecutive = false;
  }
  return v;
}

// Waits (inotify on its directory, bounded) until the log has at least `n` complete lines.
bool wait_lines(const std::string& dir, const std::string& log, size_t n) {
  ScopedFd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!in.valid() || ::inotify_add_watch(in.get(), dir.c_str(), IN_MODIFY | IN_CREATE) < 0)
    return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const std::string text = read_file(log);
    if (static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) >= n) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{in.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) > 0) {
      char buf[4096];
      while (::read(in.get(), buf, sizeof buf) > 0) {
      }
    }
  }
}

class RuncContainer : public ::testing::Test {
 protected:
  // The container's process and namespaces (config.json as `runc spec` wrote it, edited).
  virtual void configure(nlohmann::json& config) {
    config["process"]["args"] = {
        "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >> /out/log; sleep 0.01; done"};
  }
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "runc runs containers as root here";
    if (!tools_present()) return;
    for (const std::string& p : {kRunc, kBusybox, crcriu_})
      ASSERT_EQ(::access(p.c_str(), X_OK), 0)
          << p << " is missing (scripts/deps.sh installs runc and busybox-static)";
    become_subreaper();
    id_ = "crtools-test-" + std::to_string(::getpid());
    bundle_ = dir_.path("bundle");
    out_ = dir_.path("out");
    const std::string rootfs = bundle_ + "/rootfs";
    for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/tmp", "/out"})
      std::filesystem::create_directories(rootfs + d);
    std::filesystem::create_directories(out_);
    std::filesystem::copy_file(kBusybox, rootfs + "/bin/busybox");
    for (const char* applet : {"sh", "sleep", "echo", "cat", "nc"})
      std::filesystem::create_symlink("busybox", rootfs + "/bin/" + applet);
    Cmd spec = run(dir_, {kRunc, "spec", "--bundle", bundle_}, "spec");
    ASSERT_TRUE(spec.status.ok()) << spec.describe();
    auto config = nlohmann::json::parse(read_file(bundle_ + "/config.json"));
    config["process"]["terminal"] = false;
    configure(config);
    config["mounts"].push_back(
        {{"destination", "/out"}, {"type", "bind"}, {"source", out_}, {"options", {"rbind", "rw"}}});
    write_file(bundle_ + "/config.json", config.dump(1));
  }
  void TearDown() override {
    if (started_) {
      for (const std::string& id : {id_, id_ + "-copy"}) {
        (void)run(dir_, runc({"kill", id, "KILL"}), "kill");
        (void)run(dir_, runc({"delete", "--force", id}), "delete");
      }
    }
    if (HasFailure()) dir_.keep();
  }
  std::vector<std::string> runc(std::vector<std::string> args) const {
    std::vector<std::string> argv = {kRunc, "--root", dir_.path("state"), "--log",
                                     dir_.path("runc.log"), "--criu", crcriu_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  // "running", or what `runc state` said.
  std::string state() {
    Cmd s = run(dir_, runc({"state", id_}), "state");
    if (!s.status.ok()) return "gone";
    return nlohmann::json::parse(s.out)["status"].get<std::string>();
  }
  // The container's init, a child of ours (runc exits, we are a subreaper): reaped once the
  // checkpoint killed it, else its zombie holds the pid the restore needs.
  pid_t init_pid() {
    Cmd s = run(dir_, runc({"state", id_}), "state");
    if (!s.status.ok()) return -1;
    return nlohmann::json::parse(s.out)["pid"].get<pid_t>();
  }
  std::string log() const { return read_file(out_ + "/log"); }
  void expect_counting_on(size_t more) {
    bool consecutive = false;
    const size_t had = numbers(log(), consecutive).size();
    ASSERT_TRUE(wait_lines(out_, out_ + "/log", had + more)) << "the counter stopped at " << had;
    const std::vector<long> v = numbers(log(), consecutive);
    EXPECT_TRUE(consecutive) << "the count restarted or skipped:\n" << log();
  }
  Cmd checkpoint(const std::string& images, bool leave_running, bool tcp = false) {
    std::vector<std::string> args = {"checkpoint", "--image-path", images, "--work-path",
                                     images + "-work"};
    if (leave_running) args.push_back("--leave-running");
    if (tcp) args.push_back("--tcp-established");
    args.push_back(id_);
    return run(dir_, runc(args), "checkpoint");
  }
  Cmd restore(const std::string& images, bool tcp = false, const std::string& as = "") {
    std::vector<std::string> args = {"restore",   "--detach",       "--image-path", images,
                                     "--work-path", images + "-work", "--bundle",     bundle_};
    if (tcp) args.push_back("--tcp-established");
    args.push_back(as.empty() ? id_ : as);
    return run(dir_, runc(args), "restore");
  }
  std::string work_log(const std::string& images, const char* name) const {
    return read_file(images + "-work/" + name);
  }

  TempDir dir_;
  const std::string crcriu_ = std::string(CR_BIN_DIR) + "/crcriu";
  std::string id_, bundle_, out_;
  bool started_ = false;
};

TEST_F(RuncContainer, CheckpointRestoreAndAgainCountOnFromWhereItWas) {
  if (HasFatalFailure()) return;
  Cmd r = run(dir_, runc({"run", "--detach", "--bundle", bundle_, id_}), "run", true);
  started_ = true;
  ASSERT_TRUE(r.status.ok()) << "runc run failed: " << read_file(dir_.path("runc.log"));
  ASSERT_TRUE(wait_lines(out_, out_ + "/log", 5)) << log();

  // --leave-running: the container carries on, an image is written.
  const std::string first = dir_.path("ckpt-live");
  Cmd c = checkpoint(first, true);
  ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(first, "dump.log");
  EXPECT_EQ(state(), "running");
  EXPECT_TRUE(std::filesystem::is_regular_file(first + "/crtools.img"));
  expect_counting_on(5);

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string images = dir_.path("ckpt-" + std::to_string(round));
    const pid_t init = init_pid();
    ASSERT_GT(init, 0);
    c = checkpoint(images, false);
    ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(images, "dump.log");
    EXPECT_EQ(state(), "gone");
    ASSERT_TRUE(wait_exit(init, std::chrono::seconds(30))) << "the checkpointed init lives on";
    bool consecutive = false;
    const size_t at_checkpoint = numbers(log(), consecutive).size();
    EXPECT_TRUE(consecutive) << log();
    ToolRun check = run_tool(dir_, "crit", {"check", images + "/crtools.img"});
    EXPECT_TRUE(check.status.ok()) << check.describe();

    c = restore(images);
    ASSERT_TRUE(c.status.ok()) << c.describe()
                               << "\nlog: " << work_log(images, "restore.log");
    EXPECT_EQ(state(), "running");
    expect_counting_on(5);
    EXPECT_GT(numbers(log(), consecutive).size(), at_checkpoint);
  }
}

// What crcriu cannot dump is refused through the protocol: runc says the checkpoint failed, its
// log names the reason, and the container runs on, counting. Here its stdout is a file of the
// host's (runc run's own), which the container's mount namespace does not show.
TEST_F(RuncContainer, ARefusedCheckpointLeavesTheContainerRunning) {
  if (HasFatalFailure()) return;
  Cmd r = run(dir_, runc({"run", "--detach", "--bundle", bundle_, id_}), "run");
  started_ = true;
  ASSERT_TRUE(r.status.ok()) << r.describe();
  ASSERT_TRUE(wait_lines(out_, out_ + "/log", 5)) << log();
  const std::string images = dir_.path("ckpt");
  Cmd c = checkpoint(images, false);
  EXPECT_FALSE(c.status.ok());
  EXPECT_NE(c.err.find("criu failed"), std::string::npos) << c.describe();
  EXPECT_NE(work_log(images, "dump.log").find("not the file at that path below the tree's root"),
            std::string::npos)
      << work_log(images, "dump.log");
  EXPECT_FALSE(std::filesystem::exists(images + "/crtools.img"));
  EXPECT_EQ(state(), "running");
  expect_counting_on(5);
}

// A TCP server in a container on the host's network (no net namespace of its own): busybox nc
// with `-ll -e cat` echoes each client's lines from a cat of its own. A client outside (this
// test) connects and is echoed; `runc checkpoint --tcp-established` and `restore
// --tcp-established` keep its connection: the same socket is echoed after the restore.
class RuncTcpServer : public RuncContainer {
 protected:
  void configure(nlohmann::json& config) override {
    port_ = free_port();
    config["process"]["args"] = {"nc", "-ll", "-p", std::to_string(port_), "-e", "/bin/cat"};
    auto& ns = config["linux"]["namespaces"];
    for (auto it = ns.begin(); it != ns.end();)
      it = (*it)["type"] == "network" ? ns.erase(it) : it + 1;
  }
  uint16_t port_ = 0;
};

TEST_F(RuncTcpServer, AClientOutsideKeepsItsConnection) {
  if (HasFatalFailure()) return;
  ASSERT_TRUE(nft_present()) << "nft is needed for --tcp-established (scripts/deps.sh installs it)";
  Cmd r = run(dir_, runc({"run", "--detach", "--bundle", bundle_, id_}), "run", true);
  started_ = true;
  ASSERT_TRUE(r.status.ok()) << "runc run failed: " << read_file(dir_.path("runc.log"));
  ScopedFd client = connect_tcp_when_listening(port_);
  ASSERT_TRUE(client.valid()) << "the container's server does not listen on " << port_;
  ASSERT_TRUE(send_all(client.get(), "one\n"));
  ASSERT_EQ(recv_n(client.get(), 4), "one\n");

  const std::string images = dir_.path("ckpt");
  const pid_t init = init_pid();
  ASSERT_GT(init, 0);
  Cmd c = checkpoint(images, false, true);
  ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(images, "dump.log");
  ASSERT_TRUE(wait_exit(init, std::chrono::seconds(30))) << "the checkpointed init lives on";
  // Sent while the container is gone: held by the lock, answered after the restore.
  ASSERT_TRUE(send_all(client.get(), "two\n"));
  c = restore(images, true);
  ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(images, "restore.log");
  EXPECT_EQ(state(), "running");
  std::string error;
  EXPECT_EQ(recv_n(client.get(), 4, &error), "two\n") << error;
  ASSERT_TRUE(send_all(client.get(), "three\n"));
  EXPECT_EQ(recv_n(client.get(), 6, &error), "three\n") << error;
  // A new client is served too: the listener came back.
  ScopedFd second = connect_tcp(port_);
  ASSERT_TRUE(second.valid());
  ASSERT_TRUE(send_all(second.get(), "four\n"));
  EXPECT_EQ(recv_n(second.get(), 5, &error), "four\n") << error;
}

// Restored under another name: runc makes the new container's cgroups and puts crcriu in them
// (cg_root on cgroup v1); the tree runs there, and its /sys/fs/cgroup binds show its new
// cgroups, not the old container's (gone with it).
TEST_F(RuncContainer, RestoredAsAnotherContainerSeesItsOwnCgroups) {
  if (HasFatalFailure()) return;
  Cmd r = run(dir_, runc({"run", "--detach", "--bundle", bundle_, id_}), "run", true);
  started_ = true;
  ASSERT_TRUE(r.status.ok()) << "runc run failed: " << read_file(dir_.path("runc.log"));
  ASSERT_TRUE(wait_lines(out_, out_ + "/log", 5)) << log();
  const std::string images = dir_.path("ckpt");
  const pid_t init = init_pid();
  ASSERT_GT(init, 0);
  Cmd c = checkpoint(images, false);
  ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(images, "dump.log");
  ASSERT_TRUE(wait_exit(init, std::chrono::seconds(30)));
  const std::string copy = id_ + "-copy";
  c = restore(images, false, copy);
  ASSERT_TRUE(c.status.ok()) << c.describe() << "\nlog: " << work_log(images, "restore.log");
  expect_counting_on(5);
  Cmd st = run(dir_, runc({"state", copy}), "state");
  ASSERT_TRUE(st.status.ok()) << st.describe();
  const pid_t pid = nlohmann::json::parse(st.out)["pid"].get<pid_t>();
  // Each cgroup bind shows the cgroup of its hierarchy the tree is in now (/proc/PID/cgroup:
  // "N:cpu:/path"), and never the old container's.
  const std::string cgroup = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  EXPECT_NE(cgroup.find("/" + copy + "\n"), std::string::npos) << cgroup;
  std::map<std::string, std::string> in_cgroup;  // "cpu" or "name=systemd" -> path
  std::istringstream cg(cgroup);
  for (std::string line; std::getline(cg, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a != std::string::npos && b != std::string::npos)
      in_cgroup[line.substr(a + 1, b - a - 1)] = line.substr(b + 1);
  }
  const std::string mounts = read_file("/proc/" + std::to_string(pid) + "/mountinfo");
  size_t cgroup_binds = 0;
  std::istringstream in(mounts);
  for (std::string line; std::getline(in, line);) {
    const size_t dash = line.find(" - cgroup cgroup ");
    if (dash == std::string::npos) continue;
    ++cgroup_binds;
    std::istringstream f(line);
    std::string id, parent, dev, root;
    f >> id >> parent >> dev >> root;
    // The hierarchy: the filesystem's options less rw/ro ("rw,cpu" -> "cpu").
    std::string opts = line.substr(dash + std::string(" - cgroup cgroup ").size());
    for (const char* rw : {"rw,", "ro,"})
      if (opts.starts_with(rw)) opts = opts.substr(3);
    ASSERT_TRUE(in_cgroup.count(opts)) << opts << " in " << cgroup;
    EXPECT_EQ(root, in_cgroup[opts]) << line;
  }
  EXPECT_EQ(mounts.find("/" + id_ + " /sys/fs/cgroup"), std::string::npos) << mounts;
  if (cgroup.find(":cpu:") != std::string::npos) {
    EXPECT_GT(cgroup_binds, 0u) << mounts;
  }
}

}  // namespace
}  // namespace cr::e2e
