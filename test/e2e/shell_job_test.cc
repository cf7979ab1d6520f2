// --shell-job with a terminal the test makes (it plays the shell: it holds the pty master,
// starts the job with the slave as its terminal, dumps it, and runs crrestore on the slave):
// the job's terminal modes come back, crrestore finds the terminal on stdout alone, I/O
// through the pty reaches the job, and a session leader gets its controlling terminal back.
// And crdump's refusals of its own tree and of its shell's foreground job.
#include <fcntl.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

struct Pty {
  int master = -1, slave = -1;
  Pty() {
    EXPECT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  }
  ~Pty() {
    ::close(master);
    ::close(slave);
  }
  // The slave's device number as /proc/PID/stat prints tty_nr.
  uint32_t tty_nr() const {
    struct stat st {};
    ::fstat(slave, &st);
    const uint32_t ma = major(st.st_rdev), mi = minor(st.st_rdev);
    return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
  }
  tcflag_t lflag() const {
    termios t{};
    ::tcgetattr(master, &t);
    return t.c_lflag;
  }
  // What a shell does when its job dies: the terminal gets the shell's own modes back.
  void cooked() const {
    termios t{};
    ::tcgetattr(master, &t);
    t.c_lflag |= ECHO | ICANON;
    ::tcsetattr(master, TCSANOW, &t);
  }
  // Reads from the master until `want` bytes came (bounded: a hang becomes a failure).
  std::string read(size_t want) const {
    std::string got;
    while (got.size() < want) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, 30000) != 1) break;
      char buf[64];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
};

// Fields of /proc/PID/stat after the comm: [0] is field 3 (state).
std::vector<long> stat_fields(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  std::vector<long> out;
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  std::istringstream in(text.substr(close + 2));
  std::string tok;
  while (in >> tok) out.push_back(std::strtol(tok.c_str(), nullptr, 10));  // state: 0
  return out;
}
// Exited (a zombie not yet reaped) or gone.
bool ended(pid_t pid) {
  const std::string text = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() || text[close + 2] == 'Z';
}
long session_of(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 4 ? f[3] : -1;
}
long tty_nr_of(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 4 ? f[4] : -1;
}
long tpgid_of(pid_t pid) {
  auto f = stat_fields(pid);
  return f.size() > 5 ? f[5] : -2;
}

