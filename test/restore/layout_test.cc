#include "restore/layout.h"

#include <gtest/gtest.h>

namespace cr::restore {
namespace {

TEST(ChooseFreeRange, AvoidsBothLayoutsWithGuardPages) {
  // Layout A occupies the lowest candidate; layout B the next one.
  std::vector<Range> a{{kMinPlaceAddr, kMinPlaceAddr + 0x4000}};
  std::vector<Range> b{{kMinPlaceAddr + 0x5000, kMinPlaceAddr + 0x9000}};
  auto r = choose_free_range(a, b, 0x4000);
  ASSERT_TRUE(r.ok());
  const Range got{*r, *r + 0x4000};
  const Range guard{got.start - 0x1000, got.end + 0x1000};
  for (const auto& x : a) EXPECT_FALSE(guard.overlaps(x));
  for (const auto& x : b) EXPECT_FALSE(guard.overlaps(x));
  EXPECT_EQ(*r, kMinPlaceAddr + 0xa000);
}

TEST(ChooseFreeRange, FitsAGapBetweenRanges) {
  std::vector<Range> a{{kMinPlaceAddr, kMinPlaceAddr + 0x1000},
                       {kMinPlaceAddr + 0x10000, kMinPlaceAddr + 0x20000}};
  std::vector<Range> b{{0x1000, 0x2000}};
  auto r = choose_free_range(a, b, 0x4000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, kMinPlaceAddr + 0x2000);
}

TEST(ChooseFreeRange, FailsWhenEverythingIsTaken) {
  std::vector<Range> a{{0, kTaskSize}};
  EXPECT_FALSE(choose_free_range(a, {}, 0x1000).ok());
}

// Applies moves to a set of named ranges, checking every mremap is legal: the source is a
// piece, the target does not overlap the source or any other piece.
void simulate(std::vector<VdsoPiece> pieces, const std::vector<Move>& moves,
              const std::vector<Range>& avoid) {
  for (const auto& m : moves) {
    Range to{m.to, m.to + m.size};
    VdsoPiece* src = nullptr;
    for (auto& p : pieces)
      if (p.current.start == m.from) src = &p;
    ASSERT_NE(src, nullptr) << "move from nothing";
    ASSERT_EQ(src->current.size(), m.size);
    EXPECT_FALSE(to.overlaps(src->current)) << "mremap onto its own source";
    for (const auto& p : pieces) {
      if (&p != src) {
        EXPECT_FALSE(to.overlaps(p.current)) << "clobbers " << p.name;
      }
    }
    src->current = to;
  }
  for (const auto& p : pieces) {
    EXPECT_EQ(p.current.start, p.target) << p.name;
    Range at{p.current.start, p.current.end};
    for (const auto& a : avoid) EXPECT_FALSE(at.overlaps(a));
  }
}

TEST(PlanVdsoMoves, NothingToDoWhenInPlace) {
  std::vector<VdsoPiece> pieces{{"[vdso]", {0x7000, 0x9000}, 0x7000}};
  auto r = plan_vdso_moves(pieces, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(PlanVdsoMoves, DisjointMovesGoDirectly) {
  std::vector<VdsoPiece> pieces{{"[vvar]", {0x7f0000000000, 0x7f0000004000}, 0x7e0000000000},
                                {"[vdso]", {0x7f0000004000, 0x7f0000006000}, 0x7e0000004000}};
  auto r = plan_vdso_moves(pieces, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  simulate(pieces, *r, {});
}

TEST(PlanVdsoMoves, OrdersAShiftThatOverlapsTheNextPiece) {
  // Everything shifts up by two pages: [vvar]'s target lies on [vvar_vclock]'s source, whose
  // target lies on [vdso]'s source. [vdso] must go first, then vclock, then vvar.
  const uint64_t b = 0x7fff00000000;
  std::vector<VdsoPiece> pieces{{"[vvar]", {b, b + 0x4000}, b + 0x2000},
                                {"[vvar_vclock]", {b + 0x4000, b + 0x6000}, b + 0x6000},
                                {"[vdso]", {b + 0x6000, b + 0x8000}, b + 0x8000}};
  auto r = plan_vdso_moves(pieces, {});
  ASSERT_TRUE(r.ok());
  simulate(pieces, *r, {});
}

TEST(PlanVdsoMoves, BreaksASwapThroughATemporary) {
  // Two equal pieces trading places: neither can move first without a temporary.
  const uint64_t b = 0x7fff00000000;
  std::vector<VdsoPiece> pieces{{"[vvar_vclock]", {b, b + 0x2000}, b + 0x2000},
                                {"[vdso]", {b + 0x2000, b + 0x4000}, b}};
  std::vector<Range> avoid{{kMinPlaceAddr, kMinPlaceAddr + 0x10000}};
  auto r = plan_vdso_moves(pieces, avoid);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 3u);
  for (const auto& m : *r) {
    Range to{m.to, m.to + m.size};
    for (const auto& a : avoid) EXPECT_FALSE(to.overlaps(a)) << "temporary in a used range";
  }
  simulate(pieces, *r, avoid);
}

TEST(PlanVdsoMoves, SelfOverlapGoesThroughATemporary) {
  // A 4-page piece moving up by one page overlaps itself: mremap refuses, so it parks first.
  const uint64_t b = 0x7fff00000000;
  std::vector<VdsoPiece> pieces{{"[vvar]", {b, b + 0x4000}, b + 0x1000}};
  auto r = plan_vdso_moves(pieces, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  simulate(pieces, *r, {});
}

TEST(UnmapRanges, IsTheComplementOfWhatIsKept) {
  auto r = unmap_ranges({{0x5000, 0x6000}, {0x1000, 0x2000}, {0x2000, 0x3000}}, 0x10000);
  std::vector<Range> want{{0, 0x1000}, {0x3000, 0x5000}, {0x6000, 0x10000}};
  EXPECT_EQ(r, want);
}

TEST(UnmapRanges, KeepAtTheEdges) {
  auto r = unmap_ranges({{0, 0x1000}, {0xf000, 0x10000}}, 0x10000);
  std::vector<Range> want{{0x1000, 0xf000}};
  EXPECT_EQ(r, want);
}

}  // namespace
}  // namespace cr::restore
