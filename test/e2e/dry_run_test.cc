// crdump --dry-run: every blocker of a tree at once, one line each, the tree left running; and
// crdump --check, which needs no process.
#include <string>
#include <vector>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

// The state letter of /proc/PID/stat ('S', 'R', 't' for a ptrace stop, ...).
char state_of(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() ? '?' : stat[paren + 2];
}

// An io_uring fd in the root, an inotify fd with an event queued and an AIO context in its
// child: three blockers in two processes and two passes (files, memory), all listed; the tree
// carries on and passes.
TEST(DryRun, ListsEveryBlockerAndLeavesTheTreeRunning) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("dry_run_blockers")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::vector<pid_t> kids = child_pids(t.pid());
  ASSERT_EQ(kids.size(), 1u);
  const std::string root = "pid " + std::to_string(t.pid()) + ": ";
  const std::string child = "pid " + std::to_string(kids[0]) + ": ";

  const std::string out = dir.path("dry-run.out");
  ToolRun r = run_tool_to_file(dir, "crdump", {"--dry-run", std::to_string(t.pid())}, out);
  EXPECT_EQ(r.status.code, 1) << r.describe();
  const std::string text = read_file(out);
  const auto lines = lines_of(text);
  auto has = [&](const std::string& prefix, const std::string& what) {
    for (const std::string& l : lines)
      if (l.starts_with(prefix) && l.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has(root, ": io_uring not supported")) << text;
  EXPECT_TRUE(has(child, ": inotify with events queued")) << text;
  EXPECT_TRUE(has(child, ": AIO context (io_setup) ring /[aio] not supported")) << text;
  // Those three and the summary: nothing else of the tree is refused.
  EXPECT_EQ(lines.size(), 4u) << text;
  EXPECT_TRUE(has("crdump: 3 things block the dump of " + std::to_string(t.pid()), "")) << text;

  // Detached as it was: no process of the tree is left in a ptrace stop.
  for (pid_t p : {t.pid(), kids[0]}) EXPECT_NE(state_of(p), 't') << p;
  // A plain dump stops at the first of them.
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_EQ(d.status.code, 1) << d.describe();
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;

  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

// A tree nothing blocks: one line saying so, exit 0, and it runs on.
TEST(DryRun, NothingBlocksAPlainProgram) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_child_pipe")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string out = dir.path("dry-run.out");
  ToolRun r = run_tool_to_file(dir, "crdump", {"--dry-run", std::to_string(t.pid())}, out);
  EXPECT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(read_file(out),
            "crdump: nothing blocks the dump of " + std::to_string(t.pid()) + " (left running)\n");
  EXPECT_EQ(r.err, "");
  EXPECT_NE(state_of(t.pid()), 't');
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

// --dry-run writes no image: the options of one are refused rather than ignored; a PID is
// still needed.
TEST(DryRun, RefusesImageOptions) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string self = std::to_string(::getpid());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--dry-run", "-o", dir.path("img"), self},
        std::vector<std::string>{"--dry-run", "-z", self}, std::vector<std::string>{"--dry-run"}}) {
    ToolRun r = run_tool(dir, "crdump", args);
    EXPECT_EQ(r.status.code, 1) << r.describe();
    EXPECT_TRUE(r.one_line_error("crdump")) << r.err;
  }
  EXPECT_NE(::access(dir.path("img").c_str(), F_OK), 0) << "an image was written";
}

// crdump --check: a line per feature, the ones any supported machine has say "yes", and a
// summary; exit 0 here (root on a kernel crtools runs on). A PID with it is refused.
TEST(KernelCheck, ReportsFeaturesAndSummary) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string out = dir.path("check.out");
  ToolRun r = run_tool_to_file(dir, "crdump", {"--check"}, out);
  const std::string text = read_file(out);
  EXPECT_TRUE(r.status.ok()) << r.describe() << "\n" << text;
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 15u) << text;
  auto line = [&](const std::string& name) -> std::string {
    for (const std::string& l : lines)
      if (l.starts_with(name + " ")) return l;
    return "";
  };
  for (const char* name : {"ptrace", "process_vm_readv", "pidfd_getfd", "userfaultfd"}) {
    const std::string l = line(name);
    ASSERT_FALSE(l.empty()) << name << " missing:\n" << text;
    EXPECT_NE(l.find("  yes  "), std::string::npos) << l;
  }
  for (const char* name : {"PAGEMAP_SCAN", "soft-dirty", "TCP_REPAIR", "clone3 set_tid",
                           "capabilities", "time namespace", "nft", "xsave",
                           "seccomp suspend"})
    EXPECT_FALSE(line(name).empty()) << name << " missing:\n" << text;
  EXPECT_TRUE(lines.back().starts_with("crdump: everything a plain dump and restore needs works"))
      << text;

  ToolRun with_pid = run_tool(dir, "crdump", {"--check", std::to_string(::getpid())});
  EXPECT_EQ(with_pid.status.code, 1) << with_pid.describe();
  EXPECT_TRUE(with_pid.one_line_error("crdump")) << with_pid.err;
  EXPECT_NE(with_pid.err.find("--check takes no PID"), std::string::npos) << with_pid.err;
}

}  // namespace
}  // namespace cr::e2e
