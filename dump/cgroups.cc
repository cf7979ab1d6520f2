// The cgroups of the tree: where each process and thread is, in every hierarchy, and the
// settings of those cgroups and their ancestors, so that restore can put each task back and
// create a cgroup that is gone with the settings it had. A tree with its own cgroup namespace
// also has that namespace's root in each hierarchy (CgroupNs).
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "dump/passes.h"
#include "sys/cgroupfs.h"

namespace cr::dump {

namespace {

using Lines = std::vector<sys::CgroupLine>;

bool same_cgroups(const Lines& a, const Lines& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].controllers != b[i].controllers || a[i].path != b[i].path) return false;
  return true;
}

class Collector {
 public:
  Collector(DumpTree& tree, std::vector<sys::CgroupMount> mounts, Lines own)
      : tree_(tree), mounts_(std::move(mounts)), own_(std::move(own)) {}

  // The member record of task `tid` of `pid` in the cgroups `lines`.
  Result<schema::CgroupMember> member(pid_t pid, pid_t tid, const Lines& lines) {
    schema::CgroupMember m;
    m.pid = static_cast<uint32_t>(pid);
    m.tid = static_cast<uint32_t>(tid);
    for (const sys::CgroupLine& l : lines) {
      CR_TRY_ASSIGN(uint32_t id, dir(l.controllers, l.path));
      m.cgroups.push_back(id);
      if (!crdumps(l)) tree_.cgroups.differs = true;
    }
    return m;
  }

  // The Cgroup record of `path` in hierarchy `controllers` (a cgroup namespace's root).
  Result<uint32_t> record(const std::string& controllers, const std::string& path) {
    return dir(controllers, path);
  }

  // Whether the Cgroup record `id` enables controllers for its children (cgroup2): then no
  // task may join it (the "no internal processes" rule), and a restore could not put one there.
  bool enables_controllers(uint32_t id) const {
    for (const CgroupTable::Dir& d : tree_.cgroups.dirs)
      if (d.rec.id == id)
        for (const schema::CgroupProperty& p : d.props)
          if (p.name == "cgroup.subtree_control") return true;
    return false;
  }

 private:
  // Whether crdump itself is in that cgroup.
  bool crdumps(const sys::CgroupLine& l) const {
    for (const sys::CgroupLine& o : own_)
      if (o.controllers == l.controllers) return o.path == l.path;
    return false;
  }

  // The id of the Cgroup record of `path` in hierarchy `controllers`, its ancestors recorded
  // first.
  Result<uint32_t> dir(const std::string& controllers, const std::string& path) {
    auto key = std::make_pair(controllers, path);
    if (auto it = ids_.find(key); it != ids_.end()) return it->second;
    if (!sys::valid_cgroup_path(path))
      return make_error("cgroup " + controllers + ":" + path + ": not a path restore could use");
    if (path != "/") {
      const size_t slash = path.rfind('/');
      CR_TRY(dir(controllers, slash == 0 ? "/" : path.substr(0, slash)));
    }
    CgroupTable::Dir d;
    d.rec.id = tree_.next_obj_id++;
    d.rec.controllers = controllers;
    d.rec.path = path;
    // The root's settings are the machine's, not the tree's (and most cannot be set there).
    const sys::CgroupMount* m = sys::find_cgroup_mount(mounts_, controllers);
    auto at = m != nullptr && path != "/" ? sys::cgroup_dir(*m, path) : std::nullopt;
    if (at) {
      auto props = sys::read_cgroup_properties(*at, m->v2);
      if (!props.ok())
        return std::move(props).error().wrap(
            "cgroup " + (controllers.empty() ? "(v2)" : controllers) + ":" + path);
      for (auto& [name, value] : *props)
        d.props.push_back(schema::CgroupProperty{d.rec.id, std::move(name), std::move(value)});
    }
    ids_.emplace(std::move(key), d.rec.id);
    tree_.cgroups.dirs.push_back(std::move(d));
    return tree_.cgroups.dirs.back().rec.id;
  }

  DumpTree& tree_;
  std::vector<sys::CgroupMount> mounts_;
  Lines own_;
  std::map<std::pair<std::string, std::string>, uint32_t> ids_;
};

Result<Lines> read_lines(const ProcDir& proc, const std::string& entry) {
  CR_TRY_ASSIGN(std::string text, proc.read(entry));
  return sys::parse_cgroup(text);
}

