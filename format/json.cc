#include "format/json.h"

#include <unistd.h>

#include <cerrno>
#include <limits>
#include <optional>

#include "format/crc32c.h"
#include "format/record_writer.h"
#include "format/self_description.h"
#include "format/stream_format.h"
#include "format/stream_seal.h"

namespace cr::format {

using nlohmann::ordered_json;
using schema::Kind;

std::string to_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kDigits[bytes[i] >> 4];
    s[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return s;
}

bool from_hex(std::string_view hex, std::vector<uint8_t>* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  out->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    size_t n = 0;
    uint32_t cp = 0, min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = cp << 6 | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

namespace {

ordered_json field_to_json(const FieldView& f) {
  switch (f.kind) {
    case Kind::i32:
    case Kind::i64:
      return f.i();
    case Kind::str:
      if (valid_utf8(f.str())) return std::string(f.str());
      return ordered_json{{"hex", to_hex(f.bytes)}};
    case Kind::bytes:
      return to_hex(f.bytes);
    case Kind::u64s: {
      ordered_json a = ordered_json::array();
      for (size_t k = 0; k < f.count(); ++k) a.push_back(f.at(k));
      return a;
    }
    default:
      return f.u;  // u8..u64, objdef, objref
  }
}

}  // namespace

ordered_json record_to_json(const StreamType& t, std::span<const uint8_t> fields,
                            std::span<const uint8_t> tail, bool with_tail) {
  ordered_json j;
  j["type"] = t.name;
  ordered_json obj = ordered_json::object();
  auto end = walk_fields(t, fields, [&](const FieldView& f) {
    if (f.present) obj[std::string(f.name)] = field_to_json(f);
  });
  if (!end.ok()) {
    // Keep the bytes so nothing is lost, and say why they are not shown as fields.
    j["error"] = end.error().message;
    j["fields_hex"] = to_hex(fields);
  } else {
    j["fields"] = std::move(obj);
    if (*end < fields.size()) j["extra_hex"] = to_hex(fields.subspan(*end));
  }
  if (t.has_tail || !tail.empty()) {
    j["tail_len"] = tail.size();
    if (with_tail) j["tail_hex"] = to_hex(tail);
  }
  return j;
}

ordered_json unknown_record_to_json(uint32_t type_id, std::span<const uint8_t> payload) {
  return ordered_json{{"type_id", type_id}, {"payload_hex", to_hex(payload)}};
}

TypeTable::TypeTable() {
  add(describe_compiled<schema::StreamHeader>());
  add(describe_compiled<schema::SchemaType>());
  add(describe_compiled<schema::Trailer>());
  add(describe_compiled<schema::ErrorRecord>());
}

void TypeTable::add(StreamType t) {
  auto old = by_id_.find(t.type_id);
  if (old != by_id_.end()) by_name_.erase(old->second.name);
  by_name_[t.name] = t.type_id;
  by_id_[t.type_id] = std::move(t);
}

const StreamType* TypeTable::by_id(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

const StreamType* TypeTable::by_name(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : by_id(it->second);
}

namespace {

// dump() that cannot throw (a document built in memory may hold invalid UTF-8).
std::string safe_dump(const ordered_json& v) {
  std::string s = v.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

Result<std::vector<uint8_t>> hex_member(const ordered_json& j, const char* key) {
  const auto& v = j.at(key);
  std::vector<uint8_t> out;
  if (!v.is_string() || !from_hex(v.get_ref<const std::string&>(), &out))
    return make_error(std::string(key) + ": not a hex string");
  return out;
}

// Unsigned value of `v` if it is a JSON integer in [0, max].
bool get_unsigned(const ordered_json& v, uint64_t max, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
  } else {
    return false;
  }
  return *out <= max;
}

bool get_signed(const ordered_json& v, int64_t min, int64_t max, int64_t* out) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(max)) return false;
    *out = static_cast<int64_t>(v.get<uint64_t>());
    return true;
  }
  if (!v.is_number_integer()) return false;
  *out = v.get<int64_t>();
  return *out >= min && *out <= max;
}

Status encode_field(Kind kind, const ordered_json& v, std::vector<uint8_t>& out) {
  auto bad = [&](const char* want) {
    return make_error("expected " + std::string(want) + " for " +
                      std::string(schema::kind_name(kind)) + ", got " + safe_dump(v));
  };
  const int w = fixed_width(kind);
  switch (kind) {
    case Kind::i32:
    case Kind::i64: {
      int64_t x = 0;
      const bool narrow = kind == Kind::i32;
      if (!get_signed(v, narrow ? std::numeric_limits<int32_t>::min() : INT64_MIN,
                      narrow ? std::numeric_limits<int32_t>::max() : INT64_MAX, &x))
        return bad("an integer in range");
      put_le(out, static_cast<uint64_t>(x), w);
      return {};
    }
    case Kind::str: {
      std::vector<uint8_t> raw;
      if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        raw.assign(s.begin(), s.end());
      } else if (!v.is_object() || v.size() != 1 || !v.contains("hex") || !v["hex"].is_string() ||
                 !from_hex(v["hex"].get_ref<const std::string&>(), &raw)) {
        return bad("a string or {\"hex\": ...}");
      }
      put_le(out, raw.size(), 4);
      out.insert(out.end(), raw.begin(), raw.end());
      return {};
    }
    case Kind::bytes: {
      std::vector<uint8_t> raw;
      if (!v.is_string() || !from_hex(v.get_ref<const std::string&>(), &raw))
        return bad("a hex string");
      put_le(out, raw.size(), 4);
      out.insert(out.end(), raw.begin(), raw.end());
      return {};
    }
    case Kind::u64s: {
      if (!v.is_array()) return bad("an array of integers");
      put_le(out, v.size(), 4);
      for (const auto& e : v) {
        uint64_t x = 0;
        if (!get_unsigned(e, UINT64_MAX, &x)) return bad("an array of unsigned integers");
        put_le(out, x, 8);
      }
      return {};
    }
    default: {
      uint64_t x = 0;
      const uint64_t max = w == 8 ? UINT64_MAX : (uint64_t{1} << (8 * w)) - 1;
      if (!get_unsigned(v, max, &x)) return bad("an unsigned integer in range");
      put_le(out, x, w);
      return {};
    }
  }
}