// Starts test/zdtm/shell_job_tty on the slave (stdin, stdout; its log on stderr) and waits for
// ready. `ctty`: as a session leader holding it as its controlling terminal.
pid_t start_job(TempDir& dir, const Pty& pty, bool ctty) {
  become_subreaper();
  const int log =
      ::open((dir.work() + "/log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  int p[2];
  if (log < 0 || ::pipe2(p, O_CLOEXEC) != 0) return -1;
  SpawnSpec spec;
  spec.argv = {zdtm_path("shell_job_tty")};
  if (ctty) spec.argv.push_back("ctty");
  spec.cwd = dir.work();
  spec.stdin_fd = pty.slave;
  spec.stdout_fd = pty.slave;
  spec.stderr_fd = log;
  spec.fd3 = p[1];
  spec.new_session = ctty;
  spec.ctty = ctty;
  const pid_t pid = spawn(spec);
  ::close(p[1]);
  ::close(log);
  char c;
  while (::read(p[0], &c, 1) > 0) {
  }
  ::close(p[0]);
  return pid;
}

bool dump_job(TempDir& dir, pid_t job) {
  ToolRun d = run_tool(dir, "crdump", {"--shell-job", "-o", dir.path("img"), std::to_string(job)});
  EXPECT_TRUE(d.status.ok()) << d.describe() << "\nlog: " << read_file(dir.work() + "/log");
  auto st = wait_exit(job, std::chrono::seconds(10));
  EXPECT_TRUE(st && !st->exited && st->code == SIGKILL);
  return d.status.ok();
}

// crrestore run as a shell runs a job in the foreground (a session leader on the terminal,
// its group the foreground one), with the image on stdin and stderr to a file: the terminal is
// on stdout only. The job gets the terminal, in its modes, and its I/O goes through the pty.
TEST(ShellJob, ModesComeBackAndTheJobIsInTheForegroundWithTheTerminalOnStdoutOnly) {
  if (!tools_present()) return;
  test::DevptsLock devpts;
  TempDir dir;
  Pty pty;
  const pid_t job = start_job(dir, pty, false);
  ASSERT_GT(job, 0);
  ASSERT_EQ(pty.lflag() & (ECHO | ICANON), 0u) << "the job did not set its modes";
  ASSERT_TRUE(dump_job(dir, job));
  pty.cooked();

  const int img = ::open(dir.path("img").c_str(), O_RDONLY | O_CLOEXEC);
  const int err = ::open(dir.path("crrestore.err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(img, 0);
  SpawnSpec spec;
  spec.argv = {tool_path("crrestore"), "--shell-job"};
  spec.cwd = dir.root();
  spec.stdin_fd = img;
  spec.stdout_fd = pty.slave;
  spec.stderr_fd = err;
  spec.new_session = true;
  spec.ctty = true;
  const pid_t restorer = spawn(spec);
  ::close(img);
  ::close(err);
  ASSERT_GT(restorer, 0);
  // crrestore sets the modes, then hands the terminal to the job's group as it lets it run.
  const bool foreground =
      poll_until([&] { return tpgid_of(job) == job || ended(restorer); }, std::chrono::seconds(60));
  const std::string err_text = read_file(dir.path("crrestore.err"));
  ASSERT_TRUE(foreground && tpgid_of(job) == job)
      << "the job is not in the foreground; crrestore: " << err_text;
  EXPECT_EQ(pty.lflag() & (ECHO | ICANON), 0u) << "modes not restored";
  // Echo off: only the job's answer comes back, not the byte typed.
  ASSERT_EQ(::write(pty.master, "a", 1), 1);
  EXPECT_EQ(pty.read(3), "[a]");
  ::kill(job, SIGTERM);
  auto st = wait_exit(restorer, std::chrono::seconds(30));
  ASSERT_TRUE(st.has_value()) << "crrestore did not end with its job";
  EXPECT_TRUE(st->ok()) << "crrestore (the job's status): " << st->describe()
                        << "\nlog: " << read_file(dir.work() + "/log")
                        << "\ncrrestore: " << read_file(dir.path("crrestore.err"));
  EXPECT_NE(read_file(dir.work() + "/log").find("PASS"), std::string::npos);
  EXPECT_EQ(read_file(dir.path("crrestore.err")).find("background"), std::string::npos)
      << read_file(dir.path("crrestore.err"));
}

// A session leader whose controlling terminal was the shell's terminal takes it back: after
// `crrestore -d --shell-job` with stdin on the slave (crrestore's own session does not hold
// it), the restored leader has it as its controlling terminal, in the foreground, in its modes.
TEST(ShellJob, SessionLeaderGetsItsControllingTerminalBack) {
  if (!tools_present()) return;
  test::DevptsLock devpts;
  TempDir dir;
  Pty pty;
  const pid_t job = start_job(dir, pty, true);
  ASSERT_GT(job, 0);
  ASSERT_EQ(tty_nr_of(job), static_cast<long>(pty.tty_nr()));
  ASSERT_TRUE(dump_job(dir, job));
  pty.cooked();

  ToolRun r = run_tool(dir, "crrestore", {"-d", "--shell-job", "-i", dir.path("img")}, pty.slave);
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << read_file(dir.work() + "/log");
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_EQ(session_of(job), job);
  EXPECT_EQ(tty_nr_of(job), static_cast<long>(pty.tty_nr())) << "no controlling terminal";
  EXPECT_EQ(tpgid_of(job), job) << "not the terminal's foreground group";
  EXPECT_EQ(pty.lflag() & (ECHO | ICANON), 0u) << "modes not restored";
  ASSERT_EQ(::write(pty.master, "b", 1), 1);
  EXPECT_EQ(pty.read(3), "[b]");
  ExitStatus st = terminate_pid(job);
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << read_file(dir.work() + "/log");
}

// Runs `sh -c script sh crdump-path ARGS...` with stdout to a file; returns its stderr.
struct ShRun {
  ExitStatus status;
  std::string err, out;
};
ShRun run_sh(TempDir& dir, const std::string& script, const std::vector<std::string>& args,
             int tty = -1) {
  static int seq = 0;
  const std::string err_path = dir.path("sh." + std::to_string(++seq) + ".err");
  const std::string out_path = err_path + ".out";
  const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", script, "sh", tool_path("crdump")};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.cwd = dir.root();
  spec.stdin_fd = tty;
  spec.stdout_fd = out;
  spec.stderr_fd = err;
  spec.new_session = tty >= 0;
  spec.ctty = tty >= 0;
  ShRun r;
  const pid_t pid = spawn(spec);
  ::close(err);
  ::close(out);
  auto st = pid > 0 ? wait_exit(pid, std::chrono::seconds(60)) : std::nullopt;
  if (st) r.status = *st;
  r.err = read_file(err_path);
  r.out = read_file(out_path);
  return r;
}

// `crdump $$` from a shell: the pid is crdump's own (exec) or its parent's (the shell waits).
TEST(CrdumpRefuses, ItselfAndItsAncestors) {
  if (!tools_present()) return;
  TempDir dir;
  ShRun self = run_sh(dir, "exec \"$1\" $$", {});
  EXPECT_TRUE(self.status.exited && self.status.code == 1) << self.status.describe() << self.err;
  EXPECT_NE(self.err.find("is crdump itself"), std::string::npos) << self.err;
  EXPECT_EQ(std::count(self.err.begin(), self.err.end(), '\n'), 1) << self.err;
  ShRun parent = run_sh(dir, "\"$1\" $$; exit $?", {});
  EXPECT_TRUE(parent.status.exited && parent.status.code == 1)
      << parent.status.describe() << parent.err;
  EXPECT_NE(parent.err.find("is an ancestor of crdump"), std::string::npos) << parent.err;
  EXPECT_EQ(std::count(parent.err.begin(), parent.err.end(), '\n'), 1) << parent.err;
}

// A script (no job control) on a terminal starts a program in the background: it is in the
// script's process group, the terminal's foreground one, as crdump is. Its output on the
// terminal: without --shell-job crdump says to use it; with it the dump goes ahead. Its stdio
// elsewhere (demo.sh's counter): it does not use the terminal, and is dumped without.
TEST(CrdumpRefuses, ForegroundJobOfItsShellWithoutShellJob) {
  if (!tools_present()) return;
  test::DevptsLock devpts;
  become_subreaper();
  TempDir dir;
  Pty pty;
  const std::string pidfile = dir.path("sleep.pid");
  const std::string quiet_pidfile = dir.path("quiet.pid");
  ShRun r = run_sh(dir,
                   // execd: the job is sleep, not yet the shell's fork (which still holds
                   // the shell's fds) when crdump looks at it; a busy machine shows the gap.
                   "execd() { s=$(command -v sleep); "
                   "while [ \"$(readlink -f /proc/$1/exe)\" != \"$(readlink -f \"$s\")\" ]; "
                   "do :; done; }; "
                   "exec 3<&0; sleep 1000 </dev/null >&3 3<&- & exec 3<&-; echo $! > \"$2\"; "
                   "execd $!; "
                   "\"$1\" -o \"$3\" $!; echo \"plain=$?\"; "
                   "\"$1\" --shell-job --leave-running -o \"$3\" $!; echo \"shell_job=$?\"; "
                   "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > \"$4\"; execd $!; "
                   "\"$1\" --leave-running -o \"$3\" $!; echo \"quiet=$?\"",
                   {pidfile, dir.path("img"), quiet_pidfile}, pty.slave);
  const pid_t sleeper = static_cast<pid_t>(std::atoi(read_file(pidfile).c_str()));
  const pid_t quiet = static_cast<pid_t>(std::atoi(read_file(quiet_pidfile).c_str()));
  EXPECT_NE(r.out.find("quiet=0"), std::string::npos) << r.out << r.err;
  if (quiet > 0) kill_child(quiet);
  EXPECT_NE(r.out.find("plain=1"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("in the foreground process group"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dump it with --shell-job"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("shell_job=0"), std::string::npos) << r.out << r.err;
  if (sleeper > 0) kill_child(sleeper);
}

}  // namespace
}  // namespace cr::e2e