// The root's /proc/PID/cgroup as its own cgroup namespace shows it: read by a thread of
// crdump's that joined that namespace (setns changes the calling thread only, and the file
// shows paths from its reader's namespace root).
Result<Lines> read_inner_lines(pid_t root) {
  const std::string dir = "/proc/" + std::to_string(root);
  ScopedFd ns(::open((dir + "/ns/cgroup").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return errno_error("open the cgroup namespace of pid " + std::to_string(root));
  Result<Lines> out = make_error("not read");
  std::thread reader([&] {
    if (::setns(ns.get(), CLONE_NEWCGROUP) != 0) {
      out = errno_error("setns into the cgroup namespace of pid " + std::to_string(root));
      return;
    }
    auto proc = ProcDir::open(root);
    if (!proc.ok()) {
      out = proc.error();
      return;
    }
    out = read_lines(*proc, "cgroup");
  });
  reader.join();
  return out;
}

// The roots of the root's own cgroup namespace, one per hierarchy: its cgroup from outside
// less the path it has inside.
Result<schema::CgroupNs> ns_roots(Collector& c, pid_t root, const Lines& outer) {
  const std::string who = "pid " + std::to_string(root);
  CR_TRY_ASSIGN(Lines inner, read_inner_lines(root));
  if (inner.size() != outer.size())
    return make_error(who + ": its cgroup namespace shows another list of hierarchies");
  schema::CgroupNs out;
  for (size_t i = 0; i < outer.size(); ++i) {
    const std::string name = outer[i].controllers.empty() ? "cgroup2" : outer[i].controllers;
    auto at = sys::cgroup_ns_root(outer[i].path, inner[i].path);
    if (inner[i].controllers != outer[i].controllers || !at)
      return make_error(who + ": its cgroup " + name + ":" + outer[i].path + " shows as " +
                        inner[i].path +
                        " in its own cgroup namespace (outside the namespace's root, moved "
                        "there after the unshare): not supported");
    CR_TRY_ASSIGN(uint32_t id, c.record(outer[i].controllers, *at));
    if (c.enables_controllers(id))
      return make_error(who + ": the root of its cgroup namespace, " + name + ":" + *at +
                        ", enables controllers for its children (cgroup.subtree_control): the "
                        "restore could not put the root there to unshare: not supported");
    out.roots.push_back(id);
  }
  return out;
}

}  // namespace

Status collect_cgroups(DumpTree& tree) {
  CR_TRY_ASSIGN(ProcDir self, ProcDir::open(::getpid()));
  CR_TRY_ASSIGN(std::string mountinfo, self.read("mountinfo"));
  CR_TRY_ASSIGN(auto mounts, sys::parse_mountinfo(mountinfo));
  CR_TRY_ASSIGN(Lines own, read_lines(self, "cgroup"));
  Collector c(tree, sys::cgroup_mounts(mounts), std::move(own));
  for (auto& p : tree.procs) {
    // A zombie is made again only to exit: where it was does not matter any more.
    if (p->zombie) continue;
    const std::string who = "pid " + std::to_string(p->pid);
    auto lines = read_lines(p->proc, "cgroup");
    if (!lines.ok()) return std::move(lines).error().wrap(who);
    auto m = c.member(p->pid, p->pid, *lines);
    if (!m.ok()) return std::move(m).error().wrap(who);
    if (tree.ns.own_cgroup && p == tree.procs.front()) {
      auto roots = ns_roots(c, p->pid, *lines);
      if (!roots.ok()) {
        CR_TRY(tree.refuse(p->pid, std::move(roots).error()));
      } else {
        tree.ns.cgroup = std::move(roots).value();
        // Restore moves every task out of the namespace's root, even into crrestore's cgroup.
        tree.cgroups.differs = true;
      }
    }
    tree.cgroups.members.push_back(std::move(m).value());
    // A thread is in its process's cgroups unless moved on its own (v1, v2 threaded).
    for (const ThreadState& t : p->threads) {
      if (t.tid == p->pid) continue;
      auto tl = read_lines(p->proc, "task/" + std::to_string(t.tid) + "/cgroup");
      if (!tl.ok()) return std::move(tl).error().wrap(who);
      if (same_cgroups(*tl, *lines)) continue;
      auto tm = c.member(p->pid, t.tid, *tl);
      if (!tm.ok()) return std::move(tm).error().wrap(who + " thread " + std::to_string(t.tid));
      tree.cgroups.members.push_back(std::move(tm).value());
    }
  }
  return {};
}

}  // namespace cr::dump
