// RestoreContext: everything one restore works on, passed explicitly through the passes
// (restorer.cc lists them). No globals.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "format/record_reader.h"
#include "restore/image.h"
#include "restore/ipc.h"
#include "restore/layout.h"
#include "restore/lazy_pager.h"
#include "restore/precopy_store.h"
#include "restore/premap.h"
#include "restore/privilege.h"
#include "restore/task_create.h"
#include "restore/vdso.h"
#include "sys/remote_batch.h"
#include "sys/remote_syscalls.h"
#include "sys/tracee.h"

namespace cr::restore {

/// --external veth[INSIDE]:OUTSIDE[@BRIDGE]: the outside end of the tree's veth INSIDE.
struct ExternalVeth {
  std::string name;    // made in crrestore's net namespace
  std::string bridge;  // made a port of it, or ""
};

struct RestoreOptions {
  bool detach = false;                     // -d: return once the task runs
  bool shell_job = false;                  // reconnect tty fds to ours
  bool tcp_close = false;                  // established TCP connections come back closed
  bool signed_image = false;               // the stream's seal was verified (--verify-key)
  bool verbose = false;                    // -v: passes, timings, warnings
  bool ignore_cgroups = false;             // --manage-cgroups=ignore: stay in ours
  /// With ignore_cgroups: only a tree whose every task was in the same cgroups may stay in
  /// ours (crcriu, whose caller put it in the container's cgroups): one in a cgroup of its
  /// own below would lose it.
  bool cgroups_as_one = false;
  /// The cgroups the tree is restored in, by hierarchy ("cpu", "cpu,cpuacct", "name=systemd",
  /// "" for v2: crcriu's cg_root): the tree's bind mounts of its own cgroups (a container's
  /// /sys/fs/cgroup/cpu on cgroup v1) bind these instead (restore as another container).
  std::map<std::string, std::string> cgroup_roots;
  bool allow_changed_files = false;        // an fd's regular file that changed: a warning
  /// --pidns: crrestore runs in a new pid namespace of its own making (restore/pidns_launch.h),
  /// whose pids the tree takes; a root's session led from outside is remade there.
  bool pidns = false;
  /// --lazy: the tree runs before its private anonymous memory is in (restore/lazy_pager.h).
  bool lazy = false;
  /// The user namespace the --pidns launcher made for a tree in one of its own (its image's
  /// UserNs maps): crrestore runs inside it, and the image's ids are translated into it.
  std::optional<schema::UserNs> user_ns;
  /// --external mnt[MOUNTPOINT]:PATH: the tree's mount at MOUNTPOINT (a bind, or a copy of a
  /// host mount) is made as a bind of PATH, a path of crrestore's mount namespace.
  std::map<std::string, std::string> external_mounts;
  /// An external_mounts entry naming no bind or host-copy mount of the image is skipped
  /// instead of refused (crcriu: runc names every mount point its config has, devices too).
  bool external_mounts_where_found = false;
  /// The tree's new root directory, for an image whose mount namespace has a root of its own
  /// (pivot_root, kMountBind at "/"): bound there instead of the recorded host path (crcriu:
  /// runc's `root`, its bind of the container's rootfs). Empty: the recorded path.
  std::string root;
  /// --external veth[INSIDE]:OUTSIDE[@BRIDGE], by INSIDE: where a veth of the tree's own net
  /// namespace has its other end (default: the name and bridge recorded at the dump).
  std::map<std::string, ExternalVeth> external_veths;
  std::map<std::string, int> inherit_fds;  // --inherit-fd fd[N]:KEY -> KEY -> N
  /// --shell-job: the terminal the tree's tty fds are connected to (crrestore's stdin, stdout
  /// or stderr, the first that is one), or -1: /dev/tty.
  int terminal = -1;
  /// A terminal to hand to the task's process group before it runs (foreground --shell-job),
  /// or -1. The caller takes it back when the task is gone.
  int foreground_tty = -1;
  /// Called as page data goes in, with the bytes of pages written so far (for a progress line).
  std::function<void(uint64_t page_bytes)> on_progress;
  /// Called once the root exists in its namespaces (after "create tree"), with its pid as
  /// crrestore sees it: crcriu's "setup-namespaces". An error fails the restore.
  std::function<Status(pid_t root)> after_create;
  /// Called when every process is ready, before any runs: crcriu's "post-restore". An error
  /// fails the restore (the tree is killed, never having run).
  std::function<Status(pid_t root)> before_resume;
};

/// The trampoline pages in the task: a `syscall` instruction, the loop of remote batches
/// (sys/remote_batch.h), scratch space that remote calls use for their arguments (paths,
/// structs; a bump pointer reset per use), then the batches' area.
struct Trampoline {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint64_t used = 0;
  static constexpr uint64_t kBatchCodeOffset = 64;
  static constexpr uint64_t kScratchOffset = 256;
  static constexpr uint64_t kScratchEnd = 4 * 4096;
  static constexpr uint64_t kBatchOffset = kScratchEnd;
  static constexpr uint64_t kSize = 16 * 4096;
};

/// A shared memory object crrestore built (restore/tree.cc), held by an fd of its own. A
/// memfd's seals are added by seal_shmems once every process has its mappings.
struct ShmemHandle {
  ScopedFd fd;
  uint32_t kind = schema::kShmemAnon;
  uint32_t seals = 0;
  std::string name;
};

/// A thread other than the leader, created by clone3 inside the task and traced from birth
/// (CLONE_PTRACE) until resume; its own remote-call scope runs its per-thread calls.
struct ThreadCtl {
  const schema::Thread* rec = nullptr;  // into img.threads
  sys::Tracee tracee;
  std::optional<sys::RemoteSyscalls> remote;  // refers to `tracee`: ThreadCtl never moves
};

/// One restored thread, the leader or not, as the per-thread passes see it.
struct ThreadView {
  const schema::Thread& rec;
  sys::Tracee& tracee;
  sys::RemoteSyscalls& remote;
};

/// One process being restored. The root's context also holds the tree: the file objects every
/// process shares (`shared`) and the other processes (`others`, tree order).
struct RestoreContext {
  RestoreOptions opts;
  format::RecordReader* reader = nullptr;
  ProcessImage img;
  ProcessImage shared;  // root only: Pipes, Files, file contents, every Fd
  /// Root only, a tree with its own cgroup namespace: the cgroup.procs files of the
  /// namespace's roots, which the root joins before it unshares CLONE_NEWCGROUP (cgroups.cc).
  std::vector<std::string> cgroup_ns_procs;
  std::vector<std::unique_ptr<RestoreContext>> others;  // root only
  /// Root only, from create_tree on: each process's children among `others` (by pid, in
  /// their order there), so each new process finds its own without a scan of the tree.
  std::map<uint32_t, std::vector<const RestoreContext*>> children_of;
  /// What the image may ask for, as whom its files are opened (root only: read_tree_head).
  Privileges privileges;
  /// privileges.restricted() of the root's, in every context: a user's image.
  bool restricted = false;
  bool stream_ended = false;  // stream_pages met the trailer (the last process's section)
  /// Shared memory objects by Shmem id: fds of crrestore's own (root only, kept to the end);
  /// every process maps them, and memfd Files are opened, through /proc/<crrestore>/fd/N.
  std::map<uint32_t, ShmemHandle> shmem_fds;
  const std::map<uint32_t, ShmemHandle>* shmems = nullptr;  // the root's, in every context
  /// The tree's mounts (the root's shared.mounts), in every context: where a pivoted root's
  /// paths are in crrestore's namespace (sys::host_path).
  const std::vector<schema::Mount>* mounts = nullptr;
  /// SysV objects of the tree's own IPC namespace: owned by the root, seen by every context.
  std::unique_ptr<IpcBuilder> ipc_owner;
  IpcBuilder* ipc = nullptr;

