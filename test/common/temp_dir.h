// A fresh directory under /tmp for a test, removed with its contents at scope end (the unit
// tests of crit and of what crtools ships; the e2e harness has its own, with a work dir).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace cr::test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/crtools-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

}  // namespace cr::test
