// The namespaces a tree's root may own: its pid namespace (the root is pid 1 of it), its UTS,
// time and cgroup namespaces, its mount namespace (mount_ns.cc). Every other kind must be
// crdump's (but IPC: ipc.cc). The image holds the ids each process has inside the pid
// namespace (PidNsIds), the UTS names (UtsNs), the clock offsets (TimeNs) and the cgroup
// namespace's roots (CgroupNs, cgroups.cc); a process outside the tree in one of them is a
// part the restore could not rebuild.
#include <fcntl.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "dump/passes.h"

namespace cr::dump {

namespace {

// The namespaces a process is in, and those its next children would be made in.
constexpr const char* kNamespaces[] = {"pid",
                                       "mnt",
                                       "net",
                                       "ipc",
                                       "uts",
                                       "user",
                                       "cgroup",
                                       "time",
                                       "pid_for_children",
                                       "time_for_children"};

std::string ours(const char* ns) {
  char link[64] = {};
  const std::string mine = std::string("/proc/thread-self/ns/") + ns;
  if (::readlink(mine.c_str(), link, sizeof link - 1) < 0) return "";  // a kind the kernel lacks
  return link;
}

// The root's ids in each pid namespace from crdump's down: the inner one must be 1, one
// level below crdump's.
Status check_pid_ns_root(pid_t root, const ProcDir& proc) {
  CR_TRY_ASSIGN(std::string text, proc.read("status"));
  CR_TRY_ASSIGN(ProcStatus st, parse_status(text));
  auto self = ProcDir::open(::getpid());
  if (!self.ok()) return self.error();
  CR_TRY_ASSIGN(std::string own_text, self->read("status"));
  CR_TRY_ASSIGN(ProcStatus own, parse_status(own_text));
  const std::string who = "pid " + std::to_string(root);
  if (st.ns_pid.size() != 2 || own.ns_pid.size() != 1 || st.ns_pid.back() != 1)
    return make_error(who +
                      ": pid namespace differs from crdump's and the root is not pid 1 of "
                      "it, one level below crdump's (a process inside a container, or "
                      "nested pid namespaces): not supported");
  return {};
}

}  // namespace

Status check_root_namespaces(DumpTree& tree, pid_t root) {
  // A pid that is gone, or a zombie (no namespaces left but its pid namespace, which stays
  // with the pid): freeze says so.
  auto opened = ProcDir::open(root);
  if (!opened.ok() || !opened->readlink("ns/mnt").ok()) return {};
  const ProcDir& proc = *opened;
  const std::string who = "pid " + std::to_string(root);
  for (const char* ns : kNamespaces) {
    const std::string_view kind = ns;
    if (kind == "ipc") continue;
    const std::string mine = ours(ns);
    if (mine.empty()) continue;
    // pid_for_children of a process that unshared CLONE_NEWPID cannot be read until its first
    // child is made (the namespace has no init yet): that is a namespace of its own too.
    auto theirs = proc.readlink(std::string("ns/") + ns);
    if (theirs.ok() && *theirs == mine) continue;
    if (kind == "uts" && theirs.ok()) {
      tree.ns.own_uts = true;
      tree.ns.uts_link = *theirs;
      continue;
    }
    if (kind == "cgroup" && theirs.ok()) {
      tree.ns.own_cgroup = true;
      tree.ns.cgroup_link = *theirs;
      continue;
    }
    // A time namespace is entered at fork or exec after unshare (time_for_children): the
    // root must be in the one it makes its children in, else its children so far and those to
    // come would be in two namespaces.
    if (kind == "time" && theirs.ok()) {
      auto kids = proc.readlink("ns/time_for_children");
      if (!kids.ok() || *kids != *theirs)
        return make_error(who +
                          ": time namespace differs from crdump's and its time_for_children "
                          "from both (a second unshare(CLONE_NEWTIME)): not supported");
      tree.ns.own_time = true;
      tree.ns.time_link = *theirs;
      continue;
    }
    if (kind == "time_for_children" && tree.ns.own_time && theirs.ok() &&
        *theirs == tree.ns.time_link)
      continue;
    if (kind == "time_for_children")
      return make_error(who +
                        ": time_for_children namespace differs from its time namespace (it "
                        "called unshare(CLONE_NEWTIME) and has neither forked nor exec'd into "
                        "it since): not supported; dump a tree whose root is inside its time "
                        "namespace (`unshare --time` execs into it)");
    if (kind == "net" && theirs.ok()) {
      tree.ns.own_net = true;  // what is in it is read once the tree is frozen (net_ns.cc)
      tree.ns.net_link = *theirs;
      continue;
    }
    if (kind == "mnt" && theirs.ok()) {
      tree.ns.own_mnt = true;  // what is in it is checked once the tree is read (mount_ns.cc)
      tree.ns.mnt_link = *theirs;
      continue;
    }
    if (kind == "pid" && theirs.ok()) {
      CR_TRY(check_pid_ns_root(root, proc));
      tree.ns.own_pid = true;
      tree.ns.pid_link = *theirs;
      continue;
    }
    // The root of its own pid namespace makes its children there.
    if (kind == "pid_for_children" && tree.ns.own_pid && theirs.ok() && *theirs == tree.ns.pid_link)
      continue;
    return make_error(who + ": " + ns + " namespace differs from crdump's: not supported");
  }
  return {};
}

Status check_namespaces(const DumpContext& p, const DumpContext& root) {
  for (const char* ns : kNamespaces) {
    auto mine = p.proc.readlink(std::string("ns/") + ns);
    auto roots = root.proc.readlink(std::string("ns/") + ns);
    if (mine.ok() && roots.ok() && *mine != *roots)
      return make_error("pid " + std::to_string(p.pid) + " is in another " + ns +
                        " namespace than pid " + std::to_string(root.pid) +
                        (std::string_view(ns).starts_with("pid")
                             ? " (a pid namespace inside the tree's): not supported"
                             : ": not supported yet"));
  }
  return {};
}

namespace {

// A process's and its threads' ids inside the tree's pid namespace (the last NS* level).
Status collect_ns_ids(DumpContext& c) {
  schema::PidNsIds& ids = c.ns_ids;
  const std::string who = "pid " + std::to_string(c.pid);
  // A zombie was never frozen: its /proc directory is opened here.
  std::optional<ProcDir> opened;
  if (c.zombie) {
    CR_TRY_ASSIGN(ProcDir z, ProcDir::open(c.pid));
    opened.emplace(std::move(z));
  }
  const ProcDir& proc = opened ? *opened : c.proc;
  CR_TRY_ASSIGN(std::string text, proc.read("status"));
  CR_TRY_ASSIGN(ProcStatus st, parse_status(text));
  if (st.ns_pid.size() != 2 || st.ns_pgid.size() != 2 || st.ns_sid.size() != 2)
    return make_error(who + ": /proc status shows no two-level NSpid, NSpgid and NSsid");
  ids.pid = static_cast<uint32_t>(c.pid);
  ids.ns_pid = static_cast<uint32_t>(st.ns_pid.back());
  ids.ns_pgid = static_cast<uint32_t>(st.ns_pgid.back());
  ids.ns_sid = static_cast<uint32_t>(st.ns_sid.back());
  for (const ThreadState& t : c.threads) {
    CR_TRY_ASSIGN(std::string tt, c.proc.read("task/" + std::to_string(t.tid) + "/status"));
    CR_TRY_ASSIGN(ProcStatus ts, parse_status(tt));
    if (ts.ns_pid.size() != 2)
      return make_error(who + " thread " + std::to_string(t.tid) + ": no two-level NSpid");
    ids.tids.push_back(static_cast<uint64_t>(t.tid));
    ids.ns_tids.push_back(static_cast<uint64_t>(ts.ns_pid.back()));
  }
  // A session or group whose leader is gone is remade by a helper with the leader's ids: it
  // needs them inside the namespace too (0: led from outside it).
  const schema::Process& p = c.process;
  if (((p.flags & schema::kProcessSessionLeaderGone) != 0 && ids.ns_sid == 0 && c.parent != 0) ||
      ((p.flags & schema::kProcessGroupLeaderGone) != 0 && ids.ns_pgid == 0))
    return make_error(who +
                      " is in a session or process group whose leader is gone and was "
                      "outside the tree's pid namespace: not supported");
  return {};
}

// hostname and domainname as the tree sees them: uname on a thread of crdump's own that
// joined the tree's UTS namespace (setns changes the calling thread only).
Result<schema::UtsNs> read_uts(pid_t root) {
  ScopedFd ns(::open(("/proc/" + std::to_string(root) + "/ns/uts").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return errno_error("open the UTS namespace of pid " + std::to_string(root));
  Result<schema::UtsNs> out = make_error("no uname");
  std::thread reader([&] {
    if (::setns(ns.get(), CLONE_NEWUTS) != 0) {
      out = errno_error("setns into the UTS namespace of pid " + std::to_string(root));
      return;
    }
    struct utsname u {};
    if (::uname(&u) != 0) {
      out = errno_error("uname");
      return;
    }
    out = schema::UtsNs{u.nodename, u.domainname};
  });
  reader.join();
  return out;
}

// The root's time namespace offsets (it makes its children in its own: check_root_namespaces).
Result<schema::TimeNs> read_time_offsets(const DumpContext& root) {
  CR_TRY_ASSIGN(std::string text, root.proc.read("timens_offsets"));
  CR_TRY_ASSIGN(TimensOffsets o, parse_timens_offsets(text));
  return schema::TimeNs{o.monotonic_sec, o.monotonic_nsec, o.boottime_sec, o.boottime_nsec};
}

// Every process outside the tree in its pid namespace (or making its children there), its
// UTS, time (or making its children there) or cgroup namespace: the restore makes new
// namespaces, without them.
Status check_ns_leaks(DumpTree& tree) {
  CR_TRY_ASSIGN(std::vector<int> pids, ProcDir::all_pids());
  for (int pid : pids) {
    if (tree.find(pid) != nullptr) continue;
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) continue;  // gone meanwhile
    std::string what;
    if (tree.ns.own_pid) {
      auto a = proc->readlink("ns/pid");
      auto b = proc->readlink("ns/pid_for_children");
      if ((a.ok() && *a == tree.ns.pid_link) || (b.ok() && *b == tree.ns.pid_link)) what = "pid";
    }
    if (what.empty() && tree.ns.own_uts) {
      auto u = proc->readlink("ns/uts");
      if (u.ok() && *u == tree.ns.uts_link) what = "uts";
    }
    if (what.empty() && tree.ns.own_time) {
      auto a = proc->readlink("ns/time");
      auto b = proc->readlink("ns/time_for_children");
      if ((a.ok() && *a == tree.ns.time_link) || (b.ok() && *b == tree.ns.time_link)) what = "time";
    }
    if (what.empty() && tree.ns.own_cgroup) {
      auto c = proc->readlink("ns/cgroup");
      if (c.ok() && *c == tree.ns.cgroup_link) what = "cgroup";
    }
    if (what.empty()) continue;
    std::string comm = "?";
    if (auto s = proc->read("stat"); s.ok())
      if (auto st = parse_stat(*s); st.ok()) comm = st->comm;
    CR_TRY(tree.refuse(
        tree.procs.front()->pid,
        make_error("pid " + std::to_string(pid) + " ('" + comm + "'), outside the tree, is in " +
                   "the tree's own " + what + " namespace" +
                   (what == "pid" || what == "time" ? " (or makes its children there)" : "") +
                   ": the restored namespace would not hold it (not supported; `unshare --fork` "
                   "leaves its own parent there: dump a tree started by a launcher that stays "
                   "in the host's namespaces)")));
  }
  return {};
}

}  // namespace

Status collect_namespaces(DumpTree& tree) {
  CR_TRY(collect_mount_ns(tree));
  CR_TRY(collect_net_ns(tree));
  if (!tree.ns.own_pid && !tree.ns.own_uts && !tree.ns.own_time && !tree.ns.own_cgroup &&
      !tree.ns.own_mnt)
    return {};
  if (tree.ns.own_pid)
    for (auto& p : tree.procs) {  // a zombie too: it is made again with its pids
      Status st = collect_ns_ids(*p);
      if (!st.ok()) CR_TRY(tree.refuse(p->pid, std::move(st).error()));
    }
  if (tree.ns.own_uts) {
    CR_TRY_ASSIGN(schema::UtsNs u, read_uts(tree.procs.front()->pid));
    tree.ns.uts = std::move(u);
  }
  if (tree.ns.own_time) {
    auto t = read_time_offsets(*tree.procs.front());
    if (!t.ok()) return std::move(t).error().wrap("pid " + std::to_string(tree.procs.front()->pid));
    tree.ns.time = *t;
  }
  return check_ns_leaks(tree);
}

}  // namespace cr::dump
