#include "sys/mount_tree.h"

#include <sys/mount.h>

#include <optional>
#include <set>
#include <string_view>

namespace cr::sys {

namespace {

bool same_mount(const MountLine& a, const MountLine& b) {
  return a.mount_point == b.mount_point && a.major == b.major && a.minor == b.minor &&
         a.root == b.root && a.fstype == b.fstype && a.source == b.source;
}

// `path` is `prefix` or below it.
bool under(const std::string& path, const std::string& prefix) {
  if (prefix == "/") return true;
  return path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/');
}

std::string join(const std::string& dir, const std::string& rest) {
  if (rest.empty() || rest == "/") return dir;
  return dir == "/" ? rest : dir + rest;
}

// mountinfo lists a namespace's mounts in its own order, where a parent may come after its
// child (a copied namespace keeps the order its mounts were attached in): parents first here,
// each list's order kept otherwise.
std::vector<MountLine> parents_first(const std::vector<MountLine>& lines) {
  std::map<uint32_t, size_t> index;
  for (size_t i = 0; i < lines.size(); ++i) index.emplace(lines[i].id, i);
  std::vector<int> state(lines.size(), 0);  // 0 new, 1 being placed (its parents first), 2 placed
  std::vector<MountLine> out;
  for (size_t i = 0; i < lines.size(); ++i) {
    // Its chain of unplaced parents, from the top down.
    std::vector<size_t> chain;
    for (size_t j = i; state[j] == 0;) {
      state[j] = 1;
      chain.push_back(j);
      auto p = index.find(lines[j].parent);
      if (p == index.end() || p->second == j) break;
      j = p->second;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      state[*it] = 2;
      out.push_back(lines[*it]);
    }
  }
  return out;
}

}  // namespace

Result<std::vector<schema::Mount>> classify_mounts(const std::vector<MountLine>& tree_lines,
                                                   const std::vector<MountLine>& host_lines) {
  const std::vector<MountLine> tree = parents_first(tree_lines);
  const std::vector<MountLine> host = parents_first(host_lines);
  std::set<uint32_t> tree_ids, host_ids;
  for (const auto& m : tree) tree_ids.insert(m.id);
  for (const auto& m : host) host_ids.insert(m.id);
  std::map<uint32_t, uint32_t> copy_of;  // tree mount id -> host mount id
  std::set<uint32_t> used;
  std::vector<schema::Mount> out;
  for (const MountLine& t : tree) {
    const std::string what = "mount " + t.mount_point + " (" + t.fstype + " " + t.source + ")";
    if (!t.propagation.empty())
      return make_error(what + ": propagation '" + t.propagation +
                        "' in the tree's own mount namespace not supported (private mounts are: "
                        "unshare's default)");
    schema::Mount r;
    r.id = t.id;
    r.parent = t.parent;
    r.mount_point = t.mount_point;
    r.root = t.root;
    r.fstype = t.fstype;
    r.source = t.source;
    r.options = t.options;
    r.super_options = t.super_options;
    const bool is_root = tree_ids.count(t.parent) == 0 || t.parent == t.id;
    // A copy of a host mount: the same at the same place, on a copy of the host's parent.
    const MountLine* copy = nullptr;
    for (const MountLine& h : host) {
      if (used.count(h.id) != 0 || !same_mount(t, h)) continue;
      const bool h_root = host_ids.count(h.parent) == 0 || h.parent == h.id;
      if (is_root ? h_root : (copy_of.count(t.parent) != 0 && copy_of[t.parent] == h.parent)) {
        copy = &h;
        break;
      }
    }
    if (copy != nullptr) {
      if (copy->options != t.options || copy->super_options != t.super_options)
        return make_error(what + ": options changed in the tree's namespace (" + t.options + " " +
                          t.super_options + ", crdump's " + copy->options + " " +
                          copy->super_options + "): not supported");
      used.insert(copy->id);
      copy_of[t.id] = copy->id;
      r.kind = schema::kMountHost;
      out.push_back(std::move(r));
      continue;
    }
    // The same filesystem mounted in crdump's namespace: a bind of the host's path to it. So
    // is a root that is not crdump's: pivot_root into a directory of a host filesystem, as
    // container runtimes do (the tree's root is bind_from).
    const MountLine* src = nullptr;
    for (const MountLine& h : host)
      if (h.major == t.major && h.minor == t.minor && under(t.root, h.root)) {
        src = &h;
        break;
      }
    // An earlier mount of the tree's own with the same filesystem: a bind of part of it (runc
    // binds its /dev/null over masked files, and /proc's subdirectories read-only).
    const MountLine* own = nullptr;
    if (src == nullptr && !is_root)
      for (const MountLine& o : tree) {
        if (o.id == t.id) break;
        if (o.major == t.major && o.minor == t.minor && o.fstype == t.fstype &&
            under(t.root, o.root)) {
          own = &o;
          break;
        }
      }
    if (src != nullptr && t.fstype == src->fstype) {
      r.kind = schema::kMountBind;
      r.bind_from =
          join(src->mount_point, src->root == "/" ? t.root : t.root.substr(src->root.size()));
      if (r.bind_from.empty()) r.bind_from = "/";
    } else if (is_root) {
      return make_error(what +
                        ": the root mount of the tree's namespace is neither crdump's nor a "
                        "directory of a filesystem crdump has mounted: not supported");
    } else if (own != nullptr) {
      r.kind = schema::kMountBindTree;
      r.bind_from =
          join(own->mount_point, own->root == "/" ? t.root : t.root.substr(own->root.size()));
      if (r.bind_from.empty()) r.bind_from = "/";
    } else if (t.fstype == "devpts" && t.root == "/") {
      r.kind = schema::kMountDevpts;
    } else if (t.fstype == "mqueue" && t.root == "/") {
      r.kind = schema::kMountMqueue;
    } else if (t.fstype == "proc" && t.root == "/") {
      r.kind = schema::kMountProc;
    } else if (t.fstype == "sysfs" && t.root == "/") {
      r.kind = schema::kMountSysfs;
    } else if (t.fstype == "tmpfs" && t.root == "/") {
      r.kind = schema::kMountTmpfs;
    } else if (t.fstype == "tmpfs") {
      return make_error(what + ": a bind of part of a tmpfs of the tree's own (root " + t.root +
                        ") not supported");
    } else {
      return make_error(what + ": fs type " + t.fstype +
                        " in the tree's own mount namespace not supported (bind mounts of "
                        "crdump's filesystems, proc, sysfs, tmpfs, devpts and mqueue are)");
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::map<uint32_t, uint32_t> match_mounts(const std::vector<schema::Mount>& records,
                                          const std::vector<MountLine>& lines, bool host_only) {
  // Records come parents first (classify_mounts); which line is a parent's is found by id.
  std::set<uint32_t> rec_ids, line_ids, used;
  for (const auto& r : records) rec_ids.insert(r.id);
  for (const auto& l : lines) line_ids.insert(l.id);
  std::map<uint32_t, uint32_t> out;
  for (const auto& r : records) {
    if (host_only && r.kind != schema::kMountHost) continue;
    const bool r_root = rec_ids.count(r.parent) == 0 || r.parent == r.id;
    for (const auto& l : lines) {
      if (used.count(l.id) != 0 || l.mount_point != r.mount_point || l.fstype != r.fstype) continue;
      if ((r.kind == schema::kMountHost || r.kind == schema::kMountBind ||
           r.kind == schema::kMountBindTree) &&
          l.root != r.root)
        continue;
      if (r.kind == schema::kMountHost && l.source != r.source) continue;
      const bool l_root = line_ids.count(l.parent) == 0 || l.parent == l.id;
      if (r_root != l_root) continue;
      if (!r_root && (out.count(r.parent) == 0 || out[r.parent] != l.parent)) continue;
      used.insert(l.id);
      out[r.id] = l.id;
      break;
    }
  }
  return out;
}

bool pivoted_root(const std::vector<schema::Mount>& mounts) {
  return !mounts.empty() && mounts.front().kind == schema::kMountBind;
}

std::optional<std::string> host_path(const std::vector<schema::Mount>& mounts,
                                     const std::string& path) {
  if (!pivoted_root(mounts)) return path;
  if (path.empty() || path[0] != '/') return std::nullopt;
  // The mount holding it: the longest mount point above it, the last one there (overmounts
  // come later in the list).
  const schema::Mount* on = nullptr;
  for (const schema::Mount& m : mounts)
    if (under(path, m.mount_point) &&
        (on == nullptr || m.mount_point.size() >= on->mount_point.size()))
      on = &m;
  if (on == nullptr) return std::nullopt;
  switch (on->kind) {
    case schema::kMountHost:
      return path;
    case schema::kMountBind: {
      const std::string rest = on->mount_point == "/" ? path : path.substr(on->mount_point.size());
      if (rest.empty() || rest == "/") return on->bind_from;
      return on->bind_from == "/" ? rest : on->bind_from + rest;
    }
    default:
      return std::nullopt;
  }
}

unsigned long mount_flags(const std::string& options) {
  static const std::pair<std::string_view, unsigned long> kFlags[] = {
      {"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},           {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},     {"noatime", MS_NOATIME},         {"nodiratime", MS_NODIRATIME},
      {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME}, {"sync", MS_SYNCHRONOUS},
  };
  unsigned long flags = 0;
  std::string_view rest = options;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view opt = rest.substr(0, comma);
    for (const auto& [name, bit] : kFlags)
      if (opt == name) flags |= bit;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  // mountinfo shows strictatime as no atime option at all; mount(2) without one gives
  // relatime.
  if (!options.empty() && (flags & (MS_RELATIME | MS_NOATIME | MS_STRICTATIME)) == 0)
    flags |= MS_STRICTATIME;
  return flags;
}

bool safe_relative_path(const std::string& path) {
  if (path.empty()) return true;  // the root itself
  std::string_view rest = path;
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace cr::sys
