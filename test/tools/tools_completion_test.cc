// completions/crtools.bash, sourced in a bash of its own with the built tools first on PATH:
// the completion function is called as bash would call it (COMP_WORDS, COMP_CWORD).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test/tools/tools_test_util.h"

namespace cr::tools::testing {
namespace {

// Runs `script` after sourcing the completion; `complete_words WORD...` prints, one per line,
// what completing the last word gives.
RunResult in_completion_shell(const std::string& script) {
  const std::string prelude =
      "set -u\n"
      "PATH=" CR_BIN_DIR
      ":$PATH\n"
      ". " CR_SOURCE_DIR
      "/completions/crtools.bash\n"
      "complete_words() {\n"
      "  COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()\n"
      "  local fn; fn=$(complete -p \"$1\" | sed -E 's/.*-F ([^ ]+).*/\\1/')\n"
      "  \"$fn\" \"$1\" \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD - 1]}\"\n"
      "  printf '%s\\n' \"${COMPREPLY[@]}\"\n"
      "}\n";
  return run({"bash", "--norc", "--noprofile", "-c", prelude + script});
}

std::vector<std::string> complete(const std::string& words) {
  const RunResult r = in_completion_shell("complete_words " + words);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "") << "completing " << words;
  std::vector<std::string> out;
  for (const auto& l : lines_of(r.out))
    if (!l.empty()) out.push_back(l);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

TEST(Completion, IsRegisteredForEveryTool) {
  ASSERT_FALSE(find_program("bash").empty()) << missing("bash", "bash");
  for (const char* tool : {"crdump", "crrestore", "crit", "crconvert"}) {
    const RunResult r = in_completion_shell(std::string("complete -p ") + tool);
    EXPECT_EQ(r.exit_code, 0) << tool << ": " << r.err;
    EXPECT_NE(r.out.find(std::string(" ") + tool), std::string::npos) << r.out;
  }
}

TEST(Completion, OptionsComeFromTheToolsHelp) {
  const auto tcp = complete("crdump --tcp");
  EXPECT_TRUE(has(tcp, "--tcp-established")) << ::testing::PrintToString(tcp);
  EXPECT_EQ(tcp.size(), 1u) << ::testing::PrintToString(tcp);
  const auto all = complete("crdump -");
  for (const char* o : {"--output", "--leave-running", "--ghost-limit", "--version", "-z"})
    EXPECT_TRUE(has(all, o)) << o << " in " << ::testing::PrintToString(all);
  EXPECT_TRUE(has(complete("crrestore --ver"), "--verify-key"));
  EXPECT_TRUE(has(complete("crconvert --t"), "--to"));
  EXPECT_EQ(complete("crit show --n"), std::vector<std::string>{"--no-verify"});
}

TEST(Completion, ValuesOfOptions) {
  EXPECT_EQ(complete("crrestore --manage-cgroups ''"),
            (std::vector<std::string>{"soft", "ignore"}));
  // bash splits "--manage-cgroups=i" at the '='.
  EXPECT_EQ(complete("crrestore --manage-cgroups = i"), std::vector<std::string>{"ignore"});
  EXPECT_EQ(complete("crdump --zstd-level 1").size(), 11u);  // 1, 10..19
  // A file name after -o, and after crit's image operand.
  const std::string readme = std::string(CR_SOURCE_DIR) + "/READM";
  EXPECT_EQ(complete("crdump -o " + readme),
            std::vector<std::string>{std::string(CR_SOURCE_DIR) + "/README.md"});
  EXPECT_EQ(complete("crit info " + readme),
            std::vector<std::string>{std::string(CR_SOURCE_DIR) + "/README.md"});
}

TEST(Completion, OperandsOfEachTool) {
  // crdump's operand is a PID: the shell's own is among them.
  const RunResult r = in_completion_shell("complete_words crdump -v '' | grep -qx \"$$\"");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(complete("crit ''"),
            (std::vector<std::string>{"show", "info", "check", "decode", "encode", "x"}));
  EXPECT_EQ(complete("crit x ''"), (std::vector<std::string>{"ps", "fds", "mems"}));
  EXPECT_EQ(complete("crit x m"), std::vector<std::string>{"mems"});
  EXPECT_TRUE(has(complete("crrestore ''"), "--input"));
}

}  // namespace
}  // namespace cr::tools::testing
