// crdump --pre-copy (issue 15): the image carries the rounds and the final dump refers to them;
// the write tracking is gone however the dump ends (success, --leave-running, cancel, crdump
// killed, a refusal after the rounds) and the program computes on unharmed. Restores of
// programs that write during the rounds are the zdtm table's (precopy_writer, *_precopy).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

// How many records of `type` `crit show` lists.
int records_of(TempDir& dir, const std::string& img, const std::string& type) {
  const std::string out = dir.path("show.txt");
  ToolRun r = run_tool_to_file(dir, "crit", {"show", img}, out);
  EXPECT_TRUE(r.status.ok()) << r.describe();
  std::istringstream in(read_file(out));
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string off, t;
    f >> off >> t;
    if (t == type) ++n;
  }
  return n;
}

// Starts zdtm mem_anon of `mib` MiB and dumps it with --pre-copy to `img` (crdump kills it):
// its pid, or -1 (a failure added).
pid_t dump_precopied_mem_anon(TempDir& dir, const char* mib, const std::string& img) {
  Target t = Target::start(dir, {zdtm_path("mem_anon"), mib});
  if (t.pid() <= 0) {
    ADD_FAILURE() << t.error();
    return -1;
  }
  const pid_t pid = t.pid();
  if (!dump_target(dir, t, Mode::kKill, img, {"--pre-copy"})) return -1;
  t.release();
  return pid;
}

// A program whose memory does not change: every page of its data goes out in round 0, and the
// final dump sends none of it again (PagesPrecopied instead); the restore passes its check.
TEST(PreCopy, UnchangedMemoryIsSentOnce) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string img = dir.path("img");
  const pid_t pid = dump_precopied_mem_anon(dir, "16", img);
  ASSERT_GT(pid, 0);
  crit_check(dir, img);
  EXPECT_GT(records_of(dir, img, "precopy_pages"), 0);
  EXPECT_GT(records_of(dir, img, "pages_precopied"), 0);
  // 16 MiB of data pre-copied: what the final dump writes as Pages is the few pages the program
  // touched while stopping (its stack, libc's data), far from 16 records of 1 MiB.
  EXPECT_LT(records_of(dir, img, "pages"), 16);
  ASSERT_TRUE(restore_detached(dir, img, pid));
  expect_restored_passes(dir, pid);
}

// Hostile or damaged pre-copy images: a pages_precopied run whose pages no precopy_pages
// record sent, and pages_precopied in a process not flagged for them. crit check names the
// first; crrestore refuses both in one line and leaves no process behind.
TEST(PreCopy, InconsistentImagesRefused) {
  if (!tools_present() || !tool_exists("crit")) return;
  become_subreaper();
  TempDir dir;
  const std::string img = dir.path("img");
  const pid_t pid = dump_precopied_mem_anon(dir, "2", img);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(run_tool_to_file(dir, "crit", {"decode", "--pages", img}, dir.path("img.json")).status.ok());
  using Json = nlohmann::ordered_json;
  const Json doc = Json::parse(read_file(dir.path("img.json")));
  struct Case {
    const char* name;
    std::function<void(Json&)> edit;
    std::string crit_says, restore_says;
  };
  const std::vector<Case> cases = {
      {"no precopy_pages",
       [](Json& d) {
         Json kept = Json::array();
         for (auto& r : d["records"])
           if (r["type"] != "precopy_pages") kept.push_back(r);
         d["records"] = kept;
       },
       "names pages no precopy_pages record sent", "no precopy_pages record holds that page"},
      {"flag cleared",
       [](Json& d) {
         for (auto& r : d["records"])
           if (r["type"] == "process")
             r["fields"]["flags"] = r["fields"]["flags"].get<uint64_t>() & ~uint64_t{0x80};
       },
       "", "pages_precopied at"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json d = doc;
    c.edit(d);
    const std::string bad = dir.path(std::string("bad-") + (c.crit_says.empty() ? "flag" : "pages"));
    write_file(bad + ".json", d.dump());
    ToolRun e = run_tool(dir, "crit", {"encode", "-o", bad, bad + ".json"});
    ASSERT_TRUE(e.status.ok()) << e.describe();
    ToolRun ck = run_tool(dir, "crit", {"check", bad});
    if (!c.crit_says.empty()) {
      EXPECT_EQ(ck.status.code, 1) << ck.describe();
      EXPECT_NE(ck.err.find(c.crit_says), std::string::npos) << ck.err;
    }
    ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", bad});
    EXPECT_EQ(r.status.code, 1) << r.describe();
    EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
    EXPECT_NE(r.err.find(c.restore_says), std::string::npos) << r.err;
    EXPECT_FALSE(pid_exists(pid)) << "a process is left behind";
    reap_zombies();
  }
}

// From an image file the rounds stay there until their pages are placed: a byte damaged in a
// round's pages is found then, before the tree runs; crrestore fails in one line naming the
// checksum and leaves nothing behind. The image undamaged restores.
TEST(PreCopy, ADamagedRoundInTheFileFailsTheRestore) {
  if (!tools_present() || !tool_exists("crit")) return;
  become_subreaper();
  TempDir dir;
  const std::string img = dir.path("img");
  const pid_t pid = dump_precopied_mem_anon(dir, "16", img);
  ASSERT_GT(pid, 0);
  // A precopy_pages record of many pages (crit show: offset, type, then its fields; the first
  // records are single pages the program's libc and stack hold).
  const std::string out = dir.path("show.txt");
  ASSERT_TRUE(run_tool_to_file(dir, "crit", {"show", img}, out).status.ok());
  std::istringstream in(read_file(out));
  uint64_t at = 0, tail = 0;
  for (std::string line; std::getline(in, line) && at == 0;) {
    std::istringstream f(line);
    std::string off, type;
    f >> off >> type;
    const size_t t = line.find("tail=");
    if (type == "precopy_pages" && t != std::string::npos &&
        std::stoull(line.substr(t + 5)) >= (1u << 20)) {
      at = std::stoull(off);
      tail = std::stoull(line.substr(t + 5));
    }
  }
  ASSERT_GT(at, 0u) << read_file(out);
  std::string bytes = read_file(img);
  ASSERT_GT(bytes.size(), at + tail);
  bytes[at + tail / 2] ^= 0x5a;  // in its pages
  write_file(dir.path("bad"), bytes);
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("bad")});
  EXPECT_EQ(r.status.code, 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_FALSE(pid_exists(pid)) << "a process is left behind";
  reap_zombies();
  ASSERT_TRUE(restore_detached(dir, img, pid));
  expect_restored_passes(dir, pid);
}

