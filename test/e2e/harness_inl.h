// Definitions for harness.h (inline: the e2e binary is built from *_test.cc files only).
#ifndef CR_TEST_E2E_HARNESS_INL_H
#define CR_TEST_E2E_HARNESS_INL_H

#include <linux/close_range.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

namespace cr::e2e {

inline std::string tool_path(const std::string& name) { return std::string(CR_BIN_DIR) + "/" + name; }
inline std::string zdtm_path(const std::string& name) { return std::string(CR_ZDTM_DIR) + "/" + name; }
inline bool tool_exists(const std::string& name) { return access(tool_path(name).c_str(), X_OK) == 0; }

inline std::string ExitStatus::describe() const {
  if (exited) return "exit " + std::to_string(code);
  if (code < 0) return "not waited for";
  return std::string("killed by signal ") + std::to_string(code) + " (" + strsignal(code) + ")";
}

inline void become_subreaper() {
  // Restored tasks are children of crrestore; when it exits (-d) they come to us.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  signal(SIGPIPE, SIG_IGN);
}

inline ExitStatus decode_status(int st) {
  ExitStatus s;
  if (WIFEXITED(st)) {
    s.exited = true;
    s.code = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    s.code = WTERMSIG(st);
  }
  return s;
}

inline std::optional<ExitStatus> wait_exit(pid_t pid, std::chrono::milliseconds limit) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    int r;
    do {
      r = poll(&p, 1, static_cast<int>(limit.count()));
    } while (r < 0 && errno == EINTR);
    close(pidfd);
    if (r == 0) return std::nullopt;
  }
  int st = 0;
  pid_t w;
  do {
    w = waitpid(pid, &st, 0);
  } while (w < 0 && errno == EINTR);
  if (w != pid) return std::nullopt;
  return decode_status(st);
}

inline void reap_zombies() {
  int st;
  while (waitpid(-1, &st, WNOHANG) > 0) {
  }
}

inline bool pid_exists(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

inline std::string read_file(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

inline void write_file(const std::string& path, const std::string& data) {
  // O_TRUNC on an existing file keeps its inode: restored fds and mappings refer to it.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
}

inline TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/cr-e2e-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data())) root_ = buf.data();
  mkdir(work().c_str(), 0755);
  // Programs that drop privileges (creds_nonroot) still need to reach their cwd.
  chmod(root_.c_str(), 0755);
}

