// RecordWriter: writes one image stream (docs/FORMAT.md) to an fd: plain or zstd, on a pipe,
// one pass, bounded memory.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "format/codec.h"
#include "format/record_reader.h"
#include "format/stream_format.h"
#include "schema/records.h"

namespace cr::format {

struct WriterOptions {
  int zstd_level = 0;     // 0: plain stream; 1..19: zstd frame at that level
  int zstd_threads = 0;   // zstd worker threads (0: compress in the calling thread)
  bool checksums = true;  // false only for benchmarks: the CRC fields are written as 0
  /// The version written in the prefix: crconvert writes older ones; everything else the
  /// current one.
  uint32_t format_version = kFormatVersion;
  /// Record types to describe besides (or instead of, for the same type_id) the compiled ones:
  /// crconvert passes through types from a newer stream, tests fake a newer writer.
  std::vector<StreamType> extra_types;
  /// If set, describe exactly these types, in this order (crconvert keeps its input's
  /// description, types the input did not describe included out); every one must be a
  /// compiled or an extra type.
  std::vector<uint32_t> describe_only;
  /// Signs the stream: its seal carries an HMAC-SHA256 with this key (crdump --sign-key).
  /// The stream must describe stream_seal (it does unless describe_only leaves it out).
  std::vector<uint8_t> mac_key;
};

class RecordWriter {
 public:
  /// Writes the stream prefix, `header` and the self-description (one SchemaType per record
  /// type in schema::AllRecords). The fd is not owned.
  static Result<std::unique_ptr<RecordWriter>> create(int fd, const WriterOptions& opts,
                                                      const schema::StreamHeader& header);
  virtual ~RecordWriter() = default;

  /// Writes one record without a tail.
  template <class R>
  Status write(const R& rec) {
    static_assert(!R::kHasTail, "use write(rec, tail) for tail records");
    scratch_.clear();
    encode_fields(rec, scratch_);
    return write_raw(R::kType, scratch_, {});
  }

  /// Writes one tail record: its fields, then `tail` (page contents, pipe bytes).
  template <class R>
  Status write(const R& rec, std::span<const uint8_t> tail) {
    static_assert(R::kHasTail, "this record type has no tail");
    scratch_.clear();
    encode_fields(rec, scratch_);
    return write_raw(R::kType, scratch_, tail);
  }

  /// The same, with CRC32C(tail) already computed (by the thread that had the tail in its
  /// cache). Only worth it where wants_tail_crc() says the stream is checksummed.
  template <class R>
  Status write(const R& rec, std::span<const uint8_t> tail, uint32_t tail_crc) {
    static_assert(R::kHasTail, "this record type has no tail");
    scratch_.clear();
    encode_fields(rec, scratch_);
    return write_raw_tail_crc(R::kType, scratch_, tail, tail_crc);
  }

  /// Whether records carry CRCs (a caller may then compute tails' CRCs ahead, elsewhere).
  virtual bool wants_tail_crc() const { return false; }

  /// write_raw() with the tail's CRC32C given; a writer without checksums ignores it.
  virtual Status write_raw_tail_crc(uint32_t type, std::span<const uint8_t> fields,
                                    std::span<const uint8_t> tail, uint32_t /*tail_crc*/) {
    return write_raw(type, fields, tail);
  }

  /// Writes one record from already-encoded fields and tail. `type` need not be known to this
  /// build (crconvert and crit encode pass records through).
  virtual Status write_raw(uint32_t type, std::span<const uint8_t> fields,
                           std::span<const uint8_t> tail) = 0;

  /// Writes the Trailer and flushes. The stream is complete after this.
  virtual Status finish() = 0;

  /// Ends the stream with an ErrorRecord carrying `message` (best effort, never throws).
  virtual void fail(std::string_view message) = 0;

  /// Bytes of uncompressed stream written so far, and records written.
  virtual uint64_t bytes_written() const = 0;
  virtual uint64_t records_written() const = 0;

  /// Bytes of buffer memory the writer holds (output and compression buffers), for tests that
  /// check memory stays bounded.
  virtual size_t buffer_capacity() const { return 0; }

 protected:
  std::vector<uint8_t> scratch_;
};

/// Largest payload (fields + tail) of one record. Writers split page runs below it.
inline constexpr uint32_t kMaxRecordPayload = 64u << 20;

/// Page runs are written in records of at most this many bytes of tail.
inline constexpr uint32_t kPagesPerRecordBytes = 1u << 20;

}  // namespace cr::format
