// Credentials come last: once they drop privileges, nothing else could be restored.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "restore/task_state.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

Status check(Result<uint64_t> r, const char* what) {
  if (!r.ok()) return std::move(r).error().wrap(what);
  return {};
}

// A thread's credentials as /proc shows them (one read instead of remote calls per field).
Result<sys::ProcStatus> thread_status(pid_t tid) {
  CR_TRY_ASSIGN(sys::ProcDir proc, sys::ProcDir::open(tid));
  CR_TRY_ASSIGN(std::string text, proc.read("status"));
  return sys::parse_status(text);
}

// Whether a thread already holds exactly the dumped credentials (securebits aside): the common
// case of a root process restored by root, where every call below would change nothing.
// With `keep_groups` (a user namespace that denies setgroups: they were set before it was
// made) the groups are not compared.
bool creds_match(const sys::ProcStatus& s, const schema::Creds& c, bool keep_groups) {
  const uint32_t uid[4] = {c.uid, c.euid, c.suid, c.fsuid};
  const uint32_t gid[4] = {c.gid, c.egid, c.sgid, c.fsgid};
  std::vector<uint32_t> groups(c.groups.begin(), c.groups.end());
  return std::equal(uid, uid + 4, s.uid) && std::equal(gid, gid + 4, s.gid) &&
         (keep_groups || groups == s.groups) &&
         s.cap_inh == c.cap_inh && s.cap_prm == c.cap_prm && s.cap_eff == c.cap_eff &&
         s.cap_bnd == c.cap_bnd && s.cap_amb == c.cap_amb && s.no_new_privs == c.no_new_privs;
}

int last_cap() {
  int last = CAP_LAST_CAP;
  if (FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "re")) {
    if (std::fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    std::fclose(f);
  }
  return last;
}

}  // namespace