inline TempDir::~TempDir() {
  if (root_.empty() || keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

inline void TempDir::snapshot_work() {
  snapshot_.clear();
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(work(), ec))
    if (e.is_regular_file() && !e.is_symlink()) {
      struct stat st {};
      stat(e.path().c_str(), &st);
      snapshot_[e.path().string()] = Saved{read_file(e.path()), st.st_mtim};
    }
}

inline void TempDir::restore_work() {
  std::error_code ec;
  std::vector<std::string> extra;
  for (auto& e : std::filesystem::recursive_directory_iterator(work(), ec))
    if (e.is_regular_file() && !e.is_symlink() && !snapshot_.count(e.path().string()))
      extra.push_back(e.path());  // (a symlink to a file is not one: it stays)
  for (auto& p : extra) unlink(p.c_str());
  for (auto& [path, saved] : snapshot_) {
    write_file(path, saved.data);
    const struct timespec times[2] = {{0, UTIME_OMIT}, saved.mtime};
    utimensat(AT_FDCWD, path.c_str(), times, 0);
  }
}

// A target started with CLONE_NEWTIME gets these offsets: days, so that a clock or timer of
// the host's read or armed inside is off by far more than any run takes.
constexpr char kTimensOffsets[] = "monotonic 259200 123456789\nboottime 604800 987654321\n";

inline pid_t spawn(const SpawnSpec& spec) {
  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<char*> argv;
  for (auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int ep[2];  // exec error pipe: EOF = exec succeeded, 4 bytes = its errno
  if (devnull < 0 || pipe2(ep, O_CLOEXEC) != 0) return -1;
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  // A raw clone (fork's flags but the namespaces) when namespaces are asked for: the child
  // only execs. CLONE_NEWTIME shares its bit with clone's exit signal: the child unshares it
  // instead, sets the offsets, and its exec enters the namespace (as `unshare --time` does).
  const uint64_t clone_ns = spec.clone_flags & ~uint64_t{kCloneNewTime};
  int maps[2] = {-1, -1};  // the child waits on it for its user namespace's maps
  if ((clone_ns & CLONE_NEWUSER) != 0 && pipe2(maps, O_CLOEXEC) != 0) return -1;
  pid_t pid = clone_ns == 0
                  ? fork()
                  : static_cast<pid_t>(syscall(SYS_clone, clone_ns | SIGCHLD, 0, 0, 0, 0));
  if (pid != 0) {
    close(devnull);
    close(ep[1]);
    if (maps[0] >= 0) {
      close(maps[0]);
      const std::string base = "/proc/" + std::to_string(pid) + "/";
      const std::string map = "0 " + std::to_string(spec.userns_outer) + " 1\n";
      bool ok = pid > 0;
      for (auto [file, text] : {std::pair<const char*, std::string>{"setgroups", "deny"},
                                {"uid_map", map},
                                {"gid_map", map}}) {
        if (!ok) break;
        int fd = open((base + file).c_str(), O_WRONLY | O_CLOEXEC);
        ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        if (fd >= 0) close(fd);
      }
      if (ok) ok = write(maps[1], "m", 1) == 1;
      close(maps[1]);
    }
    int err = 0;
    ssize_t n = pid > 0 ? read(ep[0], &err, sizeof(err)) : 0;
    close(ep[0]);
    if (n == sizeof(err)) {
      int st;
      waitpid(pid, &st, 0);
      errno = err;
      return -1;
    }
    return pid;
  }
  auto fail = [&]() {
    int e = errno;
    (void)!write(ep[1], &e, sizeof(e));
    _exit(127);
  };
  if (maps[0] >= 0) {
    char go = 0;
    close(maps[1]);
    if (read(maps[0], &go, 1) != 1 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0) fail();
    // The uid change made it undumpable: its /proc/self would be the host root's.
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) fail();
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  if (spec.new_session) setsid();
  if (cwd && chdir(cwd) != 0) fail();
  // Move the sources (and the error pipe) out of the way first, so dup2 onto 0..3 cannot
  // clobber one of them.
  ep[1] = fcntl(ep[1], F_DUPFD_CLOEXEC, 100);
  auto high = [&](int fd) { return fcntl(fd < 0 ? devnull : fd, F_DUPFD_CLOEXEC, 100); };
  int in = high(spec.stdin_fd), out = spec.stdout_fd == -2 ? -2 : high(spec.stdout_fd);
  int err = high(spec.stderr_fd), fd3 = spec.fd3 >= 0 ? high(spec.fd3) : -1;
  if (ep[1] < 0 || in < 0 || out == -1 || err < 0 || (spec.fd3 >= 0 && fd3 < 0)) fail();
  if (dup2(in, 0) < 0 || dup2(err, 2) < 0) fail();
  if (out >= 0) {
    if (dup2(out, 1) < 0) fail();
  } else {
    close(1);
  }
  if (fd3 >= 0) {
    if (dup3(fd3, 3, spec.fd3_cloexec ? O_CLOEXEC : 0) < 0) fail();
  } else {
    close(3);
  }
  if (spec.ctty) {
    int fd = 0;
    while (fd <= 2 && (!isatty(fd) || ioctl(fd, TIOCSCTTY, 0) != 0)) fd++;
    if (fd > 2) fail();
  }
  if ((spec.clone_flags & kCloneNewTime) != 0) {
    if (unshare(kCloneNewTime) != 0) fail();
    int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, kTimensOffsets, sizeof kTimensOffsets - 1) < 0) fail();
    close(fd);
  }
  // Everything above 3 goes at exec (the error pipe must live until then).
  syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
  execv(argv[0], argv.data());
  fail();
  return -1;
}

inline std::string ToolRun::describe() const {
  std::string s = timed_out ? "timed out" : status.describe();
  return s + (err.empty() ? ", nothing on stderr" : ", stderr: " + err);
}

inline bool ToolRun::one_line_error(const std::string& tool) const {
  return err.rfind(tool + ": ", 0) == 0 && err.find('\n') == err.size() - 1;
}

