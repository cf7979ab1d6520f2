// What a user gets: `cmake --install` of this build directory into a temporary prefix, and the
// Debian package `cpack -G DEB` makes of it. Only the four tools, their manuals and the bash
// completion; never a test, zdtm or bench program.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "test/tools/tools_test_util.h"

namespace cr::tools::testing {
namespace {

namespace fs = std::filesystem;

const std::set<std::string> kInstalled = {
    "bin/crconvert",
    "bin/crcriu",
    "bin/crdump",
    "bin/crit",
    "bin/crmigrate",
    "bin/crrestore",
    "share/bash-completion/completions/crconvert",
    "share/bash-completion/completions/crdump",
    "share/bash-completion/completions/crit",
    "share/bash-completion/completions/crmigrate",
    "share/bash-completion/completions/crrestore",
    "share/man/man1/crconvert.1",
    "share/man/man1/crcriu.1",
    "share/man/man1/crdump.1",
    "share/man/man1/crit.1",
    "share/man/man1/crmigrate.1",
    "share/man/man1/crrestore.1",
    "share/man/man5/crtools-image.5",
};

// Every file (not directory) under `root`, relative to it.
std::set<std::string> files_under(const std::string& root) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (!e.is_directory()) out.insert(fs::relative(e.path(), root).string());
  return out;
}

TEST(Install, PutsToolsManualsAndCompletionUnderThePrefix) {
  TempDir prefix;
  const RunResult inst =
      run({CR_CMAKE_COMMAND, "--install", CR_BUILD_DIR, "--prefix", prefix.path});
  ASSERT_EQ(inst.exit_code, 0) << inst.out << inst.err;
  EXPECT_EQ(files_under(prefix.path), kInstalled);

  const RunResult version = run({prefix / "bin/crdump", "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out, std::string("crdump ") + CR_TOOL_VERSION + "\n");
  const RunResult help = run({prefix / "bin/crit", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Subcommands:"), std::string::npos) << help.out;
  for (const char* tool : {"crrestore", "crconvert"})
    EXPECT_EQ(run({prefix / (std::string("bin/") + tool), "--version"}).exit_code, 0) << tool;

  // The sources as they are: pages and completion are installed, not generated.
  const std::string src = CR_SOURCE_DIR;
  EXPECT_EQ(read_text(prefix / "share/man/man1/crdump.1"), read_text(src + "/man/crdump.1"));
  EXPECT_EQ(read_text(prefix / "share/man/man5/crtools-image.5"),
            read_text(src + "/man/crtools-image.5"));
  for (const char* tool : {"crdump", "crrestore", "crit", "crconvert"})
    EXPECT_EQ(read_text(prefix / (std::string("share/bash-completion/completions/") + tool)),
              read_text(src + "/completions/crtools.bash"))
        << tool;
}

// One control field of a .deb (dpkg-deb -f).
std::string control_field(const std::string& deb, const std::string& field) {
  RunResult r = run({"dpkg-deb", "-f", deb, field});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

TEST(Package, DebHoldsTheToolsAndNamesTheirDebianDependencies) {
  ASSERT_FALSE(find_program("dpkg-deb").empty()) << missing("dpkg-deb", "dpkg");
  ASSERT_FALSE(find_program("dpkg-shlibdeps").empty()) << missing("dpkg-shlibdeps", "dpkg-dev");
  TempDir out;
  const RunResult pack = run({CR_CPACK_COMMAND, "-G", "DEB", "--config",
                              std::string(CR_BUILD_DIR) + "/CPackConfig.cmake", "-B", out.path});
  ASSERT_EQ(pack.exit_code, 0) << pack.out << pack.err;
  std::string deb;
  for (const auto& e : fs::directory_iterator(out.path))
    if (e.path().extension() == ".deb") deb = e.path().string();
  ASSERT_FALSE(deb.empty()) << pack.out;
  // DEB-DEFAULT: the name `apt install ./crtools_*.deb` in the README matches.
  EXPECT_TRUE(fs::path(deb).filename().string().starts_with(std::string("crtools_") +
                                                            CR_TOOL_VERSION + "_"))
      << deb;

  EXPECT_EQ(control_field(deb, "Package"), "crtools");
  EXPECT_EQ(control_field(deb, "Version"), CR_TOOL_VERSION);
  // From the binaries (dpkg-shlibdeps), and libcrypto's, which is dlopened.
  const std::string depends = control_field(deb, "Depends");
  for (const char* pkg : {"libc6 ", "libstdc++6 ", "libzstd1 ", "libssl3 | libssl3t64"})
    EXPECT_NE(depends.find(pkg), std::string::npos) << pkg << " not in Depends: " << depends;
  EXPECT_EQ(control_field(deb, "Recommends"), "nftables");
  EXPECT_EQ(control_field(deb, "Suggests"), "zstd");

  // Its files: what cmake --install puts under the prefix, under /usr.
  const RunResult list = run({"dpkg-deb", "-c", deb});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  std::set<std::string> files;
  for (const auto& line : lines_of(list.out)) {
    if (line.empty() || line[0] == 'd') continue;  // directories
    const size_t at = line.find(" ./usr/");
    ASSERT_NE(at, std::string::npos) << line;
    files.insert(line.substr(at + 7));
  }
  EXPECT_EQ(files, kInstalled);
}

}  // namespace
}  // namespace cr::tools::testing
