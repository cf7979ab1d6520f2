// CRIU RPC options to crtools options. Every field of Opts is either mapped, accepted as
// meaning nothing for crtools (and said why), or refused by name when set to something crcriu
// would have to ignore: a caller must never believe an option it asked for was honoured.
#include "criu_rpc/options.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/unknown_field_set.h>

#include <sched.h>

#include <regex>

namespace cr::criu_rpc {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Unknown fields anywhere in `m` (its own, then its set sub-messages'), as "path N".
void unknown_fields(const Message& m, const std::string& path, std::vector<std::string>& out) {
  const auto* refl = m.GetReflection();
  const auto& unknown = refl->GetUnknownFields(m);
  for (int i = 0; i < unknown.field_count(); ++i)
    out.push_back(path + std::to_string(unknown.field(i).number()));
  std::vector<const FieldDescriptor*> set;
  refl->ListFields(m, &set);
  for (const FieldDescriptor* f : set) {
    if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const std::string sub = path + f->name() + ".";
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(m, f); ++i)
        unknown_fields(refl->GetRepeatedMessage(m, f, i), sub, out);
    } else {
      unknown_fields(refl->GetMessage(m, f), sub, out);
    }
  }
}

Error unsupported(const std::string& what) {
  return make_error(what + " is not supported by crcriu", EOPNOTSUPP);
}

// Options whose every value crtools cannot honour once set (true, or not empty).
Status refuse_unsupported(const crcriu::Opts& o) {
  if (o.has_ps()) return unsupported("a page server (ps)");
  if (o.has_parent_img()) return unsupported("parent_img (pre-dump chains)");
  if (o.track_mem()) return unsupported("track_mem (pre-dump)");
  if (o.lazy_pages()) return unsupported("lazy_pages");
  if (o.has_status_fd()) return unsupported("status_fd (lazy pages)");
  if (o.exec_cmd_size() != 0) return unsupported("exec_cmd");
  if (o.auto_ext_mnt()) return unsupported("auto_ext_mnt");
  if (o.ext_sharing()) return unsupported("ext_sharing");
  if (o.ext_masters()) return unsupported("ext_masters");
  if (o.skip_mnt_size() != 0) return unsupported("skip_mnt");
  if (o.enable_fs_size() != 0) return unsupported("enable_fs");
  if (o.unix_sk_ino_size() != 0) return unsupported("unix_sk_ino");
  // runc always asks for an empty net namespace (it "does not manage network devices"): the
  // tree's own comes back as it was dumped (lo, its addresses, any veth), which is what the
  // container had; other namespaces left empty would lose what the tree had in them.
  if ((o.empty_ns() & ~static_cast<uint32_t>(CLONE_NEWNET)) != 0)
    return unsupported("empty_ns " + std::to_string(o.empty_ns()) + " (other than CLONE_NEWNET)");
  if (o.join_ns_size() != 0)
    return unsupported("join_ns (restoring into existing namespaces: " + o.join_ns(0).ns() + ")");
  if (o.has_cgroup_props() || o.has_cgroup_props_file() || o.cgroup_dump_controller_size() != 0)
    return unsupported("cgroup_props and cgroup_dump_controller");
  if (o.has_cgroup_yard()) return unsupported("cgroup_yard");
  if (o.has_lsm_profile() && !o.lsm_profile().empty()) return unsupported("lsm_profile");
  if (o.has_lsm_mount_context() && !o.lsm_mount_context().empty())
    return unsupported("lsm_mount_context");
  if (o.tls() || o.has_tls_cacert() || o.has_tls_cacrl() || o.has_tls_cert() || o.has_tls_key())
    return unsupported("tls");
  if (o.has_pidfd_store_sk()) return unsupported("pidfd_store_sk");
  if (o.mntns_compat_mode()) return unsupported("mntns_compat_mode");
  if (o.skip_file_rwx_check()) return unsupported("skip_file_rwx_check");
  if (o.unprivileged()) return unsupported("unprivileged");
  if (o.leave_stopped()) return unsupported("leave_stopped");
  // Accepted as meaning nothing more for crtools: evasive_devices (devices are reopened by
  // path), file_locks (locks are always dumped and taken again), link_remap and force_irmap
  // (deleted and inotify-watched files are handled without them), auto_dedup (no parent
  // image to punch), cpu_cap (the restore checks the CPU's features itself), freeze_cgroup and
  // timeout (the tree is frozen with ptrace), weak_sysctls, orphan_pts_master (a pty crcriu
  // cannot restore is refused at the dump), irmap_scan_paths, network_lock (crtools' own
  // nftables lock), display_stats, log_to_stderr, image_io_mode, rst_sibling (see
  // restore_plan).
  return {};
}

Result<bool> ignore_cgroups(const crcriu::Opts& o) {
  if (!o.has_manage_cgroups_mode()) return false;
  switch (o.manage_cgroups_mode()) {
    case crcriu::CG_SOFT:
    case crcriu::CG_DEFAULT:
      return false;
    case crcriu::CG_IGNORE:
    case crcriu::CG_NONE:
      return true;
    default:
      return unsupported("manage_cgroups_mode " +
                         crcriu::CgroupMode_Name(o.manage_cgroups_mode()));
  }
}

}  // namespace

