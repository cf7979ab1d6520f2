#include "restore/cgroups.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "restore/privilege.h"
#include "restore/tree.h"
#include "sys/cgroupfs.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

constexpr size_t kMaxCgroups = 65536;
constexpr size_t kMaxProperties = 1 << 20;

std::string hierarchy_text(const std::string& controllers) {
  return controllers.empty() ? "cgroup2" : controllers;
}

std::string cgroup_text(const schema::Cgroup& cg) {
  return hierarchy_text(cg.controllers) + ":" + cg.path;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Writes `value` to control file `dir`/`name` in one write, as a cgroup file wants it.
Status write_control(const std::string& dir, const std::string& name, const std::string& value) {
  const std::string path = dir + "/" + name;
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  ssize_t n;
  do n = ::write(fd.get(), value.data(), value.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("write '" + value + "' to " + path);
  return {};
}

// The tree's cgroups as this machine has them: where each hierarchy is mounted, where
// crrestore is (its children start there), which directories exist.
class Placer {
 public:
  static Result<Placer> open(const RestoreContext& root) {
    Placer p;
    CR_TRY_ASSIGN(auto self, sys::ProcDir::open(::getpid()));
    CR_TRY_ASSIGN(std::string own, self.read("cgroup"));
    CR_TRY_ASSIGN(auto lines, sys::parse_cgroup(own));
    for (auto& l : lines) p.own_[l.controllers] = l.path;
    for (const auto& [id, c] : root.shared.cgroups) p.by_path_[{c.cg.controllers, c.cg.path}] = &c;
    return p;
  }

  // Whether a task made by crrestore is there already.
  bool ours(const schema::Cgroup& cg) const {
    auto it = own_.find(cg.controllers);
    return it != own_.end() && it->second == cg.path;
  }

  // Moves task `tid` into `cg` (creating it if it is missing) through `file` ("cgroup.procs"
  // for a process, "tasks" or "cgroup.threads" for a thread), acting as `as` when restricted.
  Status join(const schema::Cgroup& cg, pid_t tid, bool thread, const FsIdentity* as) {
    CR_TRY_ASSIGN(const sys::CgroupMount* m, mount_of(cg));
    CR_TRY_ASSIGN(std::string dir, ensure(*m, cg, as));
    const std::string file = !thread ? "cgroup.procs" : m->v2 ? "cgroup.threads" : "tasks";
    if (as != nullptr) {
      // The user could move its own task there only if it could write that file. The move
      // itself is root's: in v2 the kernel also asks for the source's cgroup.procs, which is
      // crrestore's (where the task was made), not the user's.
      CR_TRY_ASSIGN(auto scope, FsCredsScope::enter(*as));
      const std::string path = dir + "/" + file;
      ScopedFd probe(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!probe.valid())
        return errno_error("cgroup " + cgroup_text(cg) + ": uid " + std::to_string(as->fsuid) +
                           " cannot write " + path);
    }
    return write_control(dir, file, std::to_string(tid));
  }

  // The directory of `cg`, made (with its settings) if missing.
  Result<std::string> dir_of(const schema::Cgroup& cg) {
    CR_TRY_ASSIGN(const sys::CgroupMount* m, mount_of(cg));
    return ensure(*m, cg, nullptr);
  }

  std::vector<std::string> warnings;

 private:
  Result<const sys::CgroupMount*> mount_of(const schema::Cgroup& cg) {
    // Read once a task has to move: most restores find every task where crrestore is.
    if (!mounts_) {
      CR_TRY_ASSIGN(auto self, sys::ProcDir::open(::getpid()));
      CR_TRY_ASSIGN(std::string mountinfo, self.read("mountinfo"));
      CR_TRY_ASSIGN(auto mounts, sys::parse_mountinfo(mountinfo));
      mounts_ = sys::cgroup_mounts(mounts);
    }
    const sys::CgroupMount* m = sys::find_cgroup_mount(*mounts_, cg.controllers);
    if (m == nullptr)
      return make_error("cgroup " + cgroup_text(cg) + ": hierarchy " +
                        hierarchy_text(cg.controllers) +
                        " is not mounted here (restore with --manage-cgroups=ignore to leave the "
                        "tree in crrestore's cgroups)");
    return m;
  }

  // The directory of `cg`, made with its missing ancestors, each new one given its settings.
  Result<std::string> ensure(const sys::CgroupMount& m, const schema::Cgroup& cg,
                             const FsIdentity* as) {
    auto dir = sys::cgroup_dir(m, cg.path);
    if (!dir)
      return make_error("cgroup " + cgroup_text(cg) +
                        " is outside the part of its hierarchy "
                        "mounted at " +
                        m.mount_point);
    if (is_dir(*dir)) return *dir;
    std::string path;
    size_t at = 1;
    while (at <= cg.path.size()) {
      size_t e = cg.path.find('/', at);
      if (e == std::string::npos) e = cg.path.size();
      path = cg.path.substr(0, e);
      at = e + 1;
      auto d = sys::cgroup_dir(m, path);
      if (!d || is_dir(*d)) continue;
      CR_TRY(make(*d, cg.controllers, path, as));
    }
    return *dir;
  }

  Status make(const std::string& dir, const std::string& controllers, const std::string& path,
              const FsIdentity* as) {
    std::optional<FsCredsScope> scope;
    if (as != nullptr) {
      CR_TRY_ASSIGN(auto s, FsCredsScope::enter(*as));
      scope.emplace(std::move(s));
    }
    const std::string what = "cgroup " + hierarchy_text(controllers) + ":" + path;
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return errno_error(what + ": mkdir " + dir +
                         (as ? " as uid " + std::to_string(as->fsuid) : std::string()));
    auto it = by_path_.find({controllers, path});
    if (it == by_path_.end()) return {};
    for (const schema::CgroupProperty& p : it->second->props) {
      Status st = write_control(dir, p.name, p.value);
      if (!st.ok()) warnings.push_back(what + ": " + st.error().message);
    }
    return {};
  }

  std::optional<std::vector<sys::CgroupMount>> mounts_;
  std::map<std::string, std::string> own_;  // crrestore's cgroup path per hierarchy
  std::map<std::pair<std::string, std::string>, const CgroupImage*> by_path_;
};

// The Cgroups of member `m` (checked when stashed).
std::vector<const schema::Cgroup*> cgroups_of(const RestoreContext& root,
                                              const schema::CgroupMember& m) {
  std::vector<const schema::Cgroup*> out;
  for (uint64_t id : m.cgroups)
    out.push_back(&root.shared.cgroups.at(static_cast<uint32_t>(id)).cg);
  return out;
}

bool needs_placing(const RestoreContext& root, bool threads) {
  if (root.opts.ignore_cgroups) return false;
  for (const auto& m : root.shared.cgroup_members)
    if ((m.tid != m.pid) == threads) return true;
  return false;
}

}  // namespace

Status stash_cgroup_record(const format::RecordReader& reader, TreeHead& head) {
  auto& cgroups = head.shared.cgroups;
  switch (reader.type()) {
    case schema::Cgroup::kType: {
      CR_TRY_ASSIGN(auto c, reader.decode<schema::Cgroup>());
      if (cgroups.size() >= kMaxCgroups)
        return make_error("more than " + std::to_string(kMaxCgroups) + " cgroups");
      if (!sys::valid_cgroup_controllers(c.controllers))
        return make_error("cgroup " + std::to_string(c.id) + ": hierarchy name '" +
                          c.controllers.substr(0, 100) + "' is not one /proc shows");
      if (!sys::valid_cgroup_path(c.path))
        return make_error("cgroup " + std::to_string(c.id) + ": path '" + c.path.substr(0, 200) +
                          "' is not absolute or has empty, '.' or '..' parts");
      if (!head.shared.cgroup_paths.emplace(c.controllers, c.path).second)
        return make_error("cgroup " + cgroup_text(c) + " recorded twice");
      const uint32_t id = c.id;
      cgroups[id].cg = std::move(c);
      return {};
    }
    case schema::CgroupProperty::kType: {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::CgroupProperty>());
      auto it = cgroups.find(p.cgroup);
      if (it == cgroups.end())
        return make_error("cgroup property " + p.name.substr(0, 100) + " of object " +
                          std::to_string(p.cgroup) + ", which is not a cgroup");
      CgroupImage& c = it->second;
      if (!sys::known_cgroup_property(c.cg.controllers.empty(), p.name))
        return make_error("cgroup " + cgroup_text(c.cg) + ": '" + p.name.substr(0, 100) +
                          "' is not a setting restore writes");
      if (p.value.size() > 4096 ||
          p.value.find_first_of(std::string("\n\0", 2)) != std::string::npos)
        return make_error("cgroup " + cgroup_text(c.cg) + ": value of " + p.name +
                          " is not one line of at most 4096 bytes");
      if (++head.shared.cgroup_properties > kMaxProperties)
        return make_error("too many cgroup properties");
      c.props.push_back(std::move(p));
      return {};
    }
    case schema::CgroupMember::kType: {
      CR_TRY_ASSIGN(auto m, reader.decode<schema::CgroupMember>());
      const std::string who = "cgroups of pid " + std::to_string(m.pid) +
                              (m.tid != m.pid ? " thread " + std::to_string(m.tid) : "");
      const ProcessImage* img = head.find(m.pid);
      if (img == nullptr || (img->process->flags & schema::kProcessZombie) != 0)
        return make_error(who + ": no live process of the image has that pid");
      if (m.tid == 0) return make_error(who + ": thread id 0");
      if (!head.shared.cgroup_member_tasks.emplace(m.pid, m.tid).second)
        return make_error(who + ": recorded twice");
      std::set<std::string> hierarchies;
      for (uint64_t id : m.cgroups) {
        auto it = id <= UINT32_MAX ? cgroups.find(static_cast<uint32_t>(id)) : cgroups.end();
        if (it == cgroups.end())
          return make_error(who + ": object " + std::to_string(id) + " is not a cgroup");
        if (!hierarchies.insert(it->second.cg.controllers).second)
          return make_error(who + ": two cgroups of hierarchy " +
                            hierarchy_text(it->second.cg.controllers));
      }
      head.shared.cgroup_members.push_back(std::move(m));
      return {};
    }
    case schema::CgroupNs::kType: {
      CR_TRY_ASSIGN(auto ns, reader.decode<schema::CgroupNs>());
      if (head.shared.cgroup_ns) return make_error("two cgroup_ns records");
      std::set<std::string> hierarchies;
      for (uint64_t id : ns.roots) {
        auto it = id <= UINT32_MAX ? cgroups.find(static_cast<uint32_t>(id)) : cgroups.end();
        if (it == cgroups.end())
          return make_error("cgroup namespace root " + std::to_string(id) + " is not a cgroup");
        if (!hierarchies.insert(it->second.cg.controllers).second)
          return make_error("cgroup namespace: two roots in hierarchy " +
                            hierarchy_text(it->second.cg.controllers));
      }
      head.shared.cgroup_ns = std::move(ns);
      return {};
    }
    default:
      return make_error("not a cgroup record");
  }
}

