#include "restore/fd_plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <climits>
#include <map>

namespace cr::restore {
namespace {

// A model fd table: fd -> (what it holds, cloexec). Running a plan on it must give exactly
// the targets (plus the kept fd), whatever the numbers of the sources were.
struct Table {
  std::map<int, std::pair<std::string, bool>> fds;

  void run(const FdPlan& plan) {
    for (const auto& op : plan.ops) {
      if (op.kind == FdOp::kDup3) {
        ASSERT_NE(op.a, op.b) << "dup3 onto itself fails with EINVAL";
        ASSERT_TRUE(fds.count(op.a)) << "dup3 from closed fd " << op.a;
        fds[op.b] = {fds[op.a].first, (op.flags & O_CLOEXEC) != 0};
      } else {
        for (auto it = fds.begin(); it != fds.end();)
          it = (it->first >= op.a && it->first <= op.b) ? fds.erase(it) : std::next(it);
      }
    }
  }
};

std::string name(uint32_t file) { return "file" + std::to_string(file); }

TEST(FdPlan, TargetsCollideWithTemporaries) {
  // The child opened file 1 at fd 3 and file 2 at fd 4; the dump wants file 1 at 4 and
  // file 2 at 3 (a swap), file 2 again at 0, and the report pipe sits at 5.
  Table t;
  t.fds = {{0, {"stdin", false}}, {1, {"stdout", false}}, {2, {"stderr", false}},
           {3, {name(1), true}},  {4, {name(2), true}},   {5, {"report", true}}};
  std::vector<FdSource> sources{{1, 3}, {2, 4}};
  std::vector<FdTarget> targets{{4, 1, false}, {3, 2, true}, {0, 2, false}};
  auto plan = plan_fd_table(sources, targets, 5, 5);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  t.run(*plan);
  std::map<int, std::pair<std::string, bool>> want{{0, {name(2), false}},
                                                   {3, {name(2), true}},
                                                   {4, {name(1), false}},
                                                   {plan->keep_fd, {"report", true}}};
  EXPECT_EQ(t.fds, want);
  EXPECT_GT(plan->keep_fd, 4);
}

TEST(FdPlan, HighTargetsAndInheritedFds) {
  // Targets above everything open, and an inherited fd (an --inherit-fd source at 7).
  Table t;
  t.fds = {
      {2, {"stderr", false}}, {3, {"report", true}}, {7, {name(9), false}}, {8, {name(1), true}}};
  std::vector<FdSource> sources{{9, 7}, {1, 8}};
  std::vector<FdTarget> targets{{100, 9, false}, {8, 1, false}, {1, 1, true}};
  auto plan = plan_fd_table(sources, targets, 3, 8);
  ASSERT_TRUE(plan.ok());
  t.run(*plan);
  std::map<int, std::pair<std::string, bool>> want{{1, {name(1), true}},
                                                   {8, {name(1), false}},
                                                   {100, {name(9), false}},
                                                   {plan->keep_fd, {"report", true}}};
  EXPECT_EQ(t.fds, want);
  EXPECT_GT(plan->keep_fd, 100);
}

TEST(FdPlan, EmptyTableClosesEverything) {
  Table t;
  t.fds = {{0, {"stdin", false}}, {1, {"stdout", false}}, {4, {"report", true}}};
  auto plan = plan_fd_table({}, {}, 4, 4);
  ASSERT_TRUE(plan.ok());
  t.run(*plan);
  ASSERT_EQ(t.fds.size(), 1u);
  EXPECT_EQ(t.fds.begin()->second.first, "report");
}

TEST(FdPlan, RefusesDuplicateTargetsAndUnopenedFiles) {
  EXPECT_FALSE(plan_fd_table({{1, 3}}, {{0, 1, false}, {0, 1, false}}, -1, 3).ok());
  EXPECT_FALSE(plan_fd_table({{1, 3}}, {{0, 2, false}}, -1, 3).ok());
}

// Fd numbers near INT_MAX: the lifted copies above them would overflow an int. Refused, never
// planned with negative numbers.
TEST(FdPlan, RefusesFdsWhoseLiftedCopiesWouldOverflow) {
  auto plan = plan_fd_table({{1, 3}}, {{2147483647, 1, false}}, 4, 10);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("too high"), std::string::npos) << plan.error().message;
  EXPECT_FALSE(plan_fd_table({{1, 3}, {2, 4}}, {{2147483645, 1, false}}, 4, 10).ok());
  EXPECT_FALSE(plan_fd_table({{1, 3}}, {{-1, 1, false}}, 4, 10).ok());
}

// 200k fds (the duplicate check was pairwise: 2e10 comparisons); the plan is linear in them.
TEST(FdPlan, TwoHundredThousandFds) {
  std::vector<FdSource> sources{{1, 3}};
  std::vector<FdTarget> targets;
  for (int fd = 0; fd < 200000; ++fd) targets.push_back({fd, 1, false});
  auto plan = plan_fd_table(sources, targets, 4, 10);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_GT(plan->keep_fd, 199999);
  targets.push_back({123456, 1, false});
  auto dup = plan_fd_table(sources, targets, 4, 10);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("fd 123456 appears twice"), std::string::npos);
}

}  // namespace
}  // namespace cr::restore
