// Round trips and the reader's rules: objrefs, unknown types, error records, versions, limits.
#include <gtest/gtest.h>

#include <tuple>

#include "format/self_description.h"
#include "stream_test_util.h"

namespace cr::format {
namespace {

using testing::make_image;
using testing::RawStream;
using testing::read_image;

// Fills every field with a distinct non-zero value; objdefs get fresh ids and objrefs point at
// the first id defined (the catalogue lists pointed-at types before the pointing ones).
struct Filler {
  uint64_t& counter;
  std::vector<uint32_t>& defined;
  template <class T>
  void operator()(schema::Kind k, std::string_view, T& field) {
    const uint64_t c = ++counter;
    if constexpr (std::is_integral_v<T>) {
      if (k == schema::Kind::objdef) {
        field = static_cast<T>(1000 + c);
        defined.push_back(static_cast<uint32_t>(field));
      } else if (k == schema::Kind::objref) {
        field = defined.empty() ? 0 : static_cast<T>(defined.front());
      } else {
        field = static_cast<T>(c % 250 + 1 + (sizeof(T) > 1 ? c << 8 : 0));
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      field = "s" + std::to_string(c);
    } else if constexpr (std::is_same_v<T, std::vector<uint8_t>>) {
      field.assign(c % 7 + 1, static_cast<uint8_t>(c));
    } else {
      field = {c, c * 3, ~c};
    }
  }
};

template <class R>
constexpr bool is_bookkeeping =
    R::kType <= schema::ErrorRecord::kType || R::kType == schema::StreamSeal::kType;

TEST(RecordStream, RoundTripOfEveryRecordType) {
  uint64_t counter = 0;
  std::vector<uint32_t> defined;
  const std::vector<size_t> tail_sizes = {0, 1, 4095, 4096, 1 << 20};
  std::vector<std::vector<uint8_t>> tails;
  for (size_t n : tail_sizes) {
    std::vector<uint8_t> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint8_t>(i * 7 + n);
    tails.push_back(t);
  }
  // One check per record written, run against the reader positioned on it.
  std::vector<std::function<void(const RecordReader&)>> checks;
  size_t expected = 0;
  for (int level : {0, 3}) {
    WriterOptions opts;
    opts.zstd_level = level;
    checks.clear();
    defined.clear();
    expected = 0;
    auto image = make_image(opts, [&](RecordWriter& w) {
      std::apply(
          [&](auto... proto) {
            (
                [&] {
                  using R = decltype(proto);
                  if constexpr (!is_bookkeeping<R>) {
                    R rec{};
                    rec.visit(Filler{counter, defined});
                    if constexpr (R::kHasTail) {
                      for (const auto& t : tails) {
                        ASSERT_TRUE(w.write(rec, t).ok());
                        checks.push_back([rec, t](const RecordReader& r) {
                          auto d = r.decode<R>();
                          ASSERT_TRUE(d.ok()) << d.error().message;
                          EXPECT_EQ(*d, rec) << R::kName;
                          EXPECT_EQ(std::vector<uint8_t>(r.tail().begin(), r.tail().end()), t);
                        });
                        ++expected;
                      }
                    } else {
                      ASSERT_TRUE(w.write(rec).ok()) << R::kName;
                      checks.push_back([rec](const RecordReader& r) {
                        auto d = r.decode<R>();
                        ASSERT_TRUE(d.ok()) << d.error().message;
                        EXPECT_EQ(*d, rec) << R::kName;
                        EXPECT_TRUE(r.tail().empty());
                      });
                      ++expected;
                    }
                  }
                }(),
                ...);
          },
          schema::AllRecords{});
    });
    ASSERT_FALSE(image.empty());
    if (level > 0) {
      ASSERT_EQ(image[0], 0x28);  // a zstd frame
    }
    ScopedFd fd = testing::memfd_with(image);
    auto r = RecordReader::open(fd.get());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)->header(), testing::test_header());
    EXPECT_EQ((*r)->format_version(), kFormatVersion);
    size_t n = 0;
    for (;;) {
      auto more = (*r)->next();
      ASSERT_TRUE(more.ok()) << more.error().message;
      if (!*more) break;
      ASSERT_LT(n, checks.size());
      checks[n++](**r);
    }
    EXPECT_EQ(n, expected);
    // Every compiled type is described by the stream.
    for (const StreamType& t : compiled_types()) {
      const StreamType* d = (*r)->describe(t.type_id);
      ASSERT_NE(d, nullptr) << t.name;
      EXPECT_EQ(d->fields, t.fields);
    }
  }
}

TEST(RecordStream, BookkeepingRecordsOnRequest) {
  auto image = make_image({}, [](RecordWriter& w) {
    schema::Process p;
    p.pid = 5;
    ASSERT_TRUE(w.write(p).ok());
  });
  ReaderOptions opts;
  opts.include_bookkeeping = true;
  auto recs = read_image(image, opts);
  ASSERT_TRUE(recs.ok()) << recs.error().message;
  const size_t ntypes = compiled_types().size();
  ASSERT_EQ(recs->size(), 1 + ntypes + 1 + 1 + 1);  // header, schema, process, seal, trailer
  EXPECT_EQ(recs->front().type, schema::StreamHeader::kType);
  EXPECT_EQ(recs->front().offset, kPrefixSize);
  for (size_t i = 1; i <= ntypes; ++i) EXPECT_EQ((*recs)[i].type, schema::SchemaType::kType);
  EXPECT_EQ((*recs)[ntypes + 1].type, schema::Process::kType);
  EXPECT_EQ((*recs)[ntypes + 2].type, schema::StreamSeal::kType);
  EXPECT_EQ(recs->back().type, schema::Trailer::kType);
  auto t = decode_fields<schema::Trailer>(recs->back().fields);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->record_count, ntypes + 3);
  // Offsets increase and the last one is the trailer's.
  for (size_t i = 1; i < recs->size(); ++i) EXPECT_GT((*recs)[i].offset, (*recs)[i - 1].offset);
  // Without the option only the data record comes back.
  auto plain = read_image(image);
  ASSERT_TRUE(plain.ok());
  ASSERT_EQ(plain->size(), 1u);
}

