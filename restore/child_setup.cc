#include "restore/child_setup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "restore/fd_plan.h"
#include "restore/open_files.h"
#include "restore/pty.h"
#include "restore/task_create.h"

namespace cr::restore {

namespace {

void report(int fd, char kind, const std::string& text) {
  std::string line(1, kind);
  line += text;
  line += '\n';
  (void)!::write(fd, line.data(), line.size());
}

int highest_open_fd() {
  int top = 2;
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return 1024;  // conservative: above what crrestore ever opens
  // getdents by hand: no DIR* (opendir allocates; fine here, but this is simpler to reason about).
  char buf[4096];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      int v = atoi(d->d_name);
      if (v > top) top = v;
      off += d->d_reclen;
    }
  }
  ::close(dir);
  return top;
}

// The fd table from the files crrestore opened before the tree was forked (inherited by every
// process): each process keeps what its own Fds name, at their numbers, and closes the rest.
Status build_fd_table(const RestoreContext& ctx, const Carriers& carriers, int* report_fd) {
  std::vector<FdSource> sources;
  for (const auto& fd : ctx.img.fds) {
    auto it = carriers.find(fd.file);
    if (it == carriers.end())
      return make_error("fd " + std::to_string(fd.fd) + ": file " + std::to_string(fd.file) +
                        " was not opened");
    bool have = false;
    for (const auto& s : sources) have |= s.file_id == fd.file;
    if (!have) sources.push_back({fd.file, it->second});
  }
  std::vector<FdTarget> targets;
  for (const auto& fd : ctx.img.fds)
    targets.push_back({static_cast<int>(fd.fd), fd.file, (fd.fd_flags & FD_CLOEXEC) != 0});
  CR_TRY_ASSIGN(FdPlan plan, plan_fd_table(sources, targets, *report_fd, highest_open_fd()));
  for (const auto& op : plan.ops) {
    if (op.kind == FdOp::kDup3) {
      if (::dup3(op.a, op.b, op.flags) < 0)
        return errno_error("dup3(" + std::to_string(op.a) + ", " + std::to_string(op.b) + ")");
    } else if (::close_range(static_cast<unsigned>(op.a), static_cast<unsigned>(op.b), 0) != 0) {
      return errno_error("close_range");
    }
  }
  *report_fd = plan.keep_fd;
  return {};
}

Status set_rlimits(const RestoreContext& ctx, int report_fd) {
  const std::string me = std::to_string(ctx.pid()) + " ";
  if (!ctx.img.rlimits) return {};
  const auto& lim = ctx.img.rlimits->limits;
  for (size_t r = 0; 2 * r + 1 < lim.size() && r < RLIM_NLIMITS; ++r) {
    rlimit want{lim[2 * r], lim[2 * r + 1]};
    if (::setrlimit(static_cast<__rlimit_resource>(r), &want) == 0) continue;
    if (errno != EPERM) return errno_error("setrlimit " + std::to_string(r));
    // Raising a hard limit needs CAP_SYS_RESOURCE: keep ours, lower the soft one if asked.
    rlimit ours{};
    ::getrlimit(static_cast<__rlimit_resource>(r), &ours);
    rlimit fallback{std::min<rlim_t>(want.rlim_cur, ours.rlim_max), ours.rlim_max};
    ::setrlimit(static_cast<__rlimit_resource>(r), &fallback);
    report(report_fd, 'W',
           me + "rlimit " + std::to_string(r) + ": hard limit " + std::to_string(want.rlim_max) +
               " is above ours (" + std::to_string(ours.rlim_max) + "), kept ours");
  }
  return {};
}

