#include "sys/cgroupfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/scoped_fd.h"

namespace cr::sys {

namespace {

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t e = s.find(sep);
    if (e != 0) out.emplace_back(s.substr(0, e));
    if (e == std::string_view::npos) break;
    s.remove_prefix(e + 1);
  }
  return out;
}

// The control files kept, in the order they are written back. A limit goes before what is
// checked against it (memory.limit_in_bytes before memory.memsw.limit_in_bytes, a period before
// its quota); cpuset's cpus and mems before its flags (a v1 cpuset takes no task without
// them); in v2 the cgroup's own type first and the controllers it hands its children last.
// Left out: what is only reported (usage, stats, events), what the kernel deprecates or refuses
// to set again (memory.kmem.*, memory.move_charge_at_immigrate, memory.use_hierarchy), and
// freezer state (a dump does not freeze with it).
constexpr std::string_view kV1Properties[] = {
    "notify_on_release",
    "cpu.shares",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.cfs_burst_us",
    "cpu.idle",
    "cpu.rt_period_us",
    "cpu.rt_runtime_us",
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpu_exclusive",
    "cpuset.mem_exclusive",
    "cpuset.mem_hardwall",
    "cpuset.memory_migrate",
    "cpuset.memory_spread_page",
    "cpuset.memory_spread_slab",
    "cpuset.sched_load_balance",
    "cpuset.sched_relax_domain_level",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.swappiness",
    "memory.oom_control",
    "pids.max",
    "blkio.weight",
    "net_cls.classid",
    "net_prio.ifpriomap",
    "devices.list",
};
constexpr std::string_view kV2Properties[] = {
    "cgroup.type",
    "cgroup.max.descendants",
    "cgroup.max.depth",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpu.uclamp.min",
    "cpu.uclamp.max",
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpus.exclusive",
    "cpuset.cpus.partition",
    "memory.min",
    "memory.low",
    "memory.high",
    "memory.max",
    "memory.swap.high",
    "memory.swap.max",
    "memory.zswap.max",
    "memory.zswap.writeback",
    "memory.oom.group",
    "io.weight",
    "io.max",
    "pids.max",
    "cgroup.subtree_control",
};

// Files whose every line is written back on its own ("8:0 rbps=..." of io.max).
bool per_line(std::string_view name) {
  return name == "io.weight" || name == "io.max" || name == "net_prio.ifpriomap";
}