// Cancelled (SIGTERM) between rounds, or killed outright: the tree runs on, its mappings are
// no longer registered, and it computes on correctly.
TEST(PreCopy, CancelOrKillEndsTheTracking) {
  if (!tools_present()) return;
  for (int sig : {SIGTERM, SIGKILL}) {
    SCOPED_TRACE(sig);
    TempDir dir;
    Target t = Target::start(dir, {zdtm_path("precopy_writer")});
    ASSERT_GT(t.pid(), 0) << t.error();
    const std::string img = dir.path("img");
    ScopedFd out(::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    PausedDump d = start_paused({"--pre-copy", std::to_string(t.pid())}, "pre-copy", out.get());
    ASSERT_GT(d.pid, 0);
    ASSERT_TRUE(d.paused("pre-copy")) << d.err;
    // Paused before the first round: the tree runs, tracked.
    EXPECT_TRUE(write_tracked(t.pid())) << "no mapping registered for write tracking";
    auto st = d.signal_and_wait(sig);
    ASSERT_TRUE(st) << "crdump hangs after the signal";
    if (sig == SIGTERM) {
      EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << ", stderr: " << d.err;
      EXPECT_NE(d.err.find("cancelled by SIG"), std::string::npos) << d.err;
    }
    EXPECT_FALSE(write_tracked(t.pid())) << "tracking left after crdump ended";
    ASSERT_TRUE(pid_exists(t.pid()));
    ExitStatus end = t.terminate();
    EXPECT_TRUE(end.ok()) << end.describe() << "\nlog: " << t.log();
  }
}

// --leave-running's own pre-copy of a big tree is cancelled like an explicit one: paused before
// its first round the tree runs tracked; SIGTERM then ends the dump in one line, the tracking
// goes and the program carries on.
TEST(PreCopy, CancelDuringTheAutomaticPreCopyCancelsTheDump) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "96"});
  ASSERT_GT(t.pid(), 0) << t.error();
  const std::string img = dir.path("img");
  ScopedFd out(::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  PausedDump d = start_paused({"--leave-running", std::to_string(t.pid())}, "pre-copy", out.get());
  ASSERT_GT(d.pid, 0);
  ASSERT_TRUE(d.paused("pre-copy")) << d.err;
  EXPECT_TRUE(write_tracked(t.pid())) << "no mapping registered for write tracking";
  auto st = d.signal_and_wait(SIGTERM);
  ASSERT_TRUE(st) << "crdump hangs after the signal";
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << ", stderr: " << d.err;
  EXPECT_NE(d.err.find("cancelled by SIG"), std::string::npos) << d.err;
  EXPECT_FALSE(write_tracked(t.pid())) << "tracking left after crdump ended";
  ExitStatus end = t.terminate();
  EXPECT_TRUE(end.ok()) << end.describe() << "\nlog: " << t.log();
}

// --leave-running: the program runs on untracked, and passes its own check.
TEST(PreCopy, LeaveRunningEndsTheTracking) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("precopy_writer")});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump",
                       {"-o", dir.path("img"), "--leave-running", "--pre-copy=3",
                        "--pre-copy-dirty", "64K", std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  EXPECT_FALSE(write_tracked(t.pid()));
  crit_check(dir, dir.path("img"));
  ExitStatus end = t.terminate();
  EXPECT_TRUE(end.ok()) << end.describe() << "\nlog: " << t.log();
}