// Before any child is forked, so that they start in the right session, with its controlling
// terminal. Joining another process's group waits until every process exists (crrestore does it,
// tree.cc).
Status set_session(const RestoreContext& root, const RestoreContext& ctx, const Carriers& carriers,
                   int report_fd) {
  const bool is_root = &root == &ctx;
  const auto& p = *ctx.img.process;
  if (p.sid == p.pid) {
    if (::setsid() < 0) return errno_error("setsid");
    CR_TRY(restore_controlling_tty(root.shared, p, carriers));
  } else if (p.pgid == p.pid) {
    if (::setpgid(0, 0) != 0) return errno_error("setpgid");
    CR_TRY(restore_controlling_tty(root.shared, p, carriers));
  } else if (is_root && static_cast<pid_t>(p.pgid) != ::getpgrp()) {
    report(report_fd, 'W',
           std::to_string(p.pid) + " process group " + std::to_string(p.pgid) +
               " is not restored: the task joins crrestore's");
  }
  return {};
}

void default_signals() {
  // Raw rt_sigaction: glibc refuses its internal signals (32, 33), the kernel does not.
  struct {
    uint64_t handler, flags, restorer, mask;
  } dfl{};
  for (int sig = 1; sig <= 64; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
}

// A zombie child is recreated by exiting the way it did; its parent (waiting to be seized,
// SIGCHLD at its default) leaves it unreaped until the restored parent reaps it. It keeps its
// name (ps shows it) and the hard core limit it inherited.
[[noreturn]] void become_zombie(uint32_t status, const std::string& comm) {
  ::prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    rlimit no_core{0, 0};
    ::getrlimit(RLIMIT_CORE, &no_core);
    no_core.rlim_cur = 0;  // no core file from this exit
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
    ::kill(::getpid(), sig);
    ::kill(::getpid(), SIGKILL);  // a signal that does not kill by default: the closest we have
  }
  ::_exit(WEXITSTATUS(status));
}

bool shares_files(const RestoreContext& ctx) { return ctx.img.process->files_shared_with != 0; }

}  // namespace

Result<ChildGuard> create_process(const RestoreContext& ctx, const std::function<void()>& body,
                                  uint64_t share) {
  const schema::Process& p = *ctx.img.process;
  const bool session = (p.flags & schema::kProcessSessionLeaderGone) != 0;
  const bool group = (p.flags & schema::kProcessGroupLeaderGone) != 0;
  if (!session && !group) return clone_with_pid(ctx.pid(), body, share);
  if (share != 0)
    return make_error(
        "pid " + std::to_string(p.pid) +
        " shares its fd table or fs context and its session or group's leader is gone");
  return clone_into_gone_leaders(ctx.pid(), static_cast<pid_t>(session ? p.sid : p.pgid), session,
                                 body);
}

