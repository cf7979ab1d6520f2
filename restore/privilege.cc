#include "restore/privilege.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <utility>

#include "common/text.h"

namespace cr::restore {

namespace {

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
  return b;
}

// RLIMIT_* in order, for messages.
constexpr const char* kRlimitNames[] = {
    "CPU",     "FSIZE", "DATA",  "STACK",      "CORE",     "RSS",  "NPROC",  "NOFILE",
    "MEMLOCK", "AS",    "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME"};

std::string limit_text(uint64_t v) { return v == ~0ull ? "unlimited" : std::to_string(v); }

// The character devices a process can be given whatever its uid: they hold nothing of anyone's
// (major 136 is every /dev/pts/N: a pty the image names is one crrestore made for it).
bool allowed_device(uint64_t rdev) {
  const unsigned maj = major(rdev), min = minor(rdev);
  if (maj == 1) return min == 3 || min == 5 || min == 7 || min == 8 || min == 9;
  if (maj == 5) return min == 0 || min == 2;
  return maj == 136;
}

std::string device_text(uint64_t rdev) {
  return std::to_string(major(rdev)) + ":" + std::to_string(minor(rdev));
}

Status check_process(const ProcessImage& p) {
  const std::string who = "pid " + std::to_string(p.process->pid);
  const schema::Creds& c = *p.creds;
  const std::string uid = "uid " + std::to_string(c.uid);
  // Its groups (primary and supplementary) must be ones its user has: a user cannot give
  // itself another group's files.
  std::vector<gid_t> allowed;
  for (uint32_t u : {c.uid, c.euid, c.suid, c.fsuid}) {
    const std::vector<gid_t> g = groups_of_user(u);
    allowed.insert(allowed.end(), g.begin(), g.end());
  }
  std::vector<uint64_t> gids(c.groups.begin(), c.groups.end());
  for (uint32_t g : {c.gid, c.egid, c.sgid, c.fsgid}) gids.push_back(g);
  for (uint64_t g : gids)
    if (std::find(allowed.begin(), allowed.end(), static_cast<gid_t>(g)) == allowed.end())
      return make_error(who + ": " + uid + " with group " + std::to_string(g) +
                        ", which is not one of its user's groups (the group database's; a uid "
                        "without an entry has only the group of its own number): an image "
                        "without a root process cannot ask for it (restore a signed image with "
                        "--verify-key to vouch for it)");
  if ((c.cap_prm | c.cap_eff | c.cap_inh | c.cap_amb) != 0)
    return make_error(who + ": " + uid + " with capabilities (permitted " + hex(c.cap_prm) +
                      ", effective " + hex(c.cap_eff) + ", inheritable " + hex(c.cap_inh) +
                      ", ambient " + hex(c.cap_amb) +
                      "): an image without a root process cannot ask for capabilities");
  if (p.rlimits) {
    const auto& lim = p.rlimits->limits;
    for (size_t r = 0; 2 * r + 1 < lim.size() && r < RLIM_NLIMITS; ++r) {
      rlimit ours{};
      if (::getrlimit(static_cast<__rlimit_resource>(r), &ours) != 0) continue;
      const uint64_t want = lim[2 * r + 1];
      const uint64_t have = ours.rlim_max == RLIM_INFINITY ? ~0ull : ours.rlim_max;
      if (want > have)
        return make_error(who + ": " + uid + " asks for a hard RLIMIT_" +
                          (r < std::size(kRlimitNames) ? kRlimitNames[r] : std::to_string(r)) +
                          " of " + limit_text(want) + ", above this environment's " +
                          limit_text(have) + ": a user cannot raise a hard limit");
    }
  }
  // The kernel takes a filter from a task without CAP_SYS_ADMIN only under no_new_privs, and
  // crrestore installs them while the task still has its own (root's).
  for (const auto& s : p.seccomp)
    if (s.mode == 2 && c.no_new_privs == 0)
      return make_error(who + " thread " + std::to_string(s.tid) + ": " + uid +
                        " with a seccomp filter but without no_new_privs: a user cannot install "
                        "one (allowed only with no_new_privs set)");
  if (p.fs && !p.fs->root.empty() && p.fs->root != "/" && c.no_new_privs == 0)
    return make_error(who + ": " + uid + " with root directory " + p.fs->root +
                      ": a user cannot chroot (allowed only with no_new_privs set)");
  return {};
}

// What a user cannot do with an internet socket of its own: repair a connection (TCP_REPAIR
// needs CAP_NET_ADMIN, and would let it take over any connection's sequence numbers), bind a
// privileged port, mark or prioritise packets beyond the unprivileged range, be transparent,
// open ping sockets outside the administrator's choice.
Status check_inet(const schema::InetSocket& r) {
  const std::string who =
      "inet socket " + std::to_string(r.id) +
      (r.src.empty() ? std::string() : " (" + inet_endpoint_text(r.src, r.src_port) + ")");
  const std::string tail = ": an image without a root process cannot ask for it (restore a "
                           "signed image with --verify-key to vouch for it)";
  if (r.state == schema::kInetEstablished)
    return make_error(who + ": an established TCP connection is rebuilt with TCP_REPAIR" + tail);
  if (r.protocol == IPPROTO_ICMP || r.protocol == IPPROTO_ICMPV6)
    return make_error(who + ": ping socket" + tail);
  int start = 1024;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_unprivileged_port_start", "re")) {
    if (std::fscanf(f, "%d", &start) != 1) start = 1024;
    std::fclose(f);
  }
  if ((r.flags & schema::kInetBound) && r.src_port != 0 && static_cast<int>(r.src_port) < start)
    return make_error(who + ": port " + std::to_string(r.src_port) + " is below " +
                      std::to_string(start) + tail);
  for (uint64_t o : r.opts) {
    const auto [level, name, value] = schema::SocketOption::decode(o);
    const bool bad = (level == SOL_SOCKET && name == SO_MARK) ||
                     (level == SOL_SOCKET && name == SO_PRIORITY && (value < 0 || value > 6)) ||
                     (level == IPPROTO_IP && name == IP_TRANSPARENT) ||
                     (level == IPPROTO_IPV6 && name == 75 /* IPV6_TRANSPARENT */);
    if (bad)
      return make_error(who + ": socket option " + std::to_string(level) + "/" +
                        std::to_string(name) + " = " + std::to_string(value) + tail);
  }
  return {};
}

