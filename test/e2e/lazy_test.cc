// crrestore --lazy (restore/lazy_pager.h): the tree runs before its memory is in.
//  - What the program does to memory not in yet (a read in the kernel, process_vm_readv, a zap,
//    an unmap, a move, a fork whose child reads what neither has touched) is followed: the
//    background copy is held back (CR_TEST_LAZY_HOLD) while the program works, then let go.
//  - crrestore killed at random moments of a lazy restore of 1 GiB read at random: the tree
//    never runs with a page it should not have (the program checks every page it reads, and
//    says so on its log at once), and nothing of it stays.
//  - Zdtm programs restored with --lazy are rows of the zdtm table (*_lazy).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <regex>
#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

// The count before `what` in crrestore -v's "lazy:" line (-1 if absent).
long lazy_count(const std::string& err, const std::string& what) {
  std::smatch m;
  if (!std::regex_search(err, m, std::regex("([0-9]+) " + what))) return -1;
  return std::stol(m[1]);
}

// Kills and reaps `pid` at the end of a test that stopped early (a failed assertion): a
// restored program runs until it is told to stop, and no test may leave one behind.
struct KillAtEnd {
  pid_t pid;
  ~KillAtEnd() {
    if (pid > 0 && pid_exists(pid)) kill_child(pid);
  }
};

// zdtm lazy_random of `mib` MiB, started and dumped (killed) into dir's "img": its pid, which
// the image restores; 0 after a failure.
pid_t dump_lazy_random(TempDir& dir, const std::string& mib) {
  Target t = Target::start(dir, {zdtm_path("lazy_random"), mib});
  if (t.pid() <= 0) {
    ADD_FAILURE() << t.error();
    return 0;
  }
  const pid_t pid = t.pid();
  return dump_target(dir, t, Mode::kKill, dir.path("img")) ? pid : 0;
}

TEST(LazyRestore, FollowsWhatTheProgramDoesToMissingMemory) {
  if (!tools_present()) return;
  become_subreaper();
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("lazy_events")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  KillAtEnd program{pid};
  const std::string fifo = dir.path("hold");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  pid_t r;
  {
    ScopedEnv hold("CR_TEST_LAZY_HOLD", fifo);
    r = start_tool(dir, "crrestore", {"-v", "--lazy", "-d", "-i", dir.path("img")}, -1, -1,
                   "restore.err");
  }
  ASSERT_GT(r, 0);
  KillAtEnd restorer{r};
  // crrestore opens the FIFO once the tree runs, before it copies anything in the background.
  int w = -1;
  ASSERT_TRUE(poll_until(
      [&] {
        w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        return w >= 0 || !pid_exists(r);
      },
      std::chrono::seconds(60)))
      << read_file(dir.path("restore.err"));
  ASSERT_GE(w, 0) << "crrestore ended before the tree ran: " << read_file(dir.path("restore.err"));
  const std::string log = dir.work() + "/log";
  for (int round = 1; round <= 3; ++round) {
    ::kill(pid, SIGUSR1);
    const std::string done = "round " + std::to_string(round) + " ok";
    ASSERT_TRUE(poll_until(
        [&] {
          const std::string l = read_file(log);
          return l.find(done) != std::string::npos || l.find("FAIL") != std::string::npos ||
                 !pid_exists(pid);
        },
        std::chrono::seconds(30)));
    ASSERT_NE(read_file(log).find(done), std::string::npos) << read_file(log);
  }
  ::close(w);  // the background copy goes on: every page comes in
  auto st = wait_exit(r, std::chrono::seconds(60));
  ASSERT_TRUE(st && st->ok()) << read_file(dir.path("restore.err"));
  const std::string err = read_file(dir.path("restore.err"));
  std::smatch line;
  if (std::regex_search(err, line, std::regex("crrestore: lazy: [^\n]*")))
    std::cout << "  [lazy events] " << line[0] << "\n";
  EXPECT_GE(lazy_count(err, "faults \\("), 9) << err;  // three reads a round, the child's two
  EXPECT_GE(lazy_count(err, "zero-page faults"), 3) << err;  // the zapped pages read back
  EXPECT_GE(lazy_count(err, "forks"), 3) << err;
  EXPECT_GE(lazy_count(err, "remaps"), 3) << err;
  EXPECT_GE(lazy_count(err, "removes"), 3) << err;
  EXPECT_GE(lazy_count(err, "unmaps"), 3) << err;
  // Every page as it should be: the zapped ones zero, the one mapped anew the program's own,
  // the moved region where it went (the program checks all of them on SIGTERM).
  expect_restored_passes(dir, pid);
}

