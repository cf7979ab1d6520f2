// The machinery behind schema/records.h: one macro declares a record type once, and the
// struct, its field list (for the encoder, decoder, JSON and the stream's self-description)
// all come from that single declaration.
//
//   CR_RECORD(Vma, 0x0111, "vma", "one mapping", (u64, start), (u64, end), (str, path))
//
// expands to
//
//   struct Vma {
//     static constexpr uint32_t kType = 0x0111;
//     static constexpr std::string_view kName = "vma", kDoc = "one mapping";
//     static constexpr bool kHasTail = false;
//     uint64_t start{}; uint64_t end{}; std::string path{};
//     template <class V> void visit(V&& v);        // v(Kind::u64, "start", start); ...
//     template <class V> void visit(V&& v) const;
//   };
//
// CR_RECORD_TAIL declares a record whose payload ends with raw bytes after the fields
// (page contents, pipe data): the tail is not a member, writers and readers pass it apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cr::schema {

/// Field kinds, as written in the stream's self-description. Values are part of the format.
enum class Kind : uint8_t {
  u8 = 1,
  u16 = 2,
  u32 = 3,
  u64 = 4,
  i32 = 5,
  i64 = 6,
  str = 7,     // le32 length + bytes (UTF-8 or raw path bytes)
  bytes = 8,   // le32 length + bytes
  u64s = 9,    // le32 count + count * le64
  objdef = 10, // le32 object id, defined by this record (ids start at 1)
  objref = 11, // le32 object id, defined earlier in the stream; 0 means "none"
};

/// Name of a kind as it appears in the self-description ("u64", "str", ...).
constexpr std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::u8: return "u8";
    case Kind::u16: return "u16";
    case Kind::u32: return "u32";
    case Kind::u64: return "u64";
    case Kind::i32: return "i32";
    case Kind::i64: return "i64";
    case Kind::str: return "str";
    case Kind::bytes: return "bytes";
    case Kind::u64s: return "u64s";
    case Kind::objdef: return "objdef";
    case Kind::objref: return "objref";
  }
  return "?";
}

// C++ member type for each kind.
using u8_t = uint8_t;
using u16_t = uint16_t;
using u32_t = uint32_t;
using u64_t = uint64_t;
using i32_t = int32_t;
using i64_t = int64_t;
using str_t = std::string;
using bytes_t = std::vector<uint8_t>;
using u64s_t = std::vector<uint64_t>;
using objdef_t = uint32_t;
using objref_t = uint32_t;

}  // namespace cr::schema

// --- a FOR_EACH over variadic arguments (C++20 __VA_OPT__), up to 256 fields.
#define CR_PP_PARENS ()
#define CR_PP_EXPAND(...) CR_PP_EXPAND4(CR_PP_EXPAND4(CR_PP_EXPAND4(CR_PP_EXPAND4(__VA_ARGS__))))
#define CR_PP_EXPAND4(...) CR_PP_EXPAND3(CR_PP_EXPAND3(CR_PP_EXPAND3(CR_PP_EXPAND3(__VA_ARGS__))))
#define CR_PP_EXPAND3(...) CR_PP_EXPAND2(CR_PP_EXPAND2(CR_PP_EXPAND2(CR_PP_EXPAND2(__VA_ARGS__))))
#define CR_PP_EXPAND2(...) CR_PP_EXPAND1(CR_PP_EXPAND1(CR_PP_EXPAND1(CR_PP_EXPAND1(__VA_ARGS__))))
#define CR_PP_EXPAND1(...) __VA_ARGS__
#define CR_PP_FOR_EACH(macro, ...) __VA_OPT__(CR_PP_EXPAND(CR_PP_FOR_EACH_HELPER(macro, __VA_ARGS__)))
#define CR_PP_FOR_EACH_HELPER(macro, a1, ...) \
  macro(a1) __VA_OPT__(CR_PP_FOR_EACH_AGAIN CR_PP_PARENS(macro, __VA_ARGS__))
#define CR_PP_FOR_EACH_AGAIN() CR_PP_FOR_EACH_HELPER

#define CR_SCHEMA_MEMBER(pair) CR_SCHEMA_MEMBER_I pair
#define CR_SCHEMA_MEMBER_I(kind, name) ::cr::schema::kind##_t name{};
#define CR_SCHEMA_VISIT(pair) CR_SCHEMA_VISIT_I pair
#define CR_SCHEMA_VISIT_I(kind, name) v(::cr::schema::Kind::kind, std::string_view(#name), name);

#define CR_RECORD_IMPL(Name, id, text_name, doc, tail, ...)             \
  struct Name {                                                         \
    static constexpr uint32_t kType = id;                               \
    static constexpr std::string_view kName = text_name;                \
    static constexpr std::string_view kDoc = doc;                       \
    static constexpr bool kHasTail = tail;                              \
    CR_PP_FOR_EACH(CR_SCHEMA_MEMBER, __VA_ARGS__)                       \
    template <class V>                                                  \
    void visit(V&& v) {                                                 \
      CR_PP_FOR_EACH(CR_SCHEMA_VISIT, __VA_ARGS__)                      \
    }                                                                   \
    template <class V>                                                  \
    void visit(V&& v) const {                                           \
      CR_PP_FOR_EACH(CR_SCHEMA_VISIT, __VA_ARGS__)                      \
    }                                                                   \
    bool operator==(const Name&) const = default;                       \
  };

#define CR_RECORD(Name, id, text_name, doc, ...) CR_RECORD_IMPL(Name, id, text_name, doc, false, __VA_ARGS__)
#define CR_RECORD_TAIL(Name, id, text_name, doc, ...) CR_RECORD_IMPL(Name, id, text_name, doc, true, __VA_ARGS__)
