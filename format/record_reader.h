// RecordReader: reads and verifies one image stream from an fd (plain or zstd, detected),
// one forward pass, bounded memory.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "format/codec.h"
#include "schema/records.h"

namespace cr::format {

struct ReaderOptions {
  /// Also stop at StreamHeader, SchemaType and Trailer records (crit wants to show them).
  bool include_bookkeeping = false;
  bool verify_checksums = true;
  /// Open streams whose format_version is newer than kFormatVersion (crit shows them as far as
  /// the self-description allows). Without it open() refuses them.
  bool allow_newer_version = false;
  /// Verify the stream's signature with this key (crrestore --verify-key): the stream must end
  /// with a seal whose HMAC-SHA256 matches, else the reader fails at the seal or the trailer.
  std::vector<uint8_t> mac_key;
  /// Records of these types whose payload is over 64 KiB leave their tail in the file, where
  /// the input is a plain (not zstd) regular file and no signature is checked: only the header
  /// and the first bytes are read (crrestore --lazy fetches the pages when they are wanted).
  /// deferred_tail() says where it is; load_tail() reads and checks it.
  std::vector<uint32_t> defer_tails;
};

/// Where a deferred record's tail is (ReaderOptions::defer_tails): `len` bytes at `offset` of
/// the input file; the whole payload (fields, then tail) must have `payload_crc`, and the
/// fields alone have `fields_crc` (so the tail's check can start from it).
struct DeferredTail {
  int fd = -1;  // the reader's input (not owned)
  uint64_t offset = 0;
  uint64_t len = 0;
  uint32_t fields_crc = 0;
  uint32_t payload_crc = 0;
  bool checksums = true;  // false: the stream has none to check
};

/// Reads a deferred tail (`d.len` bytes at `d.offset` of `d.fd`) into `dst` (d.len bytes) and
/// checks the record's checksum over its fields and these bytes. Errors name the file offset.
Status read_deferred_tail(const DeferredTail& d, uint8_t* dst);

/// One record type as the stream describes itself (from its SchemaType records).
struct StreamType {
  uint32_t type_id = 0;
  std::string name, doc;
  std::vector<std::pair<std::string, schema::Kind>> fields;
  bool has_tail = false;
};

class RecordReader {
 public:
  /// Reads the prefix, the StreamHeader and the self-description. The fd is not owned.
  /// The current record's spans stay valid until the next call to next().
  static Result<std::unique_ptr<RecordReader>> open(int fd, const ReaderOptions& opts = {});
  virtual ~RecordReader() = default;

  /// Advances to the next record. Returns false once a verified Trailer has been read (the
  /// stream is complete and intact). Errors name the byte offset: a checksum mismatch, a
  /// truncated stream, a length over the cap, a forward objref, or an ErrorRecord
  /// ("image incomplete: <message>"). Records of types the stream describes but this build
  /// does not know are returned too (type() tells); callers skip what they do not know.
  virtual Result<bool> next() = 0;

  virtual uint32_t type() const = 0;
  /// Offset of the current record's header in the uncompressed stream.
  virtual uint64_t offset() const = 0;
  /// The current record's payload: fields then tail.
  virtual std::span<const uint8_t> payload() const = 0;
  /// The current record's fields only (as the writer's description lays them out).
  virtual std::span<const uint8_t> fields() const = 0;
  /// The current record's tail (empty for records without one).
  virtual std::span<const uint8_t> tail() const = 0;

  /// Decodes the current record as `R` (its type must be R::kType).
  template <class R>
  Result<R> decode() const {
    if (type() != R::kType)
      return make_error("record at offset " + std::to_string(offset()) + " is type " +
                        std::to_string(type()) + ", expected " + std::string(R::kName));
    auto r = decode_fields<R>(fields());
    if (!r.ok()) return std::move(r).error().wrap("offset " + std::to_string(offset()));
    return r;
  }

  virtual const schema::StreamHeader& header() const = 0;
  virtual uint32_t format_version() const = 0;
  /// The stream's own description of its record types (by type id), for generic decoding.
  virtual const StreamType* describe(uint32_t type_id) const = 0;
  /// The type ids the stream describes, in the order of its SchemaType records.
  virtual std::vector<uint32_t> described_types() const { return {}; }

  /// Bytes of buffer memory the reader holds (input, decompression), for memory-bound tests.
  virtual size_t buffer_capacity() const { return 0; }
  /// Records read so far, bookkeeping included (the Trailer's record_count counts the same).
  virtual uint64_t records_read() const { return 0; }
  /// Keeps the current record's payload valid after next(), for as long as the returned token
  /// lives (another thread may read it meanwhile: crrestore places pages while the next record
  /// is read and checked). Null where the reader cannot: the caller copies or uses it at once.
  virtual std::shared_ptr<const void> hold() const { return nullptr; }
  /// Reads all of the rest of the input into memory now (at most `max_bytes` of it, else an
  /// error); the records are then returned from there. For crrestore of a live update, whose
  /// processes may only be made once the writer has finished (it kills the tree first).
  virtual Status read_to_end(uint64_t max_bytes) {
    (void)max_bytes;
    return make_error("this reader cannot read ahead");
  }
  /// Puts the current record back: the next call to next() returns it again (crrestore looks
  /// at the first record before it decides where the restore runs).
  virtual void unread() = 0;
  /// The current record's tail is still in the file (ReaderOptions::defer_tails): where.
  virtual std::optional<DeferredTail> deferred_tail() const { return std::nullopt; }
  /// Reads a deferred tail now and checks the payload's checksum; tail() and payload() are
  /// then whole (hold() is null for it). Nothing for a record read whole.
  virtual Status load_tail() { return {}; }
};

}  // namespace cr::format
