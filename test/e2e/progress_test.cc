// The progress line: on a terminal, crconvert of an image over 64 MiB shows its rate and, the
// input a file, the share read and the time left; off a terminal it prints nothing.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <unistd.h>

#include <string>

#include "e2e_common.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

TEST(ProgressLine, CrconvertOnATerminal) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string script = R"py(
import os, signal, sys
b = bytearray(os.urandom(1 << 20)) * 80
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.close(3)
signal.sigwait([signal.SIGTERM])
)py";
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"--leave-running", "-o", img, std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  EXPECT_EQ(d.err, "") << "crdump's stderr is no terminal here: no progress line";
  t.terminate();

  test::DevptsLock devpts;
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  SpawnSpec spec;
  spec.argv = {tool_path("crconvert"), "-i", img, "-o", "/dev/null"};
  spec.stderr_fd = slave;
  const pid_t pid = spawn(spec);
  ASSERT_GT(pid, 0);
  ::close(slave);
  std::string out;
  char buf[4096];
  for (;;) {  // until the last holder of the slave (crconvert) is gone: EIO
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 30000) != 1) break;
    const ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  auto st = wait_exit(pid, std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->ok()) << st->describe();
  EXPECT_NE(out.find("crconvert: 64 MiB of stream, "), std::string::npos) << out;
  EXPECT_NE(out.find("% of the image, "), std::string::npos) << out;
  EXPECT_NE(out.find(" s left"), std::string::npos) << out;
  ::close(master);
}

}  // namespace
}  // namespace cr::e2e
