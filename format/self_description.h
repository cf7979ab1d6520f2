// Self-description: every stream starts with one SchemaType record per record type its writer
// knew ("name:kind,name:kind,..."). This header turns compiled record types into that
// description, parses it back, and walks a payload's fields using only the description, so
// generic code (objref checks, the fields/tail split, JSON, crit) works on types this build
// has never seen.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/result.h"
#include "format/codec.h"
#include "format/record_reader.h"
#include "schema/records.h"

namespace cr::format {

namespace detail {
struct DescribeVisitor {
  std::vector<std::pair<std::string, schema::Kind>>& fields;
  template <class T>
  void operator()(schema::Kind k, std::string_view name, const T&) {
    fields.emplace_back(std::string(name), k);
  }
};
}  // namespace detail

/// The description of compiled record type `R`, as a writer of this build puts it in a stream.
template <class R>
StreamType describe_compiled() {
  StreamType t;
  t.type_id = R::kType;
  t.name = std::string(R::kName);
  t.doc = std::string(R::kDoc);
  t.has_tail = R::kHasTail;
  const R rec{};
  rec.visit(detail::DescribeVisitor{t.fields});
  return t;
}

/// Every record type in schema::AllRecords, in catalogue order.
std::vector<StreamType> compiled_types();

/// "name:kind,name:kind" (the SchemaType.fields text). Empty for a type without fields.
std::string fields_text(const StreamType& t);

/// Parses a SchemaType record into a StreamType. Rejects unknown kinds, empty or duplicate
/// field names and malformed text ("name:kind" pairs separated by commas).
Result<StreamType> parse_schema_type(const schema::SchemaType& st);

/// The SchemaType record describing `t` (what the writer emits).
schema::SchemaType to_schema_type(const StreamType& t);

/// Kind from its name ("u64" -> Kind::u64); false if the name is unknown.
bool kind_from_name(std::string_view name, schema::Kind* out);

/// One field of a payload, as walk_fields() hands it to its visitor.
struct FieldView {
  size_t index = 0;       // position in the description
  std::string_view name;  // from the description
  schema::Kind kind{};
  bool present = false;  // false: the payload ended before this field (reads as zero)
  size_t offset = 0;     // where the field starts in the payload (payload size if absent)
  uint64_t u = 0;        // fixed-width kinds: the value, zero-extended (i32/i64: see i());
                         // str/bytes: the length; u64s: the count
  std::span<const uint8_t> bytes;  // str/bytes: the bytes; u64s: count * 8 raw LE bytes

  /// Signed value of an i32/i64 field (sign-extended), or `u` for other kinds.
  int64_t i() const {
    if (kind == schema::Kind::i32) return static_cast<int32_t>(static_cast<uint32_t>(u));
    return static_cast<int64_t>(u);
  }
  std::string_view str() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  /// u64s: number of elements and element `k`.
  size_t count() const { return bytes.size() / 8; }
  uint64_t at(size_t k) const { return get_le(bytes.data() + 8 * k, 8); }
};

/// Walks the fields of `payload` as `type` describes them, calling `visit(const FieldView&)`
/// once per described field, in order. The visitor may return void or Status (an error stops
/// the walk and is returned). Returns where the fields end, i.e. where the tail of a tail
/// record starts. A payload that ends between fields leaves the rest absent (present = false),
/// as the codec does; a field that starts but does not fit is an error.
template <class Visitor>
Result<size_t> walk_fields(const StreamType& type, std::span<const uint8_t> payload,
                           Visitor&& visit) {
  size_t pos = 0;
  bool ended = false;
  for (size_t i = 0; i < type.fields.size(); ++i) {
    FieldView f;
    f.index = i;
    f.name = type.fields[i].first;
    f.kind = type.fields[i].second;
    f.offset = pos;
    if (!ended && pos == payload.size()) ended = true;
    if (!ended) {
      f.present = true;
      const size_t left = payload.size() - pos;
      auto overrun = [&](size_t need) {
        return make_error(type.name + "." + std::string(f.name) +
                          ": field runs past the end of the record (needs " + std::to_string(need) +
                          " bytes at +" + std::to_string(pos) + ", record has " +
                          std::to_string(payload.size()) + ")");
      };
      const int w = fixed_width(f.kind);
      if (w > 0) {
        if (left < static_cast<size_t>(w)) return overrun(w);
        f.u = get_le(payload.data() + pos, w);
        pos += w;
      } else {
        if (left < 4) return overrun(4);
        const uint64_t n = get_le(payload.data() + pos, 4);
        const uint64_t len = f.kind == schema::Kind::u64s ? n * 8 : n;
        if (len > left - 4) return overrun(4 + len);
        f.u = n;
        f.bytes = payload.subspan(pos + 4, len);
        pos += 4 + len;
      }
    } else {
      f.offset = payload.size();
    }
    if constexpr (std::is_void_v<decltype(visit(f))>) {
      visit(f);
    } else {
      auto st = visit(f);
      if (!st.ok()) return std::move(st).error();
    }
  }
  return pos;
}

}  // namespace cr::format
