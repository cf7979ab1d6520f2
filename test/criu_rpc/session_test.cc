// crcriu swrk as a caller drives it: requests over a SOCK_SEQPACKET socket, notifications
// acknowledged, a real process dumped into the images directory and restored from it.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "criu_rpc/criu_rpc.pb.h"

namespace {

const std::string kCrcriu = std::string(CR_BIN_DIR) + "/crcriu";

// One `crcriu swrk 3` with the test as its caller.
class Swrk {
 public:
  Swrk() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) std::abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(sv[1], 3);  // dup2 clears close-on-exec
      ::execl(kCrcriu.c_str(), "crcriu", "swrk", "3", nullptr);
      ::_exit(127);
    }
    ::close(sv[1]);
    sk_ = sv[0];
  }
  ~Swrk() {
    if (sk_ >= 0) ::close(sk_);
    if (pid_ > 0) wait();
  }
  void send(const crcriu::Request& req) {
    std::string b;
    ASSERT_TRUE(req.SerializeToString(&b));
    ASSERT_EQ(::send(sk_, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  }
  void send_raw(const std::string& b) {
    ASSERT_EQ(::send(sk_, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  }
  // The next response; type EMPTY with success false when crcriu hung up.
  crcriu::Response receive() {
    std::vector<char> buf(1 << 16);
    const ssize_t n = ::recv(sk_, buf.data(), buf.size(), 0);
    crcriu::Response r;
    if (n <= 0 || !r.ParseFromArray(buf.data(), static_cast<int>(n))) {
      r.set_type(crcriu::EMPTY);
      r.set_success(false);
    }
    return r;
  }
  // Answers notifications (all acknowledged unless `refuse` names one) until the final
  // response; the scripts seen, with their pids.
  crcriu::Response serve(std::vector<std::pair<std::string, int>>& seen,
                         const std::string& refuse = "") {
    for (;;) {
      crcriu::Response r = receive();
      if (r.type() != crcriu::NOTIFY) return r;
      seen.emplace_back(r.notify().script(), r.notify().pid());
      crcriu::Request ack;
      ack.set_type(crcriu::NOTIFY);
      ack.set_notify_success(r.notify().script() != refuse);
      send(ack);
    }
  }
  int wait() {
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }

 private:
  pid_t pid_ = -1;
  int sk_ = -1;
};

// A CRIU statistics image: the service and stats magics, a size, one StatsEntry.
crcriu::StatsEntry stats_image(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  crcriu::StatsEntry e;
  uint32_t head[3] = {};
  if (b.size() < sizeof head) return e;
  std::memcpy(head, b.data(), sizeof head);
  EXPECT_EQ(head[0], 0x55105940u) << path;
  EXPECT_EQ(head[1], 0x57093306u) << path;
  EXPECT_EQ(head[2], b.size() - sizeof head) << path;
  EXPECT_TRUE(e.ParseFromString(b.substr(sizeof head))) << path;
  return e;
}

crcriu::Request simple(crcriu::ReqType type) {
  crcriu::Request r;
  r.set_type(type);
  return r;
}

TEST(CrcriuSession, VersionAndFeatures) {
  {
    Swrk s;
    s.send(simple(crcriu::VERSION));
    crcriu::Response r = s.receive();
    ASSERT_TRUE(r.success());
    EXPECT_EQ(r.type(), crcriu::VERSION);
    EXPECT_EQ(r.version().major_number(), 3);
    EXPECT_EQ(r.version().minor_number(), 19);
    EXPECT_EQ(r.version().name(), "crcriu");
    EXPECT_FALSE(r.version().has_gitid()) << "a gitid makes go-criu add a minor version";
    EXPECT_EQ(s.wait(), 0);
  }
  {
    Swrk s;
    crcriu::Request req = simple(crcriu::FEATURE_CHECK);
    req.mutable_features()->set_mem_track(true);
    s.send(req);
    crcriu::Response r = s.receive();
    ASSERT_TRUE(r.success());
    EXPECT_EQ(r.type(), crcriu::FEATURE_CHECK);
    EXPECT_FALSE(r.features().mem_track());
    EXPECT_FALSE(r.features().lazy_pages());
    EXPECT_EQ(s.wait(), 0);
  }
  {
    // keep_open: more requests on one connection, until the caller hangs up.
    Swrk s;
    crcriu::Request req = simple(crcriu::VERSION);
    req.set_keep_open(true);
    s.send(req);
    EXPECT_TRUE(s.receive().success());
    s.send(simple(crcriu::CHECK));
    EXPECT_TRUE(s.receive().success());
    EXPECT_EQ(s.wait(), 0);
  }
}

TEST(CrcriuSession, UnsupportedRequestsAreAnsweredWithAReason) {
  for (crcriu::ReqType t : {crcriu::PRE_DUMP, crcriu::PAGE_SERVER, crcriu::CPUINFO_DUMP,
                            crcriu::WAIT_PID, crcriu::SINGLE_PRE_DUMP}) {
    Swrk s;
    s.send(simple(t));
    crcriu::Response r = s.receive();
    EXPECT_FALSE(r.success());
    EXPECT_EQ(r.type(), t);
    EXPECT_EQ(r.cr_errno(), EOPNOTSUPP);
    EXPECT_NE(r.cr_errmsg().find("not supported by crcriu"), std::string::npos) << r.cr_errmsg();
    EXPECT_EQ(s.wait(), 1);
  }
  Swrk s;
  s.send_raw("\xff\xff\xff garbage");
  crcriu::Response r = s.receive();
  EXPECT_FALSE(r.success());
  EXPECT_NE(r.cr_errmsg().find("not a CRIU RPC request"), std::string::npos) << r.cr_errmsg();
  EXPECT_EQ(s.wait(), 1);
}

class CrcriuDump : public ::testing::Test {
 protected:
  void SetUp() override {
    // Restored processes come back to us when crcriu exits.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    char tmpl[] = "/tmp/crcriu-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(dir_fd_, 0);
  }
  void TearDown() override {
    for (pid_t p : pids_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    ::close(dir_fd_);
    std::filesystem::remove_all(dir_);
  }
  // A process of its own session: `sleep` that a pipe says is running.
  pid_t start_sleeper() {
    const pid_t p = ::fork();
    if (p == 0) {
      ::setsid();
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      // Nothing else of ours (or of whoever ran the test) goes with it into the image.
      ::syscall(SYS_close_range, 3, ~0u, 0);
      ::execl("/bin/sleep", "sleep", "1000", nullptr);
      ::_exit(127);
    }
    pids_.push_back(p);
    // exec done once /proc shows the new program.
    for (int i = 0; i < 100000; ++i) {
      std::ifstream comm("/proc/" + std::to_string(p) + "/comm");
      std::string c;
      if (std::getline(comm, c) && c == "sleep") break;
      ::sched_yield();
    }
    return p;
  }
  crcriu::Request dump_request(pid_t pid) {
    crcriu::Request req = simple(crcriu::DUMP);
    auto* o = req.mutable_opts();
    o->set_images_dir_fd(dir_fd_);
    o->set_pid(pid);
    o->set_log_file("dump.log");
    o->set_notify_scripts(true);
    o->set_manage_cgroups(true);
    return req;
  }
  static bool alive(pid_t p) {
    std::ifstream st("/proc/" + std::to_string(p) + "/stat");
    std::string line;
    if (!std::getline(st, line)) return false;
    const auto close = line.rfind(')');
    return close != std::string::npos && line[close + 2] != 'Z';
  }

  std::string dir_;
  int dir_fd_ = -1;
  std::vector<pid_t> pids_;
};

TEST_F(CrcriuDump, DumpAndRestoreWithEveryNotification) {
  const pid_t p = start_sleeper();
  std::vector<std::pair<std::string, int>> seen;
  {
    Swrk s;
    s.send(dump_request(p));
    crcriu::Response r = s.serve(seen);
    ASSERT_TRUE(r.success()) << r.cr_errmsg();
    EXPECT_EQ(r.type(), crcriu::DUMP);
    EXPECT_EQ(s.wait(), 0);
  }
  ::waitpid(p, nullptr, 0);
  pids_.clear();
  const std::vector<std::string> dump_scripts = {"pre-dump", "network-lock", "post-dump"};
  ASSERT_EQ(seen.size(), dump_scripts.size());
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].first, dump_scripts[i]);
  EXPECT_TRUE(std::filesystem::is_regular_file(dir_ + "/crtools.img"));
  EXPECT_TRUE(std::filesystem::file_size(dir_ + "/dump.log") > 0);
  // What podman and others look for to call a checkpoint complete.
  EXPECT_GT(std::filesystem::file_size(dir_ + "/inventory.img"), 0u);
  const crcriu::StatsEntry dumped = stats_image(dir_ + "/stats-dump");
  ASSERT_TRUE(dumped.has_dump());
  EXPECT_GT(dumped.dump().pages_written(), 0u);
  EXPECT_GE(dumped.dump().frozen_time(), dumped.dump().freezing_time());
  EXPECT_FALSE(alive(p));

  seen.clear();
  crcriu::Request req = simple(crcriu::RESTORE);
  auto* o = req.mutable_opts();
  o->set_images_dir_fd(dir_fd_);
  o->set_log_file("restore.log");
  o->set_notify_scripts(true);
  o->set_rst_sibling(true);
  Swrk s;
  s.send(req);
  crcriu::Response r = s.serve(seen);
  ASSERT_TRUE(r.success()) << r.cr_errmsg();
  EXPECT_EQ(r.type(), crcriu::RESTORE);
  EXPECT_EQ(r.restore().pid(), p);
  pids_.push_back(p);
  EXPECT_EQ(s.wait(), 0);
  const std::vector<std::string> restore_scripts = {
      "pre-restore", "setup-namespaces", "post-setup-namespaces", "post-restore",
      "network-unlock", "post-resume"};
  ASSERT_EQ(seen.size(), restore_scripts.size());
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i].first, restore_scripts[i]);
  EXPECT_EQ(seen[1].second, p);
  EXPECT_EQ(seen[3].second, p);
  EXPECT_TRUE(alive(p));
  const crcriu::StatsEntry restored = stats_image(dir_ + "/stats-restore");
  ASSERT_TRUE(restored.has_restore());
  EXPECT_GT(restored.restore().pages_restored(), 0u);
  EXPECT_GT(restored.restore().restore_time(), 0u);
  std::ifstream cmd("/proc/" + std::to_string(p) + "/cmdline");
  std::string argv0;
  std::getline(cmd, argv0, '\0');
  EXPECT_EQ(argv0, "sleep");
}