// From an image file the pages stay in the file until wanted: the tree runs first, then the
// pager reads them (each record's checksum checked before any of its pages goes in).
TEST(LazyRestore, FromAFileThePagesAreReadAfterTheTreeRuns) {
  if (!tools_present()) return;
  become_subreaper();
  TempDir dir;
  const pid_t pid = dump_lazy_random(dir, "64");
  ASSERT_GT(pid, 0);
  KillAtEnd program{pid};
  ToolRun r = run_tool(dir, "crrestore", {"-v", "-d", "--lazy", "-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("([0-9.]+) MiB read from the image file")))
      << r.err;
  EXPECT_GE(std::stod(m[1]), 60.0) << r.err;  // nearly all of its 64 MiB, after the resume
  expect_restored_passes(dir, pid);
}

// A page record damaged in the file: without --lazy crrestore refuses the image before anything
// runs; with --lazy the damage is found when the pager reads the record, after the tree runs:
// the tree is killed (by crrestore, never running on the bad or a missing page) and crrestore
// fails in one line naming it.
TEST(LazyRestore, ADamagedPageRecordKillsTheTree) {
  if (!tools_present()) return;
  become_subreaper();
  TempDir dir;
  const pid_t pid = dump_lazy_random(dir, "64");
  ASSERT_GT(pid, 0);
  KillAtEnd program{pid};
  // A byte in the middle of the file: inside a page record's pages (64 MiB of the image's size).
  std::string img = read_file(dir.path("img"));
  img[img.size() / 2] ^= 0x5a;
  write_file(dir.path("img"), img);
  ToolRun plain = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  EXPECT_FALSE(plain.status.ok());
  EXPECT_NE(plain.err.find("checksum mismatch"), std::string::npos) << plain.err;
  EXPECT_FALSE(pid_exists(pid));
  ToolRun r = run_tool(dir, "crrestore", {"-d", "--lazy", "-i", dir.path("img")});
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("checksum mismatch"), std::string::npos) << r.err;
  if (pid_exists(pid)) {
    auto st = wait_exit(pid, std::chrono::seconds(30));
    ASSERT_TRUE(st) << "the tree runs on";
    EXPECT_TRUE(!st->exited && st->code == SIGKILL) << st->describe();
  }
  std::string left;
  EXPECT_TRUE(all_gone({pid}, &left)) << left;
  EXPECT_EQ(read_file(dir.work() + "/log").find("FAIL"), std::string::npos)
      << read_file(dir.work() + "/log");
}

// The restore of a process of 1 GiB that reads its memory at random, with crrestore killed at
// a random fault or background step of the pager ("lazy:N"), and at random passes before the
// tree runs: each time the tree goes, and the program never reported a page read wrong.
TEST(LazyRestore, KilledAtRandomMomentsNeverShowsAMissingPage) {
  if (!tools_present()) return;
  become_subreaper();
  TempDir dir;
  const pid_t pid = dump_lazy_random(dir, "1024");
  ASSERT_GT(pid, 0);
  KillAtEnd program{pid};
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::vector<std::string> points = {"lazy:1", "lazy:2"};
  for (int i = 0; i < 8; ++i)
    points.push_back("lazy:" + std::to_string(std::uniform_int_distribution<int>(3, 600)(rng)));
  for (int i = 0; i < 2; ++i)
    points.push_back("pass:" + std::to_string(std::uniform_int_distribution<int>(1, 30)(rng)));
  const std::string log = dir.work() + "/log";
  int kills = 0;
  bool completed = false;
  for (const std::string& at : points) {
    ToolRun run;
    {
      ScopedEnv env("CR_TEST_KILL_AT", at);
      run = run_tool(dir, "crrestore", {"-d", "--lazy", "-i", dir.path("img")});
    }
    if (run.status.ok()) {
      // All of it was in before that step came: the program runs, and passes (its log has
      // changed then: no restore of this image after it).
      expect_restored_passes(dir, pid);
      completed = true;
      break;
    }
    ASSERT_TRUE(!run.status.exited && run.status.code == SIGKILL)
        << at << " (seed " << seed << "): " << run.describe();
    ++kills;
    // Killed by the guard (or, before it ran, with crrestore as the restore's own children
    // are): never dead of a zero page where its stack, heap or data were (SIGSEGV), nor of
    // its own check.
    if (pid_exists(pid)) {
      auto st = wait_exit(pid, std::chrono::seconds(30));  // ours: crrestore's orphan
      ASSERT_TRUE(st) << "pid " << pid << " still runs after crrestore was killed at " << at;
      EXPECT_TRUE(!st->exited && st->code == SIGKILL)
          << "killed at " << at << " (seed " << seed << "): the program " << st->describe()
          << "\nlog: " << read_file(log);
    }
    std::string left;
    ASSERT_TRUE(all_gone({pid}, &left)) << "crrestore killed at " << at << ": " << left;
    ASSERT_EQ(read_file(log).find("FAIL"), std::string::npos)
        << "killed at " << at << " (seed " << seed << "): " << read_file(log);
  }
  std::cout << "  [lazy kill] crrestore killed at " << kills << " of " << points.size()
            << " moments (seed " << seed << "); the program never read a wrong page"
            << (completed ? "; a later moment came after the last page" : "") << "\n";
  EXPECT_GT(kills, 0);
  if (completed) return;
  // And a restore let run to the end.
  ASSERT_TRUE(restore_detached(dir, dir.path("img"), pid, {"--lazy"}));
  expect_restored_passes(dir, pid);
}

}  // namespace
}  // namespace cr::e2e
