// The dumped vDSO against this kernel's. The same code: the kernel's [vvar], [vvar_vclock]
// and [vdso] move to the dumped addresses (address_space.cc). Different code (another kernel
// build): a program's pointers into the dumped vDSO (libc's, taken at its start) would land
// in the middle of other functions. Then this kernel's pieces go to a free place instead, and
// the dumped [vdso] address gets a page of jumps: at each dumped function's offset, a jump to
// this kernel's function of the same name (CRIU's vDSO proxy).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "restore/image.h"

namespace cr::restore {

struct RestoreContext;

struct VdsoPlan {
  bool proxy = false;  // the dumped vDSO differs from ours
  uint64_t dumped_size = 0;
  struct Stub {
    uint64_t dumped_offset = 0;  // where the dumped vDSO had the function
    uint64_t own_offset = 0;     // where ours has it
  };
  std::vector<Stub> stubs;  // ascending dumped_offset, at least sys::kJumpSize apart
};

/// Decides from the image head. `own` is this process's vDSO (sys::own_vdso), `release` this
/// kernel's. Without a Vdso record (an older crdump) the image restores only on the kernel
/// release that wrote it.
Result<VdsoPlan> plan_vdso(const std::optional<schema::Vdso>& dumped,
                           const std::string& dumped_release, std::span<const uint8_t> own,
                           const std::string& release);

/// The plan for this machine (own vDSO, uname's release).
Result<VdsoPlan> plan_vdso_here(const TreeHead& head);

/// Proxy only: maps the page of jumps at the dumped [vdso] range (`v`), to the kernel's vDSO
/// now at ctx.vdso_base.
Status map_vdso_stubs(RestoreContext& ctx, const schema::Vma& v);

/// Proxy only: a thread stopped inside the dumped vDSO's code (not at a function's start)
/// would run other code here: refused, naming it.
Status check_threads_outside_vdso(const RestoreContext& ctx);

}  // namespace cr::restore
