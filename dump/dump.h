// The dump of a live process and all its descendants (a tree), every thread of each, into one
// image stream.
//
//   auto header = cr::dump::stream_header(pid);
//   auto writer = cr::format::RecordWriter::create(fd, {}, *header);
//   cr::Status st = cr::dump::dump_process(pid, opts, **writer);
//
// dump_process runs named passes over one DumpContext per process (dump_context.h). On success
// the stream is finished and every process killed (or left running). On failure every process
// is resumed exactly as it was, the stream ends with an ErrorRecord, and the error says what was
// refused or failed.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "format/record_writer.h"
#include "schema/records.h"

namespace cr::dump {

class PreCopy;

struct DumpOptions {
  bool leave_running = false;    // detach after the dump instead of SIGKILL
  bool shell_job = false;        // tty fds are the shell's: recorded as kFileTty
  /// Established TCP connections are dumped (TCP_REPAIR, network lock) instead of refused.
  bool tcp_established = false;
  /// A unix socket connected to a peer outside the tree is dumped instead of refused: to be
  /// connected again to the peer's path, or (peer unnamed: a client of the tree's listener)
  /// restored as if its peer had closed.
  bool ext_unix_sk = false;
  /// A TCP listener's connections not yet accepted are left out instead of refused (CRIU's
  /// --skip-in-flight): the killed tree resets them, their clients connect again.
  bool skip_in_flight = false;
  std::vector<int> inherit_fds;  // target fds recorded as kFileExternal (key = readlink text)
  /// A deleted file with more data than this (bytes of its data extents, holes not counted)
  /// is refused, naming the fd and the size (--ghost-limit). 0: no limit.
  uint64_t ghost_limit = 0;
  /// Find the pages to store with PAGEMAP_SCAN (6.7+); false reads every /proc/PID/pagemap
  /// entry instead (also the automatic fallback when the kernel lacks the ioctl).
  bool pagemap_scan = true;
  /// crdump --live-update (the stream goes to a crrestore on this host): the tree is killed
  /// and its pids waited free before the stream ends, a TreeReleased record says so, and the
  /// root has kProcessLiveUpdate. Not with leave_running.
  bool live_update = false;
  /// The pre-copy that ran before this dump (dump/precopy.h): at the freeze, each process's
  /// pages unchanged since they were copied become PagesPrecopied instead of Pages.
  PreCopy* precopy = nullptr;
  /// Called after each pass with its name and wall time in seconds (for -v).
  std::function<void(std::string_view pass, double seconds)> on_pass;
  /// Called as page data goes out, with the bytes of pages written so far (for a progress line).
  std::function<void(uint64_t page_bytes)> on_progress;
  /// Called before each pass (and before each process's pages) with the pass name; an error
  /// cancels the dump like a failed pass: every process resumes, the stream ends with an
  /// ErrorRecord (crdump: SIGINT, SIGTERM, SIGHUP). The last call is before "finish".
  std::function<Status(std::string_view pass)> checkpoint;
  /// Called once the stream is finished, before any process is killed: crdump makes the image
  /// durable here (fsync, rename). An error resumes every process instead of killing them.
  std::function<Status()> before_kill;
};

/// What a dry run found (find_blockers).
struct Blockers {
  /// One line per thing that blocks the dump, naming its process and the item
  /// ("pid 123: fd 7: io_uring not supported yet"); empty: nothing blocks it.
  std::vector<std::string> lines;
  /// The run stopped at the last line: after it nothing could be checked (the tree could not
  /// be frozen), so more may block.
  bool stopped = false;
};

/// crdump --dry-run: the passes of a dump of `pid` that can refuse it (up to the pages, which
/// refuse nothing), each refusal kept instead of ending the dump at the first. The tree is
/// frozen, as for a dump, and left running untouched; nothing is written, established TCP
/// connections are neither locked nor put in repair mode.
Blockers find_blockers(pid_t pid, const DumpOptions& opts);

/// Refuses (naming --shell-job) a root in the foreground process group of the caller's
/// controlling terminal: a job of the caller's shell. crdump calls it without --shell-job.
Status check_foreground_job(pid_t root);

/// The StreamHeader for a dump of `pid`: kernel release, hostname, page size, arch, time.
Result<schema::StreamHeader> stream_header(pid_t pid);

/// Dumps `pid` and its descendants into `out` (created with stream_header(pid)). See the file
/// comment: on failure every process is resumed as it was.
Status dump_process(pid_t pid, const DumpOptions& opts, format::RecordWriter& out);

}  // namespace cr::dump
