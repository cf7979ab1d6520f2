// CRC32C (Castagnoli, the iSCSI/ext4 polynomial 0x1EDC6F41, reflected 0x82F63B78): the checksum
// of the image stream. Computed with the SSE4.2 crc32 instruction on three independent streams
// per block, whose partial CRCs are joined with a precomputed shift table, so a large buffer is
// checksummed at several bytes per cycle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cr::format {

/// Extends `crc` (the CRC32C of some bytes A, 0 for none) over `data`, giving CRC32C(A || data).
/// The usual pre/post inversion is applied: crc32c_extend(0, "123456789") == 0xE3069283.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);

inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }
inline uint32_t crc32c(std::span<const uint8_t> data) {
  return crc32c_extend(0, data.data(), data.size());
}

/// CRC32C(A || B) from CRC32C(A), CRC32C(B) and B's length: lets a thread that has B in its
/// cache checksum it, and another join it to what comes before.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/// Bit-at-a-time reference implementation (slow; for tests).
uint32_t crc32c_reference(uint32_t crc, const void* data, size_t n);

}  // namespace cr::format
