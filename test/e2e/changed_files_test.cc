// crrestore --allow-changed-files: a program's log files grew between dump and restore.
// Refused by default (the message names the option); with it, restored with one warning per
// file, and the program's next write lands at its recorded offset (or at the end, O_APPEND).
#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

void append(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

TEST(ChangedFiles, GrownLogRestoredAtItsOffsetWithAllowChangedFiles) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("file_log_grown")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  const std::string app = dir.work() + "/app.log", app_append = dir.work() + "/append.log";
  // Someone else wrote to the logs meanwhile (11 bytes: more than the program's next line).
  append(app, "EXTRA-LINE\n");
  append(app_append, "EXTRA-LINE\n");

  ToolRun refused = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  EXPECT_TRUE(refused.status.exited && refused.status.code == 1) << refused.describe();
  EXPECT_TRUE(refused.one_line_error("crrestore")) << refused.err;
  EXPECT_NE(refused.err.find("changed since dump"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-changed-files"), std::string::npos) << refused.err;
  reap_zombies();
  ASSERT_FALSE(pid_exists(pid)) << "a refused restore left pid " << pid;

  // -q hides the warnings.
  ToolRun quiet =
      run_tool(dir, "crrestore", {"-d", "-q", "--allow-changed-files", "-i", dir.path("img")});
  ASSERT_TRUE(quiet.status.ok()) << quiet.describe();
  EXPECT_EQ(quiet.err.find("warning"), std::string::npos) << quiet.err;
  ASSERT_TRUE(pid_exists(pid));
  kill_child(pid);
  reap_zombies();

  ToolRun r = run_tool(dir, "crrestore", {"-d", "--allow-changed-files", "-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  for (const std::string& path : {app, app_append}) {
    const std::string line =
        "crrestore: warning: " + path + ": file changed since dump (size 7 -> 18";
    EXPECT_NE(r.err.find(line), std::string::npos) << "no warning for " << path << ": " << r.err;
  }
  ExitStatus st = terminate_pid(pid);
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << read_file(dir.work() + "/log");
  // app.log: "after\n" written at offset 7, over the first 6 bytes the outsider appended.
  EXPECT_EQ(read_file(app), "before\nafter\nLINE\n");
  // append.log: O_APPEND writes at the end, after the outsider's line.
  EXPECT_EQ(read_file(app_append), "before\nEXTRA-LINE\nafter\n");
}

}  // namespace
}  // namespace cr::e2e
