#include "restore/user_ns.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "common/scoped_fd.h"
#include "restore/privilege.h"
#include "sys/proc_parse.h"

namespace cr::restore {

using sys::IdMap;

namespace {

constexpr size_t kMaxLines = 340;  // the kernel's limit per map

Status check_map(const std::vector<uint64_t>& m, const char* which) {
  const std::string what = std::string("user_ns: ") + which;
  if (m.empty() || m.size() % 3 != 0 || m.size() > kMaxLines * 3)
    return make_error(what + " has " + std::to_string(m.size()) +
                      " numbers, not 1 to 340 (inside, outside, count) lines");
  for (size_t i = 0; i < m.size(); i += 3)
    if (m[i + 2] == 0 || m[i] + m[i + 2] > 0x100000000ull || m[i + 1] + m[i + 2] > 0x100000000ull)
      return make_error(what + ": line " + std::to_string(i / 3 + 1) + " is not a range of ids");
  if (IdMap{m}.outside(0) == IdMap::kUnmapped) return make_error(what + " does not map 0");
  return {};
}

std::string map_text(const std::vector<uint64_t>& m) {
  std::string out;
  for (size_t i = 0; i + 2 < m.size(); i += 3)
    out += std::to_string(m[i]) + " " + std::to_string(m[i + 1]) + " " + std::to_string(m[i + 2]) +
           "\n";
  return out;
}

Status write_proc(pid_t pid, const char* file, const std::string& text) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return errno_error("write " + path);
  return {};
}

// A filesystem's uid= and gid= options (tmpfs's root owner, proc's gid): mountinfo shows them
// as the host sees them, and a mount inside takes them in the namespace's ids.
Result<std::string> translate_options(const std::string& options, const Translator& t,
                                      const std::string& where) {
  std::string out;
  size_t at = 0;
  while (at <= options.size()) {
    size_t end = options.find(',', at);
    if (end == std::string::npos) end = options.size();
    std::string opt = options.substr(at, end - at);
    const bool uid = opt.starts_with("uid="), gid = opt.starts_with("gid=");
    if (uid || gid) {
      const std::string num = opt.substr(4);
      if (num.empty() || num.size() > 10 || num.find_first_not_of("0123456789") != std::string::npos)
        return make_error(where + ": option '" + opt + "'");
      const unsigned long long v = std::stoull(num);
      if (v > 0xffffffffull) return make_error(where + ": option '" + opt + "'");
      uint32_t id = static_cast<uint32_t>(v);
      CR_TRY(uid ? t.uid(id, where) : t.gid(id, where));
      opt = opt.substr(0, 4) + std::to_string(id);
    }
    if (!out.empty() || at != 0) out += ',';
    out += opt;
    at = end + 1;
  }
  return out;
}

}  // namespace

Translator::Translator(const schema::UserNs& u) : uids_{u.uid_map}, gids_{u.gid_map} {}

Status Translator::inside(const IdMap& map, const char* kind, uint32_t& id,
                          const std::string& where) {
  const uint32_t in = map.inside(id);
  if (in == IdMap::kUnmapped)
    return make_error(where + ": " + kind + " " + std::to_string(id) +
                      " is not mapped in the image's user namespace");
  id = in;
  return {};
}

Status check_user_ns(const schema::UserNs& u) {
  CR_TRY(check_map(u.uid_map, "uid_map"));
  CR_TRY(check_map(u.gid_map, "gid_map"));
  if (u.setgroups != 1 && u.setgroups != 2)
    return make_error("user_ns: setgroups " + std::to_string(u.setgroups) +
                      " is neither allow (1) nor deny (2)");
  if (u.groups.size() > 65536 || (u.setgroups == 1 && !u.groups.empty()))
    return make_error("user_ns: supplementary groups only with setgroups denied, at most 65536");
  for (uint64_t g : u.groups)
    if (g > 0xfffffffeull) return make_error("user_ns: group " + std::to_string(g));
  return {};
}

bool user_could_make(const schema::UserNs& u) {
  return u.uid_map.size() == 3 && u.gid_map.size() == 3 && u.uid_map[2] == 1 &&
         u.gid_map[2] == 1 && u.uid_map[1] != 0 && u.setgroups == 2;
}

