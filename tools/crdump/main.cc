// crdump: dump a live process, its threads and its descendants into one image stream.
//
//   crdump [-o FILE] [-z[LEVEL]] [--leave-running] [--shell-job] [--inherit-fd FD]... [-v] PID
//
// Writes to stdout unless -o; refuses to write an image to a terminal. After a good dump the
// process is killed unless --leave-running. On any failure the process is resumed untouched,
// the stream ends with an error record, and crdump prints one line and exits 1.
#include <fcntl.h>
#include <signal.h>
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
#include "format/record_writer.h"
#include "tools/progress.h"

namespace {

constexpr int kDefaultZstdLevel = 3;

int die(const std::string& what) {
  std::fprintf(stderr, "crdump: %s\n", what.c_str());
  return 1;
}

// "-z" and "-zN" become "--zstd-level=N" before CLI11 sees them, so "-z 1234" cannot eat the
// PID as a level.
std::vector<std::string> rewrite_args(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-z") {
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
  CLI::App app{"crdump: checkpoint a running process and its descendants into one image stream"};
  std::string out_path;
  int zstd_level = 0;
  int pid = 0;
  bool verbose = false;
  cr::dump::DumpOptions opts;
  app.add_option("-o,--output", out_path, "write the image to FILE instead of stdout");
  app.add_option("--zstd-level", zstd_level, "zstd level (-z alone: 3, -zN: N)")
      ->check(CLI::Range(1, 19));
  app.add_flag("--leave-running", opts.leave_running, "let the process carry on after the dump");
  app.add_flag("--shell-job", opts.shell_job, "the process uses the shell's terminal");
  app.add_option("--inherit-fd", opts.inherit_fds,
                 "fd FD of the process is external (restore reconnects it with --inherit-fd)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  std::string ghost_limit;
  app.add_option("--ghost-limit", ghost_limit,
                 "refuse a deleted file holding more data than SIZE (bytes, or with K, M, G)");
  app.add_flag("-v,--verbose", verbose, "print each pass and its time on stderr");
  app.add_option("PID", pid, "process to dump")->required()->check(CLI::PositiveNumber);
  app.footer("-z[LEVEL]: compress with zstd (level 3 unless given, e.g. -z9)");
  try {
    std::vector<std::string> args = rewrite_args(argc, argv);
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (!ghost_limit.empty()) {
    auto limit = parse_size(ghost_limit);
    if (!limit)
      return die("--ghost-limit: '" + ghost_limit + "' is not a size (e.g. 1048576, 64M)");
    opts.ghost_limit = *limit;
  }

  cr::ScopedFd owned;
  int out_fd = STDOUT_FILENO;
  if (!out_path.empty()) {
    owned.reset(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!owned.valid()) return die(out_path + ": " + std::strerror(errno));
    out_fd = owned.get();
  }
  if (::isatty(out_fd))
    return die("refusing to write an image to a terminal (use -o FILE or a pipe)");

  // A closed reader must show up as EPIPE (so the task is resumed), not kill us mid-dump; and
  // an interrupt waits until the task is resumed or dumped.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t block;
  sigemptyset(&block);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&block, s);
  sigprocmask(SIG_BLOCK, &block, nullptr);

  auto t0 = std::chrono::steady_clock::now();
  if (verbose)
    opts.on_pass = [](std::string_view pass, double s) {
      std::fprintf(stderr, "crdump: %-10.*s %9.3f ms\n", static_cast<int>(pass.size()), pass.data(),
                   s * 1e3);
    };
  auto header = cr::dump::stream_header(pid);
  if (!header.ok()) return die(header.error().message);
  cr::format::WriterOptions wopts;
  wopts.zstd_level = zstd_level;
  auto writer = cr::format::RecordWriter::create(out_fd, wopts, *header);
  if (!writer.ok()) return die(writer.error().message);
  cr::tools::Progress progress("crdump");
  opts.on_progress = [&progress](uint64_t bytes) { progress.update(bytes); };
  cr::Status st = cr::dump::dump_process(pid, opts, **writer);
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
