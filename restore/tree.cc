#include "restore/tree.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "restore/cgroups.h"
#include "restore/child_setup.h"
#include "restore/epoll.h"
#include "restore/net_ns.h"
#include "restore/open_files.h"
#include "restore/shmem.h"
#include "restore/time_ns.h"
#include "restore/trampoline.h"
#include "restore/user_ns.h"
#include "sys/linux_abi.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

// A tree in a user namespace of its own comes back only inside one the launcher made with the
// same maps (--pidns), which must be maps the image may ask for; its ids are then taken into
// it.
Status enter_user_ns_ids(const RestoreContext& root, TreeHead& head) {
  if (!head.shared.user_ns) return {};
  if (!root.opts.user_ns)
    return make_error(
        "the image's tree is in a user namespace of its own: restore it with --pidns "
        "(crrestore makes the user namespace, and a pid namespace of it where the tree keeps "
        "its pids)");
  const schema::UserNs& a = *head.shared.user_ns;
  const schema::UserNs& b = *root.opts.user_ns;
  if (a.uid_map != b.uid_map || a.gid_map != b.gid_map || a.setgroups != b.setgroups ||
      a.groups != b.groups)
    return make_error("the image's user_ns record is not the one crrestore made the namespace with");
  CR_TRY(translate_ids(head, a));
  // Maps only root may write (crrestore's launcher wrote them: ids of others, setgroups
  // allowed) are for an image with a root process outside, or a signed one. Checked before
  // anything is opened for the image.
  if (!user_could_make(a) && !root.opts.signed_image &&
      std::none_of(head.procs.begin(), head.procs.end(), [&](const ProcessImage& p) {
        return p.creds && root_outside(*p.creds, a);
      }))
    return make_error(
        "the image's user namespace maps ids only root may map (more than its own uid and "
        "gid, or setgroups allowed) and no process of the image is root: an image without a "
        "root process cannot ask for it (restore a signed image with --verify-key to vouch for "
        "it)");
  return {};
}

constexpr unsigned kTraceOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;

// The files crrestore opened for the tree, closed here once every process has its copies.
struct OpenCarriers {
  Carriers fds;
  ~OpenCarriers() {
    for (const auto& [id, fd] : fds) ::close(fd);
  }
};

// Waits until every zombie of the tree has exited (its pidfd polls readable), then checks it
// ended in its dumped process group. Returns an error message, or "".
std::string wait_for_zombies(const RestoreContext& root) {
  const pid_t root_pgrp = ::getpgid(root.pid());
  for (const auto& o : root.others) {
    if (!o->zombie()) continue;
    const pid_t pid = o->pid();
    ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd.valid()) return "zombie " + std::to_string(pid) + ": pidfd_open: " + strerror(errno);
    pollfd pf{pidfd.get(), POLLIN, 0};
    while (::poll(&pf, 1, -1) < 0 && errno == EINTR) {
    }
    auto proc = sys::ProcDir::open(pid);
    auto text = proc.ok() ? proc->read("stat") : Result<std::string>(proc.error());
    auto st = text.ok() ? sys::parse_stat(*text) : Result<sys::ProcStat>(text.error());
    if (!st.ok()) return "zombie " + std::to_string(pid) + ": " + st.error().message;
    const pid_t want = restored_group(root, *o->img.process, root_pgrp);
    if (st->pgrp != want)
      return "zombie " + std::to_string(pid) + " is in process group " + std::to_string(st->pgrp) +
             ", not " + std::to_string(want);
  }
  return "";
}

// --pidns: a root in a session led from outside the tree (a shell's) would be in crrestore's
// session, whose leader has no pid in the new namespace (getsid reads 0 there). The session is
// remade in the namespace at its dumped id instead, as a gone leader's is (a helper with the
// leader's pid calls setsid and clones the root into it), so the tree reads its dumped ids;
// a group led from outside is the session's then. Not with --shell-job: the tree stays in
// crrestore's session, on its terminal.
void remake_outside_session(RestoreContext& root) {
  schema::Process& r = *root.img.process;
  if (r.sid == r.pid) return;
  for (const auto& o : root.others)
    if (o->img.process->pid == r.sid) return;  // cannot be (a descendant leading it): kept
  r.flags |= schema::kProcessSessionLeaderGone;
  r.flags &= ~static_cast<uint32_t>(schema::kProcessGroupLeaderGone);
}

}  // namespace

