#include "sys/vdso.h"

#include <gtest/gtest.h>
#include <time.h>

#include <cstring>
#include <vector>

namespace cr::sys {
namespace {

TEST(Vdso, OwnVdsoExportsClockGettime) {
  auto own = own_vdso();
  ASSERT_TRUE(own.ok()) << own.error().message;
  if (own->empty()) GTEST_SKIP() << "this kernel maps no vDSO (booted with vdso=0)";
  auto fns = vdso_functions(*own);
  ASSERT_TRUE(fns.ok()) << fns.error().message;
  bool found = false;
  for (const auto& f : *fns) {
    EXPECT_LT(f.offset, own->size()) << f.name;
    if (f.name == "__vdso_clock_gettime") {
      found = true;
      // Calling it where it is gives the time: the offset is the function's.
      auto fn = reinterpret_cast<int (*)(clockid_t, timespec*)>(
          const_cast<uint8_t*>(own->data() + f.offset));
      timespec ts{};
      EXPECT_EQ(fn(CLOCK_MONOTONIC, &ts), 0);
      EXPECT_GT(ts.tv_sec + ts.tv_nsec, 0);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Vdso, GarbageIsAnErrorNotACrash) {
  std::vector<uint8_t> junk(8192, 0x41);
  EXPECT_FALSE(vdso_functions(junk).ok());
  auto own = own_vdso();
  ASSERT_TRUE(own.ok());
  if (own->empty()) return;
  // Every truncation, and a section table pointing past the end.
  std::vector<uint8_t> copy(own->begin(), own->end());
  for (size_t n = 0; n < copy.size(); n += 97) (void)vdso_functions({copy.data(), n});
  uint64_t far = ~0ull / 2;
  std::memcpy(copy.data() + 0x28, &far, 8);  // e_shoff
  EXPECT_FALSE(vdso_functions(copy).ok());
}

TEST(Vdso, JumpEncodesAnAbsoluteTarget) {
  uint8_t j[kJumpSize];
  encode_jump(0x1122334455667788ull, j);
  const uint8_t want[kJumpSize] = {0xff, 0x25, 0,    0,    0,    0,    0x88,
                                   0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
  EXPECT_EQ(std::memcmp(j, want, kJumpSize), 0);
}

}  // namespace
}  // namespace cr::sys
