#include "format/self_description.h"

#include <set>

namespace cr::format {

namespace {

template <class Tuple, size_t... I>
std::vector<StreamType> describe_all(std::index_sequence<I...>) {
  return {describe_compiled<std::tuple_element_t<I, Tuple>>()...};
}

constexpr schema::Kind kAllKinds[] = {
    schema::Kind::u8,   schema::Kind::u16,    schema::Kind::u32,    schema::Kind::u64,
    schema::Kind::i32,  schema::Kind::i64,    schema::Kind::str,    schema::Kind::bytes,
    schema::Kind::u64s, schema::Kind::objdef, schema::Kind::objref,
};

}  // namespace

std::vector<StreamType> compiled_types() {
  return describe_all<schema::AllRecords>(
      std::make_index_sequence<std::tuple_size_v<schema::AllRecords>>{});
}

bool kind_from_name(std::string_view name, schema::Kind* out) {
  for (schema::Kind k : kAllKinds) {
    if (schema::kind_name(k) == name) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::string fields_text(const StreamType& t) {
  std::string s;
  for (const auto& [name, kind] : t.fields) {
    if (!s.empty()) s += ',';
    s += name;
    s += ':';
    s += schema::kind_name(kind);
  }
  return s;
}

Result<StreamType> parse_schema_type(const schema::SchemaType& st) {
  StreamType t;
  t.type_id = st.type_id;
  t.name = st.name;
  t.doc = st.doc;
  t.has_tail = st.has_tail != 0;
  auto bad = [&](const std::string& why) {
    return make_error("schema_type for type " + std::to_string(st.type_id) + " (" + st.name +
                      "): " + why);
  };
  if (st.has_tail > 1) return bad("has_tail is " + std::to_string(st.has_tail));
  std::string_view text = st.fields;
  std::set<std::string_view> seen;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (comma != std::string_view::npos && text.empty()) return bad("trailing comma");
    const size_t colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return bad("field '" + std::string(item) + "' is not name:kind");
    std::string_view name = item.substr(0, colon);
    std::string_view kind_text = item.substr(colon + 1);
    schema::Kind kind{};
    if (!kind_from_name(kind_text, &kind))
      return bad("field '" + std::string(name) + "' has unknown kind '" + std::string(kind_text) +
                 "'");
    if (!seen.insert(name).second) return bad("field '" + std::string(name) + "' twice");
    t.fields.emplace_back(std::string(name), kind);
  }
  return t;
}

schema::SchemaType to_schema_type(const StreamType& t) {
  schema::SchemaType st;
  st.type_id = t.type_id;
  st.name = t.name;
  st.doc = t.doc;
  st.fields = fields_text(t);
  st.has_tail = t.has_tail ? 1 : 0;
  return st;
}

}  // namespace cr::format
