// Moving XSAVE areas between CPU layouts (sys/xstate.h), on canned areas.
#include "sys/xstate.h"

#include <gtest/gtest.h>

#include <cstring>

namespace cr::sys {
namespace {

constexpr size_t kAmdSize = 2432;    // AMD, AVX-512 without PKRU (a v1 fixture's machine)
constexpr size_t kIntelSize = 2696;  // Intel, AVX-512 and PKRU

void put_bv(std::vector<uint8_t>& a, uint64_t bv) { std::memcpy(a.data() + 512, &bv, 8); }
uint64_t get_bv(const std::vector<uint8_t>& a) {
  uint64_t bv;
  std::memcpy(&bv, a.data() + 512, 8);
  return bv;
}
void fill(std::vector<uint8_t>& a, size_t off, size_t len, uint8_t seed) {
  for (size_t i = 0; i < len; ++i) a[off + i] = static_cast<uint8_t>(seed + i * 7);
}
bool same(const std::vector<uint8_t>& a, size_t aoff, const std::vector<uint8_t>& b, size_t boff,
          size_t len) {
  return std::memcmp(a.data() + aoff, b.data() + boff, len) == 0;
}

// An AMD area using AVX, opmask and Hi16_ZMM, with no layout recorded (as v1 images are).
std::vector<uint8_t> amd_area() {
  std::vector<uint8_t> a(kAmdSize, 0);
  fill(a, 0, 512, 1);       // x87/SSE
  fill(a, 576, 256, 2);     // AVX
  fill(a, 832, 64, 3);      // opmask
  fill(a, 1408, 1024, 4);   // Hi16_ZMM
  put_bv(a, 0xa7);
  return a;
}

TEST(Xstate, AmdAreaWithoutLayoutMovesToIntelOffsets) {
  std::vector<uint8_t> a = amd_area();
  auto r = translate_xstate(a, {}, intel_xstate_layout(), kIntelSize);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::vector<uint8_t>& out = *r;
  ASSERT_EQ(out.size(), kIntelSize);
  EXPECT_TRUE(same(out, 0, a, 0, 512)) << "legacy area copied as is";
  EXPECT_EQ(get_bv(out), 0xa7u);
  EXPECT_TRUE(same(out, 576, a, 576, 256));
  EXPECT_TRUE(same(out, 1088, a, 832, 64)) << "opmask at Intel's offset";
  EXPECT_TRUE(same(out, 1664, a, 1408, 1024)) << "Hi16_ZMM at Intel's offset";
}

TEST(Xstate, RecordedLayoutWinsAndRoundTrips) {
  std::vector<uint8_t> a = amd_area();
  const std::vector<uint64_t> amd = amd_xstate_layout().encode();
  auto to_intel = translate_xstate(a, amd, intel_xstate_layout(), kIntelSize);
  ASSERT_TRUE(to_intel.ok()) << to_intel.error().message;
  const std::vector<uint64_t> intel = intel_xstate_layout().encode();
  auto back = translate_xstate(*to_intel, intel, amd_xstate_layout(), kAmdSize);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, a);
}

TEST(Xstate, SameLayoutIsACopy) {
  std::vector<uint8_t> a = amd_area();
  auto r = translate_xstate(a, amd_xstate_layout().encode(), amd_xstate_layout(), kAmdSize);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, a);
}

TEST(Xstate, MissingComponentDroppedOnlyWhenUnused) {
  XstateLayout avx_only{0x7, {{2, 576, 256}}};
  std::vector<uint8_t> a = amd_area();
  auto r = translate_xstate(a, {}, avx_only, 832);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("AVX-512 opmask state is in use"), std::string::npos)
      << r.error().message;
  // The same components marked in use but all zero are in their initial state: dropped.
  std::fill(a.begin() + 832, a.end(), 0);
  r = translate_xstate(a, {}, avx_only, 832);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(get_bv(*r), 0x7u);
  EXPECT_TRUE(same(*r, 576, a, 576, 256));
}

TEST(Xstate, BadAreasAreRefused) {
  std::vector<uint8_t> shorty(100, 0);
  EXPECT_FALSE(translate_xstate(shorty, {}, intel_xstate_layout(), kIntelSize).ok());
  std::vector<uint8_t> a = amd_area();
  uint64_t xcomp = uint64_t{1} << 63;
  std::memcpy(a.data() + 520, &xcomp, 8);
  auto r = translate_xstate(a, {}, intel_xstate_layout(), kIntelSize);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("compacted"), std::string::npos);
  // A recorded layout that puts a component past the end of the area.
  std::vector<uint8_t> b = amd_area();
  std::vector<uint64_t> bad = {7, 2000, 1024};
  r = translate_xstate(b, bad, intel_xstate_layout(), kIntelSize);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outside the xsave area"), std::string::npos);
  EXPECT_FALSE(XstateLayout::decode(std::vector<uint64_t>{2, 576}).ok());
  EXPECT_FALSE(XstateLayout::decode(std::vector<uint64_t>{1, 0, 0}).ok());
}

TEST(Xstate, HostLayoutHasAvxWhereEveryCpuPutsIt) {
  const XstateLayout& host = host_xstate_layout();
  EXPECT_EQ(host.features & 0x3, 0x3u);
  if (const XstateComponent* avx = host.find(2)) {
    EXPECT_EQ(avx->offset, 576u);
    EXPECT_EQ(avx->size, 256u);
  }
  auto decoded = XstateLayout::decode(host.encode());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->components.size(), host.components.size());
}

}  // namespace
}  // namespace cr::sys
