// Helpers for the tests of what crtools ships (manuals, completion, install, package): running
// a program with its output captured, finding one on PATH, a temporary directory.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "test/common/temp_dir.h"

extern char** environ;

namespace cr::tools::testing {

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

using TempDir = cr::test::TempDir;

struct RunResult {
  int exit_code = -1;  // -1: did not run, or killed by a signal
  std::string out, err;
};

/// Runs argv (argv[0] looked up on PATH unless it holds a '/') with stdin from /dev/null and
/// stdout and stderr captured (through files in a temporary directory: no pipe to fill).
inline RunResult run(const std::vector<std::string>& args) {
  TempDir dir;
  const std::string out = dir / "out", err = dir / "err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  RunResult r;
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = args[0] + ": cannot run: " + std::strerror(rc);
    return r;
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st)) r.exit_code = WEXITSTATUS(st);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

/// The path of `program` on PATH, or "" when it is not installed.
inline std::string find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    const std::string p = (d.empty() ? "." : d) + "/" + program;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

/// What a test says when a program it needs is missing: a failure, not a skip, so that a
/// machine without it cannot pass by not checking.
inline std::string missing(const std::string& program, const std::string& package) {
  return program + " is not installed: run cr_deps (. scripts/deps.sh; cr_deps), which " +
         "installs the Debian package " + package;
}

}  // namespace cr::tools::testing
