// The store of pre-copied pages: a later round's copy replaces an earlier one, runs follow the
// slots, a page without a copy and a malformed run are errors, the size is bounded; records left
// in the image file are read (and checked) when their pages are wanted.
#include "restore/precopy_store.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "format/crc32c.h"

namespace cr::restore {
namespace {

constexpr uint64_t kPage = 4096;

std::vector<uint8_t> pages(size_t n, uint8_t fill) { return std::vector<uint8_t>(n * kPage, fill); }

struct Seen {
  uint64_t addr;
  uint64_t len;
  std::vector<uint8_t> bytes;
};

std::vector<Seen> collect(PrecopyStore& s, uint32_t pid, uint64_t vaddr, uint64_t n,
                          Status* st = nullptr, std::vector<bool>* held = nullptr) {
  std::vector<Seen> out;
  Status r = s.each_run(pid, vaddr, n,
                        [&](uint64_t a, const uint8_t* d, uint64_t len,
                            const std::shared_ptr<const void>& hold) -> Status {
                          out.push_back(Seen{a, len, std::vector<uint8_t>(d, d + len)});
                          if (held) held->push_back(hold != nullptr);
                          return {};
                        });
  if (st) *st = r;
  else EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

TEST(PrecopyStore, LaterCopyReplacesEarlier) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x10000, pages(4, 0xaa)).ok());
  ASSERT_TRUE(s.add(7, 0x11000, pages(1, 0xbb)).ok());  // round 1 rewrote the second page
  EXPECT_EQ(s.pages(), 4u);
  auto runs = collect(s, 7, 0x10000, 4);
  ASSERT_EQ(runs.size(), 1u);  // overwritten in place: still one run of slots
  EXPECT_EQ(runs[0].addr, 0x10000u);
  EXPECT_EQ(runs[0].len, 4 * kPage);
  EXPECT_EQ(runs[0].bytes[0], 0xaa);
  EXPECT_EQ(runs[0].bytes[kPage], 0xbb);
  EXPECT_EQ(runs[0].bytes[2 * kPage], 0xaa);
}

// A copy that overlaps two earlier runs and the gap between them: the overlaps are replaced,
// the gap is stored, every page reads back as the newest copy.
TEST(PrecopyStore, OverlapsAndGapsOfRuns) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x10000, pages(2, 1)).ok());
  ASSERT_TRUE(s.add(7, 0x13000, pages(2, 2)).ok());
  ASSERT_TRUE(s.add(7, 0x11000, pages(3, 3)).ok());
  EXPECT_EQ(s.pages(), 5u);
  std::vector<uint8_t> got;
  for (const Seen& r : collect(s, 7, 0x10000, 5)) got.insert(got.end(), r.bytes.begin(), r.bytes.end());
  ASSERT_EQ(got.size(), 5 * kPage);
  const uint8_t want[] = {1, 3, 3, 3, 2};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(got[i * kPage], want[i]) << "page " << i;
}

TEST(PrecopyStore, RunsFollowSlotsAndPids) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x20000, pages(1, 1)).ok());
  ASSERT_TRUE(s.add(8, 0x20000, pages(1, 2)).ok());  // another process, same address
  ASSERT_TRUE(s.add(7, 0x21000, pages(1, 3)).ok());  // not next to 0x20000's slot
  auto runs = collect(s, 7, 0x20000, 2);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].bytes[0], 1);
  EXPECT_EQ(runs[1].addr, 0x21000u);
  EXPECT_EQ(runs[1].bytes[0], 3);
  auto other = collect(s, 8, 0x20000, 1);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].bytes[0], 2);
}

TEST(PrecopyStore, MissingPageNamed) {
  PrecopyStore s;
  ASSERT_TRUE(s.add(7, 0x30000, pages(2, 1)).ok());
  Status st;
  collect(s, 7, 0x30000, 3, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("0x32000"), std::string::npos) << st.error().message;
  collect(s, 9, 0x30000, 1, &st);
  EXPECT_FALSE(st.ok());
}

TEST(PrecopyStore, MalformedAndOverLimitRefused) {
  PrecopyStore s(2 * kPage);
  EXPECT_FALSE(s.add(7, 0x40001, pages(1, 0)).ok());  // not page-aligned
  EXPECT_FALSE(s.add(7, 0x40000, std::vector<uint8_t>(100, 0)).ok());
  EXPECT_FALSE(s.add(7, ~uint64_t{0} - kPage + 1, pages(2, 0)).ok());  // wraps
  ASSERT_TRUE(s.add(7, 0x40000, pages(2, 0)).ok());
  Status st = s.add(7, 0x50000, pages(1, 0));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("MiB"), std::string::npos) << st.error().message;
  EXPECT_TRUE(s.add(7, 0x40000, pages(2, 5)).ok());  // copies of stored pages cost nothing new
}