Status encode_fields_json(const StreamType& t, const ordered_json& fields,
                          std::vector<uint8_t>& out) {
  if (!fields.is_object()) return make_error("\"fields\" is not an object");
  // Fields are written in description order up to the last one present: a payload may stop
  // early (older writer) but may not skip a field in the middle.
  size_t seen = 0;
  bool stopped = false;
  std::string first_missing;
  for (const auto& [name, kind] : t.fields) {
    auto it = fields.find(name);
    if (it == fields.end()) {
      if (!stopped) first_missing = name;
      stopped = true;
      continue;
    }
    if (stopped)
      return make_error("field " + first_missing + " is missing but " + name + " after it is not");
    CR_TRY_CTX(encode_field(kind, *it, out), name);
    ++seen;
  }
  if (seen != fields.size()) {
    for (const auto& [name, v] : fields.items()) {
      bool known = false;
      for (const auto& f : t.fields) known = known || f.first == name;
      if (!known) return make_error("field " + name + " is not in the description of " + t.name);
    }
  }
  return {};
}

Result<EncodedRecord> json_to_record_impl(const ordered_json& j, const TypeTable& types) {
  if (!j.is_object()) return make_error("record is not a JSON object");
  EncodedRecord rec;
  if (j.contains("type_id")) {
    uint64_t id = 0;
    if (!get_unsigned(j["type_id"], UINT32_MAX, &id)) return make_error("type_id: not a u32");
    if (!j.contains("payload_hex")) return make_error("record with type_id has no payload_hex");
    rec.type = static_cast<uint32_t>(id);
    CR_TRY_ASSIGN(rec.fields, hex_member(j, "payload_hex"));
    return rec;
  }
  if (!j.contains("type") || !j["type"].is_string()) return make_error("record has no \"type\"");
  const std::string& name = j["type"].get_ref<const std::string&>();
  const StreamType* t = types.by_name(name);
  if (t == nullptr) return make_error("type " + name + " is not described by the stream");
  rec.type = t->type_id;
  if (j.contains("fields_hex")) {
    CR_TRY_ASSIGN(rec.fields, hex_member(j, "fields_hex"));
  } else {
    if (!j.contains("fields")) return make_error(name + ": no \"fields\"");
    CR_TRY_CTX(encode_fields_json(*t, j["fields"], rec.fields), name);
    if (j.contains("extra_hex")) {
      std::vector<uint8_t> extra;
      CR_TRY_ASSIGN(extra, hex_member(j, "extra_hex"));
      rec.fields.insert(rec.fields.end(), extra.begin(), extra.end());
    }
  }
  if (j.contains("tail_hex")) {
    CR_TRY_ASSIGN(rec.tail, hex_member(j, "tail_hex"));
    if (j.contains("tail_len") && j["tail_len"] != rec.tail.size())
      return make_error(name + ": tail_len " + safe_dump(j["tail_len"]) + " but tail_hex holds " +
                        std::to_string(rec.tail.size()) + " bytes");
  } else if (j.contains("tail_len")) {
    uint64_t len = 0;
    if (!get_unsigned(j["tail_len"], UINT32_MAX, &len)) return make_error("tail_len: not a u32");
    if (len > 0)
      return make_error(name + ": its " + std::to_string(len) +
                        "-byte tail is not in the JSON (decode with --pages to include tails)");
  }
  return rec;
}

}  // namespace

