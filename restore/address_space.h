// Rebuilding the task's address space by remote calls through the trampoline: vDSO moved to
// the dumped addresses, crrestore's copy unmapped, every dumped VMA mapped, pages streamed in
// from the reader, protections and PR_SET_MM_MAP set.
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Moves [vvar], [vvar_vclock], [vdso] to where the dump had them (sizes must match).
Status move_vdso(RestoreContext& ctx);
/// Unregisters the inherited rseq area and unmaps everything but the trampoline and vDSO.
Status unmap_rest(RestoreContext& ctx);
/// Both, as one remote batch (the "vdso and unmap" pass).
Status move_vdso_and_unmap_rest(RestoreContext& ctx);
/// Maps every dumped VMA (writable where pages may land; see set_protections).
Status map_vmas(RestoreContext& ctx);
/// Reads the rest of the process's section: Pages go straight into the task (process_vm_writev
/// from the reader's buffer), the per-task records after them are stashed. Ends at the next
/// process's Mm, or at the trailer (ctx.stream_ended).
Status stream_pages(RestoreContext& ctx);
/// Puts back the dumped protections of VMAs that were mapped writable for their pages.
Status set_protections(RestoreContext& ctx);
/// PR_SET_MM_MAP: code/data/brk/stack/arg/env, auxv and the executable.
Status set_mm(RestoreContext& ctx);

}  // namespace cr::restore
