// format/json: record <-> JSON from the stream's own description, and whole streams.
#include "format/json.h"

#include <gtest/gtest.h>

#include <sstream>

#include "format/self_description.h"
#include "test/crit/crit_test_util.h"

namespace cr::format {
namespace {

using crit::testing::TempDir;
using nlohmann::ordered_json;

TEST(Json, HexAndUtf8) {
  const std::vector<uint8_t> b = {0x00, 0x7f, 0xff, 0x10};
  EXPECT_EQ(to_hex(b), "007fff10");
  std::vector<uint8_t> back;
  ASSERT_TRUE(from_hex("007FfF10", &back));
  EXPECT_EQ(back, b);
  EXPECT_FALSE(from_hex("abc", &back));
  EXPECT_FALSE(from_hex("zz", &back));
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // cut short
}

TEST(Json, VmaRecordShapeAndBack) {
  schema::Vma v;
  v.pid = 7, v.start = 0xffffffffffff0000ull, v.end = 0xffffffffffffffffull, v.prot = 5;
  v.path = "/usr/lib/x.so";
  std::vector<uint8_t> bytes;
  encode_fields(v, bytes);
  const StreamType t = describe_compiled<schema::Vma>();
  ordered_json j = record_to_json(t, bytes, {}, true);
  EXPECT_EQ(j["type"], "vma");
  EXPECT_EQ(j["fields"]["start"].get<uint64_t>(), 0xffffffffffff0000ull);  // exact u64
  EXPECT_EQ(j["fields"]["end"].get<uint64_t>(), 0xffffffffffffffffull);
  EXPECT_EQ(j["fields"]["path"], "/usr/lib/x.so");
  EXPECT_FALSE(j.contains("tail_len"));
  // Through text and back: the same bytes.
  TypeTable types;
  types.add(t);
  auto rec = json_to_record(ordered_json::parse(j.dump()), types);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->type, schema::Vma::kType);
  EXPECT_EQ(rec->fields, bytes);
}

TEST(Json, EveryKindRoundTrips) {
  StreamType t;
  t.type_id = 0x5000;
  t.name = "all_kinds";
  t.has_tail = true;
  using K = schema::Kind;
  t.fields = {{"a", K::u8},   {"b", K::u16},    {"c", K::u32},    {"d", K::u64},
              {"e", K::i32},  {"f", K::i64},    {"g", K::str},    {"h", K::bytes},
              {"i", K::u64s}, {"j", K::objdef}, {"k", K::objref}, {"l", K::str}};
  std::vector<uint8_t> f;
  put_le(f, 0xfe, 1);
  put_le(f, 0xfffe, 2);
  put_le(f, 0xfffffffe, 4);
  put_le(f, ~0ull, 8);
  put_le(f, static_cast<uint32_t>(-5), 4);
  put_le(f, static_cast<uint64_t>(INT64_MIN), 8);
  put_le(f, 3, 4);
  f.insert(f.end(), {'a', 0, 'b'});  // a NUL inside a JSON string
  put_le(f, 2, 4);
  f.insert(f.end(), {0xde, 0xad});
  put_le(f, 2, 4);
  put_le(f, 1, 8);
  put_le(f, ~0ull, 8);
  put_le(f, 9, 4);
  put_le(f, 0, 4);
  put_le(f, 2, 4);
  f.insert(f.end(), {0xc3, 0x28});  // invalid UTF-8
  const std::vector<uint8_t> tail = {1, 2, 3};
  ordered_json j = record_to_json(t, f, tail, true);
  EXPECT_EQ(j["fields"]["e"], -5);
  EXPECT_EQ(j["fields"]["f"], INT64_MIN);
  EXPECT_EQ(j["fields"]["h"], "dead");
  EXPECT_EQ(j["fields"]["l"]["hex"], "c328");
  EXPECT_EQ(j["tail_len"], 3);
  EXPECT_EQ(j["tail_hex"], "010203");
  TypeTable types;
  types.add(t);
  auto rec = json_to_record(ordered_json::parse(j.dump()), types);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  EXPECT_EQ(rec->fields, f);
  EXPECT_EQ(rec->tail, tail);

  // Without the tail bytes, encode refuses and says why.
  ordered_json no_tail = record_to_json(t, f, tail, false);
  EXPECT_FALSE(no_tail.contains("tail_hex"));
  auto refused = json_to_record(no_tail, types);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--pages"), std::string::npos);
}

TEST(Json, ShortPayloadOmitsFieldsAndExtraBytesAreKept) {
  const StreamType t = describe_compiled<schema::Fd>();
  std::vector<uint8_t> older;  // an older writer: only pid and fd
  put_le(older, 1, 4);
  put_le(older, 2, 4);
  ordered_json j = record_to_json(t, older, {}, false);
  EXPECT_EQ(j["fields"].size(), 2u);
  EXPECT_FALSE(j["fields"].contains("file"));
  TypeTable types;
  types.add(t);
  auto back = json_to_record(j, types);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->fields, older);

  std::vector<uint8_t> newer = older;  // a newer writer appended bytes we cannot name
  put_le(newer, 3, 4);
  put_le(newer, 0, 4);
  newer.push_back(0x99);
  j = record_to_json(t, newer, {}, false);
  EXPECT_EQ(j["extra_hex"], "99");
  back = json_to_record(j, types);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->fields, newer);
}

