// The dump as a list of named, timed passes over one DumpContext, and the end of the dump:
// kill or detach on success, resume untouched on failure.
#include "dump/dump.h"

#include <signal.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include "dump/passes.h"

namespace cr::dump {

namespace {

struct Pass {
  const char* name;
  Status (*run)(DumpContext&);
};

constexpr Pass kPasses[] = {
    {"freeze", freeze},
    {"vmas", collect_vmas},
    {"files", collect_files},
    {"remote", collect_remote_state},
    {"process", collect_process_info},
    {"write-head", write_head_records},
    {"pages", write_pages},
    {"write-tail", write_tail_records},
    {"finish", [](DumpContext& ctx) { return ctx.out.finish(); }},
};

Status run_passes(DumpContext& ctx) {
  for (const Pass& p : kPasses) {
    auto t0 = std::chrono::steady_clock::now();
    Status st = p.run(ctx);
    if (ctx.opts.on_pass) {
      std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
      ctx.opts.on_pass(p.name, dt.count());
    }
    if (!st.ok()) return st;
  }
  return {};
}

// SIGKILL while still attached, so no thread can run a single instruction after its dump;
// then collect each exit as the tracer. The other threads go first: the kernel reports the
// leader's exit only once the rest of its group has been reaped (by us, their tracer).
Status kill_target(DumpContext& ctx) {
  if (::kill(ctx.pid, SIGKILL) != 0) return errno_error("kill " + std::to_string(ctx.pid));
  for (size_t i = ctx.threads.size(); i-- > 0;) {
    ThreadState& t = ctx.threads[i];
    for (;;) {
      CR_TRY_ASSIGN(sys::WaitStatus ws, sys::wait_for(t.tid));
      if (ws.exited() || ws.signaled()) break;
    }
    t.tracee.release();
  }
  return {};
}

// Detaches every thread that is still attached (each resumes where it was).
Status detach_all(DumpContext& ctx) {
  Status first;
  for (ThreadState& t : ctx.threads) {
    if (!t.tracee.attached()) continue;
    Status st = t.tracee.detach();
    if (!st.ok() && first.ok()) first = std::move(st);
  }
  return first;
}

}  // namespace

Result<schema::StreamHeader> stream_header(pid_t pid) {
  schema::StreamHeader h;
  h.arch = 62;  // EM_X86_64
  h.page_size = static_cast<uint32_t>(::sysconf(_SC_PAGESIZE));
  utsname u{};
  if (::uname(&u) != 0) return errno_error("uname");
  h.kernel_release = u.release;
  h.tool_version = CR_TOOL_VERSION;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return errno_error("gethostname");
  h.hostname = host;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  h.created_unix_ns =
      static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  h.root_pid = static_cast<uint32_t>(pid);
  return h;
}

Status dump_process(pid_t pid, const DumpOptions& opts, format::RecordWriter& out) {
  DumpContext ctx(pid, opts, out);
  Status st = run_passes(ctx);
  if (!st.ok()) {
    // Registers and mask were put back by the injection scope (remote_state.cc) if it ran;
    // detaching lets the task carry on where it was.
    (void)detach_all(ctx);
    out.fail(st.error().message);
    return st;
  }
  auto t0 = std::chrono::steady_clock::now();
  if (opts.leave_running) {
    CR_TRY(detach_all(ctx));
  } else {
    CR_TRY(kill_target(ctx));
  }
  if (opts.on_pass) {
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    opts.on_pass(opts.leave_running ? "detach" : "kill", dt.count());
  }
  return {};
}

}  // namespace cr::dump