inline pid_t start_tool(TempDir& dir, const std::string& tool, const std::vector<std::string>& args,
                        int in_fd, int out_fd, const std::string& err_name) {
  int errfd = open(dir.path(err_name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SpawnSpec spec;
  spec.argv.push_back(tool_path(tool));
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  spec.stdin_fd = in_fd;
  spec.stdout_fd = out_fd;
  spec.stderr_fd = errfd;
  spec.cwd = dir.root();
  pid_t pid = spawn(spec);
  close(errfd);
  return pid;
}

inline ToolRun run_tool(TempDir& dir, const std::string& tool, const std::vector<std::string>& args,
                        int in_fd, int out_fd, std::chrono::milliseconds limit) {
  static int seq = 0;
  std::string err_name = tool + "." + std::to_string(++seq) + ".err";
  ToolRun run;
  if (!tool_exists(tool)) {
    run.err = tool_path(tool) + " does not exist (not built yet?)";
    return run;
  }
  pid_t pid = start_tool(dir, tool, args, in_fd, out_fd, err_name);
  if (pid < 0) {
    run.err = std::string("fork: ") + strerror(errno);
    return run;
  }
  auto st = wait_exit(pid, limit);
  if (!st) {
    run.timed_out = true;
    kill(pid, SIGKILL);
    st = wait_exit(pid, std::chrono::seconds(10));
  }
  if (st) run.status = *st;
  run.err = read_file(dir.path(err_name));
  return run;
}

inline Target Target::start(TempDir& dir, const std::vector<std::string>& argv, Ready ready,
                            uint64_t clone_flags, uint32_t userns_outer) {
  become_subreaper();
  Target t(&dir, -1);
  int logfd = open((dir.work() + "/log").c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  int p[2];
  if (logfd < 0 || pipe2(p, O_CLOEXEC) != 0) {
    t.error_ = std::string("log/pipe: ") + strerror(errno);
    return t;
  }
  // The log must stay writable after creds_nonroot drops to uid 65534 (it is reopened on restore).
  fchmod(logfd, 0666);
  SpawnSpec spec;
  spec.argv = argv;
  spec.cwd = dir.work();
  spec.stdout_fd = logfd;
  spec.stderr_fd = logfd;
  spec.fd3 = p[1];
  spec.fd3_cloexec = ready == Ready::kOnExec;
  spec.new_session = true;
  spec.clone_flags = clone_flags;
  spec.userns_outer = userns_outer;
  t.pid_ = spawn(spec);
  close(p[1]);
  close(logfd);
  if (t.pid_ < 0) {
    t.error_ = "cannot start " + argv[0] + ": " + strerror(errno);
    close(p[0]);
    return t;
  }
  // EOF on the pipe = ready (or the program died before getting there).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  char buf[64];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{p[0], POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(std::max<long>(0, left.count())));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      t.error_ = "no ready signal within 30 s";
      break;
    }
    ssize_t n = read(p[0], buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0 && errno != EINTR) {
      t.error_ = std::string("read ready pipe: ") + strerror(errno);
      break;
    }
  }
  close(p[0]);
  int st;
  if (t.error_.empty() && waitpid(t.pid_, &st, WNOHANG) == t.pid_) {
    t.error_ = argv[0] + " died before ready: " + decode_status(st).describe() + "; log: " + t.log();
    t.pid_ = -1;
  }
  if (!t.error_.empty() && t.pid_ > 0) {
    kill_child(t.pid_);
    t.pid_ = -1;
  }
  return t;
}

inline Target::Target(Target&& o) noexcept : dir_(o.dir_), pid_(o.pid_), error_(std::move(o.error_)) {
  o.pid_ = -1;
}

inline Target::~Target() {
  if (pid_ > 0) kill_child(pid_);
}

inline std::string Target::log() const { return read_file(dir_->work() + "/log"); }

inline ExitStatus Target::wait(std::chrono::milliseconds limit) {
  ExitStatus s;
  if (pid_ <= 0) return s;
  auto st = wait_exit(pid_, limit);
  if (!st) {
    kill_child(pid_);
    pid_ = -1;
    return s;  // "not waited for": the caller reports the hang
  }
  pid_ = -1;
  return *st;
}

inline ExitStatus Target::terminate(std::chrono::milliseconds limit) {
  if (pid_ > 0) kill(pid_, SIGTERM);
  return wait(limit);
}

inline ExitStatus terminate_pid(pid_t pid, std::chrono::milliseconds limit) {
  kill(pid, SIGTERM);
  auto st = wait_exit(pid, limit);
  if (!st) {
    kill_child(pid);
    return ExitStatus{};
  }
  return *st;
}

// The processes below `pid`, each stopped once found (so none forks more, or exits and lets
// its pid be reused, before the kill): /proc/PID/task/TID/children of every thread.
inline void stop_descendants(pid_t pid, std::vector<pid_t>& out) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (d == nullptr) return;
  std::vector<pid_t> kids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream in(
        read_file("/proc/" + std::to_string(pid) + "/task/" + e->d_name + "/children"));
    for (pid_t k; in >> k;) kids.push_back(k);
  }
  closedir(d);
  for (pid_t k : kids) {
    kill(k, SIGSTOP);
    out.push_back(k);
    stop_descendants(k, out);
  }
}

inline void kill_child(pid_t pid) {
  int st;
  // Only a child of ours (waitpid agrees) is killed: never a recycled pid of someone else.
  if (pid <= 0 || waitpid(pid, &st, WNOHANG) != 0) return;
  // Its descendants too: a hung test's children (a sleeper waiting for a signal its parent
  // never sent) would otherwise outlive the test, reparented to init.
  kill(pid, SIGSTOP);
  std::vector<pid_t> below;
  stop_descendants(pid, below);
  for (pid_t k : below) kill(k, SIGKILL);
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}

}  // namespace cr::e2e

#endif
