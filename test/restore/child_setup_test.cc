#include "restore/child_setup.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

namespace cr::restore {
namespace {

ChildReport report_of(const std::string& text) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(::write(p[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(p[1]);
  ChildReport r = read_child_report(p[0]);
  ::close(p[0]);
  return r;
}

TEST(ChildReport, WarningsThenError) {
  auto r =
      report_of("W41 rlimit 7: kept ours\nW41 process group 5 is not restored\nE42 fd 3: open /x: "
                "ENOENT\nR41 \n");
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0], "rlimit 7: kept ours");
  EXPECT_EQ(r.error, "pid 42: fd 3: open /x: ENOENT");
  EXPECT_EQ(r.ready, std::set<pid_t>{41});
}

TEST(ChildReport, EmptyMeansSuccess) {
  auto r = report_of("");
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.ready.empty());
}

TEST(ChildReport, UnterminatedLastLineCounts) {
  auto r = report_of("E7 chdir /gone: No such file or directory");
  EXPECT_EQ(r.error, "pid 7: chdir /gone: No such file or directory");
}

}  // namespace
}  // namespace cr::restore
