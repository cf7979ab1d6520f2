#include "restore/pidns_launch.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/test_hook.h"
#include "restore/task_create.h"
#include "restore/user_ns.h"
#include "sys/fd_passing.h"

namespace cr::restore {

namespace {

// What the init and the launcher pass on: the signals a supervisor is asked to deliver.
constexpr int kForwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};

// The launcher's signal handler needs the init's pid: the one process-wide value, set once
// before the handlers go in.
volatile sig_atomic_t g_init_pid = 0;
volatile sig_atomic_t g_forward_tty = 1;

void forward_to_init(int sig, siginfo_t* si, void*) {
  // A signal the terminal sent (^C) reaches a --shell-job tree itself, in the terminal's
  // foreground group: not twice.
  if (si != nullptr && si->si_code == SI_KERNEL && g_forward_tty == 0) return;
  if (g_init_pid > 0) ::kill(g_init_pid, sig);
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

[[noreturn]] void init_fail(const std::string& what) {
  std::fprintf(stderr, "crrestore: --pidns: %s: %s\n", what.c_str(), std::strerror(errno));
  ::_exit(1);
}

// The init's namespace for the tree: a copy of the launcher's mounts, slaves of them (mounts
// made on the host still show inside; none made inside goes out), with a proc of the new pid
// namespace on /proc. The restorer reads /proc/PID of the tree's processes by the pids it
// names them by, and the tree's /proc/self is itself (as with `unshare --pid --mount-proc`).
void make_mount_ns() {
  if (::unshare(CLONE_NEWNS) != 0) init_fail("unshare(CLONE_NEWNS)");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0)
    init_fail("making the mounts slaves");
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    init_fail("mounting proc on /proc");
}

// pid 1: reaps whatever exits in the namespace, passes signals on, exits when the root has.
[[noreturn]] void init_loop(int alive_rd, int root_rd, pid_t restorer, const sigset_t& caught) {
  ScopedFd sfd(::signalfd(-1, &caught, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd.valid()) init_fail("signalfd");
  pid_t root = 0;
  ScopedFd root_pidfd;
  bool root_gone = false;
  bool restorer_done = false;
  int restorer_code = 1;
  std::string buf;
  auto read_root = [&](int timeout_ms) {
    while (root_rd >= 0) {
      pollfd pf{root_rd, POLLIN, 0};
      if (::poll(&pf, 1, timeout_ms) <= 0) return;
      char chunk[32];
      const ssize_t n = ::read(root_rd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(root_rd);
        root_rd = -1;
        return;
      }
      buf.append(chunk, static_cast<size_t>(n));
      const size_t nl = buf.find('\n');
      if (nl != std::string::npos && root == 0) {
        root = static_cast<pid_t>(std::atol(buf.substr(0, nl).c_str()));
        root_pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, root, 0)));
        root_gone = !root_pidfd.valid();  // reaped already by the restorer
      }
    }
  };
  for (;;) {
    pollfd fds[3] = {{sfd.get(), POLLIN, 0}, {root_rd, POLLIN, 0}, {alive_rd, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) init_fail("poll");
    if (fds[1].revents != 0) read_root(0);
    if (alive_rd >= 0 && fds[2].revents != 0) {
      char c = 0;
      const ssize_t n = ::read(alive_rd, &c, 1);
      if (n == 1 || (n < 0 && errno == EINTR)) {
        if (n == 1 && c == 'd') {  // the launcher went on its way (-d): we stay
          ::close(alive_rd);
          alive_rd = -1;
        }
      } else {
        // The launcher is gone. Before the tree ran (it was killed mid-restore): the namespace
        // goes with it, every process in it killed by the kernel as its init exits. After: the
        // tree lives on, as a restored tree outlives crrestore.
        read_root(0);
        if (root == 0) ::_exit(137);
        ::close(alive_rd);
        alive_rd = -1;
      }
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo si{};
      while (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo != SIGCHLD) {
          // From a process (the launcher passes its own on); the terminal's own reach the tree
          // in its foreground group without us.
          if (si.ssi_code == SI_KERNEL) continue;
          const pid_t to = root != 0 && !root_gone ? root : restorer_done ? 0 : restorer;
          if (to > 0) ::kill(to, static_cast<int>(si.ssi_signo));
          continue;
        }
        for (;;) {
          int st = 0;
          const pid_t r = ::waitpid(-1, &st, WNOHANG | __WALL);
          if (r <= 0) break;
          if (r == restorer) {
            restorer_done = true;
            restorer_code = exit_code(st);
            read_root(0);  // announced just before it exited (-d)?
          }
          if (root != 0 && r == root) ::_exit(exit_code(st));
        }
      }
    }
    if (restorer_done) {
      if (!root_gone && root_pidfd.valid()) {
        pollfd pf{root_pidfd.get(), POLLIN, 0};
        root_gone = ::poll(&pf, 1, 0) > 0;  // readable: exited (reaped by the restorer)
      }
      // The restore failed, or the restorer reaped the root and exited with its status.
      if (root == 0 || root_gone) ::_exit(restorer_code);
    }
  }
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

