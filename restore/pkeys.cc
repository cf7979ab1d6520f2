#include "restore/pkeys.h"

#include <sys/syscall.h>

#include "common/text.h"

namespace cr::restore {

Status restore_pkeys(RestoreContext& ctx) {
  const uint32_t allocated = ctx.img.attrs ? ctx.img.attrs->pkeys : 0;
  // A mapping may keep a key the program has freed since (the kernel lets it): taken for the
  // pkey_mprotect, given back after.
  uint32_t need = allocated;
  for (const auto& v : ctx.img.vmas)
    if (v.pkey != 0) need |= 1u << v.pkey;  // check_memory: 1..15
  if (need == 0) return {};
  // A new process has none allocated (crrestore has none to inherit): the keys come 1, 2, ...
  uint32_t have = 0;
  while ((need & ~have) != 0) {
    CR_TRY_ASSIGN(int64_t k, ctx.remote->call_raw(SYS_pkey_alloc, 0, 0));
    if (k <= 0 || k > 15)
      return make_error("pkey_alloc gave " + std::to_string(k) + " where protection keys " +
                        hex(need & ~have) + " are still wanted" +
                        (k == -ENOSPC ? " (does this CPU have protection keys?)" : ""));
    have |= 1u << k;
  }
  for (const auto& v : ctx.img.vmas) {
    if (v.pkey == 0) continue;
    auto r = ctx.call("pkey_mprotect", SYS_pkey_mprotect, v.start, v.end - v.start, v.prot, v.pkey);
    if (!r.ok()) return std::move(r).error().wrap("vma " + hex(v.start));
  }
  for (uint64_t k = 1; k < 16; ++k)
    if ((have & ~allocated) >> k & 1) CR_TRY(ctx.call("pkey_free", SYS_pkey_free, k));
  return {};
}

}  // namespace cr::restore
