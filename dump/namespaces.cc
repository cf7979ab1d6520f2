// The namespaces a tree's root may own: its user namespace (a child of crdump's), its pid
// namespace (the root is pid 1 of it), its UTS, time and cgroup namespaces, its mount namespace
// (mount_ns.cc). Every other kind must be crdump's (but IPC: ipc.cc). Each one the tree owns
// must belong to the tree's user namespace: restore makes them from inside it. The image holds the ids each process has inside the pid
// namespace (PidNsIds), the UTS names (UtsNs), the clock offsets (TimeNs) and the cgroup
// namespace's roots (CgroupNs, cgroups.cc); a process outside the tree in one of them is a
// part the restore could not rebuild.
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

// The inode of the namespace `fd` names (or of the one an NS_GET_* ioctl on it gives).
Result<uint64_t> ns_inode(int fd, unsigned long get, const std::string& what) {
  ScopedFd owned;
  if (get != 0) {
    owned.reset(::ioctl(fd, get));
    if (!owned.valid()) return errno_error(what);
    fd = owned.get();
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("fstat " + what);
  return static_cast<uint64_t>(st.st_ino);
}

// The root's user namespace must be a child of crdump's (one level: restore makes one and
// every namespace below it), with uid and gid 0 mapped (the restore runs as that root) and
// every process's ids in the maps (restore sets them from inside).
Status read_user_ns(DumpTree& tree, pid_t root, const ProcDir& proc) {
  const std::string who = "pid " + std::to_string(root);
  ScopedFd ns(::open(("/proc/" + std::to_string(root) + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return errno_error("open the user namespace of " + who);
  auto parent = ns_inode(ns.get(), NS_GET_PARENT, "NS_GET_PARENT of the user namespace of " + who);
  ScopedFd mine(::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC));
  if (!mine.valid()) return errno_error("open crdump's user namespace");
  CR_TRY_ASSIGN(uint64_t ours, ns_inode(mine.get(), 0, "crdump's user namespace"));
  if (!parent.ok() || *parent != ours)
    return make_error(who +
                      ": user namespace differs from crdump's and is not a child of it (nested "
                      "user namespaces, or crdump inside another one): not supported");
  schema::UserNs u;
  CR_TRY_ASSIGN(std::string uid_text, proc.read("uid_map"));
  CR_TRY_ASSIGN(u.uid_map, parse_id_map(uid_text));
  CR_TRY_ASSIGN(std::string gid_text, proc.read("gid_map"));
  CR_TRY_ASSIGN(u.gid_map, parse_id_map(gid_text));
  CR_TRY_ASSIGN(std::string sg, proc.read("setgroups"));
  u.setgroups = sg.starts_with("deny") ? 2 : 1;
  if (IdMap{u.uid_map}.outside(0) == IdMap::kUnmapped ||
      IdMap{u.gid_map}.outside(0) == IdMap::kUnmapped)
    return make_error(who +
                      ": its user namespace maps no uid 0 or no gid 0 (a namespace without a "
                      "root, or its maps not written yet): not supported");
  tree.ns.own_user = true;
  tree.ns.user = std::move(u);
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
    if (kind == "user" && theirs.ok()) {
      CR_TRY(read_user_ns(tree, root, proc));
      tree.ns.user_link = *theirs;
      continue;
    }
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
    if (what.empty() && tree.ns.own_user) {
      auto u = proc->readlink("ns/user");
      if (u.ok() && *u == tree.ns.user_link) what = "user";
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

// Every namespace the tree owns belongs to the tree's user namespace (its own, or crdump's):
// restore makes them all from inside that one. A namespace of the tree that another user
// namespace owns (root joined it with setns) would come back owned by the wrong one.
Status check_ns_owners(const DumpTree& tree) {
  const pid_t root = tree.procs.front()->pid;
  const std::string base = "/proc/" + std::to_string(root) + "/ns/";
  ScopedFd user(::open((base + "user").c_str(), O_RDONLY | O_CLOEXEC));
  if (!user.valid()) return errno_error("open " + base + "user");
  CR_TRY_ASSIGN(uint64_t users, ns_inode(user.get(), 0, base + "user"));
  const std::pair<bool, const char*> own[] = {
      {tree.ns.own_pid, "pid"},     {tree.ns.own_uts, "uts"},     {tree.ns.own_time, "time"},
      {tree.ns.own_cgroup, "cgroup"}, {tree.ns.own_mnt, "mnt"}, {tree.ns.own_net, "net"},
      {tree.ipc.own_ns, "ipc"}};
  for (const auto& [owned, kind] : own) {
    if (!owned) continue;
    ScopedFd ns(::open((base + kind).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return errno_error("open " + base + kind);
    CR_TRY_ASSIGN(uint64_t owner, ns_inode(ns.get(), NS_GET_USERNS, "NS_GET_USERNS of " + base + kind));
    if (owner != users)
      return make_error("pid " + std::to_string(root) + ": its own " + kind +
                        " namespace belongs to another user namespace than the tree's (it was "
                        "joined with setns): not supported");
  }
  return {};
}

// Restore sets every process's ids from inside the new user namespace: each must be mapped.
// With setgroups denied nobody inside can set groups: the restore gives every process the
// same ones (before the namespace is made), so the tree must have one list.
Status check_user_ns_ids(DumpTree& tree) {
  schema::UserNs& u = *tree.ns.user;
  const IdMap uids{u.uid_map}, gids{u.gid_map};
  bool first = true;
  for (const auto& p : tree.procs) {
    if (p->zombie) continue;
    const schema::Creds& c = p->creds;
    const std::string who = "pid " + std::to_string(p->pid);
    for (uint32_t id : {c.uid, c.euid, c.suid, c.fsuid})
      if (uids.inside(id) == IdMap::kUnmapped)
        return make_error(who + ": uid " + std::to_string(id) +
                          " is not mapped in the tree's user namespace: not supported");
    for (uint32_t id : {c.gid, c.egid, c.sgid, c.fsgid})
      if (gids.inside(id) == IdMap::kUnmapped)
        return make_error(who + ": gid " + std::to_string(id) +
                          " is not mapped in the tree's user namespace: not supported");
    if (u.setgroups == 2) {
      if (first) u.groups = c.groups;
      first = false;
      if (c.groups != u.groups)
        return make_error(who +
                          ": its supplementary groups differ from the tree root's, and the "
                          "tree's user namespace denies setgroups: not supported");
      continue;
    }
    for (uint64_t g : c.groups)
      if (gids.inside(static_cast<uint32_t>(g)) == IdMap::kUnmapped)
        return make_error(who + ": supplementary group " + std::to_string(g) +
                          " is not mapped in the tree's user namespace: not supported");
  }
  return {};
}

Status collect_namespaces(DumpTree& tree) {
  CR_TRY(collect_mount_ns(tree));
  CR_TRY(collect_net_ns(tree));
  CR_TRY(check_ns_owners(tree));
  if (tree.ns.own_user) CR_TRY(check_user_ns_ids(tree));
  if (!tree.ns.own_pid && !tree.ns.own_uts && !tree.ns.own_time && !tree.ns.own_cgroup &&
      !tree.ns.own_mnt && !tree.ns.own_user)
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
