// The manuals (man/) against the tools as built: every option a tool's --help lists has an
// item under OPTIONS in its page (crit: each subcommand's under its own .SS in COMMANDS), and
// every option a page documents there exists; every page renders without a groff warning.
// When an option is added to a tool, these fail until its page says what it does.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test/tools/tools_test_util.h"

namespace cr::tools::testing {
namespace {

using Options = std::set<std::string>;

const std::vector<std::string> kTools = {"crdump", "crrestore", "crit", "crconvert", "crcriu", "crmigrate"};

std::string bin(const std::string& tool) { return std::string(CR_BIN_DIR) + "/" + tool; }
std::string page(const std::string& tool) {
  return std::string(CR_SOURCE_DIR) + "/man/" + tool + ".1";
}

std::string join(const Options& o) {
  std::string s;
  for (const auto& x : o) s += (s.empty() ? "" : " ") + x;
  return s;
}

// The long options CLI11's help lists: an option line is indented and starts with '-'; its
// names are the first word ("-o,--output"). Descriptions and the footer name other tools'
// options too, so only that column counts.
Options help_options(const std::string& help) {
  Options out;
  for (const auto& line : lines_of(help)) {
    const size_t start = line.find_first_not_of(' ');
    if (start == 0 || start == std::string::npos || line[start] != '-') continue;
    std::string names = line.substr(start, line.find(' ', start) - start);
    std::istringstream in(names);
    for (std::string n; std::getline(in, n, ',');)
      if (n.starts_with("--")) out.insert(n);
  }
  return out;
}

// crit's subcommands: the indented lines under "Subcommands:".
std::vector<std::string> help_subcommands(const std::string& help) {
  std::vector<std::string> out;
  bool in = false;
  for (const auto& line : lines_of(help)) {
    if (line.starts_with("Subcommands:")) {
      in = true;
      continue;
    }
    if (!in) continue;
    if (line.empty() || line[0] != ' ') break;
    std::istringstream words(line);
    std::string w;
    words >> w;
    out.push_back(w);
  }
  return out;
}

// Roff to plain text, enough to read option names: \- is a minus, font changes go.
std::string unroff(std::string s) {
  static const std::regex kFont(R"(\\f(\[[^\]]*\]|\(..|.))");
  s = std::regex_replace(s, kFont, "");
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() &&
        (s[i + 1] == '-' || s[i + 1] == '&' || s[i + 1] == 'c')) {
      if (s[i + 1] == '-') out += '-';
      ++i;
      continue;
    }
    out += s[i];
  }
  return out;
}

Options long_options_in(const std::string& text) {
  static const std::regex kLong(R"(--[a-z0-9][a-z0-9-]*)");
  Options out;
  for (std::sregex_iterator it(text.begin(), text.end(), kLong), end; it != end; ++it)
    out.insert(it->str());
  return out;
}

// The options a page documents, by where: "" for the OPTIONS section, a subcommand's name for
// the .SS "crit NAME ..." of COMMANDS. An option is documented by the tag line of a .TP item.
struct PageOptions {
  std::map<std::string, Options> by_place;
  std::vector<std::string> subsections;  // under COMMANDS, in order
};

std::string macro_argument(const std::string& line) {
  std::string a = line.substr(std::min(line.size(), size_t{4}));
  a.erase(0, a.find_first_not_of(' '));
  if (a.size() >= 2 && a.front() == '"' && a.back() == '"') a = a.substr(1, a.size() - 2);
  return unroff(a);
}

PageOptions page_options(const std::string& roff) {
  PageOptions p;
  std::string section, place;
  // After .TP: the tag line, gathered while it ends in \c (".BR \-z [\c" then ".IR LEVEL ]").
  bool in_tag = false;
  std::string tag;
  for (const auto& line : lines_of(roff)) {
    if (line.starts_with(".\\\"")) continue;  // comment
    if (in_tag) {
      tag += line;
      if (line.ends_with("\\c")) continue;
      in_tag = false;
      if (section == "OPTIONS" || (section == "COMMANDS" && !place.empty())) {
        const Options found = long_options_in(unroff(tag));
        p.by_place[section == "OPTIONS" ? "" : place].insert(found.begin(), found.end());
      }
      continue;
    }
    if (line.starts_with(".SH")) {
      section = macro_argument(line);
      place.clear();
    } else if (line.starts_with(".SS") && section == "COMMANDS") {
      std::istringstream words(macro_argument(line));
      std::string tool;
      words >> tool >> place;
      p.subsections.push_back(place);
    } else if (line.starts_with(".TP")) {
      in_tag = true;
      tag.clear();
    }
  }
  return p;
}

// One way of the comparison: what `have` lacks of `want`.
Options missing_from(const Options& want, const Options& have) {
  Options out;
  std::set_difference(want.begin(), want.end(), have.begin(), have.end(),
                      std::inserter(out, out.end()));
  return out;
}

class ToolManual : public ::testing::TestWithParam<std::string> {};

TEST_P(ToolManual, DocumentsEveryOptionOfHelpAndNoOther) {
  const std::string tool = GetParam();
  const RunResult help = run({bin(tool), "--help"});
  ASSERT_EQ(help.exit_code, 0) << tool << " --help: " << help.err;
  const Options from_help = help_options(help.out);
  ASSERT_TRUE(from_help.contains("--help") && from_help.contains("--version"))
      << "cannot read the options of " << tool << " --help:\n"
      << help.out;

  ASSERT_TRUE(std::filesystem::exists(page(tool))) << page(tool);
  const PageOptions man = page_options(read_text(page(tool)));
  const Options in_page = man.by_place.contains("") ? man.by_place.at("") : Options{};
  EXPECT_EQ(missing_from(from_help, in_page), Options{})
      << tool << " --help lists options that man/" << tool
      << ".1 has no item (.TP under OPTIONS) for: " << join(missing_from(from_help, in_page));
  EXPECT_EQ(missing_from(in_page, from_help), Options{})
      << "man/" << tool << ".1 documents options that " << tool
      << " --help does not list: " << join(missing_from(in_page, from_help));
}

