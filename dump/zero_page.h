// Whether a page holds only zeros: such pages are left out of the stream (pages.cc, and the
// pre-copy rounds of precopy.cc), restore leaving them as the kernel's fresh zero pages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cr::dump {

inline bool page_is_zero(const uint8_t* p) {
  // Blocks of 256 bytes: a non-zero page usually stops in the first block; the OR inside a
  // block has no branch, so it vectorises.
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t b = 0; b < 4096 / 8; b += 32) {
    uint64_t acc = 0;
    for (size_t i = 0; i < 32; ++i) acc |= w[b + i];
    if (acc != 0) return false;
  }
  return true;
}

}  // namespace cr::dump