Status prepare_cgroup_ns(RestoreContext& root) {
  if (root.opts.ignore_cgroups && root.opts.cgroups_as_one) {
    const auto& members = root.shared.cgroup_members;
    for (const auto& m : members)
      if (m.cgroups != members.front().cgroups)
        return make_error("pid " + std::to_string(m.pid) +
                          (m.tid != m.pid ? " thread " + std::to_string(m.tid) : std::string()) +
                          " was in other cgroups than pid " +
                          std::to_string(members.front().pid) +
                          ": the tree cannot all stay in the cgroups it is restored in");
  }
  if (!root.shared.cgroup_ns) return {};
  if (root.opts.ignore_cgroups)
    return make_error(
        "the tree has a cgroup namespace of its own: its root must be entered where it was "
        "(--manage-cgroups=ignore cannot leave the tree in crrestore's cgroups)");
  CR_TRY_ASSIGN(Placer placer, Placer::open(root));
  for (uint64_t id : root.shared.cgroup_ns->roots) {
    const schema::Cgroup& cg = root.shared.cgroups.at(static_cast<uint32_t>(id)).cg;
    CR_TRY_ASSIGN(std::string dir, placer.dir_of(cg));
    root.cgroup_ns_procs.push_back(dir + "/cgroup.procs");
  }
  for (auto& w : placer.warnings) root.warn(std::move(w));
  return {};
}

