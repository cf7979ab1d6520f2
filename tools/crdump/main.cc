// crdump: dump a live process, its threads and its descendants into one image stream.
//
//   crdump [-o FILE] [-z[LEVEL]] [--leave-running] [--shell-job] [--inherit-fd FD]... [-v] PID
//   crdump --dry-run [--shell-job] [--tcp-established] ... PID   (what blocks the dump)
//   crdump --check                                               (what this kernel offers)
//
// Writes to stdout unless -o; refuses to write an image to a terminal. With -o the image goes to
// a temporary name in the same directory, is fsynced and renamed over FILE before any process
// is killed, so a failed dump never replaces a good image. After a good dump the process is
// killed unless --leave-running. On any failure (or SIGINT, SIGTERM, SIGHUP before the stream
// is finished) the process is resumed untouched, the stream ends with an error record, and
// crdump prints one line and exits 1.
//
// Test hook: CR_TEST_PAUSE_AT=PASS makes crdump print "crdump: paused before PASS" on stderr
// and wait for one of those signals before that pass (pass names as -v prints them), so a test
// can cancel a dump at a pass of its choosing without timing.
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "dump/dump.h"
#include "dump/precopy.h"
#include "format/record_writer.h"
#include "format/stream_seal.h"
#include "tools/crdump/reports.h"
#include "tools/output_path.h"
#include "tools/cancel.h"
#include "tools/precopy_run.h"
#include "tools/progress.h"

namespace {

// Level 1: on 2 cores twice the rate of 3 (0.88 against 0.38 GB/s on half-random pages,
// bench BM_DumpZstd/1024) for the same size to within 0.3% (memory pages are either
// incompressible or compress very well).
constexpr int kDefaultZstdLevel = 1;
// --leave-running pre-copies a tree with at least this much private memory (RssAnon) first:
// written plainly it would stay frozen for about 20 ms at tmpfs speed, and far longer through
// a slow pipe; the pre-copy's own start costs a freeze of about a millisecond a process. Not a
// tree of many small processes, whose freeze is their other state (a millisecond each): 1000
// with 128 MiB in all were frozen longer and dumped in 1.7x the time with pre-copy.
constexpr uint64_t kAutoPrecopyBytes = 64ull << 20;
constexpr uint64_t kAutoPrecopyPerProcess = 8ull << 20;

int die(const std::string& what) {
  std::fprintf(stderr, "crdump: %s\n", what.c_str());
  return 1;
}

using cr::tools::cancel_signals;

cr::Status checkpoint(std::string_view pass) { return cr::tools::checkpoint("crdump", pass); }

// -v: each pass and its time.
void print_pass(std::string_view pass, double seconds) {
  std::fprintf(stderr, "crdump: %-10.*s %9.3f ms\n", static_cast<int>(pass.size()), pass.data(),
               seconds * 1e3);
}

// -o FILE: written as FILE.crdump-XXXXXX in FILE's directory (same file system, so the rename
// is atomic), renamed over FILE once complete and fsynced; removed on any failure.
class OutputFile {
 public:
  ~OutputFile() {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  cr::Status open(const std::string& path) {
    path_ = path;
    if (cr::tools::is_special_output(path)) {
      fd_.reset(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd_.valid()) return cr::errno_error(path);
      return {};
    }
    std::string tmpl = path + ".crdump-XXXXXX";
    fd_.reset(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!fd_.valid()) return cr::errno_error(path + ": cannot create a temporary file beside it");
    tmp_ = tmpl;
    return {};
  }
  int fd() const { return fd_.get(); }
  // Durable and in place: fsync the data, rename over the target, fsync the directory.
  cr::Status commit() {
    CR_TRY(sync_fd(fd_.get(), path_));
    if (tmp_.empty()) return {};
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) return cr::errno_error("rename to " + path_);
    tmp_.clear();
    std::string dir = path_;
    cr::ScopedFd d(::open(::dirname(dir.data()), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.valid() && ::fsync(d.get()) != 0)
      return cr::errno_error("fsync of the directory of " + path_);
    return {};
  }
  // fsync where it means something: a pipe or a socket has no data at rest (EINVAL).
  static cr::Status sync_fd(int fd, const std::string& name) {
    if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
      return cr::errno_error("fsync " + name);
    return {};
  }

 private:
  std::string path_, tmp_;
  cr::ScopedFd fd_;
};

// "-z" and "-zN" become "--zstd-level=N" before CLI11 sees them, so "-z 1234" cannot eat the
// PID as a level.
std::vector<std::string> rewrite_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--pre-copy") {  // the flag alone: the default rounds (a PID may follow)
      a = "--pre-copy=0";
    } else if (a == "-z") {
      a = "--zstd-level=" + std::to_string(kDefaultZstdLevel);
    } else if (a.size() > 2 && a.starts_with("-z") &&
               std::isdigit(static_cast<unsigned char>(a[2]))) {
      a = "--zstd-level=" + a.substr(2);
    }
    out.push_back(std::move(a));
  }
  std::reverse(out.begin(), out.end());  // CLI11's vector form takes the arguments reversed
  return out;
}