// What a user cannot do with a netlink socket of its own: join the audit log's group (needs
// CAP_AUDIT_READ), join groups of a protocol that admits only CAP_NET_ADMIN to them (route
// and kobject_uevent let anyone listen), send to a group (CAP_NET_ADMIN for every protocol
// crdump takes), or listen in every network namespace (CAP_NET_BROADCAST).
Status check_netlink(const schema::NetlinkSocket& r) {
  const std::string who = "netlink socket " + std::to_string(r.id) + " (protocol " +
                          std::to_string(r.protocol) + ")";
  const std::string tail = ": an image without a root process cannot ask for it (restore a "
                           "signed image with --verify-key to vouch for it)";
  const bool anyone_listens = r.protocol == NETLINK_ROUTE || r.protocol == NETLINK_KOBJECT_UEVENT;
  if (!r.groups.empty() && !anyone_listens)
    return make_error(who + ": multicast group " + std::to_string(r.groups.front()) + tail);
  if (r.dst_group != 0) return make_error(who + ": connected to a multicast group" + tail);
  for (uint64_t o : r.opts)
    if (const auto opt = schema::SocketOption::decode(o);
        opt.level == SOL_NETLINK && opt.name == NETLINK_LISTEN_ALL_NSID && opt.value != 0)
      return make_error(who + ": NETLINK_LISTEN_ALL_NSID" + tail);
  return {};
}

}  // namespace

FsIdentity FsIdentity::of(const schema::Creds& c) {
  FsIdentity id;
  id.fsuid = c.fsuid;
  id.fsgid = c.fsgid;
  for (uint64_t g : c.groups) id.groups.push_back(static_cast<gid_t>(g));
  return id;
}

std::vector<gid_t> groups_of_user(uid_t uid) {
  std::vector<gid_t> out{static_cast<gid_t>(uid)};
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return out;
  int n = 64;
  std::vector<gid_t> list(static_cast<size_t>(n));
  while (::getgrouplist(pw.pw_name, pw.pw_gid, list.data(), &n) < 0)
    list.resize(static_cast<size_t>(n));
  list.resize(static_cast<size_t>(n));
  return list;  // pw_gid first
}