  /// Memory placed before forking (restore/premap.h): the root's, seen by every context; null
  /// when the restore does not premap.
  std::unique_ptr<Premap> premap_owner;
  Premap* premap = nullptr;
  /// Its section was read while the tree was created (premap): the pages pass writes what
  /// is kept here, and copies the PagesParent runs that lie outside slots.
  bool preloaded = false;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> pending_pages;  // (address, bytes)
  std::vector<schema::PagesParent> pending_parent;
  /// Pages its slots held for its children (PagesPrefork) that it did not have itself: dropped
  /// by the pages pass, once the children are forked. [first, end) runs.
  std::vector<std::pair<uint64_t, uint64_t>> pending_drop;
  /// Every process's PagesPrefork contents (the root's, seen by every context).
  std::unique_ptr<PreforkStore> prefork_owner;
  PreforkStore* prefork = nullptr;
  // crdump --pre-copy: the PrecopyPages read before the head (root-owned; one per tree).
  std::unique_ptr<PrecopyStore> precopy_owner;
  PrecopyStore* precopy = nullptr;
  // --lazy: the pager of the whole tree (root-owned; it outlives run(): finish_lazy()).
  std::unique_ptr<LazyPager> lazy_owner;
  LazyPager* lazy = nullptr;
  LazyPager::Stats lazy_stats;  // finish_lazy()'s

  /// Every seccomp filter of the image by id (the root's shared image, seen by every context).
  const std::map<uint32_t, schema::SeccompFilter>* seccomp_filters = nullptr;

