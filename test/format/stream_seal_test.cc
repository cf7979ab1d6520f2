// The stream seal: a chain over every record's position and payload CRC, the record and byte
// counts, and the optional HMAC-SHA256 signature (format/stream_seal.h, docs/FORMAT.md).
#include "format/stream_seal.h"

#include <gtest/gtest.h>

#include "format/crc32c.h"
#include "stream_test_util.h"

namespace cr::format {
namespace {

using testing::make_image;
using testing::read_image;

const std::vector<uint8_t> kKey = {'s', 'e', 'c', 'r', 'e', 't'};

// Twelve data records: processes and page runs of one size, so swaps keep every offset.
std::vector<uint8_t> sample_image(const WriterOptions& opts = {}) {
  return make_image(opts, [](RecordWriter& w) {
    for (uint32_t i = 0; i < 6; ++i) {
      schema::Process p;
      p.pid = 100 + i;
      p.comm = "p" + std::to_string(i);
      ASSERT_TRUE(w.write(p).ok());
    }
    for (uint32_t i = 0; i < 6; ++i) {
      schema::Pages pg;
      pg.pid = 100;
      pg.vaddr = 0x10000 + 0x1000 * i;
      pg.npages = 1;
      std::vector<uint8_t> page(4096, static_cast<uint8_t>(i + 1));
      ASSERT_TRUE(w.write(pg, page).ok());
    }
  });
}

struct Span {
  size_t offset, size;
  uint32_t type;
};

// Every record of a stream, bookkeeping included, from its framing alone.
std::vector<Span> records_of(const std::vector<uint8_t>& img) {
  std::vector<Span> out;
  for (size_t off = kPrefixSize; off + kRecordHeaderSize <= img.size();) {
    RecordHeader h = parse_record_header(img.data() + off);
    out.push_back({off, kRecordHeaderSize + h.length, h.type});
    off += kRecordHeaderSize + h.length;
  }
  return out;
}

std::vector<uint8_t> swapped(const std::vector<uint8_t>& img, const Span& a, const Span& b) {
  std::vector<uint8_t> out(img.begin(), img.begin() + static_cast<long>(a.offset));
  out.insert(out.end(), img.begin() + static_cast<long>(b.offset),
             img.begin() + static_cast<long>(b.offset + b.size));
  out.insert(out.end(), img.begin() + static_cast<long>(a.offset + a.size),
             img.begin() + static_cast<long>(b.offset));
  out.insert(out.end(), img.begin() + static_cast<long>(a.offset),
             img.begin() + static_cast<long>(a.offset + a.size));
  out.insert(out.end(), img.begin() + static_cast<long>(b.offset + b.size), img.end());
  return out;
}

TEST(StreamSeal, WrittenBeforeTheTrailerAndVerified) {
  auto img = sample_image();
  auto recs = records_of(img);
  ASSERT_GE(recs.size(), 3u);
  EXPECT_EQ(recs[recs.size() - 2].type, schema::StreamSeal::kType);
  EXPECT_EQ(recs.back().type, schema::Trailer::kType);
  auto r = read_image(img);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 12u);  // the seal is bookkeeping: not returned
}

// The Trailer's stream_crc alone lets every one of these through (its chain over whole headers
// depends on the record count only); the seal refuses each.
TEST(StreamSeal, EverySwapOfTwoRecordsIsRefused) {
  auto img = sample_image();
  auto recs = records_of(img);
  recs.resize(recs.size() - 2);  // the seal and the trailer stay last
  int pairs = 0;
  for (size_t i = 1; i < recs.size(); ++i)
    for (size_t j = i + 1; j < recs.size(); ++j) {
      auto bad = swapped(img, recs[i], recs[j]);
      if (bad == img) continue;  // two identical records
      ++pairs;
      auto r = read_image(bad);
      EXPECT_FALSE(r.ok()) << "records " << i << " and " << j << " swapped: read as good";
    }
  EXPECT_GT(pairs, 100);
}

TEST(StreamSeal, PagesRecordReplacedByACopyOfAnotherIsRefused) {
  auto img = sample_image();
  auto recs = records_of(img);
  std::vector<Span> pages;
  for (const auto& s : recs)
    if (s.type == schema::Pages::kType) pages.push_back(s);
  ASSERT_GE(pages.size(), 2u);
  auto bad = img;
  std::copy(img.begin() + static_cast<long>(pages[0].offset),
            img.begin() + static_cast<long>(pages[0].offset + pages[0].size),
            bad.begin() + static_cast<long>(pages[1].offset));
  auto r = read_image(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("chain mismatch"), std::string::npos) << r.error().message;
}

TEST(StreamSeal, ADescribedSealThatIsMissingIsRefused) {
  auto img = sample_image();
  auto recs = records_of(img);
  const Span seal = recs[recs.size() - 2];
  std::vector<uint8_t> bad(img.begin(), img.begin() + static_cast<long>(seal.offset));
  // A trailer that agrees with what is left (count and header chain), as damage that dropped
  // exactly the seal would need.
  uint32_t chain = crc32c(img.data(), kPrefixSize);
  for (size_t i = 0; i + 2 < recs.size(); ++i)
    chain = crc32c_extend(chain, img.data() + recs[i].offset, kRecordHeaderSize);
  schema::Trailer t;
  t.record_count = recs.size() - 2;
  t.stream_crc = chain;
  std::vector<uint8_t> p;
  encode_fields(t, p);
  auto h =
      make_record_header(schema::Trailer::kType, static_cast<uint32_t>(p.size()), crc32c(p), true);
  bad.insert(bad.end(), h.begin(), h.end());
  bad.insert(bad.end(), p.begin(), p.end());
  auto r = read_image(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("stream seal is missing"), std::string::npos)
      << r.error().message;
}

TEST(StreamSeal, AStreamThatDoesNotDescribeTheSealHasNone) {
  WriterOptions opts;
  opts.describe_only = {schema::Process::kType};
  auto img = make_image(opts, [](RecordWriter& w) {
    schema::Process p;
    p.pid = 7;
    ASSERT_TRUE(w.write(p).ok());
  });
  for (const auto& s : records_of(img)) EXPECT_NE(s.type, schema::StreamSeal::kType);
  EXPECT_TRUE(read_image(img).ok());
  ReaderOptions ropts;
  ropts.mac_key = kKey;
  auto r = read_image(img, ropts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not signed"), std::string::npos) << r.error().message;
}

TEST(StreamSeal, SignedStreamVerifiesWithItsKeyOnly) {
  WriterOptions opts;
  opts.mac_key = kKey;
  auto img = sample_image(opts);
  ReaderOptions ropts;
  ropts.mac_key = kKey;
  auto good = read_image(img, ropts);
  EXPECT_TRUE(good.ok()) << good.error().message;
  EXPECT_TRUE(read_image(img).ok()) << "a signed stream reads without a key too";
  ropts.mac_key = {'o', 't', 'h', 'e', 'r'};
  auto wrong = read_image(img, ropts);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("signature mismatch"), std::string::npos)
      << wrong.error().message;
}

TEST(StreamSeal, UnsignedStreamIsRefusedWithAKey) {
  auto img = sample_image();
  ReaderOptions ropts;
  ropts.mac_key = kKey;
  auto r = read_image(img, ropts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not signed"), std::string::npos) << r.error().message;
}

// Forged content with every CRC, the chain and the counts made right again: only the MAC can
// tell. Rewritten through a RawStream-like rebuild with the same records but one page changed.
TEST(StreamSeal, ForgedContentWithGoodChecksumsFailsTheSignature) {
  WriterOptions opts;
  opts.mac_key = kKey;
  auto img = sample_image(opts);
  auto recs = records_of(img);
  // Rebuild the stream record by record (valid CRCs, chain, counts), changing one page byte,
  // and keep the original MAC.
  std::vector<uint8_t> mac;
  {
    const Span& s = recs[recs.size() - 2];
    auto seal = decode_fields<schema::StreamSeal>(std::span<const uint8_t>(
        img.data() + s.offset + kRecordHeaderSize, s.size - kRecordHeaderSize));
    ASSERT_TRUE(seal.ok());
    mac = seal->mac;
    ASSERT_EQ(mac.size(), 32u);
  }
  auto chain = std::move(SealChain::create()).value();
  std::vector<uint8_t> out(img.begin(), img.begin() + kPrefixSize);
  chain.prefix({img.data(), kPrefixSize});
  uint32_t old_chain = crc32c(img.data(), kPrefixSize);
  bool changed = false;
  for (size_t i = 0; i + 2 < recs.size(); ++i) {
    std::vector<uint8_t> payload(
        img.begin() + static_cast<long>(recs[i].offset + kRecordHeaderSize),
        img.begin() + static_cast<long>(recs[i].offset + recs[i].size));
    if (recs[i].type == schema::Pages::kType && !changed) {
      payload.back() ^= 0xff;
      changed = true;
    }
    auto h = make_record_header(recs[i].type, static_cast<uint32_t>(payload.size()),
                                crc32c(payload), true);
    chain.record(out.size(), recs[i].type, static_cast<uint32_t>(payload.size()), crc32c(payload));
    old_chain = crc32c_extend(old_chain, h.data(), h.size());
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), payload.begin(), payload.end());
  }
  auto seal = std::move(chain.seal(true)).value();
  seal.byte_count = out.size();
  seal.mac = mac;
  auto add = [&](uint32_t type, const std::vector<uint8_t>& p) {
    auto h = make_record_header(type, static_cast<uint32_t>(p.size()), crc32c(p), true);
    if (type != schema::Trailer::kType) old_chain = crc32c_extend(old_chain, h.data(), h.size());
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), p.begin(), p.end());
  };
  std::vector<uint8_t> p;
  encode_fields(seal, p);
  add(schema::StreamSeal::kType, p);
  schema::Trailer t;
  t.record_count = recs.size() - 1;
  t.stream_crc = old_chain;
  p.clear();
  encode_fields(t, p);
  add(schema::Trailer::kType, p);
  ASSERT_TRUE(changed);
  auto unsigned_read = read_image(out);
  ASSERT_TRUE(unsigned_read.ok()) << "the forgery is self-consistent: "
                                  << unsigned_read.error().message;
  ReaderOptions ropts;
  ropts.mac_key = kKey;
  auto r = read_image(out, ropts);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("signature mismatch"), std::string::npos) << r.error().message;
}

TEST(StreamSeal, HmacMatchesRfc4231TestCase2) {
  const std::string key = "Jefe", data = "what do ya want for nothing?";
  auto h = HmacSha256::create({reinterpret_cast<const uint8_t*>(key.data()), key.size()});
  ASSERT_TRUE(h.ok());
  (*h)->update({reinterpret_cast<const uint8_t*>(data.data()), 10});
  (*h)->update({reinterpret_cast<const uint8_t*>(data.data()) + 10, data.size() - 10});
  auto mac = (*h)->final();
  ASSERT_TRUE(mac.ok());
  std::string hex;
  for (uint8_t b : *mac) {
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", b);
    hex += buf;
  }
  EXPECT_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace cr::format
