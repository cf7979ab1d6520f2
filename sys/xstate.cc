#include "sys/xstate.h"

#include <cpuid.h>

#include <algorithm>
#include <cstring>

namespace cr::sys {

namespace {

constexpr size_t kLegacySize = 512;  // FXSAVE area: x87, SSE, MXCSR
constexpr size_t kHeaderSize = 64;   // XSTATE_BV, XCOMP_BV, reserved
constexpr uint64_t kLegacyBits = 0x3;  // x87 and SSE live in the legacy area

uint64_t read_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

XstateLayout probe_host() {
  XstateLayout l;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || (c & bit_OSXSAVE) == 0) {
    l.features = kLegacyBits;
    return l;
  }
  l.features = xgetbv0();
  for (uint32_t bit = 2; bit < 64; ++bit) {
    if (((l.features >> bit) & 1) == 0) continue;
    __cpuid_count(0xd, bit, a, b, c, d);
    if (a == 0) continue;
    l.components.push_back(XstateComponent{bit, b, a});
  }
  return l;
}

// Does an area of `size` bytes with components `bv` fit layout `l`?
bool fits(const XstateLayout& l, uint64_t bv, size_t size) {
  for (uint32_t bit = 2; bit < 64; ++bit) {
    if (((bv >> bit) & 1) == 0) continue;
    const XstateComponent* c = l.find(bit);
    if (c == nullptr || c->offset + c->size > size) return false;
  }
  return true;
}

// Does layout `l` end exactly at `size` (its last component that fits ends there)? This tells
// an AMD area (AVX-512 right after AVX) from an Intel one of another size.
bool ends_at(const XstateLayout& l, size_t size) {
  size_t end = 0;
  for (const auto& c : l.components)
    if (c.offset + c.size <= size) end = std::max<size_t>(end, c.offset + c.size);
  return end == size && fits(l, 0, size);
}

}  // namespace

const XstateComponent* XstateLayout::find(uint32_t bit) const {
  for (const auto& c : components)
    if (c.bit == bit) return &c;
  return nullptr;
}

std::vector<uint64_t> XstateLayout::encode() const {
  std::vector<uint64_t> out;
  for (const auto& c : components) {
    out.push_back(c.bit);
    out.push_back(c.offset);
    out.push_back(c.size);
  }
  return out;
}

Result<XstateLayout> XstateLayout::decode(std::span<const uint64_t> words) {
  if (words.size() % 3 != 0)
    return make_error("xsave layout of " + std::to_string(words.size()) + " words");
  XstateLayout l;
  l.features = kLegacyBits;
  for (size_t i = 0; i < words.size(); i += 3) {
    if (words[i] < 2 || words[i] > 63 || words[i + 1] > (1u << 20) || words[i + 2] > (1u << 20))
      return make_error("xsave layout entry " + std::to_string(i / 3) + " is malformed");
    const auto bit = static_cast<uint32_t>(words[i]);
    l.features |= uint64_t{1} << bit;
    l.components.push_back(XstateComponent{bit, static_cast<uint32_t>(words[i + 1]),
                                            static_cast<uint32_t>(words[i + 2])});
  }
  return l;
}

const XstateLayout& host_xstate_layout() {
  static const XstateLayout host = probe_host();
  return host;
}

// The standard-format offsets CPUID reports on these vendors' parts (SDM / APM tables).
XstateLayout intel_xstate_layout() {
  return XstateLayout{0x602ff,
                      {{2, 576, 256},
                       {3, 960, 64},
                       {4, 1024, 64},
                       {5, 1088, 64},
                       {6, 1152, 512},
                       {7, 1664, 1024},
                       {9, 2688, 8},
                       {17, 2752, 64},
                       {18, 2816, 8192}}};
}

XstateLayout amd_xstate_layout() {
  // No MPX on AMD: the AVX-512 components follow AVX directly.
  return XstateLayout{0x2e7, {{2, 576, 256}, {5, 832, 64}, {6, 896, 512}, {7, 1408, 1024},
                              {9, 2432, 8}}};
}

std::string xstate_component_name(uint32_t bit) {
  switch (bit) {
    case 2: return "AVX";
    case 3: return "MPX bound registers";
    case 4: return "MPX bound config";
    case 5: return "AVX-512 opmask";
    case 6: return "AVX-512 ZMM_Hi256";
    case 7: return "AVX-512 Hi16_ZMM";
    case 9: return "PKRU";
    case 17: return "AMX tile config";
    case 18: return "AMX tile data";
    default: return "xstate component " + std::to_string(bit);
  }
}

Result<std::vector<uint8_t>> translate_xstate(std::span<const uint8_t> area,
                                              std::span<const uint64_t> from_words,
                                              const XstateLayout& to, size_t to_size) {
  if (area.size() < kLegacySize + kHeaderSize)
    return make_error("xsave area of " + std::to_string(area.size()) + " bytes is too short");
  if (to_size < kLegacySize + kHeaderSize)
    return make_error("this CPU's xsave area is " + std::to_string(to_size) + " bytes");
  const uint64_t bv = read_le64(area.data() + kLegacySize);
  const uint64_t xcomp = read_le64(area.data() + kLegacySize + 8);
  if (xcomp != 0) return make_error("xsave area is in the compacted format");

  XstateLayout from;
  if (!from_words.empty()) {
    CR_TRY_ASSIGN(from, XstateLayout::decode(from_words));
  } else if (area.size() == to_size && fits(to, bv, area.size())) {
    from = to;  // same size as ours: taken to be this CPU's own layout
  } else if (ends_at(intel_xstate_layout(), area.size()) &&
             fits(intel_xstate_layout(), bv, area.size())) {
    from = intel_xstate_layout();
  } else if (ends_at(amd_xstate_layout(), area.size()) &&
             fits(amd_xstate_layout(), bv, area.size())) {
    from = amd_xstate_layout();
  } else if ((bv & ~uint64_t{0x7}) == 0) {
    from = intel_xstate_layout();  // only x87/SSE/AVX in use: at the same place on every CPU
  } else {
    return make_error("xsave area of " + std::to_string(area.size()) +
                      " bytes has no recorded layout and matches no known one");
  }

  std::vector<uint8_t> out(to_size, 0);
  std::memcpy(out.data(), area.data(), kLegacySize);
  uint64_t out_bv = bv & kLegacyBits;
  for (uint32_t bit = 2; bit < 64; ++bit) {
    if (((bv >> bit) & 1) == 0) continue;
    const XstateComponent* src = from.find(bit);
    if (src == nullptr || src->offset + src->size > area.size())
      return make_error(xstate_component_name(bit) + " state lies outside the xsave area");
    std::span<const uint8_t> data = area.subspan(src->offset, src->size);
    const XstateComponent* dst = to.find(bit);
    if (dst == nullptr || dst->size != src->size || dst->offset + dst->size > to_size) {
      // Marked in use but all zero is the component's initial state: nothing is lost.
      if (std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; })) continue;
      return make_error(xstate_component_name(bit) +
                        " state is in use and this CPU cannot hold it");
    }
    std::memcpy(out.data() + dst->offset, data.data(), data.size());
    out_bv |= uint64_t{1} << bit;
  }
  std::memcpy(out.data() + kLegacySize, &out_bv, sizeof out_bv);
  return out;
}

}  // namespace cr::sys