Result<EncodedRecord> json_to_record(const ordered_json& j, const TypeTable& types) {
  return json_to_record_impl(j, types);
}

namespace detail {

// The framing of records into stream bytes (format/stream_format.h), kept in this one class so
// it can give way to a framing writer from the format module: RecordWriter writes its own
// prefix and self-description, while encode must reproduce the image's (version, flags, the
// schema_type records as they were).
class FrameSink {
 public:
  FrameSink(int fd, uint32_t version, uint32_t flags)
      : fd_(fd), version_(version), flags_(flags), checksums_((flags & kFlagNoChecksums) == 0) {}

  Status prefix() {
    const auto p = make_prefix(version_, flags_);
    stream_crc_ = crc32c(p.data(), p.size());
    CR_TRY_ASSIGN(auto chain, SealChain::create());
    seal_.emplace(std::move(chain));
    seal_->prefix(p);
    return emit(p);
  }

  Status record(uint32_t type, std::span<const uint8_t> fields, std::span<const uint8_t> tail) {
    const uint64_t length = fields.size() + tail.size();
    if (length > kMaxRecordPayload)
      return make_error("payload of " + std::to_string(length) + " bytes is over the cap of " +
                        std::to_string(kMaxRecordPayload));
    const uint32_t crc = crc32c_extend(crc32c(fields), tail.data(), tail.size());
    const auto h = make_record_header(type, static_cast<uint32_t>(length), crc, checksums_);
    // The trailer's chained checksum covers every record header before it.
    if (type != schema::Trailer::kType && checksums_)
      stream_crc_ = crc32c_extend(stream_crc_, h.data(), h.size());
    if (type != schema::Trailer::kType && type != schema::StreamSeal::kType)
      seal_->record(seal_->byte_count(), type, static_cast<uint32_t>(length), checksums_ ? crc : 0);
    ++records_;
    CR_TRY(emit(h));
    CR_TRY(emit(fields));
    return emit(tail);
  }

  /// Fields of the seal for what has been written so far (unsigned: crit cannot sign).
  Result<schema::StreamSeal> seal() { return seal_->seal(checksums_); }

  /// Fields of the trailer for what has been written so far.
  schema::Trailer trailer() const {
    schema::Trailer t;
    t.record_count = records_;
    t.stream_crc = checksums_ ? stream_crc_ : 0;
    return t;
  }

  Status flush() {
    const uint8_t* p = buf_.data();
    size_t n = buf_.size();
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return errno_error("write");
      p += w;
      n -= static_cast<size_t>(w);
    }
    buf_.clear();
    return {};
  }

 private:
  Status emit(std::span<const uint8_t> bytes) {
    seal_->bytes(bytes);
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    if (buf_.size() >= (1u << 20)) return flush();
    return {};
  }

  int fd_;
  uint32_t version_, flags_;
  bool checksums_;
  uint32_t stream_crc_ = 0;
  std::optional<SealChain> seal_;
  uint64_t records_ = 0;
  std::vector<uint8_t> buf_;
};

}  // namespace detail

using detail::FrameSink;

namespace {

Result<uint32_t> u32_member(const ordered_json& doc, const char* key, uint32_t dflt) {
  auto it = doc.find(key);
  if (it == doc.end()) return dflt;
  uint64_t v = 0;
  if (!get_unsigned(*it, UINT32_MAX, &v)) return make_error(std::string(key) + ": not a u32");
  return static_cast<uint32_t>(v);
}

}  // namespace

Status stream_to_json(RecordReader& reader, bool with_tails, std::ostream& out) {
  // Written piece by piece, so memory stays one record whatever the image size.
  ordered_json head;
  head["format_version"] = reader.format_version();
  // The reader does not expose the prefix flags yet; the only flag (no checksums) makes a
  // checksum-verifying reader refuse the stream, so every stream that gets here has flags 0.
  head["flags"] = 0;
  std::string text = head.dump();
  text.pop_back();  // reopen the object for "records"
  out << text << ",\"records\":[";
  bool first = true;
  for (;;) {
    auto more = reader.next();
    if (!more.ok()) return std::move(more).error();
    if (!*more) break;
    const StreamType* t = reader.describe(reader.type());
    // A big tail goes straight to the output as hex: through dump() it would be escaped and
    // scanned byte by byte. The text is the same as record_to_json(..., with_tails) gives.
    const bool splice_tail = t != nullptr && with_tails && !reader.tail().empty();
    ordered_json j = t != nullptr ? record_to_json(*t, reader.fields(), reader.tail(),
                                                   with_tails && !splice_tail)
                                  : unknown_record_to_json(reader.type(), reader.payload());
    std::string text = j.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
    out << (first ? "\n" : ",\n");
    if (splice_tail) {
      text.pop_back();  // the closing brace
      out << text << ",\"tail_hex\":\"" << to_hex(reader.tail()) << "\"}";
    } else {
      out << text;
    }
    first = false;
  }
  out << "\n]}\n";
  out.flush();
  if (!out) return make_error("writing JSON failed");
  return {};
}

