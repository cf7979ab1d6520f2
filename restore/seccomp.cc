#include "restore/seccomp.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace cr::restore {

namespace {

using FilterMap = std::map<uint32_t, schema::SeccompFilter>;

// A thread's chain, oldest first. The image's filters name only filters defined before them
// (image.cc), so the walk ends; the kernel limits the length.
std::vector<const schema::SeccompFilter*> chain_of(const FilterMap& filters, uint32_t newest) {
  std::vector<const schema::SeccompFilter*> chain;
  for (uint32_t id = newest; id != 0;) {
    auto it = filters.find(id);
    if (it == filters.end()) break;  // checked when read
    chain.push_back(&it->second);
    id = it->second.prev;
  }
  std::reverse(chain.begin(), chain.end());
  return chain;
}

// A scratch mapping in the task for the programs (up to 32 KiB each, more than the trampoline's
// scratch holds), unmapped before the pass ends (after a failure the task is killed: nothing
// more is injected into it).
class ProgramArea {
 public:
  static Result<ProgramArea> map(RestoreContext& ctx, size_t size) {
    const uint64_t len = (size + 4095) & ~uint64_t{4095};
    CR_TRY_ASSIGN(uint64_t addr,
                  ctx.call("mmap seccomp programs", SYS_mmap, 0, len, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, ~uint64_t{0}, 0));
    return ProgramArea(ctx, addr, len);
  }
  Status unmap() {
    auto r = ctx_->call("munmap seccomp programs", SYS_munmap, addr_, len_);
    if (!r.ok()) return std::move(r).error();
    return {};
  }

  // seccomp(SECCOMP_SET_MODE_FILTER) in the thread `remote` drives: the sock_fprog at the
  // start of the area, the program after it.
  Status install(sys::RemoteSyscalls& remote, pid_t tid, const schema::SeccompFilter& f,
                 uint32_t extra_flags) {
    struct {
      uint16_t len;
      uint16_t pad[3];
      uint64_t filter;
    } prog{static_cast<uint16_t>(f.program.size() / sizeof(sock_filter)), {}, addr_ + 16};
    CR_TRY(ctx_->tracee.write_mem(addr_ + 16, f.program.data(), f.program.size()));
    CR_TRY(ctx_->tracee.write_mem(addr_, &prog, sizeof prog));
    CR_TRY_ASSIGN(int64_t r, remote.call_raw(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                                             f.flags | extra_flags, addr_));
    const std::string what =
        "thread " + std::to_string(tid) + ": seccomp filter " + std::to_string(f.id);
    if (r < 0)
      return Error{what + ": " + std::strerror(static_cast<int>(-r)), static_cast<int>(-r)};
    if (r > 0)  // TSYNC: the thread that could not be synchronised
      return make_error(what + ": thread " + std::to_string(r) + " could not take it (TSYNC)");
    return {};
  }

 private:
  ProgramArea(RestoreContext& ctx, uint64_t addr, uint64_t len)
      : ctx_(&ctx), addr_(addr), len_(len) {}
  RestoreContext* ctx_;
  uint64_t addr_ = 0, len_ = 0;
};

}  // namespace

Status restore_seccomp(RestoreContext& ctx) {
  if (ctx.img.seccomp.empty()) return {};
  if (ctx.seccomp_filters == nullptr) return make_error("seccomp records without their filters");
  const FilterMap& filters = *ctx.seccomp_filters;
  std::vector<ThreadView> threads = ctx.all_threads();
  // Each thread's record (mode 0: none), checked against the Thread records.
  std::vector<const schema::SeccompThread*> rec(threads.size(), nullptr);
  for (const auto& s : ctx.img.seccomp) {
    auto it = std::find_if(threads.begin(), threads.end(),
                           [&](const ThreadView& t) { return t.rec.tid == s.tid; });
    if (it == threads.end())
      return make_error("seccomp of thread " + std::to_string(s.tid) +
                        ", which has no thread record");
    rec[static_cast<size_t>(it - threads.begin())] = &s;
  }
  for (size_t i = 0; i < threads.size(); ++i) {
    // A filter only restricts, but it is the task's: never crrestore's own.
    if (threads[i].tracee.tid() == ::getpid() || threads[i].tracee.tid() == ::gettid())
      return make_error("seccomp: refusing to filter crrestore itself");
    // Every thread, so a TSYNC from the leader meets no thread running its filters.
    if (Status st = threads[i].tracee.set_options(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
                                                  PTRACE_O_SUSPEND_SECCOMP);
        !st.ok())
      return Error{"thread " + std::to_string(threads[i].rec.tid) +
                       " has seccomp: crrestore needs CAP_SYS_ADMIN (and no seccomp of its own) "
                       "to suspend it while it works in the task (PTRACE_O_SUSPEND_SECCOMP): " +
                       st.error().message,
                   st.error().code};
  }
  std::vector<std::vector<const schema::SeccompFilter*>> chains(threads.size());
  size_t biggest = 0;
  for (size_t i = 0; i < threads.size(); ++i) {
    if (rec[i] == nullptr || rec[i]->mode != SECCOMP_MODE_FILTER) continue;
    chains[i] = chain_of(filters, rec[i]->filter);
    for (const auto* f : chains[i]) biggest = std::max(biggest, f->program.size());
  }
  // The filters every thread has, from the oldest: installed once with TSYNC, they are one
  // kernel object again, and the program may later TSYNC filters of its own on top.
  size_t common = chains[0].size();
  for (const auto& c : chains) {
    size_t n = 0;
    while (n < std::min(common, c.size()) && c[n] == chains[0][n]) ++n;
    common = n;
  }
  if (biggest != 0) {
    CR_TRY_ASSIGN(ProgramArea area, ProgramArea::map(ctx, 16 + biggest));
    const uint32_t tsync = threads.size() > 1 ? SECCOMP_FILTER_FLAG_TSYNC : 0;
    for (size_t k = 0; k < common; ++k)
      CR_TRY(area.install(threads[0].remote, static_cast<pid_t>(threads[0].rec.tid), *chains[0][k],
                          tsync));
    for (size_t i = 0; i < threads.size(); ++i)
      for (size_t k = common; k < chains[i].size(); ++k)
        CR_TRY(area.install(threads[i].remote, static_cast<pid_t>(threads[i].rec.tid),
                            *chains[i][k], 0));
    CR_TRY(area.unmap());
  }
  // Strict mode last: only read, write, exit and rt_sigreturn remain to the thread once it runs.
  for (size_t i = 0; i < threads.size(); ++i) {
    if (rec[i] == nullptr || rec[i]->mode != SECCOMP_MODE_STRICT) continue;
    auto r = threads[i].remote.call("prctl(PR_SET_SECCOMP)", SYS_prctl, PR_SET_SECCOMP,
                                    SECCOMP_MODE_STRICT);
    if (!r.ok())
      return std::move(r).error().wrap("thread " + std::to_string(threads[i].rec.tid) +
                                       ": seccomp strict mode");
  }
  return {};
}

}  // namespace cr::restore
