// Process attributes that a change of credentials resets or that only the task can set by
// prctl/membarrier: run after the credentials (commit_creds clears the parent-death signal and
// sets dumpable from fs.suid_dumpable when the uids change).
#include "restore/attrs.h"

#include <linux/membarrier.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "sys/linux_abi.h"

namespace cr::restore {

namespace {

Status wrap(Result<uint64_t> r, const std::string& what) {
  if (!r.ok()) return std::move(r).error().wrap(what);
  return {};
}

constexpr uint32_t kMembarrierRegisters[] = {
    MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
};

}  // namespace

Status restore_attrs(RestoreContext& ctx) {
  for (ThreadView& t : ctx.all_threads())
    if (t.rec.pdeathsig != 0)
      CR_TRY(wrap(
          t.remote.call("prctl(PR_SET_PDEATHSIG)", SYS_prctl, PR_SET_PDEATHSIG, t.rec.pdeathsig),
          "thread " + std::to_string(t.rec.tid) + " parent-death signal"));
  if (!ctx.img.attrs) return {};
  const auto& a = *ctx.img.attrs;
  const uint32_t unknown = a.membarrier & ~(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED |
                                            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED |
                                            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE |
                                            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ);
  if (unknown != 0)
    return make_error("membarrier registrations " + std::to_string(unknown) +
                      " unknown to this build");
  for (uint32_t cmd : kMembarrierRegisters)
    if ((a.membarrier & cmd) != 0)
      CR_TRY(wrap(ctx.call("membarrier", SYS_membarrier, cmd, 0, 0),
                  "membarrier registration " + std::to_string(cmd)));
  if (a.thp_disable != 0)
    CR_TRY(wrap(ctx.call("prctl(PR_SET_THP_DISABLE)", SYS_prctl, PR_SET_THP_DISABLE, 1,
                         a.thp_disable & PR_THP_DISABLE_EXCEPT_ADVISED),
                "THP disable"));
  // Always: the value after the credentials pass is fs.suid_dumpable's or crrestore's.
  return wrap(ctx.call("prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE, a.dumpable),
              "dumpable");
}

}  // namespace cr::restore