namespace {

// Forks the process's children, each with its dumped pid, each running child_main in turn. A
// child that shares our fd table (CLONE_FILES) gets a pipe whose write end it closes when it is
// done with the inherited files: until then we must not rebuild the table it shares. Returns
// those pipes' read ends.
Result<std::vector<int>> fork_children(const RestoreContext& root, const RestoreContext& me,
                                       const Carriers& carriers, int report_fd) {
  std::vector<int> waits;
  for (const auto& o : root.others) {
    if (o->img.process->ppid != me.img.process->pid) continue;
    const RestoreContext& kid = *o;
    const schema::Process& kp = *kid.img.process;
    const bool zombie = (kp.flags & schema::kProcessZombie) != 0;
    uint64_t share = 0;
    int done[2] = {-1, -1};
    if (!zombie && kp.files_shared_with != 0) {
      if (kp.files_shared_with != me.img.process->pid)
        return make_error("pid " + std::to_string(kp.pid) + " shares the fd table of pid " +
                          std::to_string(kp.files_shared_with) + ", not its parent's");
      if (::pipe2(done, O_CLOEXEC) != 0) return errno_error("pipe2");
      share |= CLONE_FILES;
      waits.push_back(done[0]);
    }
    if (!zombie && kp.fs_shared_with != 0) {
      if (kp.fs_shared_with != me.img.process->pid)
        return make_error("pid " + std::to_string(kp.pid) + " shares the fs context of pid " +
                          std::to_string(kp.fs_shared_with) + ", not its parent's");
      share |= CLONE_FS;
    }
    const int done_fd = done[1];
    auto body = [&root, &kid, &carriers, report_fd, zombie, done_fd] {
      if (zombie) become_zombie(kid.img.process->exit_status, kid.img.process->comm);
      child_main(root, kid, carriers, report_fd, done_fd);
    };
    CR_TRY_ASSIGN(ChildGuard g, create_process(kid, body, share));
    (void)g.release();  // it lives on; crrestore kills the whole tree if anything fails
    // In a shared table the write end is the child's to close; in ours it goes now.
    if (done_fd >= 0 && (share & CLONE_FILES) == 0) ::close(done_fd);
  }
  return waits;
}

// Waits until every child sharing our fd table is done with it: it closes the write end (EOF),
// the last thing it does to the table. (A child that failed closes it too; it has reported its
// error to crrestore, which then kills the tree.)
void wait_for_sharers(const std::vector<int>& waits) {
  for (int fd : waits) {
    char c;
    while (::read(fd, &c, 1) < 0 && errno == EINTR) {
    }
    ::close(fd);
  }
}

Status setup(const RestoreContext& root, const RestoreContext& ctx, const Carriers& carriers,
             int* report_fd) {
  const auto& p = *ctx.img.process;
  CR_TRY(set_session(root, ctx, carriers, *report_fd));
  CR_TRY_ASSIGN(std::vector<int> sharers, fork_children(root, ctx, carriers, *report_fd));
  wait_for_sharers(sharers);
  // A table shared with the parent is the parent's to build, once this process is ready.
  if (!shares_files(ctx)) CR_TRY(build_fd_table(ctx, carriers, report_fd));
  if (ctx.img.fs && !ctx.img.fs->cwd.empty() && ::chdir(ctx.img.fs->cwd.c_str()) != 0)
    return errno_error("chdir " + ctx.img.fs->cwd);
  ::umask(static_cast<mode_t>(p.umask));
  if (::personality(p.personality) < 0) return errno_error("personality");
  CR_TRY(set_rlimits(ctx, *report_fd));
  if (::prctl(PR_SET_NAME, p.comm.c_str(), 0, 0, 0) != 0) return errno_error("PR_SET_NAME");
  if ((p.flags & schema::kProcessChildSubreaper) != 0 &&
      ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    return errno_error("PR_SET_CHILD_SUBREAPER");
  default_signals();
  return {};
}

}  // namespace

void child_main(const RestoreContext& root, const RestoreContext& ctx, const Carriers& carriers,
                int report_fd, int done_fd) {
  const std::string me = std::to_string(ctx.pid()) + " ";
  auto st = setup(root, ctx, carriers, &report_fd);
  if (!st.ok()) {
    report(report_fd, 'E', me + st.error().message);
    if (done_fd >= 0) ::close(done_fd);  // in a shared table: the parent's wait ends
    ::_exit(1);
  }
  report(report_fd, 'R', me);
  if (shares_files(ctx)) {
    // The table is the parent's: closing the pipe's one write end (EOF) lets it rebuild it now,
    // our report fd with it. Nothing here touches the table after this.
    ::close(done_fd);
  } else {
    ::close(report_fd);
  }
  // crrestore seizes us here and drives us by injected calls; this loop never goes on.
  for (;;) ::pause();
}

ChildReport read_child_report(int fd) {
  std::string all;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  ChildReport rep;
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? all.size() : nl + 1;
    if (line.size() < 2) continue;
    // "<kind><pid> <text>"
    const size_t sp = line.find(' ');
    const pid_t pid = static_cast<pid_t>(std::atol(line.substr(1, sp).c_str()));
    const std::string text = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (line[0] == 'W') rep.warnings.push_back(text);
    if (line[0] == 'E' && rep.error.empty()) rep.error = "pid " + std::to_string(pid) + ": " + text;
    if (line[0] == 'R') rep.ready.insert(pid);
  }
  return rep;
}

}  // namespace cr::restore
