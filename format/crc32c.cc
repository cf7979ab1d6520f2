// Three-stream CRC32C. The crc32 instruction has a latency of ~3 cycles and a throughput of one
// per cycle, so one dependency chain runs at a third of the possible speed. We split a block
// into three equal parts A, B, C, run a chain over each (B and C starting from 0), and join:
//   crc(A||B||C) = shift(shift(crcA, |B|) ^ crcB, |C|) ^ crcC
// where shift(c, n) appends n zero bytes to the raw CRC state: a linear map on 32 bits that we
// tabulate once per part length (4 x 256 entries, one per byte of the state).
#include "format/crc32c.h"

#include <nmmintrin.h>

#include <array>
#include <cstring>

namespace cr::format {

namespace {

constexpr uint32_t kPoly = 0x82F63B78;  // reflected Castagnoli

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Raw (no inversion) CRC state update, one chain.
uint32_t raw_crc(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, load64(p));
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --n;
  }
  return c32;
}

// shift(c, len): the raw CRC state after `len` zero bytes, as a table over each state byte.
struct ShiftTable {
  std::array<std::array<uint32_t, 256>, 4> t{};

  explicit ShiftTable(size_t len) {
    // The map is linear over GF(2): find the image of each basis bit, then tabulate bytes.
    static const std::array<uint8_t, 1 << 16> zeros{};
    uint32_t basis[32];
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t c = 1u << bit;
      size_t left = len;
      while (left > 0) {
        const size_t step = left < zeros.size() ? left : zeros.size();
        c = raw_crc(c, zeros.data(), step);
        left -= step;
      }
      basis[bit] = c;
    }
    for (int byte = 0; byte < 4; ++byte) {
      for (uint32_t v = 0; v < 256; ++v) {
        uint32_t r = 0;
        for (int b = 0; b < 8; ++b)
          if (v & (1u << b)) r ^= basis[byte * 8 + b];
        t[byte][v] = r;
      }
    }
  }

  uint32_t operator()(uint32_t c) const {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
  }
};

// Part lengths: a long one for big buffers and a short one for the rest (multiples of 8).
constexpr size_t kLongPart = 8192;
constexpr size_t kShortPart = 256;

const ShiftTable& long_shift() {
  static const ShiftTable t(kLongPart);
  return t;
}
const ShiftTable& short_shift() {
  static const ShiftTable t(kShortPart);
  return t;
}

template <size_t kPart>
uint32_t three_way(uint32_t crc, const uint8_t*& p, size_t& n, const ShiftTable& shift) {
  while (n >= 3 * kPart) {
    uint64_t a = crc, b = 0, c = 0;
    const uint8_t* pa = p;
    const uint8_t* pb = p + kPart;
    const uint8_t* pc = p + 2 * kPart;
    for (size_t i = 0; i < kPart; i += 8) {
      a = _mm_crc32_u64(a, load64(pa + i));
      b = _mm_crc32_u64(b, load64(pb + i));
      c = _mm_crc32_u64(c, load64(pc + i));
    }
    crc = shift(shift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^
          static_cast<uint32_t>(c);
    p += 3 * kPart;
    n -= 3 * kPart;
  }
  return crc;
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  if (n >= 3 * kShortPart) {
    // Align the chains to 8 bytes; loads are unaligned-safe, this just avoids split lines.
    const size_t head = (8 - (reinterpret_cast<uintptr_t>(p) & 7)) & 7;
    c = raw_crc(c, p, head);
    p += head;
    n -= head;
    if (n >= 3 * kLongPart) c = three_way<kLongPart>(c, p, n, long_shift());
    c = three_way<kShortPart>(c, p, n, short_shift());
  }
  c = raw_crc(c, p, n);
  return ~c;
}

uint32_t crc32c_reference(uint32_t crc, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1)));
  }
  return ~c;
}

}  // namespace cr::format