namespace {

// One thread's credentials: the kernel keeps them per thread (glibc's setuid broadcasts to all
// threads; a remote call does not), so every thread runs this sequence.
Status restore_thread_creds(RestoreContext& ctx, ThreadView& th) {
  const auto& c = *ctx.img.creds;
  sys::RemoteSyscalls& rs = th.remote;
  const int last = last_cap();
  CR_TRY_ASSIGN(sys::ProcStatus now, thread_status(th.tracee.tid()));
  const bool keep_groups = ctx.opts.user_ns && ctx.opts.user_ns->setgroups == 2;
  if (creds_match(now, c, keep_groups)) {
    auto bits = rs.call_raw(SYS_prctl, PR_GET_SECUREBITS);
    if (!bits.ok()) return std::move(bits).error();
    if (static_cast<uint64_t>(*bits) == c.securebits) return {};
  }
  // Bounding set first: dropping needs CAP_SETPCAP, which the final sets may lack.
  const uint64_t bnd = now.cap_bnd;
  for (int cap = 0; cap <= last && cap < 64; ++cap) {
    // Only what the task has and the dump had not (CAP_SYS_RESOURCE is in neither here).
    if ((c.cap_bnd >> cap) & 1 || ((bnd >> cap) & 1) == 0) continue;
    CR_TRY(check(rs.call("PR_CAPBSET_DROP", SYS_prctl, PR_CAPBSET_DROP, static_cast<uint64_t>(cap)),
                 "bounding set"));
  }
  ctx.reset_scratch();
  std::vector<uint32_t> groups(c.groups.begin(), c.groups.end());
  uint64_t groups_addr = 0;
  if (!groups.empty()) {
    CR_TRY_ASSIGN(groups_addr, ctx.put(groups.data(), groups.size() * sizeof(uint32_t)));
  }
  if (!keep_groups)
    CR_TRY(check(rs.call("setgroups", SYS_setgroups, groups.size(), groups_addr), "groups"));
  const bool uid_changes = c.uid != 0 || c.euid != 0 || c.suid != 0 || c.fsuid != 0;
  // Keep every capability across the uid change: SECBIT_NO_SETUID_FIXUP leaves the sets alone.
  // (SECBIT_KEEP_CAPS would keep only the permitted set; without CAP_SETPCAP in the effective
  // set the final securebits could not be set and KEEP_CAPS would stay.) The final securebits
  // go on while CAP_SETPCAP is still effective, the final capability sets last.
  auto cur_bits = rs.call_raw(SYS_prctl, PR_GET_SECUREBITS);
  if (!cur_bits.ok()) return std::move(cur_bits).error();
  uint64_t bits = static_cast<uint64_t>(*cur_bits);
  if (uid_changes && bits != SECBIT_NO_SETUID_FIXUP) {
    CR_TRY(check(rs.call("PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP),
                 "securebits"));
    bits = SECBIT_NO_SETUID_FIXUP;
  }
  CR_TRY(check(rs.call("setresgid", SYS_setresgid, c.gid, c.egid, c.sgid), "gids"));
  (void)rs.call("setfsgid", SYS_setfsgid, c.fsgid);
  CR_TRY(check(rs.call("setresuid", SYS_setresuid, c.uid, c.euid, c.suid), "uids"));
  (void)rs.call("setfsuid", SYS_setfsuid, c.fsuid);
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  auto set_caps = [&](uint64_t inh, uint64_t prm, uint64_t eff) -> Status {
    __user_cap_data_struct data[2]{};
    for (int i = 0; i < 2; ++i) {
      data[i].effective = static_cast<uint32_t>(eff >> (32 * i));
      data[i].permitted = static_cast<uint32_t>(prm >> (32 * i));
      data[i].inheritable = static_cast<uint32_t>(inh >> (32 * i));
    }
    ctx.reset_scratch();
    CR_TRY_ASSIGN(uint64_t hdr_addr, ctx.put(&hdr, sizeof hdr));
    CR_TRY_ASSIGN(uint64_t data_addr, ctx.put(data, sizeof data));
    return check(rs.call("capset", SYS_capset, hdr_addr, data_addr), "capabilities");
  };
  if (c.cap_amb != 0) {
    // An ambient capability must be permitted and inheritable when raised: the dumped
    // inheritable set first, our permitted and effective sets kept until the end.
    CR_TRY(set_caps(c.cap_inh, now.cap_prm, now.cap_eff));
    for (int cap = 0; cap <= last && cap < 64; ++cap)
      if ((c.cap_amb >> cap) & 1)
        CR_TRY(check(rs.call("PR_CAP_AMBIENT_RAISE", SYS_prctl, PR_CAP_AMBIENT,
                             PR_CAP_AMBIENT_RAISE, static_cast<uint64_t>(cap)),
                     "ambient capabilities"));
  }
  if (bits != c.securebits)
    CR_TRY(check(rs.call("PR_SET_SECUREBITS", SYS_prctl, PR_SET_SECUREBITS, c.securebits),
                 "securebits"));
  CR_TRY(set_caps(c.cap_inh, c.cap_prm, c.cap_eff));
  // A uid change clears the dumpable flag; a process of its own uid was dumpable (crdump could
  // read it), so give that back or /proc/PID would stay root's.
  if (uid_changes) (void)rs.call("PR_SET_DUMPABLE", SYS_prctl, PR_SET_DUMPABLE, 1);
  if (c.no_new_privs != 0)
    CR_TRY(
        check(rs.call("PR_SET_NO_NEW_PRIVS", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1), "no_new_privs"));
  return {};
}

}  // namespace

Status restore_creds(RestoreContext& ctx) {
  if (ctx.img.fs && !ctx.img.fs->root.empty() && ctx.img.fs->root != "/") {
    ctx.reset_scratch();
    CR_TRY_ASSIGN(uint64_t path, ctx.put_str(ctx.img.fs->root));
    CR_TRY(check(ctx.call("chroot", SYS_chroot, path), "chroot"));
  }
  if (!ctx.img.creds) return {};
  // The leader last: the others' calls do not depend on it, but a failure then leaves the
  // leader's privileges intact for the cleanup.
  std::vector<ThreadView> threads = ctx.all_threads();
  for (size_t i = threads.size(); i-- > 0;) CR_TRY(restore_thread_creds(ctx, threads[i]));
  return {};
}

}  // namespace cr::restore