Status check_groups_of_user(const schema::UserNs& u) {
  const uid_t uid = static_cast<uid_t>(u.uid_map[1]);
  const std::vector<gid_t> allowed = groups_of_user(uid);
  // The gid it maps is its own (the kernel's rule for a user's map), so one of its groups.
  if (std::find(allowed.begin(), allowed.end(), static_cast<gid_t>(u.gid_map[1])) == allowed.end())
    return make_error("user_ns: gid " + std::to_string(u.gid_map[1]) + " mapped, not one of uid " +
                      std::to_string(uid) +
                      "'s groups: an image of that user cannot ask for it (restore a signed "
                      "image with --verify-key to vouch for it)");
  for (uint64_t g : u.groups)
    if (std::find(allowed.begin(), allowed.end(), static_cast<gid_t>(g)) == allowed.end())
      return make_error("user_ns: supplementary group " + std::to_string(g) +
                        " is not one of uid " + std::to_string(uid) +
                        "'s groups: an image of that user cannot ask for it (restore a signed "
                        "image with --verify-key to vouch for it)");
  return {};
}

Status write_id_maps(pid_t pid, const schema::UserNs& u) {
  CR_TRY(write_proc(pid, "setgroups", u.setgroups == 2 ? "deny" : "allow"));
  CR_TRY(write_proc(pid, "uid_map", map_text(u.uid_map)));
  return write_proc(pid, "gid_map", map_text(u.gid_map));
}

bool root_outside(const schema::Creds& c, const schema::UserNs& u) {
  const IdMap uids{u.uid_map};
  for (uint32_t id : {c.uid, c.euid, c.suid, c.fsuid})
    if (uids.outside(id) == 0) return true;
  return false;
}

Status translate_ids(TreeHead& head, const schema::UserNs& u) {
  const Translator t(u);
  for (ProcessImage& p : head.procs) {
    const std::string who = "pid " + std::to_string(p.process->pid);
    if (p.creds) {
      schema::Creds& c = *p.creds;
      for (uint32_t* id : {&c.uid, &c.euid, &c.suid, &c.fsuid}) CR_TRY(t.uid(*id, who));
      for (uint32_t* id : {&c.gid, &c.egid, &c.sgid, &c.fsgid}) CR_TRY(t.gid(*id, who));
      // With setgroups denied the groups are set before the namespace is made, as they are
      // outside (user_ns.groups); they are not set again inside.
      if (u.setgroups == 1)
        for (uint64_t& g : c.groups) {
          uint32_t id = static_cast<uint32_t>(g);
          CR_TRY(t.gid(id, who + " supplementary group"));
          g = id;
        }
    }
    // The audit login uid as it shows inside (an unmapped one as the overflow uid): it is set
    // only where it differs from crrestore's, which only the host's root could do.
    if (p.attrs && p.attrs->loginuid != 0xffffffffu) {
      const uint32_t in = IdMap{u.uid_map}.inside(p.attrs->loginuid);
      p.attrs->loginuid = in == IdMap::kUnmapped ? 65534 : in;
    }
    if (p.fs && (p.process->flags & schema::kProcessCwdDeleted) != 0) {
      CR_TRY(t.uid(p.fs->cwd_uid, who + " cwd"));
      CR_TRY(t.gid(p.fs->cwd_gid, who + " cwd"));
    }
  }
  ProcessImage& s = head.shared;
  for (auto& [id, f] : s.files)
    if (f.kind == schema::kFileDeleted || f.kind == schema::kFileGhostNode) {
      CR_TRY(t.uid(f.uid, "file " + f.path));
      CR_TRY(t.gid(f.gid, "file " + f.path));
    }
  for (auto& [id, pty] : s.ptys)
    if (pty.slave_mode != 0) {
      CR_TRY(t.uid(pty.slave_uid, "pty " + std::to_string(id)));
      CR_TRY(t.gid(pty.slave_gid, "pty " + std::to_string(id)));
    }
  for (schema::Mount& m : s.mounts)
    if (m.kind == schema::kMountTmpfs || m.kind == schema::kMountProc) {
      CR_TRY_ASSIGN(m.super_options,
                    translate_options(m.super_options, t, "mount " + m.mount_point));
    }
  for (auto& [entry, data] : s.tmpfs) {
    CR_TRY(t.uid(entry.uid, "tmpfs file " + entry.path));
    CR_TRY(t.gid(entry.gid, "tmpfs file " + entry.path));
  }
  for (auto& [id, sock] : s.unix_sockets)
    for (auto& [msg, c] : sock.creds) {
      CR_TRY(t.uid(c.uid, "unix socket " + std::to_string(id) + " credentials"));
      CR_TRY(t.gid(c.gid, "unix socket " + std::to_string(id) + " credentials"));
    }
  return {};
}

}  // namespace cr::restore