std::vector<RestoreContext*> tree_order(RestoreContext& root) {
  std::vector<RestoreContext*> v = {&root};
  for (auto& o : root.others)
    if (!o->zombie()) v.push_back(o.get());
  return v;
}

Status read_tree_head(RestoreContext& root) {
  TreeHead head;
  ShmemBuilder shmem;
  head.on_shmem = [&shmem](const schema::Shmem& s) { return shmem.create(s); };
  head.on_shmem_data = [&shmem](const schema::ShmemData& d, std::span<const uint8_t> b) {
    return shmem.fill(d, b);
  };
  root.ipc_owner = std::make_unique<IpcBuilder>();
  root.ipc = root.ipc_owner.get();
  bool ipc_records = false;
  head.on_ipc = [&root, &ipc_records](const format::RecordReader& r) {
    ipc_records = true;
    return root.ipc->record(r);
  };
  if (root.opts.user_ns) root.ipc->set_user_ns(&*root.opts.user_ns);
  root.precopy_owner = std::make_unique<PrecopyStore>();
  root.precopy = root.precopy_owner.get();
  head.on_precopy = [&root](const schema::PrecopyPages& p, std::span<const uint8_t> b) {
    return root.precopy->add(p.pid, p.vaddr, b);
  };
  head.on_precopy_deferred = [&root](const schema::PrecopyPages& p, const format::DeferredTail& d) {
    return root.precopy->add_deferred(p.pid, p.vaddr, d);
  };
  CR_TRY_ASSIGN(bool positioned, load_tree_head(*root.reader, head));
  if (positioned && (head.procs.front().process->flags & schema::kProcessLiveUpdate) != 0) {
    // crdump --live-update: the dumped tree still holds the pids until crdump has written all
    // of the stream (tree_released is its last record): read it all now, make processes after.
    // (The pre-copied pages are in the store already: what is left is small.)
    CR_TRY(root.reader->read_to_end(half_of_memory()));
    CR_TRY_ASSIGN(bool again, root.reader->next());
    if (!again) return make_error("live update: the stream ends before any process's memory");
  }
  CR_TRY(shmem.hand_over(root.shmem_fds));
  root.shmems = &root.shmem_fds;
  root.mounts = &root.shared.mounts;
  // The contents are in: crrestore's own attaches go before the tree is forked from it.
  root.ipc->detach_all();
  if (!positioned) return make_error("image ends before any process's memory");
  CR_TRY(check_tree_head(head));
  CR_TRY(enter_user_ns_ids(root, head));
  CR_TRY_ASSIGN(root.vdso_plan, plan_vdso_here(head));
  root.vdso = &root.vdso_plan;
  CR_TRY_ASSIGN(root.premap_owner, plan_premap(head));
  root.premap = root.premap_owner.get();
  root.prefork_owner = std::make_unique<PreforkStore>();
  root.prefork = root.prefork_owner.get();
  // Before anything is made for the image: what it asks for must be its own to ask.
  root.privileges = Privileges::of(head);
  // Inside the tree's user namespace (its ids translated there) the kernel bounds what the
  // restore can do: what a user's process asks for is checked against the namespace, not the
  // host's databases, and the maps themselves are checked below.
  Status allowed =
      root.opts.user_ns ? Status{} : root.privileges.check(head, root.opts.signed_image);
  if (!allowed.ok() && !head.shared.net_lock.empty())
    // Not the image's to lift (it is refused), nor left silently: the peers of its connections
    // wait on dropped packets until someone does.
    return make_error(std::move(allowed).error().message +
                      " (the network lock crdump left stays: 'nft delete table inet " +
                      head.shared.net_lock + "' lifts it)");
  CR_TRY(std::move(allowed));
  if (const FsIdentity* owner = root.privileges.owner()) {
    // The tree's shared memory is its own, not root's: its processes open it by /proc as
    // themselves (a memfd of mode 0600 among them).
    for (const auto& [id, h] : root.shmem_fds)
      if (::fchown(h.fd.get(), owner->fsuid, owner->fsgid) != 0)
        return errno_error("shmem " + std::to_string(id) + ": fchown to uid " +
                           std::to_string(owner->fsuid));
  }
  const uint32_t root_flags = head.procs.front().process->flags;
  if ((root_flags & schema::kProcessZombie) != 0)
    return make_error("the image's root process is a zombie");
  // The tree starts in a new IPC namespace of its own, with or without objects in it.
  if ((root_flags & schema::kProcessOwnIpcNs) != 0) {
    CR_TRY(root.ipc->enter_new_ns());
  } else if (ipc_records) {
    return make_error("image holds SysV IPC objects but its root has no IPC namespace of its own");
  }
  root.img = std::move(head.procs.front());
  root.shared = std::move(head.shared);
  root.seccomp_filters = &root.shared.seccomp_filters;
  root.restricted = root.privileges.restricted();
  for (size_t i = 1; i < head.procs.size(); ++i) {
    auto ctx = std::make_unique<RestoreContext>();
    ctx->opts = root.opts;
    ctx->opts.foreground_tty = -1;
    ctx->reader = root.reader;
    ctx->shmems = &root.shmem_fds;
    ctx->mounts = &root.shared.mounts;
    ctx->ipc = root.ipc;
    ctx->vdso = &root.vdso_plan;
    ctx->premap = root.premap;
    ctx->prefork = root.prefork;
    ctx->precopy = root.precopy;
    ctx->lazy = root.lazy;
    ctx->seccomp_filters = &root.shared.seccomp_filters;
    ctx->restricted = root.restricted;
    ctx->img = std::move(head.procs[i]);
    root.others.push_back(std::move(ctx));
  }
  if (root.opts.pidns) {
    // In a user namespace of its own the tree's pid namespace is made inside crrestore's: only
    // a pid namespace that namespace owns takes pids from us.
    if ((root_flags & schema::kProcessOwnPidNs) != 0 && !root.opts.user_ns)
      return make_error(
          "--pidns: the image's root is pid 1 of a pid namespace of its own, which crrestore "
          "makes anew without --pidns");
    if (!root.opts.shell_job && (root_flags & schema::kProcessOwnPidNs) == 0)
      remake_outside_session(root);
  }
  return {};
}

