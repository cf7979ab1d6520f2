// JSON <-> record, driven only by the stream's own description (StreamType), so crit can show,
// decode and re-encode records of types this build has never seen.
//
// One record:
//   {"type": "vma", "fields": {"pid": 7, "start": 4096, "path": "/bin/true", ...}}
//   {"type": "pages", "fields": {...}, "tail_len": 4096, "tail_hex": "00ff..."}
//   {"type_id": 39321, "payload_hex": "..."}          (a type the stream does not describe)
// Field kinds: integers as JSON numbers (u64 exact), str as a string when it is valid UTF-8
// else {"hex": "..."}, bytes as a hex string, u64s as an array, objdef/objref as numbers.
// Fields the description has but the payload does not hold (an older writer) are left out;
// bytes after the described fields of a record (a newer writer's appended data) are kept as
// "extra_hex" so re-encoding gives back the same bytes.
//
// A whole stream (crit decode) adds the stream-level values around the records:
//   {"format_version": 1, "flags": 0, "records": [ {stream_header}, {schema_type}..., ...,
//    {trailer} ]}
// one record per line. Encode learns each type's layout from the schema_type records before it
// (the bookkeeping types keep their frozen layouts) and recomputes every CRC and the trailer's
// values, so an unedited document gives back the same bytes and an edited one a valid image.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "format/record_reader.h"

namespace cr::format {

/// Lowercase hex of `bytes`, and its inverse (false on odd length or a non-hex digit).
std::string to_hex(std::span<const uint8_t> bytes);
bool from_hex(std::string_view hex, std::vector<uint8_t>* out);

/// True if `s` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s);

/// One described record as JSON. `fields` are the record's field bytes, `tail` its tail; the
/// tail bytes are included only with `with_tail` (its length always, for tail types). Field
/// bytes that do not parse as the description says are shown as "fields_hex" with an "error".
nlohmann::ordered_json record_to_json(const StreamType& t, std::span<const uint8_t> fields,
                                      std::span<const uint8_t> tail, bool with_tail);

/// A record of a type the stream does not describe: its id and payload.
nlohmann::ordered_json unknown_record_to_json(uint32_t type_id, std::span<const uint8_t> payload);

/// Record descriptions by id and by name, as encode learns them from the stream's own
/// schema_type records. Starts with the four bootstrap types, whose layouts are frozen.
class TypeTable {
 public:
  TypeTable();
  /// Adds or replaces the description of `t.type_id`.
  void add(StreamType t);
  const StreamType* by_id(uint32_t id) const;
  const StreamType* by_name(std::string_view name) const;

 private:
  std::map<uint32_t, StreamType> by_id_;
  std::map<std::string, uint32_t, std::less<>> by_name_;
};

/// A record encoded from JSON: its type, field bytes and tail bytes.
struct EncodedRecord {
  uint32_t type = 0;
  std::vector<uint8_t> fields;
  std::vector<uint8_t> tail;
};

/// The reverse of record_to_json / unknown_record_to_json. Fails (naming the field) on unknown
/// type names or field names, values out of range for their kind, a field missing before a
/// present one, and a tail whose bytes are not in the JSON (decoded without --pages).
Result<EncodedRecord> json_to_record(const nlohmann::ordered_json& j, const TypeTable& types);

/// Writes the whole stream behind `reader` (opened with include_bookkeeping) as JSON to `out`,
/// one record per line, without holding more than one record in memory.
Status stream_to_json(RecordReader& reader, bool with_tails, std::ostream& out);

namespace detail {
class FrameSink;
}

/// Encodes a decoded stream into an uncompressed image on `fd`, one record at a time, so a
/// caller that parses the JSON incrementally (crit encode) holds one record, not the image.
/// The schema_type records it is given describe the records after them; the trailer's values
/// and the stream seal's values are recomputed (a seal is added before the trailer when the
/// stream describes stream_seal); without a trailer record, finish() adds one.
class JsonStreamEncoder {
 public:
  explicit JsonStreamEncoder(int fd);
  ~JsonStreamEncoder();
  /// Writes the prefix. Optional: the first add() begins with the current version, no flags.
  Status begin(uint32_t format_version, uint32_t flags);
  /// Encodes and writes one element of "records".
  Status add(const nlohmann::ordered_json& record);
  /// Adds the trailer if none came, and flushes.
  Status finish();

 private:
  Status write_seal();
  int fd_;
  std::unique_ptr<detail::FrameSink> sink_;
  TypeTable types_;
  size_t index_ = 0;
  bool ended_ = false;
  bool seal_described_ = false;  // a SchemaType described stream_seal: one goes before the trailer
  bool sealed_ = false;
};

/// "format_version" and "flags" of a decoded stream (defaults: current version, 0).
Result<std::pair<uint32_t, uint32_t>> stream_values(const nlohmann::ordered_json& doc);

/// Encodes a whole document written by stream_to_json back into an uncompressed image on `fd`,
/// byte-identical to the stream it came from when unedited.
Status json_to_stream(const nlohmann::ordered_json& doc, int fd);

}  // namespace cr::format