// crrestore looks at the first record before it decides where the restore runs, then puts it
// back: the next read gives it again, fields and tail apart as before, then the rest in order.
TEST(RecordStream, UnreadGivesTheRecordAgain) {
  auto image = make_image({}, [](RecordWriter& w) {
    schema::UserNs u;
    u.uid_map = {0, 4343, 1};
    u.setgroups = 2;
    ASSERT_TRUE(w.write(u).ok());
    schema::TmpfsEntry e;
    e.path = "a";
    const std::vector<uint8_t> bytes = {1, 2, 3};
    ASSERT_TRUE(w.write(e, bytes).ok());
  });
  ScopedFd fd = testing::memfd_with(image);
  auto r = RecordReader::open(fd.get());
  ASSERT_TRUE(r.ok()) << r.error().message;
  RecordReader& reader = **r;
  for (int pass = 0; pass < 2; ++pass) {
    auto more = reader.next();
    ASSERT_TRUE(more.ok() && *more);
    ASSERT_EQ(reader.type(), schema::UserNs::kType);
    auto u = reader.decode<schema::UserNs>();
    ASSERT_TRUE(u.ok()) << u.error().message;
    EXPECT_EQ(u->uid_map, (std::vector<uint64_t>{0, 4343, 1}));
    if (pass == 0) reader.unread();
  }
  for (int pass = 0; pass < 2; ++pass) {
    auto more = reader.next();
    ASSERT_TRUE(more.ok() && *more);
    ASSERT_EQ(reader.type(), schema::TmpfsEntry::kType);
    EXPECT_EQ(reader.tail().size(), 3u);
    auto e = reader.decode<schema::TmpfsEntry>();
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ(e->path, "a");
    if (pass == 0) reader.unread();
  }
  auto end = reader.next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(*end);
}

TEST(RecordStream, ForwardObjrefIsRejected) {
  auto image = make_image({}, [](RecordWriter& w) {
    schema::Fd fd;
    fd.pid = 1;
    fd.fd = 3;
    fd.file = 77;
    ASSERT_TRUE(w.write(fd).ok());
    schema::File f;
    f.id = 77;
    ASSERT_TRUE(w.write(f).ok());
  });
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("(type fd)"), std::string::npos) << m;
  EXPECT_NE(m.find("object 77"), std::string::npos) << m;
  EXPECT_NE(m.find("offset"), std::string::npos) << m;
}

