// The e2e harness: start a program under the zdtm protocol (see test/zdtm/zdtmlib.h), run
// crdump / crrestore as plain child processes (fork + exec, no shell) and wait for them with
// pidfds and waitpid. Nothing here sleeps: every wait is on a pipe EOF or a process exit, with a
// generous bound that only turns a hang into a failure.
#ifndef CR_TEST_E2E_HARNESS_H
#define CR_TEST_E2E_HARNESS_H

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cr::e2e {

/// Paths of the tools under test and of the zdtm programs.
std::string tool_path(const std::string& name);
std::string zdtm_path(const std::string& name);
bool tool_exists(const std::string& name);

/// How a process ended.
struct ExitStatus {
  bool exited = false;  // false: killed by a signal (or not waited for)
  int code = -1;        // exit code if exited, signal number otherwise
  bool ok() const { return exited && code == 0; }
  std::string describe() const;
};

/// Makes this process a child subreaper (idempotent) and ignores SIGPIPE in it.
void become_subreaper();

/// Waits for a child of ours to exit, up to `limit`. Returns nullopt on timeout (the child is
/// then left running) or if `pid` is not our child.
std::optional<ExitStatus> wait_exit(pid_t pid, std::chrono::milliseconds limit);
/// Reaps every exited child without blocking (zombies reparented to us included).
void reap_zombies();
/// True if a process with this pid exists (zombies count as existing).
bool pid_exists(pid_t pid);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);

/// A fresh directory under $TMPDIR (or /tmp): root() holds the harness's files (images, tool
/// stderr), work() is the program's cwd and holds its log. Removed unless keep() was called.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& root() const { return root_; }
  std::string work() const { return root_ + "/work"; }
  std::string path(const std::string& name) const { return root_ + "/" + name; }
  void keep() { keep_ = true; }

  /// Remembers the content and mtime of every regular file under work(), so the files can be
  /// put back as they were at dump time before a second run (the leave-running path).
  void snapshot_work();
  /// Rewrites the snapshotted files in place (same inodes, same size and mtime: crrestore
  /// checks those) and removes files created since.
  void restore_work();

 private:
  std::string root_;
  bool keep_ = false;
  struct Saved {
    std::string data;
    struct timespec mtime;
  };
  std::map<std::string, Saved> snapshot_;
};

/// CLONE_NEWTIME (Linux 5.6; the system headers may lack it).
constexpr uint64_t kCloneNewTime = 0x00000080;

/// What to connect a spawned process's fds to.
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the path executed
  std::string cwd;                // empty: keep ours
  int stdin_fd = -1;              // -1: /dev/null
  int stdout_fd = -1;             // -1: /dev/null; -2: leave fd 1 closed
  int stderr_fd = -1;             // -1: /dev/null
  int fd3 = -1;                   // if >= 0, becomes fd 3 (not close-on-exec)
  bool fd3_cloexec = false;       // fd 3 closes on exec (readiness = "exec done")
  bool new_session = false;
  /// With new_session: the first of fds 0-2 that is a terminal becomes the new session's
  /// controlling terminal (TIOCSCTTY), its group the foreground one (a shell's job on a tty).
  bool ctty = false;
  /// Namespaces the child is made in (CLONE_NEWPID, CLONE_NEWUTS...): the caller stays in its
  /// own, as a container's launcher does; with CLONE_NEWPID the child is pid 1 there. With
  /// kCloneNewTime the program is exec'd in a new time namespace (offsets: kTimensOffsets).
  uint64_t clone_flags = 0;
  /// With CLONE_NEWUSER: the uid and gid that are 0 inside ("0 <userns_outer> 1" maps,
  /// setgroups denied, as `unshare --map-root-user` run by that user writes them); the child
  /// becomes that root before anything else.
  uint32_t userns_outer = 0;
};

/// fork + exec; the child gets exactly fds 0-2 (and 3 if asked), default signal dispositions
/// and an empty signal mask. Returns the pid, or -1 with errno.
pid_t spawn(const SpawnSpec& spec);

/// The result of running one of the tools to completion.
struct ToolRun {
  ExitStatus status;
  std::string err;   // everything it wrote on stderr
  bool timed_out = false;
  std::string describe() const;  // "exit 1, stderr: ..."
  /// One line on stderr, starting with "<tool>: ".
  bool one_line_error(const std::string& tool) const;
};

/// Runs bin/<tool> with args; stdout goes to out_fd (-1: /dev/null, -2: closed), stdin from
/// in_fd (-1: /dev/null). stderr is captured through a file in dir.root().
ToolRun run_tool(TempDir& dir, const std::string& tool, const std::vector<std::string>& args,
                 int in_fd = -1, int out_fd = -1,
                 std::chrono::milliseconds limit = std::chrono::seconds(60));
/// Starts bin/<tool> without waiting; stderr goes to dir.path(err_name).
pid_t start_tool(TempDir& dir, const std::string& tool, const std::vector<std::string>& args,
                 int in_fd, int out_fd, const std::string& err_name);

/// A program started under the zdtm protocol in dir.work().
class Target {
 public:
  enum class Ready { kClosesFd3, kOnExec };
  /// Starts argv and waits for "ready" (EOF on the ready pipe). On failure returns a Target
  /// with pid() == -1 and error() saying why (with the log).
  static Target start(TempDir& dir, const std::vector<std::string>& argv,
                      Ready ready = Ready::kClosesFd3, uint64_t clone_flags = 0,
                      uint32_t userns_outer = 0);
  Target(Target&& o) noexcept;
  Target& operator=(Target&&) = delete;
  ~Target();

  pid_t pid() const { return pid_; }
  const std::string& error() const { return error_; }
  std::string log() const;
  /// Sends SIGTERM and waits for the exit.
  ExitStatus terminate(std::chrono::milliseconds limit = std::chrono::seconds(30));
  /// Waits for the exit without sending anything.
  ExitStatus wait(std::chrono::milliseconds limit = std::chrono::seconds(30));
  /// Forgets the process (it was reaped elsewhere).
  void release() { pid_ = -1; }

 private:
  Target(TempDir* dir, pid_t pid) : dir_(dir), pid_(pid) {}
  TempDir* dir_;
  pid_t pid_;
  std::string error_;
};

/// Sends SIGTERM to a restored (or otherwise adopted) child and waits for it.
ExitStatus terminate_pid(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(30));
/// Kills and reaps a child of ours if it is still there (cleanup after failures).
void kill_child(pid_t pid);

}  // namespace cr::e2e

// Header-only: test/CMakeLists.txt builds only *_test.cc files into e2e_test.
#include "harness_inl.h"

#endif
