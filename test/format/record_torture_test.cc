// Damaged images: cut at every byte, a bit flipped in every byte. The reader must say what and
// where, and never crash or accept.
#include <gtest/gtest.h>

#include "stream_test_util.h"

namespace cr::format {
namespace {

using testing::make_image;
using testing::read_image;
using testing::ReadRecord;

std::vector<uint8_t> small_image(int zstd_level) {
  WriterOptions opts;
  opts.zstd_level = zstd_level;
  return make_image(opts, [](RecordWriter& w) {
    schema::Pipe pipe;
    pipe.id = 1;
    pipe.capacity = 65536;
    ASSERT_TRUE(w.write(pipe).ok());
    schema::PipeData pd;
    pd.pipe = 1;
    std::vector<uint8_t> tail = {'h', 'e', 'l', 'l', 'o'};
    ASSERT_TRUE(w.write(pd, tail).ok());
    schema::Vma v;
    v.pid = 10;
    v.start = 0x400000;
    v.end = 0x401000;
    v.path = "/usr/bin/x";
    ASSERT_TRUE(w.write(v).ok());
  });
}

TEST(RecordTorture, TruncationAtEveryByteIsReportedAsTruncated) {
  const auto image = small_image(0);
  ASSERT_FALSE(image.empty());
  ASSERT_TRUE(read_image(image).ok());
  for (size_t cut = 0; cut < image.size(); ++cut) {
    std::vector<uint8_t> part(image.begin(), image.begin() + cut);
    auto r = read_image(part);
    ASSERT_FALSE(r.ok()) << "accepted an image cut at " << cut;
    ASSERT_NE(r.error().message.find("truncated at offset "), std::string::npos)
        << "cut at " << cut << ": " << r.error().message;
  }
}

TEST(RecordTorture, TruncatedZstdImagesNeverPass) {
  const auto image = small_image(3);
  ASSERT_FALSE(image.empty());
  ASSERT_TRUE(read_image(image).ok());
  for (size_t cut = 0; cut < image.size(); ++cut) {
    std::vector<uint8_t> part(image.begin(), image.begin() + cut);
    auto r = read_image(part);
    ASSERT_FALSE(r.ok()) << "accepted a zstd image cut at " << cut;
    ASSERT_NE(r.error().message.find("truncated"), std::string::npos)
        << "cut at " << cut << ": " << r.error().message;
  }
}

TEST(RecordTorture, FlippedBitInEveryByteIsDetectedWithItsOffset) {
  const auto image = small_image(0);
  ASSERT_FALSE(image.empty());
  for (size_t i = 0; i < image.size(); ++i) {
    auto bad = image;
    bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
    auto r = read_image(bad);
    ASSERT_FALSE(r.ok()) << "flip at " << i << " went unnoticed";
    const std::string& m = r.error().message;
    ASSERT_NE(m.find("offset "), std::string::npos) << "flip at " << i << ": " << m;
    // The reported offset is at or before the damage (the record or prefix holding it).
    const size_t at = m.find("offset ") + 7;
    const uint64_t reported = std::stoull(m.substr(at));
    ASSERT_LE(reported, i) << m;
  }
}

TEST(RecordTorture, ChecksumMessageNamesTheRecord) {
  auto image = small_image(0);
  auto recs = read_image(image);
  ASSERT_TRUE(recs.ok());
  const ReadRecord& vma = recs->back();
  ASSERT_EQ(vma.type, schema::Vma::kType);
  image[vma.offset + kRecordHeaderSize + 2] ^= 0x10;
  auto r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "checksum mismatch in record at offset " + std::to_string(vma.offset) + " (type vma)");
  image[vma.offset + kRecordHeaderSize + 2] ^= 0x10;
  image[vma.offset + 5] ^= 0x01;  // the length
  r = read_image(image);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "checksum mismatch in record header at offset " + std::to_string(vma.offset));
}

TEST(RecordTorture, ErrorsAreSticky) {
  auto image = small_image(0);
  auto recs = read_image(image);
  ASSERT_TRUE(recs.ok());
  ASSERT_GE(recs->size(), 2u);
  image[(*recs)[1].offset + kRecordHeaderSize] ^= 1;  // the second data record's payload
  ScopedFd fd = testing::memfd_with(image);
  auto r = RecordReader::open(fd.get());
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE((*r)->next().ok());
  auto first = (*r)->next();
  ASSERT_FALSE(first.ok());
  for (int i = 0; i < 3; ++i) {
    auto again = (*r)->next();
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message, first.error().message);
  }
}

TEST(RecordTorture, FlippedBitsInZstdImagesNeverYieldWrongRecords) {
  const auto image = small_image(3);
  auto good = read_image(image);
  ASSERT_TRUE(good.ok());
  int detected = 0;
  for (size_t i = 0; i < image.size(); ++i) {
    auto bad = image;
    bad[i] ^= static_cast<uint8_t>(1u << (i % 8));
    auto r = read_image(bad);
    if (!r.ok()) {
      ++detected;
      continue;
    }
    // A few frame-header bits mean nothing to zstd (e.g. the "unused" descriptor bit): then
    // the content must be exactly the original.
    ASSERT_EQ(r->size(), good->size()) << "flip at compressed byte " << i;
    for (size_t k = 0; k < r->size(); ++k) {
      ASSERT_EQ((*r)[k].fields, (*good)[k].fields) << "flip at compressed byte " << i;
      ASSERT_EQ((*r)[k].tail, (*good)[k].tail) << "flip at compressed byte " << i;
    }
  }
  EXPECT_GT(detected, static_cast<int>(image.size()) * 9 / 10);
}

}  // namespace
}  // namespace cr::format
