#include "format/self_description.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>

namespace cr::format {
namespace {

TEST(SelfDescription, CompiledVmaMatchesDeclaration) {
  StreamType t = describe_compiled<schema::Vma>();
  EXPECT_EQ(t.type_id, 0x0111u);
  EXPECT_EQ(t.name, "vma");
  EXPECT_FALSE(t.has_tail);
  ASSERT_GE(t.fields.size(), 3u);
  EXPECT_EQ(t.fields[0].first, "pid");
  EXPECT_EQ(t.fields[0].second, schema::Kind::u32);
  EXPECT_EQ(fields_text(t).substr(0, 24), "pid:u32,start:u64,end:u6");
  EXPECT_TRUE(describe_compiled<schema::Pages>().has_tail);
}

TEST(SelfDescription, EveryCompiledTypeRoundTripsThroughSchemaType) {
  auto types = compiled_types();
  EXPECT_EQ(types.size(), std::tuple_size_v<schema::AllRecords>);
  std::set<uint32_t> ids;
  for (const StreamType& t : types) {
    ids.insert(t.type_id);
    auto parsed = parse_schema_type(to_schema_type(t));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->type_id, t.type_id);
    EXPECT_EQ(parsed->name, t.name);
    EXPECT_EQ(parsed->doc, t.doc);
    EXPECT_EQ(parsed->has_tail, t.has_tail);
    EXPECT_EQ(parsed->fields, t.fields);
  }
  EXPECT_EQ(ids.size(), types.size());
}

// A record declared with CR_RECORD but left out of AllRecords is written without its
// SchemaType: crit and crconvert could not walk it. Every declaration must be listed.
TEST(SelfDescription, EveryDeclaredRecordIsInAllRecords) {
  std::ifstream in(std::string(CR_SOURCE_DIR) + "/schema/records.h");
  ASSERT_TRUE(in.good());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::set<std::string> declared;
  const std::regex decl(R"re(\nCR_RECORD(?:_TAIL)?\((\w+), *0x[0-9a-fA-F]+, *"(\w+)")re");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator();
       ++it)
    declared.insert((*it)[2].str());
  std::set<std::string> listed;
  for (const StreamType& t : compiled_types()) listed.insert(t.name);
  EXPECT_EQ(declared.size(), listed.size());  // and the pattern still matches them all
  for (const std::string& name : declared)
    EXPECT_TRUE(listed.contains(name)) << name << " is declared but not in schema::AllRecords";
}

TEST(SelfDescription, ParseRejectsMalformedText) {
  schema::SchemaType st;
  st.type_id = 0x9999;
  st.name = "future";
  for (const char* bad : {"a", ":u32", "a:u33", "a:u32,", "a:u32,a:u64", "a:u32,,b:u8"}) {
    st.fields = bad;
    EXPECT_FALSE(parse_schema_type(st).ok()) << bad;
  }
  st.fields = "";
  EXPECT_TRUE(parse_schema_type(st).ok());
  st.fields = "a:u8,b:objref";
  st.has_tail = 2;
  EXPECT_FALSE(parse_schema_type(st).ok());
}

TEST(SelfDescription, WalkFieldsMatchesCodec) {
  schema::Vma v;
  v.pid = 7;
  v.start = 0x1000;
  v.end = 0x3000;
  v.path = "/bin/true";
  v.file_mtime_ns = 99;
  std::vector<uint8_t> buf;
  encode_fields(v, buf);
  buf.push_back(0xaa);  // a newer writer's appended bytes: ignored, not part of the fields
  std::vector<std::string> seen;
  auto end = walk_fields(describe_compiled<schema::Vma>(), buf, [&](const FieldView& f) {
    EXPECT_TRUE(f.present);
    if (f.name == "pid") {
      EXPECT_EQ(f.u, 7u);
    } else if (f.name == "path") {
      EXPECT_EQ(f.str(), "/bin/true");
    } else if (f.name == "file_mtime_ns") {
      EXPECT_EQ(f.u, 99u);
    }
    seen.emplace_back(f.name);
  });
  ASSERT_TRUE(end.ok()) << end.error().message;
  EXPECT_EQ(*end, buf.size() - 1);
  EXPECT_EQ(seen.size(), describe_compiled<schema::Vma>().fields.size());
}

TEST(SelfDescription, WalkFieldsShortAndOverrunPayloads) {
  StreamType t;
  t.name = "t";
  t.fields = {{"a", schema::Kind::u32},
              {"s", schema::Kind::str},
              {"l", schema::Kind::u64s},
              {"i", schema::Kind::i32}};
  // a only: the rest is absent (an older writer).
  std::vector<uint8_t> p = {1, 0, 0, 0};
  int absent = 0;
  auto r = walk_fields(t, p, [&](const FieldView& f) { absent += f.present ? 0 : 1; });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 4u);
  EXPECT_EQ(absent, 3);
  // s claims 100 bytes that are not there.
  p.insert(p.end(), {100, 0, 0, 0, 'x'});
  r = walk_fields(t, p, [](const FieldView&) {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("t.s"), std::string::npos) << r.error().message;
  // Full payload with a signed field and a u64s.
  p = {1, 0, 0, 0, 1, 0, 0, 0, 'x', 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff};
  int64_t last = 0;
  uint64_t elem = 0;
  r = walk_fields(t, p, [&](const FieldView& f) {
    if (f.name == "i") last = f.i();
    if (f.name == "l") elem = f.at(0);
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, p.size());
  EXPECT_EQ(last, -2);
  EXPECT_EQ(elem, 5u);
  // A visitor error stops the walk.
  r = walk_fields(t, p, [](const FieldView& f) -> Status {
    if (f.index == 1) return make_error("stop");
    return {};
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "stop");
}

}  // namespace
}  // namespace cr::format