JsonStreamEncoder::JsonStreamEncoder(int fd) : fd_(fd) {}
JsonStreamEncoder::~JsonStreamEncoder() = default;

Status JsonStreamEncoder::begin(uint32_t format_version, uint32_t flags) {
  if (sink_) return make_error("JSON: stream already begun");
  sink_ = std::make_unique<FrameSink>(fd_, format_version, flags);
  return sink_->prefix();
}

Status JsonStreamEncoder::add(const ordered_json& j) {
  if (!sink_) CR_TRY(begin(kFormatVersion, 0));
  const std::string where = "JSON record " + std::to_string(index_++);
  if (ended_) return make_error(where + ": records after the trailer or error record");
  auto rec = json_to_record(j, types_);
  if (!rec.ok()) return std::move(rec).error().wrap(where);
  if (rec->type == schema::SchemaType::kType) {
    // The stream describes itself: later records are encoded by this description. The
    // bookkeeping types keep their frozen layouts, as the reader does.
    auto st = decode_fields<schema::SchemaType>(rec->fields);
    if (!st.ok()) return std::move(st).error().wrap(where);
    auto parsed = parse_schema_type(*st);
    if (!parsed.ok()) return std::move(parsed).error().wrap(where);
    if (parsed->type_id == schema::StreamSeal::kType) seal_described_ = true;
    if (parsed->type_id > schema::ErrorRecord::kType) types_.add(std::move(parsed).value());
  }
  if (rec->type == schema::StreamSeal::kType) {
    // Recomputed like the trailer (without a MAC: a signed image edited here is no longer signed).
    if (sealed_) return make_error(where + ": a second stream seal");
    CR_TRY_ASSIGN(auto seal, sink_->seal());
    rec->fields.clear();
    rec->tail.clear();
    encode_fields(seal, rec->fields);
    sealed_ = true;
  }
  if (rec->type == schema::Trailer::kType) {
    if (seal_described_ && !sealed_) CR_TRY_CTX(write_seal(), where);
    // Checksums of what precedes it: recomputed, so an edited JSON still gives a valid image.
    rec->fields.clear();
    encode_fields(sink_->trailer(), rec->fields);
    ended_ = true;
  }
  if (rec->type == schema::ErrorRecord::kType) ended_ = true;
  CR_TRY_CTX(sink_->record(rec->type, rec->fields, rec->tail), where);
  return {};
}

Status JsonStreamEncoder::write_seal() {
  CR_TRY_ASSIGN(auto seal, sink_->seal());
  std::vector<uint8_t> fields;
  encode_fields(seal, fields);
  sealed_ = true;
  return sink_->record(schema::StreamSeal::kType, fields, {});
}

Status JsonStreamEncoder::finish() {
  if (!sink_) CR_TRY(begin(kFormatVersion, 0));
  if (!ended_) {
    // A hand-written document may leave the trailer out.
    if (seal_described_ && !sealed_) CR_TRY(write_seal());
    std::vector<uint8_t> fields;
    encode_fields(sink_->trailer(), fields);
    CR_TRY(sink_->record(schema::Trailer::kType, fields, {}));
    ended_ = true;
  }
  return sink_->flush();
}

Result<std::pair<uint32_t, uint32_t>> stream_values(const ordered_json& doc) {
  if (!doc.is_object()) return make_error("JSON: the document is not an object");
  CR_TRY_ASSIGN(uint32_t version, u32_member(doc, "format_version", kFormatVersion));
  CR_TRY_ASSIGN(uint32_t flags, u32_member(doc, "flags", 0));
  return std::make_pair(version, flags);
}

Status json_to_stream(const ordered_json& doc, int fd) {
  CR_TRY_ASSIGN(auto values, stream_values(doc));
  auto records = doc.find("records");
  if (records == doc.end() || !records->is_array()) return make_error("JSON: no \"records\" array");
  JsonStreamEncoder enc(fd);
  CR_TRY(enc.begin(values.first, values.second));
  for (const auto& j : *records) CR_TRY(enc.add(j));
  return enc.finish();
}

}  // namespace cr::format
