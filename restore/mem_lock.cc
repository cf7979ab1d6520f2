#include "restore/mem_lock.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#include "common/text.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

// The task's VmLck: the size of its locked mappings.
Result<uint64_t> locked_kb(pid_t pid) {
  CR_TRY_ASSIGN(sys::ProcDir proc, sys::ProcDir::open(pid));
  CR_TRY_ASSIGN(std::string text, proc.read("status"));
  CR_TRY_ASSIGN(sys::ProcStatus st, sys::parse_status(text));
  return st.vm_lck_kb;
}

// Locks [start, start + len), mappings that all have the same lock and are all accessible or
// all PROT_NONE. The kernel locks a PROT_NONE mapping (mlockall(MCL_FUTURE) does it to every
// guard page a thread's stack gets) but then fails to fault it in with ENOMEM, the error a
// lock beyond RLIMIT_MEMLOCK gets too: VmLck tells them apart (it grows only in the first case).
Status lock_range(RestoreContext& ctx, uint64_t start, uint64_t len, bool on_fault,
                  bool inaccessible) {
  uint64_t before = 0;
  if (inaccessible) {
    CR_TRY_ASSIGN(before, locked_kb(ctx.pid()));
  }
  // Without MLOCK_ONFAULT the kernel faults every page in, as the dumped mlock did.
  CR_TRY_ASSIGN(int64_t r,
                ctx.remote->call_raw(SYS_mlock2, start, len, on_fault ? MLOCK_ONFAULT : 0));
  if (r == -ENOMEM && inaccessible) {
    CR_TRY_ASSIGN(uint64_t after, locked_kb(ctx.pid()));
    if (after >= before + len / 1024) r = 0;
  }
  if (r == 0) return {};
  return errno_error(std::string(on_fault ? "mlock2(MLOCK_ONFAULT)" : "mlock") + " of " +
                         hex(start) + "-" + hex(start + len) +
                         (ctx.restricted ? " as the image's user, under its RLIMIT_MEMLOCK" : ""),
                     r < 0 && r > -4096 ? static_cast<int>(-r) : EIO);
}

// Runs of adjacent mappings with the same lock are one call each (the kernel splits and merges
// the mappings as the dumped ones were, their flags deciding).
Status lock_memory(RestoreContext& ctx) {
  const auto& vmas = ctx.img.vmas;
  const uint32_t kLockBits = schema::kMadvLocked | schema::kMadvLockOnFault;
  auto same_run = [&](const schema::Vma& a, const schema::Vma& b) {
    return b.start == a.end && (a.madv & kLockBits) == (b.madv & kLockBits) &&
           (a.prot == PROT_NONE) == (b.prot == PROT_NONE);
  };
  for (size_t i = 0; i < vmas.size();) {
    size_t j = i + 1;
    while (j < vmas.size() && same_run(vmas[j - 1], vmas[j])) ++j;
    if ((vmas[i].madv & schema::kMadvLocked) != 0)
      CR_TRY(lock_range(ctx, vmas[i].start, vmas[j - 1].end - vmas[i].start,
                        (vmas[i].madv & schema::kMadvLockOnFault) != 0, vmas[i].prot == PROT_NONE));
    i = j;
  }
  const uint32_t future = ctx.img.attrs ? ctx.img.attrs->mlockall : 0;
  if (future != 0) {
    // Last: every mapping made from here on is locked, as in the dumped process (crrestore
    // maps nothing more; the trampoline only goes away).
    auto r = ctx.call("mlockall", SYS_mlockall, future);
    if (!r.ok()) return std::move(r).error().wrap("mlockall(MCL_FUTURE)");
  }
  return {};
}

}  // namespace

Status lock_memory_as_root(RestoreContext& ctx) {
  return ctx.restricted ? Status{} : lock_memory(ctx);
}

Status lock_memory_as_user(RestoreContext& ctx) {
  return ctx.restricted ? lock_memory(ctx) : Status{};
}

}  // namespace cr::restore
