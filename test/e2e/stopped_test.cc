// A process stopped by SIGTSTP comes back stopped by SIGSTOP, with a warning, where crrestore's
// surroundings orphan its process group (the kernel discards SIGTSTP there): the root of the
// image was in its parent's group, and restored under a crrestore that leads a session of its
// own it joins crrestore's group, whose only parent link is to another session. (In its own
// group, or under a crrestore in a shell's session, it comes back stopped by SIGTSTP: zdtm
// tree_stopped.)
#include <signal.h>
#include <sys/wait.h>

#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

TEST(Stopped, OrphanedGroupAtRestoreStopsBySigstop) {
  if (!tools_present()) return;
  become_subreaper();  // the restored task comes to us once crrestore -d has gone
  TempDir dir;
  // R leads a session; Q leads a group in it; K, in Q's group, is stopped by SIGTSTP (Q is in
  // another group of the session: not orphaned). Q reaps K once crdump has killed it.
  const std::string script = R"py(
import os, signal
os.setsid()
if os.fork() == 0:
    os.setpgid(0, 0)
    r, w = os.pipe()
    k = os.fork()
    if k == 0:
        null = os.open('/dev/null', os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b'k')
        os.closerange(3, 1024)
        while True:
            signal.pause()
    os.close(w)
    os.read(r, 1)
    os.kill(k, signal.SIGTSTP)
    _, st = os.waitpid(k, os.WUNTRACED)
    os.write(1, b'%d %d\n' % (k, os.WSTOPSIG(st)))
    os.waitpid(k, 0)
    os._exit(0)
os.wait()
)py";
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnSpec spec;
  spec.argv = {"/usr/bin/python3", "-c", script};
  spec.cwd = dir.root();
  spec.stdout_fd = out[1];
  const pid_t r = spawn(spec);
  ASSERT_GT(r, 0);
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  int k = 0, stop = 0;
  ASSERT_EQ(std::sscanf(line.c_str(), "%d %d", &k, &stop), 2)
      << "from the script: '" << line << "'";
  ASSERT_EQ(stop, SIGTSTP);
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"-o", img, std::to_string(k)});
  if (!d.status.ok()) kill(k, SIGKILL);
  waitpid(r, nullptr, 0);  // R exits once Q has reaped K
  ASSERT_TRUE(d.status.ok()) << d.describe();

  SpawnSpec restore;
  restore.argv = {tool_path("crrestore"), "-d", "-i", img};
  restore.cwd = dir.root();
  restore.new_session = true;
  const std::string err = dir.path("crrestore.err");
  restore.stderr_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t rs = spawn(restore);
  close(restore.stderr_fd);
  ASSERT_GT(rs, 0);
  auto st = wait_exit(rs, std::chrono::seconds(60));
  ASSERT_TRUE(st && st->ok()) << (st ? st->describe() : "timed out") << ": " << read_file(err);
  // crrestore leads its session and group: the root joined that group.
  EXPECT_NE(read_file(err).find("pid " + std::to_string(k) +
                                ": stopped by SIGSTOP, not SIGTSTP: its process group " +
                                std::to_string(rs) + " is orphaned here"),
            std::string::npos)
      << read_file(err);
  int ws = 0;
  const pid_t waited = waitpid(k, &ws, WUNTRACED);
  kill_child(k);
  ASSERT_EQ(waited, k);
  EXPECT_TRUE(WIFSTOPPED(ws) && WSTOPSIG(ws) == SIGSTOP) << std::hex << ws;
}

}  // namespace
}  // namespace cr::e2e