bool root_creds(const schema::Creds& c) {
  return c.uid == 0 || c.euid == 0 || c.suid == 0 || c.fsuid == 0;
}

namespace {
bool zombie(const ProcessImage& p) { return (p.process->flags & schema::kProcessZombie) != 0; }
}  // namespace

Privileges Privileges::of(const TreeHead& head) {
  Privileges p;
  p.restricted_ = !head.procs.empty();
  for (const ProcessImage& proc : head.procs) {
    // A zombie runs none of the image's code (it is made only to exit with its status): it
    // has no Creds, and makes nobody root.
    if (zombie(proc)) continue;
    // No Creds: the process keeps crrestore's, root's.
    if (!proc.creds || root_creds(*proc.creds)) p.restricted_ = false;
  }
  if (!p.restricted_) return p;
  p.owner_ = FsIdentity::of(*head.procs.front().creds);
  for (const ProcessImage& proc : head.procs) {
    if (zombie(proc)) continue;
    p.ids_.push_back(FsIdentity::of(*proc.creds));
    p.process_.emplace(proc.process->pid, p.ids_.size() - 1);
    for (const schema::Fd& fd : proc.fds) p.file_holder_.emplace(fd.file, p.ids_.size() - 1);
  }
  for (const auto& [id, f] : head.shared.files)
    if (f.kind == schema::kFileUnixSocket) {
      auto it = p.file_holder_.find(id);
      if (it != p.file_holder_.end()) p.socket_holder_.emplace(f.object, it->second);
    }
  return p;
}

const FsIdentity* Privileges::for_file(uint32_t file_id) const {
  if (!restricted_) return nullptr;
  auto it = file_holder_.find(file_id);
  return it == file_holder_.end() ? &owner_ : &ids_[it->second];
}

const FsIdentity* Privileges::for_process(uint32_t pid) const {
  if (!restricted_) return nullptr;
  auto it = process_.find(pid);
  return it == process_.end() ? &owner_ : &ids_[it->second];
}

const FsIdentity* Privileges::for_socket(uint32_t socket_id) const {
  if (!restricted_) return nullptr;
  auto it = socket_holder_.find(socket_id);
  return it == socket_holder_.end() ? &owner_ : &ids_[it->second];
}

