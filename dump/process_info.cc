// Per-process attributes from /proc: Process, Creds, Rlimits, FsInfo, Mm.
#include <cerrno>
#include <cstdlib>

#include "dump/passes.h"

namespace cr::dump {

namespace {

std::string strip_newline(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

Result<int64_t> read_number(const ProcDir& proc, const std::string& name) {
  CR_TRY_ASSIGN(std::string text, proc.read(name));
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str())
    return make_error("/proc/" + name + ": not a number: '" + strip_newline(text) + "'");
  return static_cast<int64_t>(v);
}

// ProcAttrs, and what of it restore could not give back: refused here, naming it.
Status collect_attrs(DumpContext& ctx) {
  const std::string who = "pid " + std::to_string(ctx.pid);
  schema::ProcAttrs& a = ctx.attrs;
  a.pid = static_cast<uint32_t>(ctx.pid);
  CR_TRY_ASSIGN(int64_t oom, read_number(ctx.proc, "oom_score_adj"));
  a.oom_score_adj = static_cast<int32_t>(oom);
  // The audit login uid is per task (inherited by clone); the image has one per process.
  CR_TRY_ASSIGN(int64_t loginuid, read_number(ctx.proc, "loginuid"));
  a.loginuid = static_cast<uint32_t>(loginuid);
  for (const ThreadState& t : ctx.threads) {
    CR_TRY_ASSIGN(int64_t l, read_number(ctx.proc, "task/" + std::to_string(t.tid) + "/loginuid"));
    if (static_cast<uint32_t>(l) != a.loginuid)
      CR_TRY(ctx.tree.refuse(
          ctx.pid,
          make_error(who + " thread " + std::to_string(t.tid) + ": loginuid " +
                     std::to_string(static_cast<uint32_t>(l)) + " differs from its process's " +
                     std::to_string(a.loginuid) + ": not supported")));
    // A parent-death signal fires when the parent exits; the root's parent is outside the
    // tree, and at restore it would be crrestore, which exits.
    if (ctx.parent == 0 && t.pdeathsig != 0)
      CR_TRY(ctx.tree.refuse(
          ctx.pid, make_error(who + " thread " + std::to_string(t.tid) + ": parent-death signal " +
                              std::to_string(t.pdeathsig) +
                              " (PR_SET_PDEATHSIG) on the root, whose parent "
                              "is outside the tree: not supported")));
  }
  // 2 (SUID_DUMP_ROOT) comes from an exec under fs.suid_dumpable = 2; prctl cannot set it.
  if (ctx.remote.dumpable > 1)
    CR_TRY(ctx.tree.refuse(ctx.pid,
                           make_error(who + ": dumpable " + std::to_string(ctx.remote.dumpable) +
                                      " (suid_dumpable) cannot be set back: not "
                                      "supported")));
  a.dumpable = ctx.remote.dumpable;
  a.thp_disable = ctx.remote.thp_disable;
  a.membarrier = ctx.remote.membarrier;
  a.mlockall = ctx.remote.mlockall;
  a.pkeys = ctx.remote.pkeys;
  return {};
}

}  // namespace

Status collect_process_info(DumpContext& ctx) {
  const uint32_t pid = static_cast<uint32_t>(ctx.pid);
  CR_TRY_ASSIGN(std::string stat_text, ctx.proc.read("stat"));
  CR_TRY_ASSIGN(ctx.stat, parse_stat(stat_text));
  CR_TRY_ASSIGN(std::string comm, ctx.proc.read("comm"));
  CR_TRY_ASSIGN(std::string pers_text, ctx.proc.read("personality"));
  CR_TRY_ASSIGN(uint32_t personality, parse_personality(pers_text));

  schema::Process& p = ctx.process;
  p.pid = pid;
  p.ppid = static_cast<uint32_t>(ctx.stat.ppid);
  p.pgid = static_cast<uint32_t>(ctx.stat.pgrp);
  p.sid = static_cast<uint32_t>(ctx.stat.session);
  p.nthreads = static_cast<uint32_t>(ctx.threads.size());
  p.comm = strip_newline(std::move(comm));
  p.personality = personality;
  p.umask = ctx.status.umask;
  p.flags = ctx.opts.shell_job ? uint32_t{schema::kProcessShellJob} : 0u;
  if (ctx.remote.child_subreaper) p.flags |= schema::kProcessChildSubreaper;
  for (const schema::Vma& v : ctx.vmas)
    if (!v.guards.empty()) p.flags |= schema::kProcessGuardRegions;
  for (const schema::Vma& v : ctx.vmas)
    if ((v.madv & schema::kMadvLocked) != 0) p.flags |= schema::kProcessMemLock;
  if (ctx.remote.mlockall != 0) p.flags |= schema::kProcessMemLock;
  for (const schema::Vma& v : ctx.vmas)
    if (v.pkey != 0) p.flags |= schema::kProcessPkeys;
  if (ctx.remote.pkeys != 0) p.flags |= schema::kProcessPkeys;
  p.files_shared_with = static_cast<uint32_t>(ctx.files_of);
  p.fs_shared_with = static_cast<uint32_t>(ctx.fs_of);

  const ProcStatus& s = ctx.status;
  schema::Creds& c = ctx.creds;
  c.pid = pid;
  c.uid = s.uid[0];
  c.euid = s.uid[1];
  c.suid = s.uid[2];
  c.fsuid = s.uid[3];
  c.gid = s.gid[0];
  c.egid = s.gid[1];
  c.sgid = s.gid[2];
  c.fsgid = s.gid[3];
  c.groups.assign(s.groups.begin(), s.groups.end());
  c.cap_inh = s.cap_inh;
  c.cap_prm = s.cap_prm;
  c.cap_eff = s.cap_eff;
  c.cap_bnd = s.cap_bnd;
  c.cap_amb = s.cap_amb;
  c.securebits = ctx.remote.securebits;
  c.no_new_privs = s.no_new_privs;

  CR_TRY(collect_attrs(ctx));

  CR_TRY_ASSIGN(std::string limits_text, ctx.proc.read("limits"));
  ctx.rlimits.pid = pid;
  CR_TRY_ASSIGN(ctx.rlimits.limits, parse_limits(limits_text));

  ctx.fs.pid = pid;
  CR_TRY_ASSIGN(ctx.fs.cwd, ctx.proc.readlink("cwd"));
  CR_TRY_ASSIGN(ctx.fs.root, ctx.proc.readlink("root"));
  CR_TRY_ASSIGN(struct stat cwd_st, ctx.proc.stat("cwd"));
  ctx.fs.cwd_mode = cwd_st.st_mode;
  ctx.fs.cwd_uid = cwd_st.st_uid;
  ctx.fs.cwd_gid = cwd_st.st_gid;
  // A directory removed while it is the cwd: nlink 0 and " (deleted)" after its last name.
  constexpr std::string_view kDeleted = " (deleted)";
  if (cwd_st.st_nlink == 0 && ctx.fs.cwd.ends_with(kDeleted)) {
    ctx.fs.cwd.resize(ctx.fs.cwd.size() - kDeleted.size());
    ctx.process.flags |= schema::kProcessCwdDeleted;
  }
  if (Status st = check_proc_path(ctx.tree, ctx, ctx.fs.cwd, "cwd"); !st.ok())
    CR_TRY(ctx.tree.refuse(ctx.pid, std::move(st).error()));
  CR_TRY_ASSIGN(struct stat root_st, ctx.proc.stat("root"));
  if (root_st.st_nlink == 0 && ctx.fs.root.ends_with(kDeleted))
    CR_TRY(ctx.tree.refuse(ctx.pid, make_error("root directory " + ctx.fs.root +
                                               " (chroot into a removed directory) not "
                                               "supported yet")));

  schema::Mm& mm = ctx.mm;
  mm.pid = pid;
  mm.start_code = ctx.stat.start_code;
  mm.end_code = ctx.stat.end_code;
  mm.start_data = ctx.stat.start_data;
  mm.end_data = ctx.stat.end_data;
  mm.start_brk = ctx.stat.start_brk;
  mm.brk = ctx.remote.brk;
  mm.start_stack = ctx.stat.start_stack;
  mm.arg_start = ctx.stat.arg_start;
  mm.arg_end = ctx.stat.arg_end;
  mm.env_start = ctx.stat.env_start;
  mm.env_end = ctx.stat.env_end;
  CR_TRY_ASSIGN(std::string auxv, ctx.proc.read("auxv"));
  mm.auxv = parse_auxv(auxv);
  CR_TRY_ASSIGN(mm.exe_path, ctx.proc.readlink("exe"));
  CR_TRY_ASSIGN(struct stat exe, ctx.proc.stat("exe"));
  mm.exe_dev = exe.st_dev;
  mm.exe_ino = exe.st_ino;
  return {};
}

}  // namespace cr::dump