PidNsLaunch::PidNsLaunch(PidNsLaunch&& o) noexcept
    : restorer_(o.restorer_),
      init_(std::exchange(o.init_, -1)),
      creds_fd_(std::exchange(o.creds_fd_, -1)),
      alive_fd_(std::exchange(o.alive_fd_, -1)),
      root_fd_(std::exchange(o.root_fd_, -1)) {}

PidNsLaunch::~PidNsLaunch() {
  close_fd(creds_fd_);
  close_fd(alive_fd_);
  close_fd(root_fd_);
}

Result<PidNsLaunch> PidNsLaunch::start(bool forward_tty_signals, const schema::UserNs* user_ns) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return errno_error("--pidns: socketpair");
  ScopedFd creds_launcher(sv[0]), creds_restorer(sv[1]);
  const int one = 1;
  if (::setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
    return errno_error("--pidns: SO_PASSCRED");
  int alive[2], rootp[2];
  if (::pipe2(alive, O_CLOEXEC) != 0) return errno_error("--pidns: pipe2");
  ScopedFd alive_rd(alive[0]), alive_wr(alive[1]);
  if (::pipe2(rootp, O_CLOEXEC) != 0) return errno_error("--pidns: pipe2");
  ScopedFd root_rd(rootp[0]), root_wr(rootp[1]);
  pid_t init = -1;
  ScopedFd maps_rd, maps_wr;
  if (user_ns == nullptr) {
    // Our next child is the namespace's pid 1 (our own pid stays the host's).
    if (::unshare(CLONE_NEWPID) != 0) {
      Error e = errno_error("--pidns: making a pid namespace: unshare(CLONE_NEWPID)");
      if (e.code == EPERM) e.message += " (it needs CAP_SYS_ADMIN)";
      return e;
    }
    init = ::fork();
  } else {
    // Nobody inside may set groups when setgroups is denied: the tree's are ours when the
    // namespace is made.
    if (user_ns->setgroups == 2) {
      std::vector<gid_t> groups(user_ns->groups.begin(), user_ns->groups.end());
      if (::setgroups(groups.size(), groups.data()) != 0)
        return errno_error("--pidns: setting the tree's supplementary groups");
    }
    int mp[2];
    if (::pipe2(mp, O_CLOEXEC) != 0) return errno_error("--pidns: pipe2");
    maps_rd.reset(mp[0]);
    maps_wr.reset(mp[1]);
    // One clone makes both, the pid namespace owned by the user namespace. (A raw clone:
    // crrestore is single-threaded here, so nothing fork's handlers guard is held.)
    init = static_cast<pid_t>(
        ::syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, nullptr, nullptr, nullptr, 0));
  }
  if (init < 0) return errno_error("--pidns: fork of the namespace's init");
  if (init == 0) {
    creds_launcher.reset();
    alive_wr.reset();
    if (user_ns != nullptr) {
      maps_wr.reset();
      // Until the maps are in, our ids are nobody's there: wait, then become its root.
      char go = 0;
      while (::read(maps_rd.get(), &go, 1) < 0 && errno == EINTR) {
      }
      if (go != 'm') ::_exit(1);  // the launcher failed and said why
      maps_rd.reset();
      if (::setresgid(0, 0, 0) != 0) init_fail("setresgid(0) in the new user namespace");
      if (::setresuid(0, 0, 0) != 0) init_fail("setresuid(0) in the new user namespace");
      // A uid change (root outside to the namespace's root, another uid outside) makes us
      // undumpable, and every process forked from us with us: the restorer could not ptrace
      // the tree it makes (its memory belongs to the host's user namespace, where we have no
      // capability). Dumpable, we and the tree are ptraced by uid, as the tree's user could.
      if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) init_fail("PR_SET_DUMPABLE");
    }
    ::prctl(PR_SET_NAME, "crrestore-init", 0, 0, 0);
    make_mount_ns();
    sigset_t caught, old;
    sigemptyset(&caught);
    sigaddset(&caught, SIGCHLD);
    for (int s : kForwarded) sigaddset(&caught, s);
    // Blocked before the restorer exists, so none of its SIGCHLDs is lost to the default.
    ::sigprocmask(SIG_BLOCK, &caught, &old);
    const pid_t restorer = ::fork();
    if (restorer < 0) init_fail("fork of the restorer");
    if (restorer == 0) {
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      alive_rd.reset();
      root_rd.reset();
      PidNsLaunch l;
      l.restorer_ = true;
      pid_in_use_in_own_namespace();
      l.creds_fd_ = creds_restorer.release();
      l.root_fd_ = root_wr.release();
      // The fault-injection tests kill the launcher at a pass of ours: it does so itself.
      // It dies; its init sees that and ends the namespace, us in it: we wait for that here,
      // so the tree is never finished behind its back.
      set_test_kill_launcher([fd = l.creds_fd_] {
        (void)!::send(fd, "K", 1, MSG_NOSIGNAL);
        for (;;) ::pause();
      });
      return l;
    }
    creds_restorer.reset();
    root_wr.reset();
    // The launcher's stdio is the restorer's alone: `pid=$(crrestore -d --pidns ...)` must
    // see its end once the launcher and the restorer are gone, the init staying.
    if (int null = ::open("/dev/null", O_RDWR | O_CLOEXEC); null >= 0) {
      for (int fd = 0; fd <= 2; ++fd) ::dup2(null, fd);
      ::close(null);
    }
    init_loop(alive_rd.release(), root_rd.release(), restorer, caught);
  }
  if (user_ns != nullptr) {
    maps_rd.reset();
    Status written = write_id_maps(init, *user_ns);
    if (!written.ok()) {
      maps_wr.reset();
      int st = 0;
      ::waitpid(init, &st, 0);
      return std::move(written).error().wrap("--pidns: the tree's user namespace");
    }
    if (::write(maps_wr.get(), "m", 1) != 1) return errno_error("--pidns: starting the init");
    maps_wr.reset();
  }
  PidNsLaunch l;
  l.init_ = init;
  l.creds_fd_ = creds_launcher.release();
  l.alive_fd_ = alive_wr.release();
  g_init_pid = init;
  g_forward_tty = forward_tty_signals ? 1 : 0;
  struct sigaction sa {};
  sa.sa_sigaction = forward_to_init;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int s : kForwarded) ::sigaction(s, &sa, nullptr);
  return l;
}

