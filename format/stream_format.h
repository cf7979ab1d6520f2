// The framing of an image stream: the bytes around the records. docs/FORMAT.md says the same
// in prose. Every integer is little-endian, whatever the host.
//
// Stream prefix (20 bytes, offset 0):
//
//   0        8            12           16           20
//   +--------+------------+------------+------------+
//   | magic  | le32       | le32 flags | le32 CRC32C|
//   | 8 bytes| version    |            | of 0..15   |
//   +--------+------------+------------+------------+
//   magic = 89 43 52 49 4D 47 0D 0A  ("\x89CRIMG\r\n": high bit and CRLF catch text-mode damage)
//   version = kFormatVersion of the writer; flags: kFlagNoChecksums, other bits zero.
//
// Then records, back to back, each a 16-byte header and a payload:
//
//   0          4            8              12             16
//   +----------+------------+--------------+--------------+----------------------------+
//   | le32 type| le32 length| le32 CRC32C  | le32 CRC32C  | payload: `length` bytes    |
//   |          | of payload | of payload   | of bytes 0..11| fields (codec.h), then tail|
//   +----------+------------+--------------+--------------+----------------------------+
//   length <= kMaxRecordPayload. The header CRC is checked before the length is trusted.
//
// Record order: StreamHeader, then one SchemaType per record type the writer knows (the
// stream's self-description), then data records, then exactly one of
//   Trailer      (record_count = records before it; stream_crc = CRC32C over the prefix and
//                 every record header before it, chained: each header holds its payload's CRC,
//                 so this covers every byte before the trailer), or
//   ErrorRecord  (the writer failed; readers report "image incomplete: <message>").
// A plain stream is these bytes; a compressed one is a zstd frame (28 B5 2F FD ...) whose
// content is these bytes. Offsets in messages are offsets in the uncompressed bytes.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "format/codec.h"
#include "format/crc32c.h"

namespace cr::format {

/// Version of the framing and bookkeeping rules. Readers refuse newer versions unless asked.
/// 1: one process (its threads included). 2: a process tree: every Process record first, then
/// each process's Creds/Rlimits/FsInfo, the file objects, every Fd, then per process its memory
/// and its per-task records (docs/FORMAT.md). A version 1 image is a valid one-process version 2
/// image; crconvert moves between them (format/convert.cc).
inline constexpr uint32_t kFormatVersion = 2;
/// The oldest version crconvert reads.
inline constexpr uint32_t kOldestFormatVersion = 1;

inline constexpr std::array<uint8_t, 8> kStreamMagic = {0x89, 'C', 'R', 'I', 'M', 'G', '\r', '\n'};
inline constexpr std::array<uint8_t, 4> kZstdMagic = {0x28, 0xB5, 0x2F, 0xFD};
inline constexpr size_t kPrefixSize = 20;
inline constexpr size_t kRecordHeaderSize = 16;

/// Prefix flag: the writer wrote every CRC field as 0 (WriterOptions::checksums = false).
inline constexpr uint32_t kFlagNoChecksums = 1;
inline constexpr uint32_t kKnownFlags = kFlagNoChecksums;

inline void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t load_le32(const uint8_t* p) { return static_cast<uint32_t>(get_le(p, 4)); }

/// The 20-byte stream prefix.
inline std::array<uint8_t, kPrefixSize> make_prefix(uint32_t version, uint32_t flags) {
  std::array<uint8_t, kPrefixSize> p{};
  for (size_t i = 0; i < kStreamMagic.size(); ++i) p[i] = kStreamMagic[i];
  store_le32(p.data() + 8, version);
  store_le32(p.data() + 12, flags);
  store_le32(p.data() + 16, crc32c(p.data(), 16));
  return p;
}

/// One decoded record header.
struct RecordHeader {
  uint32_t type = 0, length = 0, payload_crc = 0, header_crc = 0;
};

inline std::array<uint8_t, kRecordHeaderSize> make_record_header(uint32_t type, uint32_t length,
                                                                 uint32_t payload_crc,
                                                                 bool checksums) {
  std::array<uint8_t, kRecordHeaderSize> h{};
  store_le32(h.data(), type);
  store_le32(h.data() + 4, length);
  store_le32(h.data() + 8, checksums ? payload_crc : 0);
  store_le32(h.data() + 12, checksums ? crc32c(h.data(), 12) : 0);
  return h;
}

inline RecordHeader parse_record_header(const uint8_t* p) {
  return {load_le32(p), load_le32(p + 4), load_le32(p + 8), load_le32(p + 12)};
}

}  // namespace cr::format
