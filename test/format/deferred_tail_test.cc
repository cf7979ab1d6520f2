// ReaderOptions::defer_tails (crrestore --lazy from a file): big tails of the named types stay
// in the file, the rest of the stream reads and checks as ever, load_tail() reads one back and
// checks the record's checksum, a damaged one is named; zstd streams and pipes read whole.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "format/crc32c.h"
#include "stream_test_util.h"

namespace cr::format::testing {
namespace {

std::vector<uint8_t> pages(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n * 4096);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 13 + seed);
  return v;
}

std::vector<uint8_t> image_with_pages(int zstd_level = 0) {
  WriterOptions opts;
  opts.zstd_level = zstd_level;
  return make_image(opts, [](RecordWriter& w) {
    schema::Pages small{};
    small.pid = 7;
    small.vaddr = 0x10000;
    small.npages = 1;
    ASSERT_TRUE(w.write(small, pages(1, 1)).ok());
    for (uint8_t i = 0; i < 3; ++i) {
      schema::Pages big{};
      big.pid = 7;
      big.vaddr = 0x100000 + i * 0x100000;
      big.npages = 64;
      ASSERT_TRUE(w.write(big, pages(64, i)).ok());
    }
  });
}

ReaderOptions deferring() {
  ReaderOptions o;
  o.defer_tails = {schema::Pages::kType};
  return o;
}

TEST(DeferredTail, BigTailsStayInTheFileAndLoadBack) {
  auto image = image_with_pages();
  ScopedFd fd = memfd_with(image);
  auto r = RecordReader::open(fd.get(), deferring());
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto& reader = **r;
  int small = 0, big = 0;
  for (;;) {
    auto more = reader.next();
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!*more) break;
    if (reader.type() != schema::Pages::kType) continue;
    auto p = reader.decode<schema::Pages>();
    ASSERT_TRUE(p.ok());
    auto d = reader.deferred_tail();
    if (p->npages == 1) {
      EXPECT_FALSE(d);  // small: read whole
      EXPECT_EQ(reader.tail().size(), 4096u);
      ++small;
      continue;
    }
    ASSERT_TRUE(d);
    const auto want = pages(64, static_cast<uint8_t>((p->vaddr - 0x100000) / 0x100000));
    EXPECT_EQ(d->len, want.size());
    EXPECT_EQ(d->fd, fd.get());
    // Its bytes where it says, and its checksum from the fields' on.
    std::vector<uint8_t> at(d->len);
    ASSERT_EQ(::pread(fd.get(), at.data(), at.size(), static_cast<off_t>(d->offset)),
              static_cast<ssize_t>(at.size()));
    EXPECT_EQ(at, want);
    EXPECT_EQ(crc32c_extend(d->fields_crc, at.data(), at.size()), d->payload_crc);
    if (big++ == 1) {  // one loaded back through the reader
      ASSERT_TRUE(reader.load_tail().ok());
      EXPECT_FALSE(reader.deferred_tail());
      EXPECT_EQ(std::vector<uint8_t>(reader.tail().begin(), reader.tail().end()), want);
    }
  }
  EXPECT_EQ(small, 1);
  EXPECT_EQ(big, 3);  // and the trailer's checks held (next() returned false cleanly)
}

TEST(DeferredTail, ADamagedTailIsFoundWhenLoaded) {
  auto image = image_with_pages();
  image[image.size() / 2] ^= 0x01;  // inside the middle big record's pages
  ScopedFd fd = memfd_with(image);
  auto r = RecordReader::open(fd.get(), deferring());
  ASSERT_TRUE(r.ok());
  auto& reader = **r;
  bool found = false;
  for (;;) {
    auto more = reader.next();
    ASSERT_TRUE(more.ok()) << more.error().message;  // skipped: not checked in passing
    if (!*more) break;
    if (reader.deferred_tail()) {
      Status st = reader.load_tail();
      if (!st.ok()) {
        EXPECT_NE(st.error().message.find("checksum mismatch"), std::string::npos);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);
  // Without deferral the same stream fails in passing.
  auto whole = read_image(image);
  EXPECT_FALSE(whole.ok());
}

TEST(DeferredTail, ZstdAndPipesReadWhole) {
  for (int level : {3}) {
    auto image = image_with_pages(level);
    ScopedFd fd = memfd_with(image);
    auto r = RecordReader::open(fd.get(), deferring());
    ASSERT_TRUE(r.ok());
    for (auto more = (*r)->next(); more.ok() && *more; more = (*r)->next())
      EXPECT_FALSE((*r)->deferred_tail());
  }
  auto image = image_with_pages();
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  ScopedFd rd(p[0]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < image.size()) {
      ssize_t n = ::write(p[1], image.data() + off, image.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(p[1]);
  });
  auto r = RecordReader::open(rd.get(), deferring());
  ASSERT_TRUE(r.ok());
  for (auto more = (*r)->next(); more.ok() && *more; more = (*r)->next())
    EXPECT_FALSE((*r)->deferred_tail());
  writer.join();
}

}  // namespace
}  // namespace cr::format::testing