Status PidNsLaunch::announce_root(pid_t root) {
  const std::string line = std::to_string(root) + "\n";
  const bool told_init =
      ::write(root_fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close_fd(root_fd_);
  if (!told_init) return errno_error("--pidns: telling the init the root's pid");
  // The root's pid as credentials (root may name any process of its namespace): the kernel
  // gives the launcher the same process's pid in its own namespace.
  const ucred cred{root, ::getuid(), ::getgid()};
  const char data = 'R';
  const ssize_t n = sys::send_with_creds(creds_fd_, &data, 1, cred, MSG_NOSIGNAL);
  const int err = errno;
  close_fd(creds_fd_);
  errno = err;
  if (n != 1) return errno_error("--pidns: telling the launcher the root's pid");
  return {};
}

Result<pid_t> PidNsLaunch::wait_root() {
  char data = 0;
  iovec iov{&data, 1};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl;
  msg.msg_controllen = sizeof ctl;
  ssize_t n;
  while ((n = ::recvmsg(creds_fd_, &msg, 0)) < 0 && errno == EINTR) {
  }
  close_fd(creds_fd_);
  if (n <= 0) return make_error("the restore in the new pid namespace failed");
  if (data == 'K') ::raise(SIGKILL);  // CR_TEST_KILL_PID=launcher (common/test_hook.h)
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS) continue;
    ucred cred{};
    std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
    if (cred.pid > 0) return cred.pid;
  }
  return make_error("--pidns: the root's pid did not come through (SCM_CREDENTIALS)");
}

void PidNsLaunch::detach() {
  if (alive_fd_ >= 0) (void)!::write(alive_fd_, "d", 1);
  close_fd(alive_fd_);
}

int PidNsLaunch::wait_init() {
  int st = 0;
  for (;;) {
    const pid_t r = ::waitpid(init_, &st, 0);
    if (r == init_) break;
    if (r < 0 && errno != EINTR) return 1;
  }
  g_init_pid = 0;
  return exit_code(st);
}

}  // namespace cr::restore
