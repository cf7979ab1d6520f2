#include "restore/task_create.h"

#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

// Waits until `tid` has exited (a stop reported late is skipped), or is not ours to wait for.
void reap(pid_t tid) {
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(tid, &st, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || WIFEXITED(st) || WIFSIGNALED(st)) return;
  }
}

constexpr int kZombieWaitMs = 5000;

// The way out of a pid taken on the host, said in the one-line refusal (not inside a --pidns
// restore, where it is already taken).
constexpr const char* kPidnsText =
    " (crrestore --pidns restores the tree in a new pid namespace, where its pids are free)";
const char* g_pidns_hint = kPidnsText;

// In a new process, first thing: it gets SIGKILL when its parent dies, until crrestore clears
// that at the end of the restore (clear_restore_pdeathsig). The root's parent is crrestore, every
// other process's is its restored parent (a CLONE_PARENT child's, the helper's parent), so a
// SIGKILL to crrestore at any moment takes the whole half-built tree with it, helpers included,
// down the chain. pdeathsig follows the parent *thread*: every clone here is made by the main
// thread of a process that stays until the restore ends. A parent that died before the prctl
// is caught by getppid().
void die_with_parent(pid_t parent) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(126);
}

enum class Holder { kNone, kZombie, kLive };

// Calls `f(pid, stat)` for every process /proc shows until it returns true; false when /proc
// cannot be listed.
template <class F>
bool for_each_stat(F f) {
  auto pids = sys::ProcDir::all_pids();
  if (!pids.ok()) return false;
  for (int p : *pids) {
    auto proc = sys::ProcDir::open(p);
    if (!proc.ok()) continue;
    auto text = proc->read("stat");
    if (!text.ok()) continue;
    auto st = sys::parse_stat(*text);
    if (st.ok() && f(p, *st)) break;
  }
  return true;
}

// Who holds `pid`: nobody (it was freed since the EEXIST: try again at once), only zombies
// (exited, waiting for their parent to reap them; as their pid, or as the id of a session or
// process group a zombie is still in: the number stays taken while it names one), or a live
// process. Walks /proc: only done when a pid is in use.
Holder pid_holder(pid_t pid) {
  Holder held = Holder::kNone;
  const bool listed = for_each_stat([&](int p, const sys::ProcStat& st) {
    if (p != pid && st.pgrp != pid && st.session != pid) return false;
    held = st.state != 'Z' && st.state != 'X' ? Holder::kLive : Holder::kZombie;
    return held == Holder::kLive;  // no use waiting
  });
  return listed ? held : Holder::kLive;
}

// Who holds `pid`, for the refusal: " (by 'sleep', pid 12, alive)", " (by 'sh', a zombie its
// parent has not reaped)", or the session or group it still names.
std::string holder_text(pid_t pid) {
  auto describe = [](const sys::ProcStat& st) {
    return "'" + st.comm + "' (" +
           (st.state == 'Z' || st.state == 'X'
                ? "a zombie its parent, pid " + std::to_string(st.ppid) + ", has not reaped"
                : "alive, state " + std::string(1, st.state)) +
           ")";
  };
  if (auto proc = sys::ProcDir::open(pid); proc.ok())
    if (auto text = proc->read("stat"); text.ok())
      if (auto st = sys::parse_stat(*text); st.ok()) return " by " + describe(*st);
  std::string named;
  for_each_stat([&](int p, const sys::ProcStat& st) {
    if (st.pgrp != pid && st.session != pid) return false;
    named = std::string(" as the id of the ") + (st.session == pid ? "session" : "process group") +
            " of pid " + std::to_string(p) + " " + describe(st);
    return true;
  });
  return named;
}

}  // namespace

void pid_in_use_in_own_namespace() { g_pidns_hint = ""; }

ChildGuard::ChildGuard(ChildGuard&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), threads_(std::move(o.threads_)) {}

ChildGuard& ChildGuard::operator=(ChildGuard&& o) noexcept {
  if (this != &o) {
    kill_and_reap();
    pid_ = std::exchange(o.pid_, -1);
    threads_ = std::move(o.threads_);
  }
  return *this;
}

pid_t ChildGuard::release() {
  threads_.clear();
  return std::exchange(pid_, -1);
}

void ChildGuard::kill_and_reap() {
  pid_t pid = std::exchange(pid_, -1);
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  // A thread no longer traced (detached already) is not ours to wait for: ECHILD, move on.
  for (pid_t tid : threads_) reap(tid);
  threads_.clear();
  reap(pid);
}

