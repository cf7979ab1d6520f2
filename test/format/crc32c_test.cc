#include "format/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

namespace cr::format {
namespace {

TEST(Crc32c, KnownVectors) {
  std::string_view s = "123456789";
  EXPECT_EQ(crc32c(s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(crc32c_reference(0, s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  // RFC 3720 B.4: 32 bytes of zeros, of 0xff, and an incrementing sequence.
  std::vector<uint8_t> v(32, 0);
  EXPECT_EQ(crc32c(v.data(), v.size()), 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xff);
  EXPECT_EQ(crc32c(v.data(), v.size()), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) v[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(v.data(), v.size()), 0x46DD794Eu);
}

TEST(Crc32c, MatchesReferenceOnRandomLengthsAndAlignments) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(200000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths = {0,
                                 1,
                                 7,
                                 8,
                                 9,
                                 767,
                                 768,
                                 769,
                                 3 * 8192 - 1,
                                 3 * 8192,
                                 3 * 8192 + 1,
                                 3 * 8192 + 3 * 256 + 5,
                                 100000,
                                 199000};
  for (int i = 0; i < 200; ++i) lengths.push_back(rng() % 60000);
  for (size_t len : lengths) {
    const size_t off = rng() % 16;
    const uint32_t seed = (rng() & 1) ? static_cast<uint32_t>(rng()) : 0;
    ASSERT_EQ(crc32c_extend(seed, buf.data() + off, len),
              crc32c_reference(seed, buf.data() + off, len))
        << "len " << len << " off " << off;
  }
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(100000);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  const uint32_t whole = crc32c(buf.data(), buf.size());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{4097}, size_t{50000}, buf.size()}) {
    uint32_t c = crc32c(buf.data(), cut);
    c = crc32c_extend(c, buf.data() + cut, buf.size() - cut);
    EXPECT_EQ(c, whole) << "cut " << cut;
  }
}

TEST(Crc32c, CombineEqualsWhole) {
  std::mt19937_64 rng(11);
  std::vector<uint8_t> buf(3 << 20);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  std::vector<std::pair<size_t, size_t>> cuts = {{0, 0},   {0, 5},      {5, 0},       {1, 1},
                                                 {7, 4096}, {100, 1 << 20}, {1 << 20, 2 << 20}};
  for (int i = 0; i < 50; ++i) {
    const size_t a = rng() % 70000, b = rng() % 70000;
    cuts.emplace_back(a, b);
  }
  for (auto [a, b] : cuts) {
    const uint32_t whole = crc32c(buf.data(), a + b);
    EXPECT_EQ(crc32c_combine(crc32c(buf.data(), a), crc32c(buf.data() + a, b), b), whole)
        << a << "+" << b;
  }
}

}  // namespace
}  // namespace cr::format
