// What each new process does for itself before crrestore takes it over: its session, its
// children (forked with their dumped pids, so every parent link is right), its fd table from
// the files crrestore opened before forking the tree, cwd, umask, personality, rlimits, name,
// default signal dispositions. It runs crrestore's own code in its copy of crrestore's memory.
//
// Every process reports over one pipe shared by the tree (close-on-exec, lifted above the fd
// table), one line each: "W<pid> <text>" a warning, "E<pid> <text>" the error it exited with
// (status 1), "R<pid> " ready: it then waits in pause() for crrestore to seize it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "restore/context.h"

namespace cr::restore {

/// File id -> the fd crrestore opened it at (inherited by every process of the tree).
using Carriers = std::map<uint32_t, int>;

/// Runs in the process created by clone_with_pid for `ctx` (`root` holds the whole tree).
/// Never returns: it waits to be seized on success, or _exit(1) after reporting its error.
/// Creates the process of `ctx` running `body` (clone_with_pid; through a helper when its
/// session or group leader is gone, so that it is in that session or group from the start).
Result<ChildGuard> create_process(const RestoreContext& ctx, const std::function<void()>& body,
                                  uint64_t share = 0);

[[noreturn]] void child_main(const RestoreContext& root, const RestoreContext& ctx,
                             const Carriers& carriers, int report_fd, int done_fd = -1);

/// The tree's reports, read in crrestore until every process has closed the pipe.
struct ChildReport {
  std::vector<std::string> warnings;
  std::string error;            // the first error reported
  std::set<pid_t> ready;        // processes that reported ready
  std::map<pid_t, int> premap;  // processes waiting for their memory: the fd to release them by
  /// Takes one line "<kind><pid> <text>".
  void add(const std::string& line);
};
ChildReport read_child_report(int fd);
/// The lines of the report pipe one at a time, for a create_tree that acts between them.
class ReportLines {
 public:
  explicit ReportLines(int fd) : fd_(fd) {}
  /// The next line, blocking; false at end of file (every process closed its end).
  bool next(std::string& line);

 private:
  int fd_;
  std::string buf_;
};
/// Called by each process before it forks its children when crrestore places memory first
/// (restore/premap.h): reports 'P' with the write end of a pipe of its own and waits until
/// crrestore writes a byte into it.
Status wait_for_premap(const RestoreContext& ctx, int report_fd);

}  // namespace cr::restore
