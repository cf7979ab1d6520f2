// Field codec: turns a schema record (schema/records.h) into payload bytes and back.
//
// Payload layout: the record's fields in declaration order, each little-endian:
//   u8/u16/u32/u64/i32/i64 : 1/2/4/8/4/8 bytes
//   str, bytes             : le32 length, then the bytes
//   u64s                   : le32 count, then count * le64
//   objdef, objref         : le32 id
// then, for CR_RECORD_TAIL types, the raw tail up to the end of the payload.
// A payload that ends before all fields were read leaves the remaining fields zero (an older
// writer that did not know them); extra bytes after the known fields of a non-tail record are
// ignored (a newer writer's appended fields).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "schema/describe.h"

namespace cr::format {

// Explicit little-endian helpers (x86_64 is LE, but the format says LE, so we say it too).
inline void put_le(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

/// Size in bytes of a fixed-width kind, 0 for variable-length ones.
constexpr int fixed_width(schema::Kind k) {
  switch (k) {
    case schema::Kind::u8: return 1;
    case schema::Kind::u16: return 2;
    case schema::Kind::u32:
    case schema::Kind::i32:
    case schema::Kind::objdef:
    case schema::Kind::objref: return 4;
    case schema::Kind::u64:
    case schema::Kind::i64: return 8;
    default: return 0;
  }
}

namespace detail {

struct Encoder {
  std::vector<uint8_t>& out;
  template <class T>
  void operator()(schema::Kind k, std::string_view, const T& field) {
    if constexpr (std::is_integral_v<T>) {
      put_le(out, static_cast<uint64_t>(field), fixed_width(k));
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<uint8_t>>) {
      put_le(out, field.size(), 4);
      out.insert(out.end(), field.begin(), field.end());
    } else {
      static_assert(std::is_same_v<T, std::vector<uint64_t>>);
      put_le(out, field.size(), 4);
      for (uint64_t x : field) put_le(out, x, 8);
    }
  }
};

struct Decoder {
  std::span<const uint8_t> in;
  size_t pos = 0;
  bool ended = false;  // payload ended before this field: leave the rest zero
  std::string error;   // a field that starts but does not fit is an error

  bool take(size_t n, const uint8_t** p) {
    if (n > in.size() - pos) {
      error = "field runs past the end of the record (needs " + std::to_string(n) + " bytes at +" +
              std::to_string(pos) + ", record has " + std::to_string(in.size()) + ")";
      return false;
    }
    *p = in.data() + pos;
    pos += n;
    return true;
  }

  template <class T>
  void operator()(schema::Kind k, std::string_view name, T& field) {
    if (ended || !error.empty()) return;
    if (pos == in.size()) {
      ended = true;
      return;
    }
    const uint8_t* p = nullptr;
    if constexpr (std::is_integral_v<T>) {
      if (!take(fixed_width(k), &p)) return error.insert(0, std::string(name) + ": "), void();
      field = static_cast<T>(get_le(p, fixed_width(k)));
    } else {
      if (!take(4, &p)) return error.insert(0, std::string(name) + ": "), void();
      uint64_t n = get_le(p, 4);
      if constexpr (std::is_same_v<T, std::vector<uint64_t>>) {
        if (!take(n * 8, &p)) return error.insert(0, std::string(name) + ": "), void();
        field.resize(n);
        for (uint64_t i = 0; i < n; ++i) field[i] = get_le(p + 8 * i, 8);
      } else {
        if (!take(n, &p)) return error.insert(0, std::string(name) + ": "), void();
        field.assign(p, p + n);
      }
    }
  }
};

}  // namespace detail

/// Appends the encoded fields of `rec` to `out` (no tail, no header).
template <class R>
void encode_fields(const R& rec, std::vector<uint8_t>& out) {
  rec.visit(detail::Encoder{out});
}

/// Decodes the fields of `R` from the start of `payload`; on success `*fields_end` is where the
/// fields stopped (the tail of a tail record starts there).
template <class R>
Result<R> decode_fields(std::span<const uint8_t> payload, size_t* fields_end = nullptr) {
  R rec{};
  detail::Decoder d{payload, 0, false, {}};
  rec.visit(d);
  if (!d.error.empty()) return make_error(std::string(R::kName) + ": " + d.error);
  if (fields_end != nullptr) *fields_end = d.pos;
  return rec;
}

}  // namespace cr::format
