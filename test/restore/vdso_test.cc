#include "restore/vdso.h"

#include <gtest/gtest.h>

#include <vector>

#include "format/crc32c.h"
#include "sys/vdso.h"

namespace cr::restore {
namespace {

// This process's vDSO and a Vdso record describing it, as crdump writes it.
struct Own {
  std::span<const uint8_t> bytes;
  schema::Vdso rec;
};

Own own() {
  Own o;
  auto v = sys::own_vdso();
  if (!v.ok() || v->empty()) return o;
  o.bytes = *v;
  o.rec.size = o.bytes.size();
  o.rec.crc = format::crc32c(o.bytes.data(), o.bytes.size());
  auto fns = sys::vdso_functions(o.bytes);
  if (!fns.ok()) return o;
  for (const auto& f : *fns) {
    if (!o.rec.names.empty()) o.rec.names += '\n';
    o.rec.names += f.name;
    o.rec.offsets.push_back(f.offset);
  }
  return o;
}

TEST(VdsoPlan, TheSameVdsoNeedsNoProxy) {
  Own o = own();
  if (o.bytes.empty()) GTEST_SKIP() << "this kernel maps no vDSO (booted with vdso=0)";
  auto p = plan_vdso(o.rec, "a", o.bytes, "b");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->proxy);
}

TEST(VdsoPlan, ADifferentVdsoGetsOneJumpPerFunction) {
  Own o = own();
  if (o.bytes.empty()) GTEST_SKIP() << "this kernel maps no vDSO (booted with vdso=0)";
  o.rec.crc ^= 1;
  auto p = plan_vdso(o.rec, "a", o.bytes, "a");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(p->proxy);
  ASSERT_FALSE(p->stubs.empty());
  // Aliases (clock_gettime, __vdso_clock_gettime) share one jump.
  EXPECT_LT(p->stubs.size(), o.rec.offsets.size());
  for (size_t i = 1; i < p->stubs.size(); ++i)
    EXPECT_GE(p->stubs[i].dumped_offset - p->stubs[i - 1].dumped_offset, sys::kJumpSize);
  for (const auto& s : p->stubs) EXPECT_EQ(s.dumped_offset, s.own_offset);
}

TEST(VdsoPlan, RefusesWhatItCannotJumpTo) {
  Own o = own();
  if (o.bytes.empty()) GTEST_SKIP() << "this kernel maps no vDSO (booted with vdso=0)";
  o.rec.crc ^= 1;
  schema::Vdso missing = o.rec;
  missing.names += "\n__vdso_teleport";
  missing.offsets.push_back(0x20);
  auto p = plan_vdso(missing, "a", o.bytes, "a");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("__vdso_teleport does not exist"), std::string::npos);

  schema::Vdso close = o.rec;
  close.names = "__vdso_time\n__vdso_getcpu";
  close.offsets = {0x100, 0x108};
  EXPECT_FALSE(plan_vdso(close, "a", o.bytes, "a").ok());

  schema::Vdso past = o.rec;
  past.names = "__vdso_time";
  past.offsets = {past.size - 4};
  EXPECT_FALSE(plan_vdso(past, "a", o.bytes, "a").ok());

  schema::Vdso counts = o.rec;
  counts.offsets.push_back(0);
  EXPECT_FALSE(plan_vdso(counts, "a", o.bytes, "a").ok());
}

TEST(VdsoPlan, AnImageWithoutARecordRestoresOnlyOnItsKernel) {
  Own o = own();
  auto same = plan_vdso(std::nullopt, "6.18.44-v1", o.bytes, "6.18.44-v1");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->proxy);
  auto other = plan_vdso(std::nullopt, "6.18.44-v1", o.bytes, "6.18.44-v2");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("did not record its vDSO"), std::string::npos);
}

}  // namespace
}  // namespace cr::restore