Status create_tree(RestoreContext& root) {
  if (!root.opts.external_mounts.empty() && root.shared.mounts.empty())
    return make_error("--external mnt[" + root.opts.external_mounts.begin()->first +
                      "]: the tree has no mount namespace of its own");
  if (!root.opts.external_veths.empty() &&
      (root.img.process->flags & schema::kProcessOwnNetNs) == 0)
    return make_error("--external veth[" + root.opts.external_veths.begin()->first +
                      "]: the tree has no net namespace of its own");
  CR_TRY(check_external_veths(root.shared, root.opts.external_veths));
  // A tree's own net namespace: crrestore's thread is in it while the tree's sockets are made
  // and its root is forked (into it), then goes back to its own (carriers are closed first:
  // the scope is left by then on every path).
  std::optional<NetNsScope> net;
  if ((root.img.process->flags & schema::kProcessOwnNetNs) != 0) {
    CR_TRY_ASSIGN(NetNsScope s, NetNsScope::enter_new(root.shared, root.opts.external_veths));
    net.emplace(std::move(s));
  }
  OpenCarriers carriers;
  LateUnixQueues late_queues;  // after carriers: its stand-ins close before them
  CR_TRY_ASSIGN(std::vector<FdSource> opened,
                open_files(root.shared, root.opts, root.shmem_fds, root.privileges, late_queues));
  for (const FdSource& s : opened) carriers.fds[s.file_id] = s.fd;
  CR_TRY(restore_epoll_items(root.shared, carriers.fds));

  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd go_rd(go[0]), go_wr(go[1]);
  root.zombie_go_rd = go[0];
  root.zombie_go_wr = go[1];
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd rd(p[0]), wr(p[1]);
  const int report_fd = p[1];
  root.restorer_pgrp = ::getpgrp();
  // The root of a tree that owns its pid, UTS or mount namespace is made in new ones (its
  // children inherit them). Its own time namespace is crrestore's namespace for children while
  // the root is made (and the helper of its gone leader, which belongs to the tree); its cgroup
  // namespace the root makes itself (enter_cgroup_ns).
  ScopedFd own_time;
  if (root.shared.time_ns) {
    CR_TRY_ASSIGN(own_time, make_time_ns_for_children(*root.shared.time_ns));
  }
  CR_TRY(prepare_cgroup_ns(root));
  // Each process forks its own children: found by pid, not by a scan of the whole tree.
  root.children_of.clear();
  for (const auto& o : root.others) root.children_of[o->img.process->ppid].push_back(o.get());
  const uint32_t flags = root.img.process->flags;
  const uint64_t ns = ((flags & schema::kProcessOwnPidNs) != 0 ? CLONE_NEWPID : 0) |
                      ((flags & schema::kProcessOwnUtsNs) != 0 ? CLONE_NEWUTS : 0) |
                      ((flags & schema::kProcessOwnMntNs) != 0 ? CLONE_NEWNS : 0);
  auto created = create_process(
      root,
      [&root, &carriers, &p, report_fd] {
        ::close(p[0]);
        child_main(root, root, carriers.fds, report_fd);
      },
      ns);
  wr.reset();
  // Inside the tree's user namespace (--pidns) the host's time and net namespaces are not ours
  // to enter again (setns needs a capability there): the restorer stays in the tree's, which
  // it is part of; whatever it forks from here is the tree's too.
  Status left = own_time.valid() && !root.opts.user_ns ? leave_time_ns_for_children(own_time)
                                                        : Status{};
  if (net && root.opts.user_ns) {
    net->stay();
  } else if (net) {
    Status net_left = net->leave();
    if (left.ok()) left = std::move(net_left);
  }
  if (!created.ok()) return std::move(created).error();
  root.child = std::move(created).value();
  if (!left.ok()) {
    root.child.kill_and_reap();
    return left;
  }
  // Until every process has closed its end: a process that failed or died has, too.
  std::vector<RestoreContext*> all = tree_order(root);
  ChildReport rep;
  ReportLines lines(rd.get());
  std::string line;
  if (root.premap != nullptr) {
    // Each process in stream order, once it waits at its fork point: its section read, its
    // memory placed (premap.cc). Its parent came before it, so it does get there.
    for (RestoreContext* c : all) {
      while (rep.error.empty() && rep.premap.count(c->pid()) == 0) {
        if (!lines.next(line)) {
          rep.error = "pid " + std::to_string(c->pid()) + " died while being created";
          break;
        }
        rep.add(line);
      }
      if (!rep.error.empty()) break;
      Status st = premap_process(root, *c, rep.premap[c->pid()]);
      if (!st.ok()) {
        rep.error = std::move(st).error().message;
        break;
      }
    }
  }
  if (rep.error.empty())
    while (lines.next(line)) rep.add(line);
  for (auto& w : rep.warnings) root.warn(std::move(w));
  if (rep.error.empty()) {
    for (RestoreContext* c : all)
      if (rep.ready.count(c->pid()) == 0) {
        rep.error = "pid " + std::to_string(c->pid()) + " died while being created";
        break;
      }
  }
  // Every process exists (the zombies still run): the queues whose messages carry their
  // credentials can be sent, through the carriers, before any of them reads.
  if (rep.error.empty() && !late_queues.empty()) {
    std::set<pid_t> pids;
    for (RestoreContext* c : all) pids.insert(c->pid());
    Status st = late_queues.send(pids);
    if (!st.ok()) rep.error = std::move(st).error().message;
  }
  // Every live process has its group now: the zombies join theirs and exit.
  go_wr.reset();
  if (rep.error.empty()) rep.error = wait_for_zombies(root);
  if (!rep.error.empty()) {
    // The processes that said ready wait in pause(), those placing memory in a read; the
    // others have exited already.
    for (RestoreContext* c : all)
      if (c != &root && (rep.ready.count(c->pid()) != 0 || rep.premap.count(c->pid()) != 0))
        ::kill(c->pid(), SIGKILL);
    root.child.kill_and_reap();
    return make_error(rep.error);
  }
  // Every process waits in pause(): each is seized there and becomes ours to drive and, on
  // failure, to kill and reap as its tracer.
  for (RestoreContext* c : all) {
    if (c != &root) c->child = ChildGuard(c->pid());
    auto t = sys::Tracee::seize(c->pid(), kTraceOptions);
    if (!t.ok()) return std::move(t).error().wrap("seize restored pid " + std::to_string(c->pid()));
    c->tracee = std::move(t).value();
  }
  return {};
}

