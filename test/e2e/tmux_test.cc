// tmux: a server (in its own session, its pane a bash on a pty of its own) with a client
// attached from outside on a terminal this test makes. The client's connection and the
// terminal it passed to the server (SCM_RIGHTS at attach) are outside the tree: without
// options the dump is refused, naming them; with --ext-unix-sk (the connection ends with the
// dump, as if the client had gone) and --inherit-fd for the terminal (crrestore gives a file of
// its own in its place), the server comes back with its session, and the shell in its pane
// with its variables.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "e2e_common.h"
#include "tcp_client.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

bool tmux_present() { return ::access("/usr/bin/tmux", X_OK) == 0; }

// The fd of `pid` open on the file `path` (-1: none).
int fd_on(pid_t pid, const std::string& path) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  int found = -1;
  while (dirent* e = ::readdir(d)) {
    char link[256];
    const std::string p = dir + "/" + e->d_name;
    const ssize_t n = ::readlink(p.c_str(), link, sizeof link - 1);
    if (n > 0 && std::string(link, static_cast<size_t>(n)) == path) found = std::atoi(e->d_name);
  }
  ::closedir(d);
  return found;
}

TEST(RealPrograms, TmuxServerWithAClientAttached) {
  if (!tools_present()) return;
  if (!tmux_present()) GTEST_SKIP() << "tmux not installed (scripts/deps.sh installs it)";
  test::DevptsLock devpts;  // the pane's pty comes back at its index
  TempDir dir;
  const std::string sock = dir.work() + "/tmux.sock";
  const std::string tmux = "timeout 30 /usr/bin/tmux -f /dev/null -S " + sock + " ";
  // The pane says "set" through tmux's own wait-for channel once its variable is set.
  ASSERT_EQ(command_output(tmux + "new-session -d -s t -c " + dir.work() +
                           " 'bash --norc --noprofile' && " + tmux +
                           "send-keys -t t 'v=41; tmux -S " + sock + " wait-for -S set' Enter && " +
                           tmux + "wait-for set && echo ok"),
            "ok\n");
  const std::string pid_text = command_output(tmux + "display-message -p '#{pid}'");
  const pid_t server = static_cast<pid_t>(std::atoi(pid_text.c_str()));
  ASSERT_GT(server, 0) << pid_text;

  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  ::fcntl(master, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  const std::string tty = ::ptsname(master);
  SpawnSpec spec;
  spec.argv = {"/usr/bin/tmux", "-f", "/dev/null", "-S", sock, "attach", "-t", "t"};
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = slave;
  spec.new_session = spec.ctty = true;
  const pid_t client = spawn(spec);
  ASSERT_GT(client, 0);
  // Attached once the server holds the client's terminal (polled, bounded).
  int tty_fd = -1;
  for (int i = 0; i < 3000 && tty_fd < 0; ++i) {
    tty_fd = fd_on(server, tty);
    if (tty_fd < 0) ::poll(nullptr, 0, 10);
  }
  ASSERT_GE(tty_fd, 0) << "the client never attached";
  auto drain = [&] {  // the client's screen output, so it never blocks on a full terminal
    char buf[4096];
    pollfd p{master, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1 && ::read(master, buf, sizeof buf) > 0) {
    }
  };
  drain();

  // Both blockers, in one dry run (it lists them on stdout).
  const std::string blockers =
      command_output(tool_path("crdump") + " --dry-run " + std::to_string(server) + " 2>&1");
  EXPECT_NE(blockers.find("outside the process tree (dump with --ext-unix-sk"), std::string::npos)
      << blockers;
  EXPECT_NE(blockers.find("fd " + std::to_string(tty_fd) + ": tty " + tty), std::string::npos)
      << blockers;

  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"--ext-unix-sk", "--inherit-fd", std::to_string(tty_fd),
                                       "-o", img, std::to_string(server)});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  // The client saw its server go, and ends.
  for (int i = 0; i < 3000; ++i) {
    drain();
    if (::waitpid(client, nullptr, WNOHANG) == client) break;
    ::poll(nullptr, 0, 10);
  }
  // The server was a daemon (its parent init, or this process as a subreaper): reaped if ours.
  ::waitpid(server, nullptr, WNOHANG);
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img, "--inherit-fd", "fd[0]:" + tty});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(command_output(tmux + "send-keys -t t 'echo v=$((v+1)) > out; tmux -S " + sock +
                           " wait-for -S done' Enter && " + tmux + "wait-for done && cat " +
                           dir.work() + "/out"),
            "v=42\n");
  EXPECT_EQ(command_output(tmux + "list-sessions -F '#{session_name}'"), "t\n");
  command_output(tmux + "kill-server");
  for (int i = 0; i < 3000 && ::kill(server, 0) == 0; ++i) {
    if (::waitpid(server, nullptr, WNOHANG) == server) break;
    ::poll(nullptr, 0, 10);
  }
  ::close(master);
  ::close(slave);
}

}  // namespace
}  // namespace cr::e2e
