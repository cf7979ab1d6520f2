#include "restore/restorer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/test_hook.h"
#include "restore/address_space.h"
#include "restore/attrs.h"
#include "restore/cgroups.h"
#include "restore/file_locks.h"
#include "restore/group_stop.h"
#include "restore/mem_lock.h"
#include "restore/mount_ns.h"
#include "restore/pkeys.h"
#include "restore/pty.h"
#include "restore/seccomp.h"
#include "restore/shmem.h"
#include "restore/task_state.h"
#include "restore/threads.h"
#include "restore/trampoline.h"
#include "restore/tree.h"
#include "sys/netlock.h"

namespace cr::restore {

namespace {

using Clock = std::chrono::steady_clock;

// When a pass started: its time and the tracee resumes so far.
struct PassStart {
  Clock::time_point t0 = Clock::now();
  uint64_t resumes = sys::Tracee::resumes();
};

// Adds what the pass called `name` took since `start` (a pass run once per process is
// reported once, summed over the tree).
void account(RestoreContext& root, const char* name, const PassStart& start) {
  const double s = std::chrono::duration<double>(Clock::now() - start.t0).count();
  const uint64_t resumes = sys::Tracee::resumes() - start.resumes;
  for (auto& f : root.pass_seconds)
    if (f.name == name) {
      f.seconds += s;
      f.resumes += resumes;
      return;
    }
  root.pass_seconds.push_back({name, s, resumes});
}

// The process's Mm and Vmas (the reader is on its Mm), checked, and its mapped files verified.
Status read_memory_map(RestoreContext& ctx) {
  if (ctx.preloaded) return verify_on_disk(ctx.img, ctx.mounts);  // read while the tree was created
  CR_TRY_ASSIGN(bool positioned, load_body_head(*ctx.reader, ctx.img));
  if (!positioned)
    return make_error("pid " + std::to_string(ctx.pid()) + ": image ends after its memory map");
  CR_TRY(check_memory(ctx.img));
  return verify_on_disk(ctx.img, ctx.mounts);
}

// Until now the process died with its parent (task_create.cc: a SIGKILL to crrestore takes the
// half-built tree with it); from here that is EXITKILL's job alone (it is still traced), and once
// detached it must live on: the leader's parent-death signal becomes the image's own (0 for
// most; restore_attrs set every thread's already, this is the last word on the leader's).
Status clear_restore_pdeathsig(RestoreContext& ctx) {
  CR_TRY(ctx.remote->call("prctl(PR_SET_PDEATHSIG)", SYS_prctl, PR_SET_PDEATHSIG,
                          static_cast<uint64_t>(ctx.img.leader().pdeathsig)));
  return {};
}

// Everything but letting it run: the other threads' registers, the trampoline gone, the
// leader's registers and xsave area in place.
Status set_registers(RestoreContext& ctx) {
  const auto& t = ctx.img.leader();
  CR_TRY_ASSIGN(user_regs_struct regs, thread_regs(t));
  CR_TRY(set_thread_registers(ctx));
  CR_TRY(clear_restore_pdeathsig(ctx));
  // The last remote call: it returns into a page that is gone, but we stop at its exit first
  // and put the dumped registers in place before the task runs again.
  CR_TRY(remove_trampoline(ctx));
  ctx.remote->final_regs() = regs;
  ctx.remote->set_final_sigmask(t.sigmask);
  CR_TRY(ctx.remote->finish());
  return set_xstate(ctx, ctx.tracee, t);
}

// `root` gets the warnings (the process passes have handed theirs over already).
Status detach(RestoreContext& root, RestoreContext& ctx) {
  const auto& t = ctx.img.leader();
  // A shell job in the foreground gets the terminal while still stopped, so its first read
  // does not meet SIGTTIN.
  const auto& p = *ctx.img.process;
  // Only a group of our session can have our terminal (a session of the tree's own has its
  // terminal back from restore_shell_ctty, or none).
  const pid_t pid = static_cast<pid_t>(p.pid);
  if (ctx.opts.foreground_tty >= 0 && p.pgid == p.pid && ::getsid(pid) == ::getsid(0) &&
      ::tcsetpgrp(ctx.opts.foreground_tty, pid) != 0)
    root.warn("pid " + std::to_string(p.pid) + ": " + errno_error("tcsetpgrp").message +
              ": the task runs in the background");
  if (&ctx == &root && ctx.opts.shell_job && !ctx.opts.detach && ctx.opts.foreground_tty < 0 &&
      root.shared.shell_tty && ::getsid(pid) == ::getsid(0))
    root.warn("pid " + std::to_string(p.pid) +
              ": runs in the background: crrestore is not in the foreground of a terminal on its "
              "stdin, stdout or stderr");
  if ((t.flags & schema::kThreadStopped) != 0) {
    std::string warning;
    CR_TRY(stop_again(ctx, warning));
    if (!warning.empty()) root.warn("pid " + std::to_string(p.pid) + ": " + warning);
  }
  CR_TRY(detach_threads(ctx));
  CR_TRY(ctx.tracee.detach());
  (void)ctx.child.release();
  return {};
}

// --shell-job: the terminal gets the job's modes back before the job runs.
Status set_terminal_modes(RestoreContext& root) {
  if (!root.opts.shell_job || !root.shared.shell_tty) return {};
  ScopedFd own;
  int fd = root.opts.terminal;
  if (fd < 0) {
    own.reset(::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!own.valid()) {
      root.warn("no terminal (" + errno_error("/dev/tty").message + "): the job's terminal modes " +
                "are not set");
      return {};
    }
    fd = own.get();
  }
  std::string warning;
  CR_TRY(set_shell_tty_modes(*root.shared.shell_tty, fd, warning, root.winch));
  if (!warning.empty()) root.warn(warning);
  return {};
}

struct Pass {
  const char* name;
  Status (*run)(RestoreContext&);
};

// One process's section of the stream, in order: its memory, then its signals and threads.
constexpr Pass kProcessPasses[] = {
    {"memory map", read_memory_map},
    {"trampoline", setup_trampoline},
    {"vdso and unmap", move_vdso_and_unmap_rest},
    {"map vmas", map_vmas},
    {"pages", stream_pages},
    {"protections", set_protections},
    {"protection keys", restore_pkeys},
    {"mm", set_mm},
    {"threads", create_threads},
    {"signals", restore_signal_state},
    {"timers", restore_timers},
    {"pending signals", restore_pending_signals},
    {"thread state", restore_thread_state},
    {"file locks", take_file_locks},
    {"seccomp", restore_seccomp},
    {"memory locks", lock_memory_as_root},
    {"credentials", restore_creds},
    {"memory locks", lock_memory_as_user},
    {"attributes", restore_attrs},
    {"registers", set_registers},
};

Status run(RestoreContext& root) {
  auto tree_pass = [&root](const char* name, Status (*f)(RestoreContext&)) {
    test_kill_point("pass");
    PassStart t0;
    Status st = f(root);
    account(root, name, t0);
    return st;
  };
  if (root.opts.lazy) {
    // Its guard is forked now, before crrestore has threads.
    CR_TRY_ASSIGN(root.lazy_owner, LazyPager::create());
    root.lazy = root.lazy_owner.get();
  }
  CR_TRY(tree_pass("read image head", read_tree_head));
  CR_TRY(tree_pass("verify files", [](RestoreContext& r) -> Status {
    CR_TRY(prepare_mounts(r));
    return verify_on_disk(r.shared, &r.shared.mounts,
                          r.opts.allow_changed_files ? &r.warnings : nullptr);
  }));
  CR_TRY(tree_pass("create tree", create_tree));
  if (root.opts.after_create) CR_TRY(root.opts.after_create(root.pid()));
  if (root.lazy != nullptr)
    for (RestoreContext* c : tree_order(root)) CR_TRY(root.lazy->guard().watch(c->pid()));
  CR_TRY(tree_pass("process groups", join_groups));
  // Before any memory is placed: pages are charged to the cgroup of the task that faults them.
  CR_TRY(tree_pass("cgroups", [](RestoreContext& r) { return join_cgroups(r); }));
  std::vector<RestoreContext*> all = tree_order(root);
  for (size_t i = 0; i < all.size(); ++i) {
    RestoreContext& ctx = *all[i];
    if (root.stream_ended)
      return make_error("image ends before the memory of pid " + std::to_string(ctx.pid()));
    for (const Pass& pass : kProcessPasses) {
      test_kill_point("pass");
      PassStart t0;
      Status st = pass.run(ctx);
      account(root, pass.name, t0);
      if (!st.ok()) {
        if (&ctx == &root) return st;
        return std::move(st).error().wrap("pid " + std::to_string(ctx.pid()));
      }
      if (pass.run == stream_pages) root.stream_ended = ctx.stream_ended;
    }
    if (&ctx != &root) {
      root.page_bytes += ctx.page_bytes;
      root.pages_seconds += ctx.pages_seconds;
      for (auto& w : ctx.warnings) root.warn("pid " + std::to_string(ctx.pid()) + ": " + w);
    }
  }
  if (!root.stream_ended)
    return make_error("image holds records after the last process (offset " +
                      std::to_string(root.reader->offset()) + ")");
  // Every process and thread exists: the async I/O owners can be named, the threads in
  // cgroups of their own moved.
  CR_TRY(tree_pass("thread cgroups", join_thread_cgroups));
  CR_TRY(tree_pass("file owners", set_file_owners));
  // Every mapping exists: memfd seals can go on now (F_SEAL_WRITE refuses writable shared
  // mappings made before it and forbids them after).
  CR_TRY(tree_pass("seal memfds", [](RestoreContext& r) { return seal_shmems(r.shmem_fds); }));
  // Segments removed while attached go now that every process has attached its own.
  CR_TRY(root.ipc->remove_marked());
  CR_TRY(tree_pass("terminal modes", set_terminal_modes));
  // Every process is ready: children first, so that a parent never runs while its children
  // are still held.
  if (root.opts.before_resume) CR_TRY(root.opts.before_resume(root.pid()));
  test_kill_point("pass");
  PassStart t0;
  for (size_t i = all.size(); i-- > 0;) CR_TRY(detach(root, *all[i]));
  account(root, "resume", t0);
  // The tree runs: what of its memory is still missing is copied in behind it.
  if (root.lazy != nullptr) root.lazy->start_background();
  if (root.winch) (void)::kill(-::getpgid(root.pid()), SIGWINCH);
  // The connections are live and their programs run: their peers' packets may come in.
  if (!root.shared.net_lock.empty()) {
    PassStart t1;
    Status st = sys::netlock_delete(root.shared.net_lock);
    if (!st.ok()) root.warn("network unlock: " + st.error().message);
    root.shared.net_lock.clear();
    account(root, "network unlock", t1);
  }
  // Every process holds what it maps and opens: crrestore's own hold on the shared memory
  // objects would keep their memory alive while it waits for the root, after the tree let go.
  root.shmem_fds.clear();
  return {};
}

}  // namespace

Result<pid_t> restore(RestoreContext& ctx) {
  // Page progress is reported for the whole tree.
  if (ctx.opts.on_progress) {
    auto report = ctx.opts.on_progress;
    ctx.opts.on_progress = [&ctx, report](uint64_t) {
      uint64_t total = ctx.page_bytes;
      for (auto& o : ctx.others) total += o->page_bytes;
      report(total);
    };
  }
  Status st = run(ctx);
  if (!st.ok()) {
    kill_tree(ctx);
    ctx.lazy = nullptr;
    ctx.lazy_owner.reset();  // after the kill: its guard finds nobody to kill
    // The connections are gone with the tree: their peers may hear so (a reset) rather
    // than wait on a lock nobody lifts.
    if (!ctx.shared.net_lock.empty()) (void)sys::netlock_delete(ctx.shared.net_lock);
    return std::move(st).error();
  }
  return ctx.pid();
}

Status finish_lazy(RestoreContext& ctx) {
  if (ctx.lazy == nullptr) return {};
  Status st = ctx.lazy->finish();
  ctx.lazy_stats = ctx.lazy->stats();
  ctx.lazy = nullptr;
  ctx.lazy_owner.reset();  // after an error its guard kills the tree
  return st;
}

}  // namespace cr::restore