namespace {
constexpr uint32_t kRemade = schema::kProcessSessionLeaderGone | schema::kProcessGroupLeaderGone;
}  // namespace

pid_t restored_group(const RestoreContext& root, const schema::Process& p, pid_t root_pgrp) {
  // Led by a process of the tree (a zombie leads its group again too), or remade by a helper.
  auto leads = [&p](const schema::Process& o) {
    return o.pid == p.pgid && (o.pgid == o.pid || (o.flags & schema::kProcessZombie) == 0);
  };
  auto remade = [&p](const schema::Process& o) {
    return (o.flags & kRemade) != 0 && o.pgid == p.pgid;
  };
  bool in_tree = leads(*root.img.process) || remade(*root.img.process);
  for (const auto& o : root.others)
    in_tree = in_tree || leads(*o->img.process) || remade(*o->img.process);
  // A group led from outside the tree is the root's (crdump checked): wherever the root is.
  return in_tree ? static_cast<pid_t>(p.pgid) : root_pgrp;
}

pid_t in_tree_ns(const RestoreContext& root, pid_t id) {
  if (!root.img.ns_ids) return id;
  const uint32_t want = static_cast<uint32_t>(id);
  auto look = [want](const RestoreContext& c) -> uint32_t {
    if (!c.img.ns_ids) return 0;
    const schema::Process& p = *c.img.process;
    if (p.pid == want) return c.img.ns_ids->ns_pid;
    if (p.pgid == want) return c.img.ns_ids->ns_pgid;
    if (p.sid == want) return c.img.ns_ids->ns_sid;
    return 0;
  };
  uint32_t got = look(root);
  for (size_t i = 0; got == 0 && i < root.others.size(); ++i) got = look(*root.others[i]);
  return static_cast<pid_t>(got);
}