INSTANTIATE_TEST_SUITE_P(Tools, ToolManual, ::testing::ValuesIn(kTools),
                         [](const auto& info) { return info.param; });

TEST(CritManual, DocumentsEverySubcommandAndItsOptions) {
  const RunResult help = run({bin("crit"), "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  const std::vector<std::string> subs = help_subcommands(help.out);
  ASSERT_GE(subs.size(), 6u) << "cannot read crit's subcommands from:\n" << help.out;
  const PageOptions man = page_options(read_text(page("crit")));

  std::set<std::string> in_page(man.subsections.begin(), man.subsections.end());
  for (const auto& sub : subs) {
    SCOPED_TRACE("crit " + sub);
    EXPECT_TRUE(in_page.contains(sub))
        << "man/crit.1 has no .SS \"crit " << sub << " ...\" under COMMANDS";
    const RunResult sub_help = run({bin("crit"), sub, "--help"});
    ASSERT_EQ(sub_help.exit_code, 0) << sub_help.err;
    Options from_help = help_options(sub_help.out);
    // --help is every subcommand's, and the page says so once, under OPTIONS.
    from_help.erase("--help");
    const Options documented = man.by_place.contains(sub) ? man.by_place.at(sub) : Options{};
    EXPECT_EQ(missing_from(from_help, documented), Options{})
        << "crit " << sub << " --help lists options that man/crit.1 has no item for under its"
        << " .SS: " << join(missing_from(from_help, documented));
    EXPECT_EQ(missing_from(documented, from_help), Options{})
        << "man/crit.1 documents options for crit " << sub
        << " that its --help does not list: " << join(missing_from(documented, from_help));
  }
  for (const auto& sub : man.subsections)
    EXPECT_TRUE(std::find(subs.begin(), subs.end(), sub) != subs.end())
        << "man/crit.1 documents a subcommand crit does not have: " << sub;
}

// The pages a person reads: each names itself and has what a reader looks for.
TEST(Manuals, ToolPagesHaveTheUsualSections) {
  for (const auto& tool : kTools) {
    const std::string roff = read_text(page(tool));
    std::set<std::string> sections;
    for (const auto& line : lines_of(roff))
      if (line.starts_with(".SH")) sections.insert(macro_argument(line));
    for (const char* want :
         {"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"})
      EXPECT_TRUE(sections.contains(want)) << "man/" << tool << ".1 has no " << want << " section";
  }
}

// Every page under man/ (new ones too) through groff with all warnings: a typo in a macro, an
// unknown escape or a bad request is a warning, and a warning is a failure.
TEST(Manuals, RenderWithoutWarnings) {
  const std::string groff = find_program("groff");
  ASSERT_FALSE(groff.empty()) << missing("groff", "groff-base");
  int pages = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(CR_SOURCE_DIR) + "/man")) {
    const std::string path = e.path().string();
    SCOPED_TRACE(path);
    ++pages;
    const RunResult r = run({groff, "-t", "-man", "-ww", "-z", path});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.err, "") << "groff -t -man -ww -z " << path;
  }
  EXPECT_GE(pages, 5);  // crdump, crrestore, crit, crconvert (1), crtools-image (5)
}

// The checks above must be able to fail: a page without an option, and an option without a
// tool, are both seen.
TEST(ManualParsing, SeesOptionsBothWays) {
  const std::string help =
      "Usage: t [OPTIONS]\n\nOptions:\n"
      "  -h,--help                   Print this help message and exit\n"
      "  -o,--output TEXT            write to FILE (see other --not-mine)\n"
      "  --zstd-level INT:INT in [1 - 19]\n"
      "                              zstd level\n"
      "\n-z[LEVEL]: footer text naming --leave-running\n";
  EXPECT_EQ(help_options(help), (Options{"--help", "--output", "--zstd-level"}));

  const std::string roff =
      ".TH T 1\n.SH DESCRIPTION\nsee\n.B \\-\\-elsewhere\n"
      ".SH OPTIONS\n.TP\n.BR \\-h \", \" \\-\\-help\nhelp\n"
      ".TP\n.BI \\-o \" FILE\" \"\\fR, \\fP\\-\\-output \" FILE\nout, unlike\n"
      ".B \\-\\-prose\n"
      ".TP\n.BR \\-z [\\c\n.IR LEVEL \"], \" \\-\\-zstd\nlevel\n"
      ".SH COMMANDS\n.SS \"crit show [\\-\\-no\\-verify] [IMG]\"\ntext\n.TP\n"
      ".B \\-\\-no\\-verify\nno\n";
  const PageOptions p = page_options(roff);
  EXPECT_EQ(p.by_place.at(""), (Options{"--help", "--output", "--zstd"}));
  EXPECT_EQ(p.by_place.at("show"), (Options{"--no-verify"}));
  EXPECT_EQ(p.subsections, (std::vector<std::string>{"show"}));
  EXPECT_EQ(help_subcommands("Subcommands:\n  show    one line\n  x   views\n\nFooter\n"),
            (std::vector<std::string>{"show", "x"}));
}

}  // namespace
}  // namespace cr::tools::testing