  /// The dumped vDSO against ours (restore/vdso.h): the root's plan, seen by every context.
  VdsoPlan vdso_plan;
  const VdsoPlan* vdso = nullptr;
  /// Where this kernel's [vvar], [vvar_vclock], [vdso] are once moved (kept by unmap_rest), and
  /// its [vdso]'s start (the proxy's jumps go there).
  std::vector<std::pair<uint64_t, uint64_t>> vdso_ranges;
  uint64_t vdso_base = 0;

  sys::Tracee tracee;
  std::optional<sys::RemoteSyscalls> remote;
  Trampoline tramp;
  /// The task's mappings when the trampoline went in (before it), for the vDSO's moves.
  std::vector<MapsEntry> start_maps;
  std::vector<std::unique_ptr<ThreadCtl>> threads;  // the leader's are tracee and remote
  // Declared last so it goes first: a failed restore kills the task before the tracee and
  // the remote scope let go of it.
  ChildGuard child;

  size_t xsave_size = 0;  // this CPU's NT_X86_XSTATE size, read once from the task
  /// Root only, while the tree is created: a pipe whose write end crrestore closes once every
  /// live process is ready; zombies wait for that to join their process group, then exit.
  int zombie_go_rd = -1, zombie_go_wr = -1;
  /// Root only: crrestore's process group when it forked the tree (a root in a pid namespace of
  /// its own cannot see it from inside).
  pid_t restorer_pgrp = 0;

  // Figures for -v and the report.
  uint64_t page_bytes = 0;
  double pages_seconds = 0;
  std::vector<std::string> warnings;
  /// The terminal's window size is not the dumped one: the job's group gets SIGWINCH once it
  /// runs, so a full-screen program draws itself again for this window.
  bool winch = false;
  /// Per pass (a pass run per process summed over the tree): its time and how many times a
  /// tracee was resumed in it (sys::Tracee::resumes; a remote call is two).
  struct PassFigure {
    std::string name;
    double seconds = 0;
    uint64_t resumes = 0;
  };
  std::vector<PassFigure> pass_seconds;

  /// The leader, then every created thread (only valid once the threads pass has run).
  std::vector<ThreadView> all_threads() {
    std::vector<ThreadView> v;
    v.reserve(threads.size() + 1);
    v.push_back(ThreadView{img.leader(), tracee, *remote});
    for (auto& t : threads) v.push_back(ThreadView{*t->rec, t->tracee, *t->remote});
    return v;
  }

  pid_t pid() const { return img.process ? static_cast<pid_t>(img.process->pid) : -1; }
  /// Thread `tid` (a host tid, as the image names it) as the task itself names it: its id in
  /// the tree's own pid namespace, or the same outside one (0: not a thread of this process).
  pid_t own_view_tid(uint64_t tid) const {
    if (!img.ns_ids) return static_cast<pid_t>(tid);
    for (size_t i = 0; i < img.ns_ids->tids.size() && i < img.ns_ids->ns_tids.size(); ++i)
      if (img.ns_ids->tids[i] == tid) return static_cast<pid_t>(img.ns_ids->ns_tids[i]);
    return 0;
  }
  /// A zombie: recreated exited, never seized, no section of its own in the stream.
  bool zombie() const { return img.process && (img.process->flags & schema::kProcessZombie) != 0; }
  void warn(std::string msg) { warnings.push_back(std::move(msg)); }

  /// Copies `len` bytes into the trampoline's scratch area; returns their task address.
  Result<uint64_t> put(const void* data, size_t len);
  Result<uint64_t> put_str(const std::string& s) { return put(s.c_str(), s.size() + 1); }
  void reset_scratch() { tramp.used = 0; }
  /// Remote calls run as one batch (sys/remote_batch.h) from the trampoline (remote must be
  /// set up). Only before the task's signal handlers are restored: its stop is a forced SIGTRAP.
  sys::RemoteBatch batch() {
    if (handlers_restored) std::abort();  // a SIGTRAP handler of the image's would be reset
    return sys::RemoteBatch(*remote, tramp.addr + Trampoline::kBatchCodeOffset,
                            tramp.addr + Trampoline::kBatchOffset,
                            tramp.size - Trampoline::kBatchOffset);
  }
  /// Set once restore_signal_state begins: no more batches (see batch()).
  bool handlers_restored = false;
  /// A remote call through the trampoline (remote must be set up).
  Result<uint64_t> call(const char* name, long nr, uint64_t a1 = 0, uint64_t a2 = 0,
                        uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0) {
    return remote->call(name, nr, a1, a2, a3, a4, a5, a6);
  }
};

}  // namespace cr::restore
