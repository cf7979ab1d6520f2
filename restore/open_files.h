// Opening the dumped files inside the new task (the child, before it stops for tracing): each
// File becomes one open file description at some fd, ready for the fd-table plan.
#pragma once

#include <map>
#include <vector>

#include "common/result.h"
#include "restore/context.h"
#include "restore/fd_plan.h"
#include "restore/privilege.h"
#include "restore/unix_sockets.h"

namespace cr::restore {

/// Opens every File the Fds name, in the calling process. Pipes are created once per Pipe with
/// their queued data written back; FIFOs get their data through a temporary O_RDWR open;
/// deleted files, directories, FIFOs and memory device nodes are made anew and removed
/// (ghost_files.h, as the process holding them for a restricted image); a memfd is a new open of the
/// Shmem object in `shmems` (built before). Files reached by a path are opened as `priv`
/// says (restricted image: as the process holding them). Returns the opened fds; `late` gets
/// the unix socket queues to send once the tree exists (unix_sockets.h).
Result<std::vector<FdSource>> open_files(const ProcessImage& img, const RestoreOptions& opts,
                                         const std::map<uint32_t, ShmemHandle>& shmems,
                                         const Privileges& priv, LateUnixQueues& late);

}  // namespace cr::restore