TEST(Json, EncodeRejectsBadValues) {
  TypeTable types;
  types.add(describe_compiled<schema::Fd>());
  auto bad = [&](const char* text) {
    auto r = json_to_record(ordered_json::parse(text), types);
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(bad(R"({"type":"fd","fields":{"pid":4294967296}})").find("pid"), std::string::npos);
  EXPECT_NE(bad(R"({"type":"fd","fields":{"pid":-1}})").find("pid"), std::string::npos);
  EXPECT_NE(bad(R"({"type":"fd","fields":{"pid":1,"bogus":2}})").find("bogus"), std::string::npos);
  EXPECT_NE(bad(R"({"type":"fd","fields":{"pid":1,"file":2}})").find("missing"), std::string::npos);
  EXPECT_NE(bad(R"({"type":"nosuch","fields":{}})").find("nosuch"), std::string::npos);
  EXPECT_EQ(bad(R"({"type":"fd","fields":{"pid":1}})"), "");
}

TEST(Json, StreamRoundTripInProcess) {
  TempDir dir;
  crit::testing::ImageOptions o;
  o.unknown_types = true;
  crit::testing::write_test_image(dir / "img", o);
  const auto original = crit::testing::read_file(dir / "img");

  ScopedFd in(::open((dir / "img").c_str(), O_RDONLY | O_CLOEXEC));
  ReaderOptions ro;
  ro.include_bookkeeping = true;
  auto r = RecordReader::open(in.get(), ro);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::stringstream text;
  ASSERT_TRUE(stream_to_json(**r, true, text).ok());
  ordered_json doc = ordered_json::parse(text.str());
  EXPECT_EQ(doc["format_version"], kFormatVersion);
  EXPECT_EQ(doc["records"][0]["type"], "stream_header");
  EXPECT_EQ(doc["records"].back()["type"], "trailer");

  ScopedFd out(::open((dir / "again").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  ASSERT_TRUE(json_to_stream(doc, out.get()).ok());
  EXPECT_EQ(crit::testing::read_file(dir / "again"), original);
}

TEST(Json, EditedJsonGetsFreshChecksums) {
  TempDir dir;
  crit::testing::write_test_image(dir / "img");
  ScopedFd in(::open((dir / "img").c_str(), O_RDONLY | O_CLOEXEC));
  ReaderOptions ro;
  ro.include_bookkeeping = true;
  auto r = RecordReader::open(in.get(), ro);
  ASSERT_TRUE(r.ok());
  std::stringstream text;
  ASSERT_TRUE(stream_to_json(**r, true, text).ok());
  ordered_json doc = ordered_json::parse(text.str());
  for (auto& rec : doc["records"])
    if (rec["type"] == "process") rec["fields"]["comm"] = "renamed";
  {
    ScopedFd out(::open((dir / "edited").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ASSERT_TRUE(json_to_stream(doc, out.get()).ok());
  }
  // The edited image verifies, and carries the edit.
  ScopedFd e(::open((dir / "edited").c_str(), O_RDONLY | O_CLOEXEC));
  auto er = RecordReader::open(e.get());
  ASSERT_TRUE(er.ok()) << er.error().message;
  bool seen = false;
  for (;;) {
    auto more = (*er)->next();
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!*more) break;
    if ((*er)->type() == schema::Process::kType) {
      auto p = (*er)->decode<schema::Process>();
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(p->comm, "renamed");
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(Json, EncoderAddsMissingTrailerAndRejectsRecordsAfterIt) {
  TempDir dir;
  const std::string path = dir / "hand";
  {
    ScopedFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    // Hand-written: a header, a description of one type, one record of it; no trailer.
    auto doc = ordered_json::parse(R"({"records": [
      {"type": "stream_header", "fields": {"arch": 62, "page_size": 4096}},
      {"type": "schema_type", "fields": {"type_id": 256, "name": "process", "doc": "",
                                         "fields": "pid:u32,ppid:u32", "has_tail": 0}},
      {"type": "process", "fields": {"pid": 9, "ppid": 1}}]})");
    ASSERT_TRUE(json_to_stream(doc, out.get()).ok());
  }
  ScopedFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  auto r = RecordReader::open(in.get());
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto more = (*r)->next();
  ASSERT_TRUE(more.ok() && *more) << (more.ok() ? "" : more.error().message);
  EXPECT_EQ((*r)->type(), schema::Process::kType);
  auto p = (*r)->decode<schema::Process>();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->pid, 9u);
  EXPECT_EQ(p->comm, "");  // described without it: zero, as for an older writer
  more = (*r)->next();
  ASSERT_TRUE(more.ok()) << more.error().message;
  EXPECT_FALSE(*more);  // the added trailer verifies

  ScopedFd out(::open((dir / "bad").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  JsonStreamEncoder enc(out.get());
  ASSERT_TRUE(enc.add(ordered_json::parse(R"({"type":"stream_header","fields":{}})")).ok());
  ASSERT_TRUE(enc.add(ordered_json::parse(R"({"type":"trailer","fields":{}})")).ok());
  auto st = enc.add(ordered_json::parse(R"({"type":"trailer","fields":{}})"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("after the trailer"), std::string::npos);
}

}  // namespace
}  // namespace cr::format