// --leave-running pre-copies a tree with 64 MiB or more of private memory first (it is then
// frozen only for what it wrote meanwhile), not one with less, nor with --no-pre-copy. The
// program carries on, and the image restores a copy that passes its check.
TEST(PreCopy, LeaveRunningPreCopiesABigTree) {
  if (!tools_present() || !tool_exists("crit")) return;
  become_subreaper();
  struct Case {
    const char* mib;
    std::vector<std::string> extra;
    bool precopied;
  };
  for (const Case& c : {Case{"96", {}, true}, Case{"96", {"--no-pre-copy"}, false},
                        Case{"8", {}, false}}) {
    SCOPED_TRACE(std::string(c.mib) + " MiB" + (c.extra.empty() ? "" : " " + c.extra[0]));
    TempDir dir;
    Target t = Target::start(dir, {zdtm_path("mem_anon"), c.mib});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    const std::string img = dir.path("img");
    ASSERT_TRUE(dump_target(dir, t, Mode::kLeaveRunning, img, c.extra, false,
                            [&] { EXPECT_FALSE(write_tracked(pid)); }));
    EXPECT_EQ(records_of(dir, img, "precopy_pages") > 0, c.precopied);
    EXPECT_EQ(records_of(dir, img, "pages_precopied") > 0, c.precopied);
    ASSERT_TRUE(restore_detached(dir, img, pid));
    expect_restored_passes(dir, pid);
  }
}

// Live update in place: `crdump --pre-copy --live-update PID | crrestore -d`. crrestore takes
// the rounds while the program runs, then the rest once crdump has killed the tree and its pid
// is free again (tree_released); the program, rewriting memory all along, passes its check.
// Also without pre-copy (crrestore then holds the whole stream before it makes the process).
TEST(LiveUpdate, DumpPipedIntoRestoreCarriesOn) {
  if (!tools_present()) return;
  for (bool precopy : {true, false}) {
    SCOPED_TRACE(precopy ? "pre-copy" : "plain");
    TempDir dir;
    Target t = Target::start(dir, {zdtm_path("precopy_writer")});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    ScopedFd derr(::open(dir.path("crdump.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ScopedFd rerr(::open(dir.path("crrestore.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    SpawnSpec ds;
    ds.argv = {tool_path("crdump"), "--live-update", std::to_string(pid)};
    if (precopy) ds.argv.insert(ds.argv.begin() + 1, "--pre-copy");
    ds.stdout_fd = p[1];
    ds.stderr_fd = derr.get();
    SpawnSpec rs;
    rs.argv = {tool_path("crrestore"), "-d"};
    rs.stdin_fd = p[0];
    rs.stderr_fd = rerr.get();
    const pid_t dumper = spawn(ds);
    const pid_t restorer = spawn(rs);
    ::close(p[0]);
    ::close(p[1]);
    ASSERT_GT(dumper, 0);
    ASSERT_GT(restorer, 0);
    // We are the program's parent: crdump waits for its pid to be free, which our reaping of
    // the killed original gives it (as a shell or init would).
    ExitStatus orig = t.wait(std::chrono::seconds(60));
    EXPECT_TRUE(!orig.exited && orig.code == SIGKILL) << orig.describe();
    auto d = wait_exit(dumper, std::chrono::seconds(60));
    auto r = wait_exit(restorer, std::chrono::seconds(60));
    ASSERT_TRUE(d && r) << "crdump or crrestore hangs";
    EXPECT_TRUE(d->ok()) << d->describe() << ": " << read_file(dir.path("crdump.err"));
    ASSERT_TRUE(r->ok()) << r->describe() << ": " << read_file(dir.path("crrestore.err"));
    ASSERT_TRUE(pid_exists(pid));
    EXPECT_FALSE(write_tracked(pid));
    expect_restored_passes(dir, pid);
  }
}

// Options that do not go together, refused before anything is touched.
TEST(PreCopy, BadOptionsRefused) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "1"});
  ASSERT_GT(t.pid(), 0) << t.error();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--dry-run", "--pre-copy"},
           {"--pre-copy-dirty", "4M"},
           {"--pre-copy", "--pre-copy-dirty", "lots"},
           {"--live-update", "--leave-running"},
           {"--live-update", "-o", dir.path("img")}}) {
    std::vector<std::string> a = args;
    a.push_back(std::to_string(t.pid()));
    ToolRun r = run_tool(dir, "crdump", a);
    EXPECT_EQ(r.status.code, 1) << r.describe();
    EXPECT_TRUE(r.one_line_error("crdump")) << r.err;
  }
  EXPECT_FALSE(write_tracked(t.pid()));
  ExitStatus end = t.terminate();
  EXPECT_TRUE(end.ok()) << end.describe() << "\nlog: " << t.log();
}

}  // namespace
}  // namespace cr::e2e