Status join_cgroup_ns_roots(const RestoreContext& root) {
  if (!root.shared.cgroup_ns) return {};
  // "0": the writer itself, in whatever pid namespace it is.
  for (const std::string& procs : root.cgroup_ns_procs) {
    const size_t slash = procs.rfind('/');
    Status st = write_control(procs.substr(0, slash), procs.substr(slash + 1), "0");
    if (!st.ok()) return std::move(st).error().wrap("cgroup namespace root");
  }
  return {};
}

Status enter_cgroup_ns(const RestoreContext& root) {
  if (!root.shared.cgroup_ns) return {};
  if (::unshare(CLONE_NEWCGROUP) != 0) return errno_error("unshare(CLONE_NEWCGROUP)");
  return {};
}

Status join_cgroups(RestoreContext& root, pid_t only) {
  if (!needs_placing(root, false)) return {};
  CR_TRY_ASSIGN(Placer placer, Placer::open(root));
  // In a cgroup namespace of its own the tree starts in the namespace's roots, not where
  // crrestore is: every task moves.
  const bool from_ns_root = root.shared.cgroup_ns.has_value();
  // Every member names a live process of the image (checked when stashed).
  for (const auto& m : root.shared.cgroup_members) {
    if (m.tid != m.pid || (only != 0 && m.pid != static_cast<uint32_t>(only))) continue;
    const FsIdentity* as = root.privileges.for_process(m.pid);
    for (const schema::Cgroup* cg : cgroups_of(root, m)) {
      if (!from_ns_root && placer.ours(*cg)) continue;
      Status st = placer.join(*cg, static_cast<pid_t>(m.pid), false, as);
      if (!st.ok()) return std::move(st).error().wrap("pid " + std::to_string(m.pid));
    }
  }
  for (auto& w : placer.warnings) root.warn(std::move(w));
  return {};
}