Status Privileges::check(const TreeHead& head, bool signed_image) const {
  // A signed image is vouched for by whoever holds the key (the root that dumped it): its
  // files are still opened as their processes' users, but what it asks for is granted.
  if (!restricted_ || signed_image) return {};
  // Making a pid, UTS, time, cgroup, mount or net namespace takes CAP_SYS_ADMIN, which a user has
  // only in a user namespace of its own. (A tree in one is restored inside a new one, as its
  // root: its creds are translated there, so this image is not restricted; tree.cc checks the
  // maps.) (Time offsets would also
  // set the tree's clocks, a cgroup namespace move its root into a cgroup the user names, a
  // mount namespace mount over crrestore's paths as root.)
  if ((head.procs.front().process->flags &
       (schema::kProcessOwnPidNs | schema::kProcessOwnUtsNs | schema::kProcessOwnTimeNs |
        schema::kProcessOwnCgroupNs | schema::kProcessOwnMntNs | schema::kProcessOwnNetNs)) != 0)
    return make_error(
        "the image's root owns its pid, UTS, time or cgroup namespace or its mount or net "
        "namespace: an image without a root process cannot ask for new ones (restore a signed "
        "image with --verify-key to vouch for it)");
  for (const ProcessImage& p : head.procs)
    if (!zombie(p)) CR_TRY(check_process(p));
  for (const auto& [id, sock] : head.shared.inet_sockets) {
    CR_TRY(check_inet(sock.sock));
    if (!sock.datagrams.empty())
      return make_error("inet socket " + std::to_string(id) +
                        ": queued datagrams are put back from their senders' addresses with a raw "
                        "socket: an image without a root process cannot ask for it (restore a "
                        "signed image with --verify-key to vouch for it)");
  }
  for (const auto& [id, sock] : head.shared.netlink_sockets) CR_TRY(check_netlink(sock));
  // Sent again with other pids than crrestore's own, which only a privileged sender may name.
  for (const auto& [id, sock] : head.shared.unix_sockets)
    if (!sock.creds.empty())
      return make_error("unix socket " + std::to_string(id) +
                        ": credentials in flight (SCM_CREDENTIALS) name other processes than "
                        "the sender: an image without a root process cannot ask for them "
                        "(restore a signed image with --verify-key to vouch for it)");
  if (!head.shared.net_lock.empty())
    return make_error("the image names network lock " + head.shared.net_lock +
                      ": an image without a root process cannot ask for nftables changes");
  for (const auto& [id, f] : head.shared.files) {
    if (f.kind == schema::kFileDevice && !allowed_device(f.rdev))
      return make_error("file " + f.path + ": device " + device_text(f.rdev) +
                        " is not one an image without a root process may open (only null, "
                        "zero, full, random, urandom, tty, ptmx and pts)");
    if (f.kind == schema::kFileDeleted && (f.mode & (S_ISUID | S_ISGID)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", f.mode & 07777);
      return make_error("deleted file " + f.path + " with mode " + mode +
                        ": an image without a root process cannot ask for set-user-ID or "
                        "set-group-ID files");
    }
  }
  return {};
}

// ---- Switching the fs identity of one thread -----------------------------------------------

namespace {

std::vector<gid_t> current_groups() {
  std::vector<gid_t> g(static_cast<size_t>(std::max(::getgroups(0, nullptr), 0)));
  if (!g.empty() && ::getgroups(static_cast<int>(g.size()), g.data()) < 0) g.clear();
  return g;
}

Status set_ids(const FsIdentity& id) {
  // Nothing asked that is not already so: a user restoring its own image (no CAP_SETGID).
  if (current_groups() != id.groups &&
      ::syscall(SYS_setgroups, id.groups.size(), id.groups.data()) != 0)
    return errno_error("setgroups");
  ::syscall(SYS_setfsgid, id.fsgid);
  ::syscall(SYS_setfsuid, id.fsuid);
  // setfsuid/setfsgid return the previous value whatever happens: ask again (-1 changes nothing).
  if (static_cast<uint32_t>(::syscall(SYS_setfsuid, -1)) != id.fsuid ||
      static_cast<uint32_t>(::syscall(SYS_setfsgid, -1)) != id.fsgid)
    return make_error("cannot act as uid " + std::to_string(id.fsuid) + " gid " +
                      std::to_string(id.fsgid));
  return {};
}

bool get_caps(uint32_t out[2][3]) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (::syscall(SYS_capget, &h, d) != 0) return false;
  for (int i = 0; i < 2; ++i) {
    out[i][0] = d[i].effective;
    out[i][1] = d[i].permitted;
    out[i][2] = d[i].inheritable;
  }
  return true;
}

bool set_caps(const uint32_t in[2][3]) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  for (int i = 0; i < 2; ++i) d[i] = {in[i][0], in[i][1], in[i][2]};
  return ::syscall(SYS_capset, &h, d) == 0;
}

}  // namespace

Result<FsCredsScope> FsCredsScope::enter(const FsIdentity& id, bool keep_caps) {
  FsCredsScope s;
  s.fsuid_ = static_cast<uint32_t>(::syscall(SYS_setfsuid, -1));
  s.fsgid_ = static_cast<uint32_t>(::syscall(SYS_setfsgid, -1));
  s.groups_ = current_groups();
  if (!get_caps(s.caps_)) return errno_error("capget");
  s.active_ = true;  // from here the destructor puts everything back
  CR_TRY(set_ids(id));
  if (keep_caps && !set_caps(s.caps_)) return errno_error("capset");
  return s;
}

FsCredsScope::FsCredsScope(FsCredsScope&& o) noexcept
    : active_(std::exchange(o.active_, false)),
      fsuid_(o.fsuid_),
      fsgid_(o.fsgid_),
      groups_(std::move(o.groups_)) {
  std::memcpy(caps_, o.caps_, sizeof caps_);
}

FsCredsScope::~FsCredsScope() {
  if (!active_) return;
  FsIdentity back{fsuid_, fsgid_, groups_};
  // Going on as the wrong user would do the next file with the wrong rights: stop instead.
  if (!set_ids(back).ok() || !set_caps(caps_)) ::abort();
}

Status become_fs_identity(const FsIdentity& id) { return set_ids(id); }

}  // namespace cr::restore
