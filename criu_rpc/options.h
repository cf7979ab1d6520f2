// What a CRIU RPC request's options (criu_rpc.proto, Opts) mean for crtools: the dump or restore
// options they map to, or a refusal naming the option crcriu does not support. Pure: no
// process, fd or file is touched here (the session opens the directories and files the
// options name), so tests feed requests as runc sends them.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "criu_rpc/criu_rpc.pb.h"
#include "dump/dump.h"
#include "restore/context.h"

namespace cr::criu_rpc {

/// The version crcriu answers VERSION with: the CRIU release whose RPC options it covers, so
/// that a caller comparing versions (runc: 3.0 for dump and restore, 3.11/3.15 for external
/// namespaces, 3.16 for LSM options) offers the options it knows. Named "crcriu".
constexpr int kVersionMajor = 3;
constexpr int kVersionMinor = 19;

/// Refuses what no request of any type may carry: fields crcriu's protocol does not know (a
/// newer caller's option, which would otherwise be dropped silently).
Status check_known_fields(const crcriu::Request& req);

struct DumpPlan {
  pid_t pid = 0;
  dump::DumpOptions opts;
};

/// DUMP: the tree's root and the dump options; what crcriu cannot honour is refused by name.
Result<DumpPlan> dump_plan(const crcriu::Opts& o);

struct RestorePlan {
  restore::RestoreOptions opts;
  /// ext_mnt entries (CRIU's --ext-mount-map KEY:VAL, runc's mount points): applied where the
  /// image has a bind or host mount at KEY; runc names more than a tree has (its devices).
  std::map<std::string, std::string> ext_mounts;
};

/// RESTORE: the restore options. Inherited fds are the numbers as crcriu has them (runc passes
/// them as extra files of the swrk process).
Result<RestorePlan> restore_plan(const crcriu::Opts& o);

/// The features FEATURE_CHECK reports: none of CRIU's optional ones (memory tracking for
/// pre-dump, lazy pages, a pidfd store) is offered.
crcriu::Features supported_features();

}  // namespace cr::criu_rpc