TEST_F(CrcriuDump, ACallerRefusingPostDumpLeavesTheProcessRunningAndNoImage) {
  const pid_t p = start_sleeper();
  std::vector<std::pair<std::string, int>> seen;
  Swrk s;
  s.send(dump_request(p));
  crcriu::Response r = s.serve(seen, "post-dump");
  EXPECT_FALSE(r.success());
  EXPECT_NE(r.cr_errmsg().find("post-dump"), std::string::npos) << r.cr_errmsg();
  EXPECT_EQ(s.wait(), 1);
  EXPECT_TRUE(alive(p));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/crtools.img"));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().first, "network-unlock");
  // The log says why, as runc points its user there.
  std::ifstream log(dir_ + "/dump.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("error: "), std::string::npos) << text;
}

TEST_F(CrcriuDump, LeaveRunningAndRefusals) {
  const pid_t p = start_sleeper();
  std::vector<std::pair<std::string, int>> seen;
  {
    Swrk s;
    crcriu::Request req = dump_request(p);
    req.mutable_opts()->set_leave_running(true);
    s.send(req);
    crcriu::Response r = s.serve(seen);
    ASSERT_TRUE(r.success()) << r.cr_errmsg();
    EXPECT_EQ(s.wait(), 0);
  }
  EXPECT_TRUE(alive(p));
  EXPECT_TRUE(std::filesystem::is_regular_file(dir_ + "/crtools.img"));
  EXPECT_EQ(seen.back().first, "network-unlock");
  {
    // What cannot be honoured: refused before the tree is touched.
    Swrk s;
    crcriu::Request req = dump_request(p);
    req.mutable_opts()->set_lazy_pages(true);
    s.send(req);
    crcriu::Response r = s.serve(seen);
    EXPECT_FALSE(r.success());
    EXPECT_NE(r.cr_errmsg().find("lazy_pages is not supported by crcriu"), std::string::npos)
        << r.cr_errmsg();
    EXPECT_EQ(s.wait(), 1);
  }
  EXPECT_TRUE(alive(p));
  {
    // CRIU's images are not crtools': said so.
    std::ofstream(dir_ + "/inventory.img") << "x";
    std::filesystem::remove(dir_ + "/crtools.img");
    Swrk s;
    crcriu::Request req = simple(crcriu::RESTORE);
    req.mutable_opts()->set_images_dir_fd(dir_fd_);
    s.send(req);
    crcriu::Response r = s.receive();
    EXPECT_FALSE(r.success());
    EXPECT_NE(r.cr_errmsg().find("CRIU's images"), std::string::npos) << r.cr_errmsg();
    EXPECT_EQ(s.wait(), 1);
  }
}

}  // namespace
