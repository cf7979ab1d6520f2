// The pages a lazy restore still has to place: replacement, lookups, drops that split runs,
// moves (mremap) onto pending pages, and a copy for a forked child.
#include "restore/lazy_ranges.h"

#include <gtest/gtest.h>

#include <vector>

namespace cr::restore {
namespace {

constexpr uint64_t kPage = 4096;

struct Bytes {
  std::vector<uint8_t> v;
  explicit Bytes(size_t pages, uint8_t fill) : v(pages * kPage, fill) {}
  const uint8_t* at(size_t page) const { return v.data() + page * kPage; }
};

TEST(LazyRanges, AddLookUpAndReplace) {
  Bytes a(8, 1), b(2, 2);
  LazyRanges r;
  r.add(0x10000, a.at(0), 8 * kPage, nullptr);
  EXPECT_EQ(r.bytes(), 8 * kPage);
  auto s = r.at(0x12000, 1 << 20);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->data, a.at(2));
  EXPECT_EQ(s->len, 6 * kPage);
  EXPECT_FALSE(r.at(0x18000, kPage));
  EXPECT_FALSE(r.at(0xf000, kPage));
  // A later copy of pages 3-4 replaces them; the run around it stays in two parts.
  r.add(0x13000, b.at(0), 2 * kPage, nullptr);
  EXPECT_EQ(r.bytes(), 8 * kPage);
  EXPECT_EQ(r.runs(), 3u);
  EXPECT_EQ(r.at(0x13000, kPage)->data, b.at(0));
  EXPECT_EQ(r.at(0x12000, 1 << 20)->len, kPage);  // up to the replaced part
  EXPECT_EQ(r.at(0x15000, 1 << 20)->data, a.at(5));
  EXPECT_EQ(r.at(0x12000, kPage)->len, kPage);     // at most `max`
}

TEST(LazyRanges, DropSplitsAndFromFindsTheNext) {
  Bytes a(16, 1);
  LazyRanges r;
  r.add(0x100000, a.at(0), 16 * kPage, nullptr);
  r.drop(0x104000, 0x106000);  // a zap in the middle
  EXPECT_EQ(r.bytes(), 14 * kPage);
  EXPECT_FALSE(r.at(0x104000, kPage));
  EXPECT_FALSE(r.at(0x105000, kPage));
  auto next = r.from(0x104000, 0x200000);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->addr, 0x106000u);
  EXPECT_EQ(next->data, a.at(6));
  EXPECT_EQ(next->len, 10 * kPage);
  EXPECT_FALSE(r.from(0x104000, 0x106000));  // nothing pending below the end
  auto first = r.first(2 * kPage);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->addr, 0x100000u);
  EXPECT_EQ(first->len, 2 * kPage);
  EXPECT_EQ(r.bounds(), std::make_pair(uint64_t{0x100000}, uint64_t{0x110000}));
  r.drop(0, ~uint64_t{0} & ~(kPage - 1));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.bytes(), 0u);
  EXPECT_EQ(r.bounds(), std::make_pair(uint64_t{0}, uint64_t{0}));
}

TEST(LazyRanges, MoveFollowsMremap) {
  Bytes a(8, 1), b(4, 2);
  LazyRanges r;
  r.add(0x10000, a.at(0), 8 * kPage, nullptr);
  r.add(0x40000, b.at(0), 4 * kPage, nullptr);
  // Pages 2-5 of the first run move onto the second run's place (which the move unmaps).
  r.move(0x12000, 0x40000, 4 * kPage);
  EXPECT_EQ(r.bytes(), 8 * kPage);
  EXPECT_FALSE(r.at(0x12000, kPage));
  EXPECT_EQ(r.at(0x11000, 1 << 20)->len, kPage);
  EXPECT_EQ(r.at(0x40000, 1 << 20)->data, a.at(2));
  EXPECT_EQ(r.at(0x40000, 1 << 20)->len, 4 * kPage);
  EXPECT_EQ(r.at(0x16000, 1 << 20)->data, a.at(6));
  // Partly over pending pages of its own source run (an overlapping move down).
  r.move(0x40000, 0x3e000, 4 * kPage);
  EXPECT_EQ(r.at(0x3e000, 1 << 20)->data, a.at(2));
  EXPECT_FALSE(r.at(0x42000, kPage));
  EXPECT_EQ(r.bytes(), 8 * kPage);
}

TEST(LazyRanges, ACopyIsIndependentAndHoldsTheBytes) {
  auto owner = std::make_shared<std::vector<uint8_t>>(4 * kPage, 7);
  LazyRanges parent;
  parent.add(0x1000, owner->data(), 4 * kPage, owner);
  std::weak_ptr<std::vector<uint8_t>> alive = owner;
  const uint8_t* data = owner->data();
  owner.reset();
  LazyRanges child = parent;  // a fork: the child misses what the parent misses
  parent.drop(0x1000, 0x5000);
  EXPECT_TRUE(parent.empty());
  ASSERT_TRUE(child.at(0x2000, kPage));
  EXPECT_EQ(child.at(0x2000, kPage)->data, data + kPage);
  EXPECT_FALSE(alive.expired());  // the child's runs hold the window
  child.drop(0x1000, 0x3000);
  EXPECT_FALSE(alive.expired());
  child.drop(0x3000, 0x5000);
  EXPECT_TRUE(alive.expired());   // the last part placed: the window goes
}

}  // namespace
}  // namespace cr::restore
