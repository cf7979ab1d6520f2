// Three-stream CRC32C. The crc32 instruction has a latency of ~3 cycles and a throughput of one
// per cycle, so one dependency chain runs at a third of the possible speed. We split a block
// into three equal parts A, B, C, run a chain over each (B and C starting from 0), and join:
//   crc(A||B||C) = shift(shift(crcA, |B|) ^ crcB, |C|) ^ crcC
// where shift(c, n) appends n zero bytes to the raw CRC state: a linear map on 32 bits that we
// tabulate once per part length (4 x 256 entries, one per byte of the state).
#include "format/crc32c.h"

#include <nmmintrin.h>
#include <wmmintrin.h>

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

// Folding with carry-less multiplication. On this machine's AMD cores the crc32 instruction
// retires about one per three cycles whatever the number of chains (~6 GB/s), while pclmul
// folds 64 bytes per few cycles. Four 128-bit accumulators walk the buffer; each step moves an
// accumulator X = H·x^64 + L (H = its first 8 bytes: reflected order puts the highest degree
// first) forward by F bits: X·x^F ≡ H·(x^(64+F) mod P) + L·(x^F mod P). A carry-less product of
// two reflected values is the reflected product times x, hence the exponents below are one less.
// What is left after folding is a 16-byte block congruent to the message, whose raw CRC the
// crc32 instruction finishes.

// x^n mod P in the normal (non-reflected) representation, Castagnoli polynomial.
uint32_t xpow_mod(size_t n) {
  uint64_t r = 1;
  for (size_t i = 0; i < n; ++i) {
    r <<= 1;
    if (r & (uint64_t{1} << 32)) r ^= (uint64_t{1} << 32) | 0x1EDC6F41u;
  }
  return static_cast<uint32_t>(r);
}

// A polynomial of degree < 32 laid out as a reflected 64-bit operand (x^d at bit 63 - d).
uint64_t reflect64(uint32_t poly) {
  uint64_t out = 0;
  for (int d = 0; d < 32; ++d)
    if (poly & (1u << d)) out |= uint64_t{1} << (63 - d);
  return out;
}

// Constants to move an accumulator forward by `bits`: qword 0 multiplies H, qword 1 multiplies L.
__m128i fold_constants(size_t bits) {
  return _mm_set_epi64x(static_cast<long long>(reflect64(xpow_mod(bits - 1))),
                        static_cast<long long>(reflect64(xpow_mod(64 + bits - 1))));
}

struct FoldConstants {
  __m128i by512 = fold_constants(512), by384 = fold_constants(384), by256 = fold_constants(256),
          by128 = fold_constants(128);
};

const FoldConstants& fold_k() {
  static const FoldConstants k;
  return k;
}

inline __m128i fold(__m128i x, __m128i k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

inline __m128i load128(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Raw CRC state over `blocks` 64-byte blocks (blocks >= 1).
uint32_t fold_blocks(uint32_t state, const uint8_t* p, size_t blocks) {
  const FoldConstants& k = fold_k();
  __m128i x0 = _mm_xor_si128(load128(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x1 = load128(p + 16), x2 = load128(p + 32), x3 = load128(p + 48);
  for (size_t b = 1; b < blocks; ++b) {
    p += 64;
    x0 = _mm_xor_si128(fold(x0, k.by512), load128(p));
    x1 = _mm_xor_si128(fold(x1, k.by512), load128(p + 16));
    x2 = _mm_xor_si128(fold(x2, k.by512), load128(p + 32));
    x3 = _mm_xor_si128(fold(x3, k.by512), load128(p + 48));
  }
  __m128i x = _mm_xor_si128(_mm_xor_si128(fold(x0, k.by384), fold(x1, k.by256)),
                            _mm_xor_si128(fold(x2, k.by128), x3));
  uint8_t last[16];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(last), x);
  return raw_crc(0, last, 16);
}

bool have_pclmul() {
  static const bool yes = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.2");
  return yes;
}

}  // namespace

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  if (n >= 256 && have_pclmul()) {
    const size_t blocks = n / 64;
    c = fold_blocks(c, p, blocks);
    p += blocks * 64;
    n -= blocks * 64;
  } else if (n >= 3 * kShortPart) {
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

namespace {

// a·b mod P, both reflected (x^0 at bit 31): b is multiplied by x (a right shift, reduced) as
// the bits of a are walked from x^0 up.
uint32_t mul_mod(uint32_t a, uint32_t b) {
  uint32_t prod = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if (a & m) prod ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
  }
  return prod;
}

// x^(8·len) mod P, reflected, from x^(2^k) for the set bits of 8·len.
uint32_t x_pow_bytes(uint64_t len) {
  static const std::array<uint32_t, 64> x2k = [] {
    std::array<uint32_t, 64> t{};
    t[0] = 1u << 30;  // x^1
    for (size_t k = 1; k < t.size(); ++k) t[k] = mul_mod(t[k - 1], t[k - 1]);
    return t;
  }();
  uint32_t r = 1u << 31;  // x^0
  for (size_t k = 3; len != 0; len >>= 1, ++k)
    if (len & 1) r = mul_mod(r, x2k[k]);
  return r;
}

}  // namespace

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  // The pre and post inversions of A's and B's CRCs cancel out: CRC(A||B) is CRC(A) moved past
  // len_b zero bytes (times x^(8·len_b)), plus CRC(B).
  return mul_mod(x_pow_bytes(len_b), crc_a) ^ crc_b;
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
