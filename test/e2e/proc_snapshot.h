// Everything /proc shows about a process tree, as a flat map "PID/field" -> value, and the
// comparison of two such snapshots (before a dump, after the restore) under an allowlist.
//
// Keys: "PID/status/Umask", "PID/stat/pgrp", "PID/fd/4", "PID/fdinfo/4/pos",
// "PID/maps/7f00-7f10", "PID/smaps/7f00-7f10/VmFlags/ac", "PID/task/TID/status/SigBlk", ...
// (threads other than the leader under task/; the leader's are the process's own).
// Values are the text the kernel shows, with two normalisations, both so that a restore that
// is right compares equal:
//   - a task's run state is R or S only by timing: both read "running";
//   - ids the kernel hands out anew (pipe/socket/anon inode numbers, memfd inodes, namespace
//     ids other than the harness's own) become ordinals in order of first appearance
//     ("pipe:[#1]"), so what is compared is which fds share an object, not its number.
// Counters (times, faults, context switches, residency, high-water marks) are left out.
#ifndef CR_TEST_E2E_PROC_SNAPSHOT_H
#define CR_TEST_E2E_PROC_SNAPSHOT_H

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sys/proc_parse.h"

namespace cr::e2e {

using Snapshot = std::map<std::string, std::string>;

/// Gives kernel-assigned ids stable names within one snapshot: the first id seen of a kind is
/// "#1", the next new one "#2", the same id again the same name.
class Canon {
 public:
  std::string name(const std::string& kind, const std::string& id);
  bool has(const std::string& kind, const std::string& id) const;

 private:
  std::map<std::string, std::map<std::string, int>> seen_;
};

// ---- Flatteners: one /proc file's text into snapshot entries under `prefix` ("123/").
// Pure functions of the text, unit-tested with canned files.

/// status: every "Key:\tvalue" line except the counters.
void add_status(Snapshot& s, const std::string& prefix, std::string_view text);
/// stat: the fields that are state (ppid, pgrp, session, tty, flags, nice, policy, layout...).
void add_stat(Snapshot& s, const std::string& prefix, std::string_view text);
/// fdinfo of fd `fd` whose link is `link`: pos, flags, mnt_id, ino and the type-specific
/// lines (eventfd-count, tfd:, lock:, ...).
void add_fdinfo(Snapshot& s, const std::string& prefix, int fd, const std::string& link,
                std::string_view text, Canon& canon);
/// A /proc/PID/fd/N or map path, with kernel-assigned inode numbers canonicalised.
std::string canon_link(const std::string& link, Canon& canon);
/// Mappings as compared: adjacent VMAs that differ only in VM_ACCOUNT ("ac") are one (a
/// restore maps private mappings writable first, so the kernel charges and keeps apart other
/// VMAs than it did for the original).
struct MergedMap {
  std::vector<sys::MapEntry> pieces;
  std::string range() const;  // "start-end" in hex, as in maps
};
std::vector<MergedMap> merged_maps(std::string_view smaps_text, std::string* error);
/// smaps: per mapping (merged as above) its maps line fields and each VmFlag as its own entry;
/// "ac" reads "1" (every piece), "part" or is absent.
void add_smaps(Snapshot& s, const std::string& prefix, std::string_view text, Canon& canon);
/// limits: "limits/<RLIMIT name>" -> "soft hard".
void add_limits(Snapshot& s, const std::string& prefix, std::string_view text);
/// /proc/locks lines held by a pid in `pids`: "PID/locks/<dev:ino>/<start>" -> the rest.
void add_locks(Snapshot& s, std::string_view text, const std::vector<pid_t>& pids);
/// A namespace link ("mnt:[4026531841]"): "host" when it is the same as `ours`, else an
/// ordinal.
std::string canon_ns(const std::string& link, const std::string& ours, Canon& canon);

// ---- Reading a live tree

/// The pids of the tree rooted at `root` (root first, then by ascending pid).
std::vector<pid_t> tree_pids(pid_t root);
/// The children of `pid`, of every thread (as our pid namespace names them).
std::vector<pid_t> child_pids(pid_t pid);
/// Snapshot of the tree. Files that cannot be read (a zombie's maps) read "!<errno name>".
Snapshot take_snapshot(pid_t root);
/// Waits until every thread of the tree is blocked in a system call (its /proc syscall file no
/// longer says "running") and the thread set is the same on two readings in a row. The zdtm
/// programs do that after ready (sigsuspend, read, futex...), and a restored tree does it once
/// it has gone back into the call it was dumped in. False if `limit` passed first.
/// With `like` (a snapshot of the tree taken before), only the threads that were blocked in
/// it must be blocked again (for programs that keep computing in some threads).
bool wait_quiescent(pid_t root, std::chrono::milliseconds limit, const Snapshot* like = nullptr);

// ---- Comparison

/// One allowed difference: keys matching `key_glob` (fnmatch, '*' crosses '/') may differ in
/// cases whose name matches `case_glob`. `known_bug`: not legitimate, to be fixed (listed apart).
struct AllowEntry {
  const char* case_glob;
  const char* key_glob;
  const char* reason;
  bool known_bug = false;
};

struct Difference {
  std::string key;
  std::string before, after;  // "<absent>" when the key is on one side only
  const AllowEntry* allowed = nullptr;
};

/// Every key whose value differs, each with the allowlist entry that covers it (or none).
std::vector<Difference> diff(const Snapshot& before, const Snapshot& after,
                             const std::string& case_name, const std::vector<AllowEntry>& allow);
/// The differences no entry allows, one per line: "key: before -> after".
std::string describe_unallowed(const std::vector<Difference>& d);

/// The allowlist of the zdtm suite (proc_allowlist.cc): legitimate changes, then KNOWN BUGS.
const std::vector<AllowEntry>& zdtm_allowlist();
/// zdtm cases that keep working after ready (never quiescent): not waited for.
bool zdtm_busy(const std::string& case_name);

}  // namespace cr::e2e

#endif
