// crconvert: upgrades an image written by an older format version to the current one.
//   crconvert [-i IN] [-o OUT] [--to VERSION] [-z[LEVEL]]   (stdin to stdout by default)
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "common/scoped_fd.h"
#include "format/convert.h"
#include "tools/output_path.h"
#include "tools/progress.h"

int main(int argc, char** argv) {
  CLI::App app{"crconvert: upgrade a crtools image to the current format version", "crconvert"};
  std::string in_path = "-", out_path = "-";
  uint32_t to = cr::format::kFormatVersion;
  int level = 0;
  bool verbose = false;
  app.add_option("-i,--input", in_path, "image to read (default: stdin; plain or zstd)");
  app.add_option("-o,--output", out_path, "image to write (default: stdout)");
  app.add_option("--to", to, "format version to write (default: this build's)");
  app.add_option("-z,--zstd", level, "compress the output with zstd at LEVEL")
      ->expected(0, 1)
      ->default_str("3");
  app.add_flag("-v,--verbose", verbose, "print what was converted");
  app.set_version_flag("--version", std::string("crconvert ") + CR_TOOL_VERSION);
  CLI11_PARSE(app, argc, argv);
  if (app.count("-z") && level == 0) level = 3;

  cr::ScopedFd in, out;
  if (in_path != "-") {
    in.reset(::open(in_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) return std::fprintf(stderr, "crconvert: %s: %m\n", in_path.c_str()), 1;
  }
  // Write to a temporary name and rename on success: a failed conversion never leaves a file
  // that looks like a complete image.
  // A device or FIFO (-o /dev/null) is written in place.
  std::string tmp_path;
  if (out_path != "-" && cr::tools::is_special_output(out_path)) {
    out.reset(::open(out_path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!out.valid()) return std::fprintf(stderr, "crconvert: %s: %m\n", out_path.c_str()), 1;
  } else if (out_path != "-") {
    tmp_path = out_path + ".partial";
    out.reset(::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out.valid()) return std::fprintf(stderr, "crconvert: %s: %m\n", tmp_path.c_str()), 1;
  } else if (::isatty(1)) {
    std::fprintf(stderr, "crconvert: refusing to write an image to a terminal (use -o or a pipe)\n");
    return 1;
  }

  cr::format::ConvertOptions opts;
  opts.to_version = to;
  opts.zstd_level = level;
  cr::format::ConvertStats stats;
  cr::tools::Progress progress("crconvert", in.valid() ? in.get() : 0);
  opts.on_progress = [&progress](uint64_t bytes) { progress.update(bytes, "of stream"); };
  auto st = cr::format::convert_stream(in.valid() ? in.get() : 0, out.valid() ? out.get() : 1,
                                       opts, &stats);
  progress.finish();
  if (!st.ok()) {
    if (!tmp_path.empty()) ::unlink(tmp_path.c_str());
    std::fprintf(stderr, "crconvert: %s\n", st.error().message.c_str());
    return 1;
  }
  if (!tmp_path.empty()) {
    if (::fsync(out.get()) != 0 || ::rename(tmp_path.c_str(), out_path.c_str()) != 0) {
      std::fprintf(stderr, "crconvert: %s: %m\n", out_path.c_str());
      ::unlink(tmp_path.c_str());
      return 1;
    }
  }
  if (verbose)
    std::fprintf(stderr, "crconvert: version %u -> %u, %llu records, %llu bytes\n",
                 stats.from_version, to, static_cast<unsigned long long>(stats.records),
                 static_cast<unsigned long long>(stats.bytes_out));
  return 0;
}