TEST(RecordStream, ObjrefZeroAndBackwardRefsAreFine) {
  auto image = make_image({}, [](RecordWriter& w) {
    schema::Pipe p;
    p.id = 3;
    ASSERT_TRUE(w.write(p).ok());
    schema::File f;
    f.id = 4;
    f.pipe = 3;
    ASSERT_TRUE(w.write(f).ok());
    schema::Fd fd;
    fd.file = 4;
    ASSERT_TRUE(w.write(fd).ok());
    schema::File none;
    none.id = 5;
    none.pipe = 0;
    ASSERT_TRUE(w.write(none).ok());
  });
  auto r = read_image(image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 4u);
}

TEST(RecordStream, DuplicateObjdefIsRejected) {
  uint64_t first_offset = 0;
  auto image = make_image({}, [&](RecordWriter& w) {
    schema::Pipe p;
    p.id = 9;
    first_offset = w.bytes_written();
    ASSERT_TRUE(w.write(p).ok());
    schema::File f;
    f.id = 9;
    ASSERT_TRUE(w.write(f).ok());
  });
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message;
  EXPECT_NE(m.find("(type file)"), std::string::npos) << m;
  EXPECT_NE(m.find("object 9"), std::string::npos) << m;
  EXPECT_NE(m.find("offset " + std::to_string(first_offset) + " (type pipe)"), std::string::npos)
      << m;
}

TEST(RecordStream, UnknownRecordTypesAreReturnedForSkipping) {
  StreamType future;
  future.type_id = 0x7777;
  future.name = "future";
  future.fields = {{"a", schema::Kind::u32}, {"ref", schema::Kind::objref}};
  future.has_tail = true;
  WriterOptions opts;
  opts.extra_types = {future};
  auto image = make_image(opts, [](RecordWriter& w) {
    schema::Pipe p;
    p.id = 1;
    ASSERT_TRUE(w.write(p).ok());
    std::vector<uint8_t> fields = {9, 0, 0, 0, 1, 0, 0, 0};
    std::vector<uint8_t> tail = {0xde, 0xad};
    ASSERT_TRUE(w.write_raw(0x7777, fields, tail).ok());
    ASSERT_TRUE(w.write_raw(0x7778, tail, {}).ok());  // not even described
    schema::Process pr;
    pr.pid = 8;
    ASSERT_TRUE(w.write(pr).ok());
  });
  ScopedFd fd = testing::memfd_with(image);
  auto r = RecordReader::open(fd.get());
  ASSERT_TRUE(r.ok()) << r.error().message;
  const StreamType* d = (*r)->describe(0x7777);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->name, "future");
  std::vector<uint32_t> types;
  for (;;) {
    auto more = (*r)->next();
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!*more) break;
    types.push_back((*r)->type());
    if ((*r)->type() == 0x7777) {
      EXPECT_EQ((*r)->fields().size(), 8u);
      EXPECT_EQ(std::vector<uint8_t>((*r)->tail().begin(), (*r)->tail().end()),
                (std::vector<uint8_t>{0xde, 0xad}));
    }
    if ((*r)->type() == schema::Process::kType) {
      auto p = (*r)->decode<schema::Process>();
      ASSERT_TRUE(p.ok());
      EXPECT_EQ(p->pid, 8u);
    }
  }
  EXPECT_EQ(types,
            (std::vector<uint32_t>{schema::Pipe::kType, 0x7777, 0x7778, schema::Process::kType}));
  // The unknown type's objref is still enforced from the stream's own description.
  auto bad = make_image(opts, [](RecordWriter& w) {
    std::vector<uint8_t> fields = {9, 0, 0, 0, 5, 0, 0, 0};
    ASSERT_TRUE(w.write_raw(0x7777, fields, {}).ok());
  });
  auto rb = read_image(bad);
  ASSERT_FALSE(rb.ok());
  EXPECT_NE(rb.error().message.find("(type future)"), std::string::npos) << rb.error().message;
}

TEST(RecordStream, NewerWritersAppendedFieldsDoNotShiftTheTail) {
  StreamType pages = describe_compiled<schema::Pages>();
  pages.fields.emplace_back("future_flags", schema::Kind::u64);
  WriterOptions opts;
  opts.extra_types = {pages};
  schema::Pages p;
  p.pid = 3;
  p.vaddr = 0x7000;
  p.npages = 1;
  std::vector<uint8_t> tail(4096, 0x5a);
  auto image = make_image(opts, [&](RecordWriter& w) {
    std::vector<uint8_t> fields;
    encode_fields(p, fields);
    put_le(fields, 0x1122334455667788, 8);
    ASSERT_TRUE(w.write_raw(schema::Pages::kType, fields, tail).ok());
  });
  auto recs = read_image(image);
  ASSERT_TRUE(recs.ok()) << recs.error().message;
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ((*recs)[0].tail, tail);
  auto d = decode_fields<schema::Pages>((*recs)[0].fields);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, p);
}