Status join_groups(RestoreContext& root) {
  const pid_t root_pgrp = ::getpgid(root.pid());
  const std::vector<RestoreContext*> all = tree_order(root);
  for (RestoreContext* c : all) {
    const auto& p = *c->img.process;
    // Done by the process itself, or by the helper that created it.
    if (c == &root || p.pgid == p.pid || (p.flags & kRemade) != 0) continue;
    const pid_t want = restored_group(root, p, root_pgrp);
    if (::getpgid(c->pid()) == want) continue;
    // The task names the group in its own pid namespace.
    const pid_t seen = in_tree_ns(root, want);
    if (seen == 0)
      return make_error("pid " + std::to_string(p.pid) + ": process group " + std::to_string(want) +
                        " is outside the tree's pid namespace");
    CR_TRY_ASSIGN(auto rs, sys::RemoteSyscalls::create(c->tracee, own_syscall_insn()));
    auto r = rs.call("setpgid", SYS_setpgid, 0, static_cast<uint64_t>(seen));
    CR_TRY(rs.finish());
    if (!r.ok())
      return std::move(r).error().wrap("pid " + std::to_string(p.pid) + " process group " +
                                       std::to_string(want));
  }
  return {};
}

void kill_tree(RestoreContext& root) {
  // Children first, so that a parent's exit does not hand a traced child to someone else.
  std::vector<RestoreContext*> all = tree_order(root);
  for (size_t i = all.size(); i-- > 0;) {
    RestoreContext* c = all[i];
    c->remote.reset();
    for (auto& t : c->threads) {
      t->remote.reset();
      t->tracee.release();
    }
    c->child.kill_and_reap();
    c->tracee.release();
  }
}

}  // namespace cr::restore
