// Memory protection keys (x86 PKU): the keys the mm had allocated, and each mapping's key.
// Each thread's PKRU (the keys' rights) is part of its xsave area, set with its registers.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// pkey_alloc of the dumped keys (the same numbers: the kernel hands out the lowest free one,
/// so the keys between them are taken and given back), then pkey_mprotect of every mapping
/// that had a key. After the protections pass.
Status restore_pkeys(RestoreContext& ctx);

}  // namespace cr::restore
