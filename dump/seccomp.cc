// Seccomp: a thread's mode (`Seccomp:` in its status) and, in filter mode, its chain of BPF
// programs (PTRACE_SECCOMP_GET_FILTER, index 0 the oldest: the kernel counts from the root)
// with their flags
// (PTRACE_SECCOMP_GET_METADATA). The thread is stopped, so its chain cannot change while it is
// read. Before anything else it is switched to PTRACE_O_SUSPEND_SECCOMP: crdump's injected
// calls (mmap, prctl, sigaltstack...) would otherwise go through its filters, and a filter
// that kills or fails one of them would break the dump, or kill the task.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ptrace.h>

#include <cstring>

#include "dump/passes.h"

namespace cr::dump {

namespace {

constexpr size_t kInsn = sizeof(sock_filter);
// The kernel's limit on one task's chain: 32768 instructions counting 4 more per filter
// (MAX_INSNS_PER_PATH), so never more than this many filters.
constexpr unsigned kMaxFilters = 32768 / 5;

// What restore cannot give back: SECCOMP_RET_USER_NOTIF hands the call to a supervisor through
// a listener fd (without one the kernel fails the call with ENOSYS), and a computed return
// (BPF_RET|BPF_A) may be that. Empty: every action is the filter's own.
std::string unsupported_action(const std::vector<uint8_t>& prog) {
  for (size_t i = 0; i + kInsn <= prog.size(); i += kInsn) {
    sock_filter f{};
    std::memcpy(&f, &prog[i], kInsn);
    if (BPF_CLASS(f.code) != BPF_RET) continue;
    if (BPF_RVAL(f.code) == BPF_A)
      return "returns an action it computes (BPF_RET|BPF_A), which may be "
             "SECCOMP_RET_USER_NOTIF";
    if ((f.k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
      return "returns SECCOMP_RET_USER_NOTIF (its listener cannot be restored)";
  }
  return {};
}

}  // namespace

Status read_seccomp(DumpContext& ctx, ThreadState& t, const ProcStatus& status) {
  t.seccomp_mode = 0;
  t.seccomp_filter = 0;
  if (status.seccomp == 0) return {};
  const std::string who = "pid " + std::to_string(ctx.pid) +
                          (t.tid == ctx.pid ? std::string() : " thread " + std::to_string(t.tid));
  if (status.seccomp != SECCOMP_MODE_STRICT && status.seccomp != SECCOMP_MODE_FILTER)
    return make_error(who + ": seccomp mode " + std::to_string(status.seccomp) + " unknown");
  // Not a refusal: the injected calls that follow are unsafe without it, in a dry run too.
  if (Status st = t.tracee.set_options(PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP); !st.ok())
    return Error{who +
                     " has seccomp: crdump needs CAP_SYS_ADMIN (and no seccomp of its own) to "
                     "suspend it while it works in the task (PTRACE_O_SUSPEND_SECCOMP): " +
                     st.error().message,
                 st.error().code};
  if (status.seccomp == SECCOMP_MODE_STRICT) {
    t.seccomp_mode = SECCOMP_MODE_STRICT;
    return {};
  }
  // Oldest first, as the kernel numbers them.
  std::vector<std::pair<std::vector<uint8_t>, uint32_t>> chain;
  for (unsigned i = 0;; ++i) {
    auto prog = t.tracee.seccomp_filter(i);
    if (!prog.ok()) {
      if (prog.error().code == ENOENT) break;
      return std::move(prog).error().wrap(who + ": seccomp filter " + std::to_string(i));
    }
    if (i >= kMaxFilters) return make_error(who + ": more seccomp filters than the kernel allows");
    CR_TRY_ASSIGN(uint64_t flags, t.tracee.seccomp_filter_flags(i));
    chain.emplace_back(std::move(prog).value(), static_cast<uint32_t>(flags));
  }
  // Seccomp_filters (5.9+; 0 before) counts the same chain.
  if (chain.empty() || (status.seccomp_filters != 0 && chain.size() != status.seccomp_filters))
    return make_error(who + ": " + std::to_string(chain.size()) +
                      " seccomp filters read, its status says " +
                      std::to_string(status.seccomp_filters));
  for (size_t i = 0; i < chain.size(); ++i) {
    const std::string why = unsupported_action(chain[i].first);
    const std::string which = who + ": seccomp filter " + std::to_string(i) + " (0: the oldest)";
    if (!why.empty())
      return ctx.tree.refuse(ctx.pid, make_error(which + " " + why + ": not supported"));
    if ((chain[i].second & ~uint32_t{SECCOMP_FILTER_FLAG_LOG}) != 0)
      return ctx.tree.refuse(ctx.pid,
                             make_error(which + " has flags " + std::to_string(chain[i].second) +
                                        " unknown to this build: not supported"));
  }
  // Each filter is known by its program, flags and the filter before it.
  SeccompTable& table = ctx.tree.seccomp;
  uint32_t prev = 0;
  for (auto it = chain.begin(); it != chain.end(); ++it) {
    auto key = std::make_tuple(prev, it->second, it->first);
    auto found = table.ids.find(key);
    if (found == table.ids.end()) {
      schema::SeccompFilter f;
      f.id = ctx.tree.next_obj_id++;
      f.prev = prev;
      f.flags = it->second;
      f.program = it->first;
      table.filters.push_back(std::move(f));
      found = table.ids.emplace(std::move(key), table.filters.back().id).first;
    }
    prev = found->second;
  }
  t.seccomp_mode = SECCOMP_MODE_FILTER;
  t.seccomp_filter = prev;
  return {};
}

Status write_seccomp(DumpTree& tree) {
  format::RecordWriter& out = tree.procs.front()->out;
  for (const auto& f : tree.seccomp.filters) CR_TRY(out.write(f));
  for (const auto& p : tree.procs)
    for (const ThreadState& t : p->threads)
      if (t.seccomp_mode != 0)
        CR_TRY(out.write(schema::SeccompThread{static_cast<uint32_t>(p->pid),
                                               static_cast<uint32_t>(t.tid), t.seccomp_mode,
                                               t.seccomp_filter}));
  return {};
}

}  // namespace cr::dump
