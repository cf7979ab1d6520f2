// Writing the collected state in the stream's fixed order (everything but the pages):
// Process, Creds, Rlimits, FsInfo, Pipe, PipeData, File, FileData, Fd, Mm, Vma | Pages |
// Sigaction, Itimer, PosixTimer, PendingSignal, Thread.
#include <sched.h>
#include <sys/resource.h>

#include <cstring>

#include "dump/passes.h"

namespace cr::dump {

Status write_head_records(DumpContext& ctx) {
  format::RecordWriter& out = ctx.out;
  CR_TRY(out.write(ctx.process));
  CR_TRY(out.write(ctx.creds));
  CR_TRY(out.write(ctx.rlimits));
  CR_TRY(out.write(ctx.fs));
  const FileTable& t = ctx.files;
  for (const auto& p : t.pipes) CR_TRY(out.write(p));
  for (const auto& [pipe, data] : t.pipe_data) CR_TRY(out.write(schema::PipeData{pipe}, data));
  for (const auto& f : t.files) CR_TRY(out.write(f));
  for (const auto& [file, data] : t.file_data) CR_TRY(write_file_data(out, file, data));
  for (const auto& fd : t.fds) CR_TRY(out.write(fd));
  CR_TRY(out.write(ctx.mm));
  for (const auto& v : ctx.vmas) CR_TRY(out.write(v));
  return {};
}

namespace {

Result<schema::Thread> make_thread(DumpContext& ctx) {
  schema::Thread th;
  th.pid = static_cast<uint32_t>(ctx.pid);
  th.tid = static_cast<uint32_t>(ctx.pid);
  static_assert(sizeof(user_regs_struct) == 27 * 8, "user_regs_struct is 27 words");
  th.regs.resize(27);
  std::memcpy(th.regs.data(), &ctx.regs, sizeof ctx.regs);
  th.xsave = ctx.xsave;
  th.sigmask = ctx.sigmask;
  th.ss_sp = ctx.remote.ss_sp;
  th.ss_size = ctx.remote.ss_size;
  th.ss_flags = ctx.remote.ss_flags;
  th.clear_child_tid = ctx.remote.clear_child_tid;
  th.robust_head = ctx.robust_head;
  th.robust_len = ctx.robust_len;
  th.rseq_addr = ctx.rseq.addr;
  th.rseq_len = ctx.rseq.len;
  th.rseq_sig = ctx.rseq.sig;
  std::string tid = std::to_string(ctx.pid);
  CR_TRY_ASSIGN(th.comm, ctx.proc.read("task/" + tid + "/comm"));
  while (!th.comm.empty() && th.comm.back() == '\n') th.comm.pop_back();
  int policy = ::sched_getscheduler(ctx.pid);
  if (policy < 0) return errno_error("sched_getscheduler(" + tid + ")");
  sched_param sp{};
  if (::sched_getparam(ctx.pid, &sp) != 0) return errno_error("sched_getparam(" + tid + ")");
  errno = 0;
  int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(ctx.pid));
  if (nice == -1 && errno != 0) return errno_error("getpriority(" + tid + ")");
  th.sched_policy = static_cast<uint32_t>(policy);
  th.sched_priority = static_cast<uint32_t>(sp.sched_priority);
  th.nice = nice;
  th.flags = ctx.group_stopped ? uint32_t{schema::kThreadStopped} : 0u;
  return th;
}

}  // namespace

Status write_tail_records(DumpContext& ctx) {
  format::RecordWriter& out = ctx.out;
  for (const auto& s : ctx.remote.sigactions) CR_TRY(out.write(s));
  for (const auto& it : ctx.remote.itimers) CR_TRY(out.write(it));
  for (const auto& pt : ctx.remote.posix_timers) CR_TRY(out.write(pt));
  for (const auto& ps : ctx.pending) CR_TRY(out.write(ps));
  CR_TRY_ASSIGN(schema::Thread th, make_thread(ctx));
  return out.write(th);
}

}  // namespace cr::dump
