// The store of pre-copied pages: a later round's copy replaces an earlier one, runs follow the
// slots, a page without a copy and a malformed run are errors, the size is bounded.
#include "restore/precopy_store.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace cr::restore {
namespace {

constexpr uint64_t kPage = 4096;

std::vector<uint8_t> pages(size_t n, uint8_t fill) { return std::vector<uint8_t>(n * kPage, fill); }

struct Seen {
  uint64_t addr;
  uint64_t len;
  std::vector<uint8_t> bytes;
};

std::vector<Seen> collect(const PrecopyStore& s, uint32_t pid, uint64_t vaddr, uint64_t n,
                          Status* st = nullptr) {
  std::vector<Seen> out;
  Status r = s.each_run(pid, vaddr, n, [&](uint64_t a, const uint8_t* d, uint64_t len) -> Status {
    out.push_back(Seen{a, len, std::vector<uint8_t>(d, d + len)});
    return {};
  });
  if (st) *st = r;
  else EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

TEST(PrecopyStore, LaterCopyReplacesEarlier) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x10000, pages(4, 0xaa)).ok());
  ASSERT_TRUE(s.add(7, 0x11000, pages(1, 0xbb)).ok());  // round 1 rewrote the second page
  EXPECT_EQ(s.pages(), 4u);
  auto runs = collect(s, 7, 0x10000, 4);
  ASSERT_EQ(runs.size(), 1u);  // overwritten in place: still one run of slots
  EXPECT_EQ(runs[0].addr, 0x10000u);
  EXPECT_EQ(runs[0].len, 4 * kPage);
  EXPECT_EQ(runs[0].bytes[0], 0xaa);
  EXPECT_EQ(runs[0].bytes[kPage], 0xbb);
  EXPECT_EQ(runs[0].bytes[2 * kPage], 0xaa);
}

// A copy that overlaps two earlier runs and the gap between them: the overlaps are replaced,
// the gap is stored, every page reads back as the newest copy.
TEST(PrecopyStore, OverlapsAndGapsOfRuns) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x10000, pages(2, 1)).ok());
  ASSERT_TRUE(s.add(7, 0x13000, pages(2, 2)).ok());
  ASSERT_TRUE(s.add(7, 0x11000, pages(3, 3)).ok());
  EXPECT_EQ(s.pages(), 5u);
  std::vector<uint8_t> got;
  for (const Seen& r : collect(s, 7, 0x10000, 5)) got.insert(got.end(), r.bytes.begin(), r.bytes.end());
  ASSERT_EQ(got.size(), 5 * kPage);
  const uint8_t want[] = {1, 3, 3, 3, 2};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(got[i * kPage], want[i]) << "page " << i;
}

TEST(PrecopyStore, RunsFollowSlotsAndPids) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x20000, pages(1, 1)).ok());
  ASSERT_TRUE(s.add(8, 0x20000, pages(1, 2)).ok());  // another process, same address
  ASSERT_TRUE(s.add(7, 0x21000, pages(1, 3)).ok());  // not next to 0x20000's slot
  auto runs = collect(s, 7, 0x20000, 2);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].bytes[0], 1);
  EXPECT_EQ(runs[1].addr, 0x21000u);
  EXPECT_EQ(runs[1].bytes[0], 3);
  auto other = collect(s, 8, 0x20000, 1);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].bytes[0], 2);
}

TEST(PrecopyStore, MissingPageNamed) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x30000, pages(2, 1)).ok());
  Status st;
  collect(s, 7, 0x30000, 3, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("0x32000"), std::string::npos) << st.error().message;
  collect(s, 9, 0x30000, 1, &st);
  EXPECT_FALSE(st.ok());
}

TEST(PrecopyStore, MalformedAndOverLimitRefused) {
  PrecopyStore s(2 * kPage);
  EXPECT_FALSE(s.add(7, 0x40001, pages(1, 0)).ok());  // not page-aligned
  EXPECT_FALSE(s.add(7, 0x40000, std::vector<uint8_t>(100, 0)).ok());
  EXPECT_FALSE(s.add(7, ~uint64_t{0} - kPage + 1, pages(2, 0)).ok());  // wraps
  ASSERT_TRUE(s.add(7, 0x40000, pages(2, 0)).ok());
  Status st = s.add(7, 0x50000, pages(1, 0));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("MiB"), std::string::npos) << st.error().message;
  EXPECT_TRUE(s.add(7, 0x40000, pages(2, 5)).ok());  // copies of stored pages cost nothing new
}

}  // namespace
}  // namespace cr::restore
