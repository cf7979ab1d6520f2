#include "restore/child_setup.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
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
#include <cstring>
#include <unordered_set>

#include "restore/cgroups.h"
#include "restore/fd_plan.h"
#include "restore/mount_ns.h"
#include "restore/open_files.h"
#include "restore/privilege.h"
#include "restore/pty.h"
#include "restore/task_create.h"
#include "restore/tree.h"

namespace cr::restore {

namespace {

void report(int fd, char kind, const std::string& text) {
  std::string line(1, kind);
  line += text;
  line += '\n';
  (void)!::write(fd, line.data(), line.size());
}

// The highest fd open now. Not a listing of /proc/self/fd: that makes an inode for every fd,
// and each process of a tree whose processes opened their own files (a thousand /dev/null)
// inherits all of them, so the listings together grew with the square of the tree. Instead:
// every open fd lies below the fd table's size (FDSize in /proc/self/status), and the highest
// is the first from there down that F_GETFD accepts.
int highest_open_fd() {
  int size = 0;
  int status = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (status >= 0) {
    char buf[8192];
    ssize_t n = ::read(status, buf, sizeof buf - 1);
    ::close(status);
    if (n > 0) {
      buf[n] = 0;
      if (const char* f = std::strstr(buf, "\nFDSize:")) size = std::atoi(f + 8);
    }
  }
  if (size <= 0) return 1024;  // conservative: above what crrestore ever opens
  for (int fd = size - 1; fd > 2; --fd)
    if (::fcntl(fd, F_GETFD) >= 0) return fd;
  return 2;
}

// The fd table from the files crrestore opened before the tree was forked (inherited by every
// process): each process keeps what its own Fds name, at their numbers, and closes the rest.
// A file under /proc/PID of a process of the tree, opened here: PID exists by now (this
// process, an ancestor, or a child forked before the table is built; crdump checked).
Result<int> open_proc_file(const schema::File& f) {
  int fd = ::open(
      f.path.c_str(),
      static_cast<int>(f.flags & ~static_cast<uint32_t>(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + f.path);
  if (f.pos != 0 && ::lseek(fd, static_cast<off_t>(f.pos), SEEK_SET) < 0) {
    ::close(fd);
    return errno_error(f.path + ": lseek to " + std::to_string(f.pos));
  }
  return fd;
}

// A pidfd of a process of the tree, opened here: PID exists by now (itself, an ancestor, or a
// child forked before the table is built, a zombie child not yet exited; crdump checked), with
// its flags (PIDFD_NONBLOCK, PIDFD_THREAD).
Result<int> open_pidfd(const RestoreContext& root, const schema::File& f) {
  bool in_tree = root.img.process->pid == f.pidfd_pid;
  for (const auto& o : root.others) in_tree = in_tree || o->img.process->pid == f.pidfd_pid;
  const std::string what = "pidfd of pid " + std::to_string(f.pidfd_pid);
  if (!in_tree) return make_error(what + ": not a process of the image");
  const unsigned flags = f.flags & static_cast<uint32_t>(O_NONBLOCK | O_EXCL);
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, f.pidfd_pid, flags));
  if (fd < 0) return errno_error(what + ": pidfd_open");
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    ::close(fd);
    return errno_error(what + ": F_SETFD");
  }
  return fd;
}

Status build_fd_table(const RestoreContext& root, const RestoreContext& ctx,
                      const Carriers& carriers, int* report_fd) {
  std::vector<FdSource> sources;
  std::unordered_set<uint32_t> have;  // not a scan of `sources` per fd: 200k fds are possible
  for (const auto& fd : ctx.img.fds) {
    if (have.count(fd.file) != 0) continue;
    auto it = carriers.find(fd.file);
    auto file = root.shared.files.find(fd.file);
    if (it == carriers.end() && file != root.shared.files.end() &&
        (file->second.kind == schema::kFileProcPid || file->second.kind == schema::kFilePidfd)) {
      auto opened = file->second.kind == schema::kFilePidfd ? open_pidfd(root, file->second)
                                                            : open_proc_file(file->second);
      if (!opened.ok()) return std::move(opened).error().wrap("fd " + std::to_string(fd.fd));
      sources.push_back({fd.file, *opened});
      have.insert(fd.file);
      continue;
    }
    if (it == carriers.end())
      return make_error("fd " + std::to_string(fd.fd) + ": file " + std::to_string(fd.file) +
                        " was not opened");
    have.insert(fd.file);
    sources.push_back({fd.file, it->second});
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

// Writes `value` to /proc/self/`name` unless it holds it already.
Status write_own_proc(const std::string& name, const std::string& value) {
  const std::string path = "/proc/self/" + name;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path);
  char buf[32] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  std::string now(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!now.empty() && now.back() == '\n') now.pop_back();
  Status st;
  if (now != value && ::pwrite(fd, value.data(), value.size(), 0) < 0)
    st = errno_error(name + " " + value);
  ::close(fd);
  return st;
}

// What only the process itself may set (the kernel takes loginuid from the task itself only):
// its audit login uid and, while it is still root, its oom_score_adj.
Status set_own_attrs(const RestoreContext& ctx) {
  if (!ctx.img.attrs) return {};
  const auto& a = *ctx.img.attrs;
  Status st = write_own_proc("oom_score_adj", std::to_string(a.oom_score_adj));
  // Below the lowest value crrestore's ancestors set with CAP_SYS_RESOURCE (which we lack).
  if (!st.ok() && st.error().code == EACCES)
    return std::move(st).error().wrap(
        "below crrestore's own oom_score_adj floor (lowering it "
        "needs CAP_SYS_RESOURCE)");
  if (!st.ok()) return st;
  return write_own_proc("loginuid", std::to_string(a.loginuid));
}

// Before any child is forked, so that they start in the right session, with its controlling
// terminal. Joining another process's group waits until every process exists (crrestore does it,
// tree.cc).
Status set_session(const RestoreContext& root, const RestoreContext& ctx, const Carriers& carriers,
                   int report_fd) {
  const bool is_root = &root == &ctx;
  const auto& p = *ctx.img.process;
  if (p.sid == p.pid || p.pgid == p.pid) {
    if (p.sid == p.pid && ::setsid() < 0) return errno_error("setsid");
    if (p.sid != p.pid && ::setpgid(0, 0) != 0) return errno_error("setpgid");
    CR_TRY(restore_controlling_tty(root.shared, p, carriers));
    if (root.opts.shell_job) {
      std::string warning;
      CR_TRY(restore_shell_ctty(root.shared, p, carriers, warning));
      if (!warning.empty()) report(report_fd, 'W', std::to_string(p.pid) + " " + warning);
    }
  } else if (is_root && (p.flags & schema::kProcessSessionLeaderGone) != 0) {
    // --pidns: its session, led from outside, remade (the helper's group is the session's).
    if (p.pgid != p.sid)
      report(report_fd, 'W',
             std::to_string(p.pid) + " process group " + std::to_string(p.pgid) +
                 " is not restored: the task joins its session's, " + std::to_string(p.sid));
  } else if (is_root && static_cast<pid_t>(p.pgid) != root.restorer_pgrp) {
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
// SIGCHLD at its default) leaves it unreaped until the restored parent reaps it. It leads its
// session or group again first; a group of another process may not exist yet (its leader is
// made later), so it waits until crrestore says every live process is ready, joins the group
// then, and exits (crrestore checks the group it ended in). It keeps its name (ps shows it)
// and the hard core limit it inherited.
void zombie_handler(int) {}

[[noreturn]] void become_zombie(const RestoreContext& root, const schema::Process& p,
                                int report_fd) {
  if (p.sid == p.pid) {
    ::setsid();
  } else if (p.pgid == p.pid) {
    ::setpgid(0, 0);
  }
  ::close(report_fd);  // crrestore reads reports until every process has closed it
  ::close(root.zombie_go_wr);
  char c;
  while (::read(root.zombie_go_rd, &c, 1) < 0 && errno == EINTR) {
  }
  if (p.sid != p.pid && p.pgid != p.pid) {
    // As this process names it: inside the tree's own pid namespace, its id there (0: a group
    // outside it, crrestore's, which it cannot name; crrestore checks where it ended).
    const pid_t want = in_tree_ns(root, restored_group(root, p, root.restorer_pgrp));
    if (want != 0 && ::getpgrp() != want) ::setpgid(0, want);
  }
  const uint32_t status = p.exit_status;
  ::prctl(PR_SET_NAME, p.comm.c_str(), 0, 0, 0);
  // Its dispositions as it died (status shows them): a handler of ours stands for each of its
  // handlers, never run (nothing is sent to it from here but its fatal signal, at default).
  // glibc's signal() refuses its internal signals (32, 33), which a process that made threads
  // catches: those by raw rt_sigaction.
  auto set_action = [](int sig, uint64_t handler) {
    struct {
      uint64_t handler, flags, restorer, mask;
    } act{handler, 0, 0, 0};
    ::syscall(SYS_rt_sigaction, sig, &act, nullptr, 8);
  };
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    const uint64_t bit = 1ull << (sig - 1);
    // glibc's own (SA_RESTORER) where it takes the signal: the handler is never run, but an
    // x86_64 frame without a restorer would fault if it were.
    if ((p.zombie_ignored & bit) && ::signal(sig, SIG_IGN) == SIG_ERR)
      set_action(sig, reinterpret_cast<uint64_t>(SIG_IGN));
    if ((p.zombie_caught & bit) && ::signal(sig, zombie_handler) == SIG_ERR)
      set_action(sig, reinterpret_cast<uint64_t>(&zombie_handler));
  }
  // The signals pending at its death (blocked then) are sent again, blocked; the mask it died
  // with follows. 64-bit masks as the kernel's (bit N-1 is signal N).
  const int death = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  const uint64_t death_bit = death > 0 && death <= 64 ? 1ull << (death - 1) : 0;
  auto set_mask = [](uint64_t bits) {
    ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &bits, nullptr, 8);
  };
  set_mask(p.zombie_pending | p.zombie_blocked | death_bit);
  for (int sig = 1; sig <= 64; ++sig)
    if ((p.zombie_pending & ~death_bit) & (1ull << (sig - 1))) ::kill(::getpid(), sig);
  if (death != 0) {
    rlimit no_core{0, 0};
    ::getrlimit(RLIMIT_CORE, &no_core);
    no_core.rlim_cur = 0;  // no core file from this exit
    ::setrlimit(RLIMIT_CORE, &no_core);
    ::signal(death, SIG_DFL);
    if (p.zombie_pending & death_bit) {
      // Sent while not blocked, the kernel kills at once and the signal stays pending (as
      // when it came while the process ran or slept).
      set_mask((p.zombie_pending | p.zombie_blocked) & ~death_bit);
      ::kill(::getpid(), death);
    } else {
      // Sent blocked, then unblocked: it is taken off the queue as it kills (as when it came
      // while blocked, or was raised by the thread itself).
      ::kill(::getpid(), death);
      set_mask((p.zombie_pending | p.zombie_blocked) & ~death_bit);
    }
    ::kill(::getpid(), SIGKILL);  // a signal that does not kill by default: the closest we have
  }
  set_mask(p.zombie_pending | p.zombie_blocked);
  ::_exit(WEXITSTATUS(status));
}

bool shares_files(const RestoreContext& ctx) { return ctx.img.process->files_shared_with != 0; }

}  // namespace

Result<ChildGuard> create_process(const RestoreContext& ctx, const std::function<void()>& body,
                                  uint64_t share) {
  const schema::Process& p = *ctx.img.process;
  const bool session = (p.flags & schema::kProcessSessionLeaderGone) != 0;
  const bool group = (p.flags & schema::kProcessGroupLeaderGone) != 0;
  // In the tree's own pid namespace: its pid there too (the root's namespace is made with it).
  const pid_t ns_pid = ctx.img.ns_ids ? static_cast<pid_t>(ctx.img.ns_ids->ns_pid) : 0;
  const uint64_t ns_flags = share & (CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS);
  if (!session && !group) return clone_with_pid(ctx.pid(), body, share, ns_pid);
  if ((share & ~ns_flags) != 0)
    return make_error(
        "pid " + std::to_string(p.pid) +
        " shares its fd table or fs context and its session or group's leader is gone");
  // The helper with the leader's pid is made where the process is, but for the root of a new
  // pid namespace: that helper is crrestore's child, outside it.
  pid_t ns_leader = 0;
  if (ctx.img.ns_ids && (ns_flags & CLONE_NEWPID) == 0)
    ns_leader = static_cast<pid_t>(session ? ctx.img.ns_ids->ns_sid : ctx.img.ns_ids->ns_pgid);
  return clone_into_gone_leaders(ctx.pid(), static_cast<pid_t>(session ? p.sid : p.pgid), session,
                                 body, ns_pid, ns_leader, ns_flags);
}

namespace {

// Forks the process's children, each with its dumped pid, each running child_main in turn. A
// child that shares our fd table (CLONE_FILES) gets a pipe whose write end it closes when it is
// done with the inherited files: until then we must not rebuild the table it shares. Returns
// those pipes' read ends.
Result<std::vector<int>> fork_children(const RestoreContext& root, const RestoreContext& me,
                                       const Carriers& carriers, int report_fd) {
  std::vector<int> waits;
  const auto mine = root.children_of.find(me.img.process->pid);
  if (mine == root.children_of.end()) return waits;
  for (const RestoreContext* o : mine->second) {
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
      if (zombie) become_zombie(root, *kid.img.process, report_fd);
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

// A cwd that was removed while the process was in it: a directory made at its path (or beside
// it if the name is taken again), entered and removed, so /proc shows "PATH (deleted)" again.
Status enter_deleted_cwd(const schema::FsInfo& fs) {
  std::string dir = fs.cwd;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) return errno_error("recreate deleted cwd " + fs.cwd);
    const size_t slash = dir.rfind('/');
    dir = (slash == 0 || slash == std::string::npos ? std::string("/") : dir.substr(0, slash)) +
          "/.crrestore-cwd-" + std::to_string(::getpid());
    if (::mkdir(dir.c_str(), 0700) != 0)
      return errno_error("recreate deleted cwd " + fs.cwd + " as " + dir);
  }
  struct Rmdir {
    const std::string& d;
    ~Rmdir() { ::rmdir(d.c_str()); }
  } rm{dir};
  // Through an fd of the directory just made, never its path again: the owner of the parent
  // directory could swap a symlink in between (README "Trust model").
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d.valid()) return errno_error("open recreated cwd " + dir);
  // The image owner's directory with its bits, less setuid/setgid (no privilege to grant).
  if (fs.cwd_mode != 0 && (::fchown(d.get(), fs.cwd_uid, fs.cwd_gid) != 0 ||
                           ::fchmod(d.get(), fs.cwd_mode & 01777) != 0))
    return errno_error("set owner and mode of deleted cwd " + fs.cwd);
  if (::fchdir(d.get()) != 0) return errno_error("chdir " + dir);
  return {};
}

Status setup(const RestoreContext& root, const RestoreContext& ctx, const Carriers& carriers,
             int* report_fd) {
  const auto& p = *ctx.img.process;
  // The root of a tree with its own UTS namespace (new since its clone): the names before any
  // child is made.
  if (&root == &ctx && root.shared.uts) {
    const auto& u = *root.shared.uts;
    if (::sethostname(u.hostname.data(), u.hostname.size()) != 0)
      return errno_error("sethostname " + u.hostname);
    if (::setdomainname(u.domainname.data(), u.domainname.size()) != 0)
      return errno_error("setdomainname " + u.domainname);
  }
  // The root of a tree with its own cgroup namespace: made in the namespace's roots before
  // any child, which inherits it.
  if (&root == &ctx) CR_TRY(join_cgroup_ns_roots(root));
  // Its own mount namespace (a copy of crrestore's since its clone) made the tree's, before
  // its cwd and any path of it is used, and inside its pid namespace: a proc mounted now shows
  // the tree's pids.
  if (&root == &ctx && !root.shared.mounts.empty()) {
    CR_TRY(rebuild_mount_ns(root.shared.mounts, root.shared.tmpfs, root.opts.external_mounts));
    CR_TRY(reopen_in_namespace(root.shared.files, carriers));
  }
  if (&root == &ctx) CR_TRY(enter_cgroup_ns(root));
  CR_TRY(set_session(root, ctx, carriers, *report_fd));
  // Its private memory in place before its children are forked: they inherit it.
  if (root.premap != nullptr) CR_TRY(wait_for_premap(ctx, *report_fd));
  CR_TRY_ASSIGN(std::vector<int> sharers, fork_children(root, ctx, carriers, *report_fd));
  wait_for_sharers(sharers);
  // A table shared with the parent is the parent's to build, once this process is ready.
  if (!shares_files(ctx)) CR_TRY(build_fd_table(root, ctx, carriers, report_fd));
  // Written to /proc/self while its fs identity is still root's: the files belong to its euid.
  CR_TRY(set_own_attrs(ctx));
  // A restricted image's process acts as itself on the filesystem from here on: its cwd, and
  // every open, mapping, exe link and chroot crrestore injects into it later, are checked with
  // its own rights (its other credentials come last, restore_creds).
  if (root.privileges.restricted() && ctx.img.creds)
    CR_TRY(become_fs_identity(FsIdentity::of(*ctx.img.creds)));
  if (ctx.img.fs && (p.flags & schema::kProcessCwdDeleted) != 0)
    CR_TRY(enter_deleted_cwd(*ctx.img.fs));
  else if (ctx.img.fs && !ctx.img.fs->cwd.empty() && ::chdir(ctx.img.fs->cwd.c_str()) != 0)
    return errno_error("chdir " + ctx.img.fs->cwd +
                       (root.privileges.restricted()
                            ? " as uid " + std::to_string(ctx.img.creds->fsuid)
                            : std::string()));
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

void ChildReport::add(const std::string& line) {
  if (line.size() < 2) return;
  // "<kind><pid> <text>"
  const size_t sp = line.find(' ');
  const pid_t pid = static_cast<pid_t>(std::atol(line.substr(1, sp).c_str()));
  const std::string text = sp == std::string::npos ? "" : line.substr(sp + 1);
  if (line[0] == 'W') warnings.push_back(text);
  if (line[0] == 'E' && error.empty()) error = "pid " + std::to_string(pid) + ": " + text;
  if (line[0] == 'R') ready.insert(pid);
  if (line[0] == 'P') premap[pid] = std::atoi(text.c_str());
}

bool ReportLines::next(std::string& line) {
  for (;;) {
    const size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    char chunk[4096];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (buf_.empty()) return false;
      line = std::move(buf_);
      buf_.clear();
      return true;
    }
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

ChildReport read_child_report(int fd) {
  ChildReport rep;
  ReportLines lines(fd);
  std::string line;
  while (lines.next(line)) rep.add(line);
  return rep;
}

Status wait_for_premap(const RestoreContext& ctx, int report_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  report(report_fd, 'P', std::to_string(ctx.pid()) + " " + std::to_string(p[1]));
  char c = 0;
  ssize_t n;
  while ((n = ::read(p[0], &c, 1)) < 0 && errno == EINTR) {
  }
  ::close(p[0]);
  ::close(p[1]);
  if (n != 1 || c != 'G') return make_error("released from the premap wait without a go");
  return {};
}

}  // namespace cr::restore