Status join_thread_cgroups(RestoreContext& root) {
  if (!needs_placing(root, true)) return {};
  CR_TRY_ASSIGN(Placer placer, Placer::open(root));
  // Each process's threads and cgroups, once: a thread moves where its own cgroups differ.
  std::map<uint32_t, std::set<uint32_t>> threads;
  for (const RestoreContext* c : tree_order(root))
    for (const auto& t : c->img.threads) threads[static_cast<uint32_t>(c->pid())].insert(t.tid);
  std::map<uint32_t, std::set<const schema::Cgroup*>> process_cgroups;
  for (const auto& o : root.shared.cgroup_members)
    if (o.tid == o.pid)
      for (const schema::Cgroup* cg : cgroups_of(root, o)) process_cgroups[o.pid].insert(cg);
  for (const auto& m : root.shared.cgroup_members) {
    if (m.tid == m.pid) continue;
    const std::string who = "pid " + std::to_string(m.pid) + " thread " + std::to_string(m.tid);
    if (threads[m.pid].count(m.tid) == 0)
      return make_error("cgroups of " + who + ": the process has no such thread");
    const FsIdentity* as = root.privileges.for_process(m.pid);
    const auto& own = process_cgroups[m.pid];
    for (const schema::Cgroup* cg : cgroups_of(root, m)) {
      if (own.count(cg) != 0) continue;
      Status st = placer.join(*cg, static_cast<pid_t>(m.tid), true, as);
      if (!st.ok()) return std::move(st).error().wrap(who);
    }
  }
  for (auto& w : placer.warnings) root.warn(std::move(w));
  return {};
}

}  // namespace cr::restore