// An image file holding records' tails, as the reader leaves them (ReaderOptions::defer_tails).
class ImageFile {
 public:
  ImageFile() {
    FILE* f = tmpfile();
    fd_ = dup(fileno(f));
    fclose(f);
  }
  ~ImageFile() { close(fd_); }
  // A record whose tail is `n` pages, page i filled with first + i; `fields` stand for the
  // record's fields (the checksum covers them and the tail).
  format::DeferredTail add(size_t n, uint8_t first) {
    std::vector<uint8_t> tail(n * kPage);
    for (size_t i = 0; i < n; ++i) std::memset(tail.data() + i * kPage, first + i, kPage);
    const uint8_t fields[] = {1, 2, 3};
    format::DeferredTail d;
    d.fd = fd_;
    d.offset = end_ + 5;  // tails sit after their headers and fields, at any offset
    d.len = tail.size();
    d.fields_crc = format::crc32c(fields, sizeof fields);
    d.payload_crc = format::crc32c_extend(d.fields_crc, tail.data(), tail.size());
    EXPECT_EQ(pwrite(fd_, tail.data(), tail.size(), static_cast<off_t>(d.offset)),
              static_cast<ssize_t>(tail.size()));
    end_ = d.offset + d.len;
    return d;
  }
  void flip(uint64_t offset) {
    uint8_t b = 0;
    ASSERT_EQ(pread(fd_, &b, 1, static_cast<off_t>(offset)), 1);
    b ^= 0x40;
    ASSERT_EQ(pwrite(fd_, &b, 1, static_cast<off_t>(offset)), 1);
  }

 private:
  int fd_ = -1;
  uint64_t end_ = 0;
};

std::vector<uint8_t> first_bytes(const std::vector<Seen>& runs) {
  std::vector<uint8_t> out;
  for (const Seen& r : runs)
    for (uint64_t o = 0; o < r.len; o += kPage) out.push_back(r.bytes[o]);
  return out;
}

// Rounds in the file and in memory mixed: each page reads back as its newest copy, a record is
// read once, and its runs come with a hold.
TEST(PrecopyStore, RecordsInTheFileAreReadWhenPlaced) {
  ImageFile file;
  PrecopyStore s;
  ASSERT_TRUE(s.add_deferred(7, 0x10000, file.add(4, 0x10)).ok());
  ASSERT_TRUE(s.add(7, 0x11000, pages(1, 0x99)).ok());  // a later round, small: in memory
  ASSERT_TRUE(s.add_deferred(7, 0x13000, file.add(2, 0x50)).ok());
  EXPECT_EQ(s.pages(), 5u);
  EXPECT_EQ(s.file_bytes_read(), 0u);  // nothing read until placed
  std::vector<bool> held;
  auto runs = collect(s, 7, 0x10000, 5, nullptr, &held);
  EXPECT_EQ(first_bytes(runs), (std::vector<uint8_t>{0x10, 0x99, 0x12, 0x50, 0x51}));
  // The small later round is written over the first record's bytes once read: its run stays
  // whole (three pages: the fourth is the second record's).
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].len, 3 * kPage);
  EXPECT_EQ(held, (std::vector<bool>{true, true}));
  EXPECT_EQ(s.file_bytes_read(), 6 * kPage);
  // A file record over pages kept in memory splits them.
  ASSERT_TRUE(s.add(7, 0x20000, pages(4, 1)).ok());
  ASSERT_TRUE(s.add_deferred(7, 0x21000, file.add(1, 0x77)).ok());
  EXPECT_EQ(first_bytes(collect(s, 7, 0x20000, 4)), (std::vector<uint8_t>{1, 0x77, 1, 1}));
  EXPECT_EQ(s.pages(), 9u);
}

// Copies of one page in round after round, in the file and in memory by turns: the newest
// wins whichever way it came.
TEST(PrecopyStore, NewestCopyWinsAcrossFileAndMemory) {
  ImageFile file;
  PrecopyStore s;
  ASSERT_TRUE(s.add_deferred(7, 0x10000, file.add(8, 0x10)).ok());
  ASSERT_TRUE(s.add(7, 0x12000, pages(1, 0xa1)).ok());
  ASSERT_TRUE(s.add(7, 0x12000, pages(2, 0xa2)).ok());  // over the patch: newer still
  ASSERT_TRUE(s.add_deferred(7, 0x13000, file.add(2, 0x60)).ok());
  ASSERT_TRUE(s.add(7, 0x14000, pages(1, 0xa3)).ok());  // over the second record
  ASSERT_TRUE(s.add(7, 0x16000, pages(1, 0xa4)).ok());
  EXPECT_EQ(s.pages(), 8u);
  EXPECT_EQ(first_bytes(collect(s, 7, 0x10000, 8)),
            (std::vector<uint8_t>{0x10, 0x11, 0xa2, 0x60, 0xa3, 0x15, 0xa4, 0x17}));
}

// A damaged record in the file is found when its pages are wanted, named, and nothing of it is
// handed out.
TEST(PrecopyStore, ADamagedRecordInTheFileIsAnError) {
  ImageFile file;
  PrecopyStore s;
  const format::DeferredTail d = file.add(2, 0x30);
  ASSERT_TRUE(s.add_deferred(9, 0x40000, d).ok());
  file.flip(d.offset + kPage + 17);
  Status st;
  auto runs = collect(s, 9, 0x40000, 2, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(runs.empty());
  EXPECT_NE(st.error().message.find("checksum mismatch"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("0x40000"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace cr::restore