// "1048576", "512K", "64M", "2G" (binary multiples) -> bytes; nullopt if not a size.
std::optional<uint64_t> parse_size(const std::string& s) {
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (s[0] == '-') return std::nullopt;
  const std::string unit = s.substr(used);
  int shift = 0;
  if (unit == "K" || unit == "k")
    shift = 10;
  else if (unit == "M" || unit == "m")
    shift = 20;
  else if (unit == "G" || unit == "g")
    shift = 30;
  else if (!unit.empty())
    return std::nullopt;
  if (v > (~0ull >> shift)) return std::nullopt;
  return static_cast<uint64_t>(v) << shift;
}

int run(int argc, char** argv) {
  CLI::App app{"crdump: checkpoint a running process and its descendants into one image stream",
               "crdump"};
  std::string out_path;
  int zstd_level = 0;
  int pid = 0;
  std::string pid_arg;
  bool verbose = false;
  std::string sign_key;
  cr::dump::DumpOptions opts;
  app.add_option("-o,--output", out_path,
                 "write the image to FILE instead of stdout (atomically: a temporary file in "
                 "the same directory, fsynced and renamed over FILE before the tree is killed)");
  app.add_option("--sign-key", sign_key,
                 "sign the image: HMAC-SHA256 with the key in FILE (crrestore --verify-key)");
  app.add_option("--zstd-level", zstd_level, "zstd level (-z alone: 1, -zN: N)")
      ->check(CLI::Range(1, 19));
  int zstd_threads = -1;
  app.add_option("--zstd-threads", zstd_threads,
                 "threads compressing beside the reading one (default: one per CPU; 0: "
                 "compress in the reading thread)")
      ->check(CLI::Range(0, 64));
  app.add_flag("--leave-running", opts.leave_running, "let the process carry on after the dump");
  app.add_flag("--shell-job", opts.shell_job, "the process uses the shell's terminal");
  app.add_flag("--ext-unix-sk", opts.ext_unix_sk,
               "dump unix sockets connected outside the tree: reconnected to the peer's path "
               "at restore, or (a client of ours outside) restored as closed by the peer");
  app.add_flag("--tcp-established", opts.tcp_established,
               "dump established TCP connections (TCP_REPAIR); their packets are dropped by an "
               "nftables table from the dump until crrestore has them back");
  app.add_flag("--skip-in-flight", opts.skip_in_flight,
               "leave out the connections a TCP listener has not accepted yet (the killed tree "
               "resets them; their clients connect again) instead of refusing the dump");
  app.add_option("--inherit-fd", opts.inherit_fds,
                 "fd FD of the process is external (restore reconnects it with --inherit-fd)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string ghost_limit;
  app.add_option("--ghost-limit", ghost_limit,
                 "refuse a deleted file holding more data than SIZE (bytes, or with K, M, G)");
  int precopy_rounds = -1;
  app.add_option("--pre-copy", precopy_rounds,
                 "copy memory while the tree runs, then freeze and send only what changed "
                 "(userfaultfd write tracking, Linux 6.7+); =N: at most N rounds (default 8)")
      ->check(CLI::Range(0, 1000));
  app.add_flag("--live-update", opts.live_update,
               "the stream goes straight to a crrestore on this host (crdump PID | crrestore): "
               "the tree is killed and its pids freed before the stream ends, which says so");
  bool no_precopy = false;
  app.add_flag("--no-pre-copy", no_precopy,
               "with --leave-running: keep the tree frozen for all of the dump (by default a "
               "tree with 64 MiB or more of private memory, 8 MiB or more a process, is "
               "pre-copied first, and frozen only for what it wrote meanwhile)");
  std::string precopy_dirty;
  app.add_option("--pre-copy-dirty", precopy_dirty,
                 "stop the pre-copy rounds once one finds at most SIZE written (default 4M)");
  app.add_flag("-v,--verbose", verbose, "print each pass and its time on stderr");
  bool check = false, dry_run = false;
  app.add_flag("--check", check,
               "no PID: print which kernel features this machine has and what each enables "
               "or limits; exit 1 if a plain dump or restore cannot work");
  app.add_flag("--dry-run", dry_run,
               "list everything that blocks the dump of PID (exit 1), or say nothing does "
               "(exit 0); the tree carries on, no image is written");
  app.add_option("PID", pid_arg, "process to dump (the root of the tree)");
  app.set_version_flag("--version", std::string("crdump ") + CR_TOOL_VERSION);
  app.footer(
      "-z[LEVEL]: compress with zstd (level 1 unless given, e.g. -z9)\n"
      "To a pipe (stdout), crdump cannot know whether the reader stored all of the stream: the\n"
      "tree is killed once the stream is written. A complete stream ends with a seal (record\n"
      "and byte count, chained checksum) and a trailer: check it (crit check) before relying\n"
      "on it, or use --leave-running. SIGINT, SIGTERM or SIGHUP before the stream is finished\n"
      "cancel the dump: the tree carries on, the stream ends with an error record.");
  try {
    std::vector<std::string> args = rewrite_args(argc, argv);
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (check) {
    if (!pid_arg.empty())
      return die("--check takes no PID: it checks this machine (--dry-run checks a process)");
    return crdump::print_kernel_check();
  }
  if (pid_arg.empty()) return die("a PID is required (the root of the tree to dump); see --help");
  if (dry_run && (!out_path.empty() || zstd_level != 0 || !sign_key.empty()))
    return die("--dry-run writes no image: -o, -z and --sign-key do not go with it");

  // A PID: digits only, not 0 (a name or a negative number is a mistake worth one line).
  {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(pid_arg.c_str(), &end, 10);
    if (pid_arg.empty() || *end != '\0' || pid_arg.find_first_not_of("0123456789") != std::string::npos ||
        errno != 0 || v <= 0 || v > INT32_MAX)
      return die("'" + pid_arg + "' is not a process id: crdump takes the PID of the tree's root");
    pid = static_cast<int>(v);
  }

  if (!ghost_limit.empty()) {
    auto limit = parse_size(ghost_limit);
    if (!limit)
      return die("--ghost-limit: '" + ghost_limit + "' is not a size (e.g. 1048576, 64M)");
    opts.ghost_limit = *limit;
  }

  cr::dump::PrecopyPolicy precopy_policy;
  if (precopy_rounds > 0) precopy_policy.max_rounds = static_cast<unsigned>(precopy_rounds);
  if (!precopy_dirty.empty()) {
    auto v = parse_size(precopy_dirty);
    if (!v) return die("--pre-copy-dirty: '" + precopy_dirty + "' is not a size (e.g. 4M)");
    if (precopy_rounds < 0) return die("--pre-copy-dirty goes with --pre-copy");
    precopy_policy.dirty_bytes = *v;
  }
  if (precopy_rounds >= 0 && dry_run) return die("--dry-run copies nothing: not with --pre-copy");
  if (no_precopy && precopy_rounds >= 0) return die("--no-pre-copy and --pre-copy contradict");
  if (opts.live_update && (opts.leave_running || dry_run || !out_path.empty()))
    return die("--live-update hands the tree to a crrestore reading the stream: not with "
               "--leave-running, --dry-run or -o");

  if (dry_run) {
    if (verbose) opts.on_pass = print_pass;
    // Cancel signals end it between passes too, the tree carrying on.
    const sigset_t block = cancel_signals();
    sigprocmask(SIG_BLOCK, &block, nullptr);
    opts.checkpoint = checkpoint;
    return crdump::print_blockers(pid, opts);
  }

  // A closed reader must show up as EPIPE (so the task is resumed), not kill us mid-dump; and
  // an interrupt is taken between passes (checkpoint), or after the tree is killed or detached.
  ::signal(SIGPIPE, SIG_IGN);
  const sigset_t block = cancel_signals();
  sigprocmask(SIG_BLOCK, &block, nullptr);

  cr::format::WriterOptions wopts;
  if (!sign_key.empty()) {
    auto key = cr::format::read_key_file(sign_key);
    if (!key.ok()) return die(key.error().message);
    wopts.mac_key = std::move(key).value();
  }
  if (::isatty(out_path.empty() ? STDOUT_FILENO : -1) == 1)
    return die("refusing to write an image to a terminal (use -o FILE or a pipe)");
  OutputFile file;
  int out_fd = STDOUT_FILENO;
  if (!out_path.empty()) {
    cr::Status st = file.open(out_path);
    if (!st.ok()) return die(st.error().message);
    out_fd = file.fd();
    if (::isatty(out_fd))
      return die("refusing to write an image to a terminal (use -o FILE or a pipe)");
  }
  opts.checkpoint = checkpoint;
  opts.before_kill = [&]() -> cr::Status {
    if (!out_path.empty()) return file.commit();
    return OutputFile::sync_fd(out_fd, "stdout");
  };

  auto t0 = std::chrono::steady_clock::now();
  if (verbose) opts.on_pass = print_pass;
  if (!opts.shell_job) {
    cr::Status fg = cr::dump::check_foreground_job(pid);
    if (!fg.ok()) return die(fg.error().message);
  }
  auto header = cr::dump::stream_header(pid);
  if (!header.ok()) return die(header.error().message);
  wopts.zstd_level = zstd_level;
  // zstd's workers compress while the dump reads the next pages: on 2 cores about twice the
  // rate of compressing in line (bench/format_bench BM_PagesPipeZstd1Threads2).
  if (zstd_level > 0) {
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    wopts.zstd_threads = zstd_threads >= 0 ? zstd_threads
                                           : static_cast<int>(std::clamp(cpus, 1L, 8L));
  }
  auto writer = cr::format::RecordWriter::create(out_fd, wopts, *header);
  if (!writer.ok()) return die(writer.error().message);
  cr::tools::Progress progress("crdump");
  opts.on_progress = [&progress](uint64_t bytes) { progress.update(bytes); };
  std::unique_ptr<cr::dump::PreCopy> precopy;
  // --leave-running of a big tree: pre-copied first, so that it is frozen for what it wrote
  // meanwhile, not while all of its memory is written (issue 17). Where pre-copy cannot start
  // (a kernel before 6.7) the dump goes on plainly.
  bool auto_precopy = false;
  if (opts.leave_running && precopy_rounds < 0 && !no_precopy) {
    const cr::dump::TreeMemory m = cr::dump::tree_memory(pid);
    auto_precopy = m.anon_bytes >= kAutoPrecopyBytes &&
                   m.anon_bytes >= m.processes * kAutoPrecopyPerProcess;
  }
  if (precopy_rounds >= 0 || auto_precopy) {
    // While the tree runs; a failure or a cancel ends the tracking and leaves it running.
    auto pc = cr::tools::run_precopy("crdump", pid, opts, **writer, precopy_policy, verbose,
                                     auto_precopy);
    if (!pc.ok()) return die(pc.error().message);
    precopy = std::move(pc).value();
    opts.precopy = precopy.get();
  }
  cr::Status st = cr::dump::dump_process(pid, opts, **writer);
  precopy.reset();
  progress.finish();
  if (!st.ok()) return die(st.error().message);
  if (verbose) {
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    uint64_t bytes = (*writer)->bytes_written();
    std::fprintf(stderr, "crdump: %llu records, %.1f MiB in %.3f ms (%.2f GB/s)\n",
                 static_cast<unsigned long long>((*writer)->records_written()),
                 static_cast<double>(bytes) / (1 << 20), dt.count() * 1e3,
                 static_cast<double>(bytes) / dt.count() / 1e9);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return die(e.what());
  }
}