TEST(RecordStream, IncompatibleDescriptionOfAKnownTypeIsRefused) {
  StreamType vma = describe_compiled<schema::Vma>();
  vma.fields[1].second = schema::Kind::str;  // "start" retyped: against the rules
  WriterOptions opts;
  opts.extra_types = {vma};
  auto image = make_image(opts, [](RecordWriter&) {});
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("incompatible"), std::string::npos) << r.error().message;
}

TEST(RecordStream, ErrorRecordMeansImageIncomplete) {
  auto image = make_image(
      {},
      [](RecordWriter& w) {
        schema::Process p;
        ASSERT_TRUE(w.write(p).ok());
        w.fail("ptrace(PTRACE_SEIZE, 4242): No such process");
        EXPECT_FALSE(w.finish().ok());
        EXPECT_FALSE(w.write(p).ok());
      },
      false);
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "image incomplete: ptrace(PTRACE_SEIZE, 4242): No such process");
}

TEST(RecordStream, StreamWithoutTrailerIsTruncated) {
  auto image = make_image(
      {}, [](RecordWriter&) {}, false);
  ASSERT_FALSE(image.empty());
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "truncated at offset " + std::to_string(image.size()) +
                                   ": the stream ends without a trailer");
}

std::vector<uint8_t> with_version(std::vector<uint8_t> image, uint32_t version) {
  auto prefix = make_prefix(version, load_le32(image.data() + 12));
  std::copy(prefix.begin(), prefix.end(), image.begin());
  return image;
}

TEST(RecordStream, VersionRule) {
  auto image = make_image({}, [](RecordWriter&) {});
  ASSERT_TRUE(read_image(image).ok());  // == kFormatVersion
  auto newer = with_version(image, kFormatVersion + 1);
  auto r = read_image(newer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("newer"), std::string::npos) << r.error().message;
  ReaderOptions allow;
  allow.allow_newer_version = true;
  ScopedFd fd = testing::memfd_with(newer);
  auto rd = RecordReader::open(fd.get(), allow);
  ASSERT_TRUE(rd.ok()) << rd.error().message;
  EXPECT_EQ((*rd)->format_version(), kFormatVersion + 1);
  auto zero = read_image(with_version(image, 0));
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("version 0"), std::string::npos);
}

TEST(RecordStream, BadMagic) {
  std::vector<uint8_t> text(100, 'x');
  auto r = read_image(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "not a crtools image (bad magic at offset 0)");
  r = read_image({});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated at offset 0"), std::string::npos);
}

TEST(RecordStream, LengthOverTheCap) {
  RawStream s;
  s.begin();
  auto h = make_record_header(schema::Process::kType, kMaxRecordPayload + 1, 0, true);
  s.bytes.insert(s.bytes.end(), h.begin(), h.end());
  const uint64_t off = s.bytes.size() - kRecordHeaderSize;
  auto r = read_image(s.bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "record at offset " + std::to_string(off) + ": length " +
                                   std::to_string(kMaxRecordPayload + 1) + " over the cap of " +
                                   std::to_string(kMaxRecordPayload));
}

TEST(RecordStream, TrailerIsChecked) {
  {
    RawStream s;
    s.begin();
    s.add(schema::Process{});
    ASSERT_TRUE(read_image([&] {
                  RawStream c = s;
                  c.trailer();
                  return c.bytes;
                }())
                    .ok());
    RawStream c = s;
    schema::Trailer t;
    t.record_count = s.count + 1;
    t.stream_crc = s.chain;
    c.add(t);
    auto r = read_image(c.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("record_count"), std::string::npos) << r.error().message;
    c = s;
    t.record_count = s.count;
    t.stream_crc = s.chain ^ 1;
    c.add(t);
    r = read_image(c.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("stream checksum mismatch"), std::string::npos);
  }
}