Result<std::string> read_at(int dir, std::string_view name, const std::string& where) {
  ScopedFd fd(::openat(dir, std::string(name).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + where + "/" + std::string(name));
  std::string out(4096, '\0');
  size_t used = 0;
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    const ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read " + where + "/" + std::string(name));
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  out.resize(used);
  return out;
}

std::string_view trim_line(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<CgroupMount> cgroup_mounts(const std::vector<MountLine>& mounts) {
  std::vector<CgroupMount> out;
  for (const MountLine& m : mounts) {
    CgroupMount c;
    c.mount_point = m.mount_point;
    c.root = m.root;
    if (m.fstype == "cgroup2") {
      c.v2 = true;
    } else if (m.fstype == "cgroup") {
      for (std::string& opt : split(m.super_options, ','))
        // The options are the controllers, a name=, and a few flags that are not names.
        if (opt != "rw" && opt != "ro" && opt != "noprefix" && opt != "xattr" &&
            opt != "clone_children" && opt != "cpuset_v2_mode" && opt != "favordynmods" &&
            !opt.starts_with("release_agent="))
          c.names.push_back(std::move(opt));
      std::sort(c.names.begin(), c.names.end());
    } else {
      continue;
    }
    const bool seen = std::any_of(out.begin(), out.end(), [&](const CgroupMount& o) {
      return o.v2 == c.v2 && o.names == c.names;
    });
    if (!seen) out.push_back(std::move(c));
  }
  return out;
}

const CgroupMount* find_cgroup_mount(const std::vector<CgroupMount>& mounts,
                                     std::string_view controllers) {
  std::vector<std::string> want = split(controllers, ',');
  std::sort(want.begin(), want.end());
  for (const CgroupMount& m : mounts)
    if (controllers.empty() ? m.v2 : (!m.v2 && m.names == want)) return &m;
  return nullptr;
}

std::optional<std::string> cgroup_dir(const CgroupMount& m, std::string_view path) {
  std::string_view root = m.root;
  if (root == "/") root = "";
  if (!path.starts_with(root)) return std::nullopt;
  std::string_view rest = path.substr(root.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;  // "/ab" is not below "/a"
  if (rest == "/") rest = "";
  return m.mount_point + std::string(rest);
}

std::optional<std::string> cgroup_ns_root(std::string_view outer, std::string_view inner) {
  if (!valid_cgroup_path(outer) || !valid_cgroup_path(inner)) return std::nullopt;
  if (inner == "/") return std::string(outer);
  if (outer == inner) return std::string("/");
  // "/a/b/c" seen as "/b/c" inside: the root is "/a" (whole parts only: "/xb/c" is not).
  if (outer.size() <= inner.size() || !outer.ends_with(inner)) return std::nullopt;
  std::string_view root = outer.substr(0, outer.size() - inner.size());
  if (root.empty() || root.front() != '/') return std::nullopt;
  return std::string(root);
}

bool valid_cgroup_path(std::string_view path) {
  if (!path.starts_with('/') || path.size() > 4096) return false;
  if (path == "/") return true;
  if (path.find('\0') != std::string_view::npos || path.find('\n') != std::string_view::npos)
    return false;
  std::string_view rest = path.substr(1);
  for (;;) {
    const size_t e = rest.find('/');
    const std::string_view part = rest.substr(0, e);
    if (part.empty() || part == "." || part == "..") return false;
    if (e == std::string_view::npos) return true;
    rest.remove_prefix(e + 1);
  }
}

bool valid_cgroup_controllers(std::string_view controllers) {
  if (controllers.empty()) return true;
  if (controllers.size() > 256) return false;
  for (const std::string& n : split(controllers, ','))
    for (char ch : n)
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '=' ||
            ch == '.' || ch == '-'))
        return false;
  return controllers.front() != ',' && controllers.back() != ',' &&
         controllers.find(",,") == std::string_view::npos;
}

bool known_cgroup_property(bool v2, std::string_view name) {
  if (v2)
    return std::find(std::begin(kV2Properties), std::end(kV2Properties), name) !=
           std::end(kV2Properties);
  if (name == "devices.allow" || name == "devices.deny") return true;
  return name != "devices.list" && std::find(std::begin(kV1Properties), std::end(kV1Properties),
                                             name) != std::end(kV1Properties);
}

Result<std::vector<std::pair<std::string, std::string>>> read_cgroup_properties(
    const std::string& dir, bool v2) {
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return errno_error("open " + dir);
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view name : v2 ? std::span<const std::string_view>(kV2Properties)
                                  : std::span<const std::string_view>(kV1Properties)) {
    auto text = read_at(d.get(), name, dir);
    if (!text.ok()) {
      // Not there: the controller is not enabled here, or this kernel lacks the file.
      if (text.error().code == ENOENT || text.error().code == EOPNOTSUPP) continue;
      return std::move(text).error();
    }
    const std::string_view value = trim_line(*text);
    const std::string n(name);
    if (name == "cgroup.type") {
      if (value == "threaded") out.emplace_back(n, "threaded");
    } else if (name == "cgroup.subtree_control") {
      std::string enable;
      for (const std::string& c : split(value, ' ')) enable += (enable.empty() ? "+" : " +") + c;
      if (!enable.empty()) out.emplace_back(n, enable);
    } else if (name == "cpuset.cpus.partition") {
      if (value == "root" || value == "isolated") out.emplace_back(n, std::string(value));
    } else if (name == "memory.oom_control") {
      // "oom_kill_disable 0\nunder_oom 0\n...": only the first is a setting.
      if (value.starts_with("oom_kill_disable "))
        out.emplace_back(n, std::string(trim_line(value.substr(17, 1))));
    } else if (name == "devices.list") {
      // A new cgroup starts with its parent's list: only a narrower one needs writing.
      if (value == "a *:* rwm") continue;
      out.emplace_back("devices.deny", "a");
      for (const std::string& line : split(value, '\n')) out.emplace_back("devices.allow", line);
    } else if (per_line(name)) {
      for (const std::string& line : split(value, '\n')) out.emplace_back(n, line);
    } else {
      out.emplace_back(n, std::string(value));
    }
  }
  return out;
}

}  // namespace cr::sys