Status check_known_fields(const crcriu::Request& req) {
  std::vector<std::string> unknown;
  unknown_fields(req, "", unknown);
  if (unknown.empty()) return {};
  std::string list;
  for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
  return make_error("request field " + list + " unknown to crcriu (a newer caller's option)",
                    EOPNOTSUPP);
}

Result<DumpPlan> dump_plan(const crcriu::Opts& o) {
  CR_TRY(refuse_unsupported(o));
  if (!o.has_pid() || o.pid() <= 0)
    return unsupported("a dump without pid (of the requesting process itself)");
  if (o.tcp_close()) return make_error("tcp_close is a restore option", EINVAL);
  if (o.inherit_fd_size() != 0) return make_error("inherit_fd is a restore option", EINVAL);
  if (o.veths_size() != 0) return make_error("veths is a restore option", EINVAL);
  CR_TRY(ignore_cgroups(o));
  // external: CRIU names at the dump what it must not dump. crtools records a bind mount's
  // host path itself, so mnt[...] needs nothing; anything else (a namespace, a device, a unix
  // socket or file by inode) it has no way to leave out.
  static const std::regex kMount(R"(mnt\[[^\]]+\]:.*)");
  for (const auto& e : o.external())
    if (!std::regex_match(e, kMount)) return unsupported("external " + e);
  DumpPlan plan;
  plan.pid = o.pid();
  plan.opts.leave_running = o.leave_running();
  plan.opts.shell_job = o.shell_job();
  plan.opts.ext_unix_sk = o.ext_unix_sk();
  plan.opts.tcp_established = o.tcp_established();
  plan.opts.skip_in_flight = o.tcp_skip_in_flight();
  // CRIU's default limit (1 MiB) stands when the caller sends none.
  plan.opts.ghost_limit = o.ghost_limit();
  return plan;
}

Result<RestorePlan> restore_plan(const crcriu::Opts& o) {
  CR_TRY(refuse_unsupported(o));
  if (o.leave_running()) return make_error("leave_running is a dump option", EINVAL);
  RestorePlan plan;
  // The restored tree runs on its own once the reply is sent: crcriu does not wait for it. With
  // rst_sibling CRIU makes the root the caller's child; here it is crcriu's, and init's once
  // crcriu exits (what `runc restore -d` needs; a caller that waits for the root as its own
  // child cannot).
  plan.opts.detach = true;
  plan.opts.shell_job = o.shell_job();
  plan.opts.tcp_close = o.tcp_close();
  CR_TRY_ASSIGN(bool ignore, ignore_cgroups(o));
  // cg_root: the caller (runc) has put crcriu in the container's cgroups, and names them as
  // the roots the tree's cgroups are to be found under. The tree stays where crcriu is, which
  // is that root (a tree whose tasks were in cgroups below its root is refused at restore).
  for (const auto& c : o.cg_root()) {
    if (c.path().empty() || c.path()[0] != '/')
      return make_error("cg_root " + c.ctrl() + ":" + c.path() + ": not an absolute path", EINVAL);
    plan.opts.cgroup_roots[c.ctrl()] = c.path();
  }
  if (o.cg_root_size() != 0 && !ignore) {
    ignore = true;
    plan.opts.cgroups_as_one = true;
  }
  plan.opts.ignore_cgroups = ignore;
  for (const auto& f : o.inherit_fd()) {
    if (f.fd() < 0) return make_error("inherit_fd " + f.key() + ": fd " + std::to_string(f.fd()), EBADF);
    if (!plan.opts.inherit_fds.emplace(f.key(), f.fd()).second)
      return make_error("inherit_fd " + f.key() + " given twice", EINVAL);
  }
  for (const auto& v : o.veths())
    if (!plan.opts.external_veths.emplace(v.if_in(), restore::ExternalVeth{v.if_out(), ""}).second)
      return make_error("veth " + v.if_in() + " given twice", EINVAL);
  for (const auto& m : o.ext_mnt()) {
    if (m.key().empty() || m.key()[0] != '/' || m.val().empty() || m.val()[0] != '/')
      return make_error("ext_mnt " + m.key() + ":" + m.val() + ": both must be absolute paths",
                        EINVAL);
    // runc names the host path as the mount point itself for its devices, masked paths and
    // cgroup v1 hierarchies (KEY:KEY): the same as at the dump, where the image records the
    // precise source (the container's cgroup below the hierarchy), which stands.
    if (m.key() == m.val()) continue;
    plan.ext_mounts[m.key()] = m.val();
  }
  static const std::regex kMount(R"(mnt\[(/[^\]]*)\]:(/.*))");
  static const std::regex kVeth(R"(veth\[([^\]/: ]{1,15})\]:([^@/: ]{1,15})(@([^/: ]{1,15}))?)");
  for (const auto& e : o.external()) {
    std::smatch m;
    if (std::regex_match(e, m, kMount)) {
      plan.ext_mounts[m[1].str()] = m[2].str();
    } else if (std::regex_match(e, m, kVeth)) {
      if (!plan.opts.external_veths
               .emplace(m[1].str(), restore::ExternalVeth{m[2].str(), m[4].str()})
               .second)
        return make_error("veth " + m[1].str() + " given twice", EINVAL);
    } else {
      return unsupported("external " + e);
    }
  }
  return plan;
}

crcriu::Features supported_features() {
  crcriu::Features f;
  f.set_mem_track(false);
  f.set_lazy_pages(false);
  f.set_pidfd_store(false);
  return f;
}

}  // namespace cr::criu_rpc
