// Process attributes set by remote calls after the credentials: parent-death signal (per
// thread), membarrier registrations, THP-disable, dumpable. (oom_score_adj and loginuid are
// set by the process itself before crrestore takes it over: child_setup.cc.)
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// PR_SET_PDEATHSIG in every thread; membarrier registrations, PR_SET_THP_DISABLE and
/// PR_SET_DUMPABLE in the leader.
Status restore_attrs(RestoreContext& ctx);

}  // namespace cr::restore