Result<ChildGuard> clone_with_pid(pid_t pid, const std::function<void()>& child_main,
                                  uint64_t share, pid_t ns_pid) {
  if (pid <= 0) return make_error("cannot create pid " + std::to_string(pid));
  const bool new_pid_ns = (share & CLONE_NEWPID) != 0;
  if (new_pid_ns && ns_pid != 1) return make_error("the init of a new pid namespace is its pid 1");
  pid_t tids[2] = {ns_pid != 0 ? ns_pid : pid, pid};  // innermost first
  clone_args args{};
  args.flags =
      share & (CLONE_FILES | CLONE_FS | CLONE_PARENT | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS);
  // With CLONE_PARENT clone3 takes no exit signal: the child gets its creator's (SIGCHLD).
  args.exit_signal = (share & CLONE_PARENT) != 0 ? 0 : SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(tids);
  args.set_tid_size = ns_pid != 0 ? 2 : 1;
  // The process that will be the child's parent (with CLONE_PARENT, ours), as the child sees
  // it: none (0) from inside a new pid namespace.
  const pid_t parent = new_pid_ns ? 0 : (share & CLONE_PARENT) != 0 ? ::getppid() : ::getpid();
  // The pid clone3 returns: the caller's view of the child.
  const pid_t seen = ns_pid != 0 && !new_pid_ns ? ns_pid : pid;
  long r = ::syscall(SYS_clone3, &args, sizeof args);
  if (r == 0) die_with_parent(parent);
  int err = r < 0 ? errno : 0;
  // A zombie of the dumped process (killed by crdump) holds its pid until its parent reaps it;
  // when that parent is init, reaping can take a moment. Nothing signals the reap to a stranger,
  // so wait for it a bounded time, and only while the holder is a zombie.
  // A holder reaped between the EEXIST and the scan shows as no holder at all: the pid is free
  // now, so clone again at once (a bounded number of times: the scan can miss a holder that
  // is born and dies while it runs).
  Holder holder = Holder::kNone;
  int free_retries = 0;
  for (int waited_ms = 0; err == EEXIST && waited_ms < kZombieWaitMs;) {
    holder = pid_holder(pid);
    if (holder == Holder::kLive) break;
    if (holder == Holder::kZombie) {
      ::usleep(10 * 1000);
      waited_ms += 10;
    } else if (++free_retries > 100) {
      break;
    }
    r = ::syscall(SYS_clone3, &args, sizeof args);
    if (r == 0) die_with_parent(parent);
    err = r < 0 ? errno : 0;
  }
  if (r < 0) {
    errno = err;  // the /proc reads above may have changed it
    if (err == EEXIST) {
      return Error{"pid " + std::to_string(pid) + " is in use" + holder_text(pid) + g_pidns_hint,
                   EEXIST};
    }
    return errno_error("clone3 with pid " + std::to_string(pid));
  }
  if (r == 0) {
    child_main();
    ::_exit(127);
  }
  if (r != seen) {
    ChildGuard stray(static_cast<pid_t>(r));  // killed on the way out
    return make_error("clone3 gave pid " + std::to_string(r) + " instead of " +
                      std::to_string(seen));
  }
  return ChildGuard(static_cast<pid_t>(r));
}

Result<ChildGuard> clone_into_gone_leaders(pid_t pid, pid_t leader, bool new_session,
                                           const std::function<void()>& child_main, pid_t ns_pid,
                                           pid_t ns_leader, uint64_t ns_flags) {
  const std::string what = std::string(new_session ? "session" : "process group") + " " +
                           std::to_string(leader) + " of pid " + std::to_string(pid);
  CR_TRY_ASSIGN(ChildGuard helper, clone_with_pid(
                                       leader,
                                       [&] {
                                         if (new_session ? ::setsid() < 0 : ::setpgid(0, 0) != 0)
                                           ::_exit(90);
                                         auto c = clone_with_pid(pid, child_main,
                                                                 CLONE_PARENT | ns_flags, ns_pid);
                                         if (!c.ok()) ::_exit(c.error().code == EEXIST ? 91 : 92);
                                         (void)c->release();  // the caller's child now
                                         ::_exit(0);
                                       },
                                       0, ns_leader));
  const pid_t h = helper.release();
  int st = 0;
  while (::waitpid(h, &st, 0) < 0 && errno == EINTR) {
  }
  // The child as the caller sees it (inside the tree's pid namespace: its pid there).
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
    return ChildGuard(ns_pid != 0 && (ns_flags & CLONE_NEWPID) == 0 ? ns_pid : pid);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 91)
    return Error{"pid " + std::to_string(pid) + " is in use" + holder_text(pid) + g_pidns_hint,
                 EEXIST};
  return make_error("remaking the " + what + ": its helper failed (status " + std::to_string(st) +
                    ")");
}

}  // namespace cr::restore
