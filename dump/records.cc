// Writing the collected state in the stream's fixed order (everything but the pages):
// the UserNs of a tree in a user namespace of its own; the Vdso; every Process; per process
// Creds, Rlimits, FsInfo, ProcAttrs; SeccompFilter, SeccompThread; PidNsIds, UtsNs and TimeNs of a tree that owns those namespaces; Cgroup,
// CgroupProperty, CgroupMember, CgroupNs; the SysV objects
// of a tree with its own IPC namespace; Shmem, ShmemData; Pty, Pipe, PipeData, UnixSocket,
// UnixSocketData, InetSocket, InetSocketData, NetLock, NetlinkSocket, File, FileData,
// InotifyWatch; FanotifyGroup, FanotifyMark;
// every Fd; every EpollItem; every FileLock and FileOwner;
// then per process: Mm, Vma | Pages | Sigaction, Itimer, PosixTimer, PendingSignal (shared,
// then per thread), Thread (leader first). One process gives the version 1 order exactly.
#include <sched.h>
#include <sys/resource.h>

#include <cstring>
#include <map>

#include "dump/passes.h"
#include "format/crc32c.h"
#include "sys/vdso.h"
#include "sys/xstate.h"

namespace cr::dump {

namespace {

// The root's vDSO: what crrestore needs to tell whether its own differs, and where the dumped
// one had its functions (sys/vdso.h).
Status write_vdso(DumpContext& root) {
  for (const auto& v : root.vmas) {
    if (v.kind != schema::kVmaVdso) continue;
    std::vector<uint8_t> bytes(v.end - v.start);
    CR_TRY(root.tracee().read_mem(v.start, bytes.data(), bytes.size()));
    auto fns = sys::vdso_functions(bytes);
    if (!fns.ok()) return std::move(fns).error().wrap("pid " + std::to_string(root.pid));
    schema::Vdso rec;
    rec.size = bytes.size();
    rec.crc = format::crc32c(bytes.data(), bytes.size());
    for (const auto& f : *fns) {
      if (f.name.find('\n') != std::string::npos) continue;
      if (!rec.names.empty()) rec.names += '\n';
      rec.names += f.name;
      rec.offsets.push_back(f.offset);
    }
    return root.out.write(rec);
  }
  return {};  // a kernel without one (vdso=0)
}

}  // namespace

Status write_tree_head(DumpTree& tree) {
  format::RecordWriter& out = tree.procs.front()->out;
  // First: crrestore must know before anything else that it restores into a user namespace.
  if (tree.ns.user) {
    CR_TRY(out.write(*tree.ns.user));
    tree.procs.front()->process.flags |= schema::kProcessOwnUserNs;
  }
  CR_TRY(write_vdso(*tree.procs.front()));
  if (tree.premap.second != 0)
    CR_TRY(out.write(schema::PremapArea{tree.premap.first, tree.premap.second}));
  if (tree.ipc.own_ns) tree.procs.front()->process.flags |= schema::kProcessOwnIpcNs;
  // A build that skipped the lock records would restore the files unlocked: it must refuse.
  if (!tree.files.locks.empty() || !tree.files.owners.empty())
    tree.procs.front()->process.flags |= schema::kProcessFileLocks;
  // A build that skipped the cgroup records would leave the tree in its own cgroups.
  if (tree.cgroups.differs) tree.procs.front()->process.flags |= schema::kProcessCgroups;
  // A build that skipped the memberships would restore the sockets outside their groups.
  if (!tree.files.inet_mcast.empty()) tree.procs.front()->process.flags |= schema::kProcessMcast;
  if (tree.ns.own_pid) tree.procs.front()->process.flags |= schema::kProcessOwnPidNs;
  if (tree.ns.own_uts) tree.procs.front()->process.flags |= schema::kProcessOwnUtsNs;
  if (tree.ns.time) tree.procs.front()->process.flags |= schema::kProcessOwnTimeNs;
  if (tree.ns.cgroup) tree.procs.front()->process.flags |= schema::kProcessOwnCgroupNs;
  if (tree.ns.own_mnt) tree.procs.front()->process.flags |= schema::kProcessOwnMntNs;
  if (tree.ns.own_net) tree.procs.front()->process.flags |= schema::kProcessOwnNetNs;
  for (const auto& p : tree.procs) CR_TRY(out.write(p->process));
  for (const auto& p : tree.procs) {
    if (p->zombie) continue;
    CR_TRY(out.write(p->creds));
    CR_TRY(out.write(p->rlimits));
    CR_TRY(out.write(p->fs));
    CR_TRY(out.write(p->attrs));
  }
  CR_TRY(write_seccomp(tree));
  if (tree.ns.own_pid)
    for (const auto& p : tree.procs) CR_TRY(out.write(p->ns_ids));
  if (tree.ns.uts) CR_TRY(out.write(*tree.ns.uts));
  if (tree.ns.time) CR_TRY(out.write(*tree.ns.time));
  for (const auto& m : tree.ns.mounts) CR_TRY(out.write(m));
  for (const auto& [e, data] : tree.ns.tmpfs) CR_TRY(out.write(e, data));
  for (const auto& l : tree.ns.net_links) CR_TRY(out.write(l));
  for (const auto& a : tree.ns.net_addrs) CR_TRY(out.write(a));
  for (const auto& r : tree.ns.net_routes) CR_TRY(out.write(r));
  for (const auto& s : tree.ns.net_sysctls) CR_TRY(out.write(s));
  for (const auto& d : tree.cgroups.dirs) {
    CR_TRY(out.write(d.rec));
    for (const auto& prop : d.props) CR_TRY(out.write(prop));
  }
  for (const auto& m : tree.cgroups.members) CR_TRY(out.write(m));
  if (tree.ns.cgroup) CR_TRY(out.write(*tree.ns.cgroup));
  CR_TRY(write_ipc(tree));
  // Shared memory objects before the files: a memfd's File names its Shmem.
  CR_TRY(write_shmem(tree));
  const FileTable& t = tree.files;
  for (const auto& p : t.ptys) CR_TRY(out.write(p));
  if (t.shell_tty) CR_TRY(out.write(*t.shell_tty));
  for (const auto& p : t.pipes) CR_TRY(out.write(p));
  for (const auto& [pipe, data] : t.pipe_data) CR_TRY(out.write(schema::PipeData{pipe}, data));
  for (const auto& u : t.unix_sockets) CR_TRY(out.write(u));
  for (const auto& q : t.unix_data)
    CR_TRY(
        out.write(schema::UnixSocketData{q.socket, {q.sender.begin(), q.sender.end()}}, q.bytes));
  for (const auto& u : t.inet_sockets) CR_TRY(out.write(u));
  for (const auto& q : t.inet_data)
    CR_TRY(out.write(schema::InetSocketData{q.socket, q.queue, q.from, q.from_port}, q.bytes));
  for (const auto& m : t.inet_mcast) CR_TRY(out.write(m));
  if (tree.net.lock.active()) CR_TRY(out.write(schema::NetLock{tree.net.lock.table()}));
  for (const auto& n : t.netlink_sockets) CR_TRY(out.write(n));
  for (const auto& f : t.files) CR_TRY(out.write(f));
  // The fds in flight, once their Files are written: each names its message by its index in
  // its socket's queue.
  std::map<uint32_t, uint32_t> index;  // socket -> messages seen
  for (const auto& q : t.unix_data) {
    const uint32_t i = index[q.socket]++;
    if (!q.files.empty()) CR_TRY(out.write(schema::UnixSocketRights{q.socket, i, q.files}));
    if (q.creds)
      CR_TRY(out.write(
          schema::UnixSocketCreds{q.socket, i, q.creds->pid, q.creds->uid, q.creds->gid}));
  }
  for (const auto& g : t.file_data) CR_TRY(write_file_data(out, g));
  for (const auto& w : t.inotify_watches) CR_TRY(out.write(w));
  for (const auto& g : t.fanotify_groups) CR_TRY(out.write(g));
  for (const auto& m : t.fanotify_marks) CR_TRY(out.write(m));
  for (const auto& fd : t.fds) CR_TRY(out.write(fd));
  for (const auto& item : t.epoll_items) CR_TRY(out.write(item));
  for (const auto& l : t.locks) CR_TRY(out.write(l));
  for (const auto& o : t.owners) CR_TRY(out.write(o));
  return {};
}

Status write_mm_records(DumpContext& ctx) {
  CR_TRY(ctx.out.write(ctx.mm));
  for (const auto& v : ctx.vmas) CR_TRY(ctx.out.write(v));
  return {};
}

namespace {

Result<schema::Thread> make_thread(DumpContext& ctx, const ThreadState& t) {
  schema::Thread th;
  th.pid = static_cast<uint32_t>(ctx.pid);
  th.tid = static_cast<uint32_t>(t.tid);
  static_assert(sizeof(user_regs_struct) == 27 * 8, "user_regs_struct is 27 words");
  th.regs.resize(27);
  std::memcpy(th.regs.data(), &t.regs, sizeof t.regs);
  th.xsave = t.xsave;
  th.xsave_layout = sys::host_xstate_layout().encode();
  th.sigmask = t.sigmask;
  th.ss_sp = t.ss_sp;
  th.ss_size = t.ss_size;
  th.ss_flags = t.ss_flags;
  th.clear_child_tid = t.clear_child_tid;
  th.robust_head = t.robust_head;
  th.robust_len = t.robust_len;
  th.rseq_addr = t.rseq.addr;
  th.rseq_len = t.rseq.len;
  th.rseq_sig = t.rseq.sig;
  std::string tid = std::to_string(t.tid);
  CR_TRY_ASSIGN(th.comm, ctx.proc.read("task/" + tid + "/comm"));
  while (!th.comm.empty() && th.comm.back() == '\n') th.comm.pop_back();
  // Policy, priority and nice are per thread; the tid is what these calls take.
  int policy = ::sched_getscheduler(t.tid);
  if (policy < 0) return errno_error("sched_getscheduler(" + tid + ")");
  sched_param sp{};
  if (::sched_getparam(t.tid, &sp) != 0) return errno_error("sched_getparam(" + tid + ")");
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(t.tid));
  if (nice == -1 && errno != 0) return errno_error("getpriority(" + tid + ")");
  th.sched_policy = static_cast<uint32_t>(policy);
  th.sched_priority = static_cast<uint32_t>(sp.sched_priority);
  th.nice = nice;
  th.flags = ctx.group_stopped ? uint32_t{schema::kThreadStopped} : 0u;
  th.pdeathsig = t.pdeathsig;
  th.timer_slack_ns = t.timer_slack_ns;
  th.stop_signo = ctx.group_stopped ? static_cast<uint32_t>(ctx.stop_signo) : 0u;
  return th;
}

}  // namespace

Status write_tail_records(DumpContext& ctx) {
  format::RecordWriter& out = ctx.out;
  for (const auto& s : ctx.remote.sigactions) CR_TRY(out.write(s));
  for (const auto& it : ctx.remote.itimers) CR_TRY(out.write(it));
  for (const auto& pt : ctx.remote.posix_timers) CR_TRY(out.write(pt));
  for (const auto& ps : ctx.shared_pending) CR_TRY(out.write(ps));
  for (const ThreadState& t : ctx.threads)
    for (const auto& ps : t.pending) CR_TRY(out.write(ps));
  // The leader first: a reader meets the thread that owns the process before the others.
  for (const ThreadState& t : ctx.threads) {
    CR_TRY_ASSIGN(schema::Thread th, make_thread(ctx, t));
    CR_TRY(out.write(th));
  }
  return {};
}

}  // namespace cr::dump