TEST(RecordStream, StructureRules) {
  {  // First record must be the stream header.
    RawStream s;
    s.add(schema::Process{});
    auto r = read_image(s.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("expected stream_header"), std::string::npos);
  }
  {  // Self-description after data.
    RawStream s;
    s.begin();
    s.add(schema::Process{});
    s.add(to_schema_type(describe_compiled<schema::Vma>()));
    s.trailer();
    auto r = read_image(s.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("self-description after"), std::string::npos);
  }
  {  // A type described twice.
    RawStream s;
    s.begin();
    s.add(to_schema_type(describe_compiled<schema::Vma>()));
    s.trailer();
    auto r = read_image(s.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("described twice"), std::string::npos);
  }
}

TEST(RecordStream, WithoutChecksums) {
  WriterOptions opts;
  opts.checksums = false;
  auto image =
      make_image(opts, [](RecordWriter& w) { ASSERT_TRUE(w.write(schema::Process{}).ok()); });
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("without checksums"), std::string::npos);
  ReaderOptions ro;
  ro.verify_checksums = false;
  auto ok = read_image(image, ro);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->size(), 1u);
}

TEST(RecordStream, WriterRefusesOversizedRecordsAndBookkeeping) {
  ScopedFd fd(memfd_create("image", MFD_CLOEXEC));
  auto w = RecordWriter::create(fd.get(), {}, testing::test_header());
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> big(kMaxRecordPayload + 1);
  schema::Pages p;
  EXPECT_FALSE((*w)->write(p, big).ok());
  EXPECT_FALSE((*w)->write_raw(schema::Trailer::kType, {}, {}).ok());
  EXPECT_FALSE((*w)->write_raw(schema::StreamHeader::kType, {}, {}).ok());
  EXPECT_FALSE((*w)->write_raw(schema::SchemaType::kType, {}, {}).ok());
  EXPECT_TRUE((*w)->finish().ok());
  EXPECT_FALSE((*w)->finish().ok());
  auto recs = read_image(testing::slurp(fd.get()));
  ASSERT_TRUE(recs.ok()) << recs.error().message;
}

}  // namespace
// crrestore's copier thread places a Pages record's bytes while the reader reads on: a held
// payload must stay intact however far the reader goes (the window slides into another
// buffer), plain and zstd, and the reader still reads everything right.
TEST(RecordStream, HeldPayloadsSurviveLaterRecords) {
  for (int level : {0, 3}) {
    WriterOptions o;
    o.zstd_level = level;
    const int kRecords = 40;
    auto tail_of = [](int i) {
      // Sizes around the window: small ones, page runs, a 1 MiB run (a Pages record's cap).
      const size_t n = i % 3 == 0 ? (1u << 20) : i % 3 == 1 ? 4096u * (i + 1) : 100u + i;
      std::vector<uint8_t> t(n);
      for (size_t k = 0; k < n; ++k) t[k] = static_cast<uint8_t>(k * 13 + i);
      return t;
    };
    auto bytes = make_image(o, [&](RecordWriter& w) {
      for (int i = 0; i < kRecords; ++i) {
        schema::Pages p;
        p.pid = 1;
        p.vaddr = 0x1000u * (i + 1);
        p.npages = 1;
        ASSERT_TRUE(w.write(p, tail_of(i)).ok());
      }
    });
    ScopedFd fd = testing::memfd_with(bytes);
    auto r = RecordReader::open(fd.get());
    ASSERT_TRUE(r.ok()) << r.error().message;
    struct Held {
      std::shared_ptr<const void> token;
      std::span<const uint8_t> tail;
      int i;
    };
    std::vector<Held> held;
    int i = 0;
    for (;;) {
      auto more = (*r)->next();
      ASSERT_TRUE(more.ok()) << more.error().message;
      if (!*more) break;
      if ((*r)->type() != schema::Pages::kType) continue;
      auto tail = (*r)->tail();
      ASSERT_EQ(std::vector<uint8_t>(tail.begin(), tail.end()), tail_of(i));
      auto token = (*r)->hold();
      ASSERT_NE(token, nullptr);
      // Keep every other one for long, let the rest go at once (their windows are reused).
      if (i % 2 == 0) held.push_back({token, tail, i});
      ++i;
    }
    EXPECT_EQ(i, kRecords);
    for (const auto& h : held)
      EXPECT_EQ(std::vector<uint8_t>(h.tail.begin(), h.tail.end()), tail_of(h.i)) << h.i;
  }
}

}  // namespace cr::format
