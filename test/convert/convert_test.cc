// The version rule (one test per branch) and crconvert's streaming conversion.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "format/convert.h"
#include "format/record_reader.h"
#include "format/record_writer.h"

namespace cr::format {
namespace {

TEST(Versioning, EveryBranch) {
  EXPECT_EQ(check_version(0, 3), VersionCheck::kInvalid);
  EXPECT_EQ(check_version(2, 3), VersionCheck::kOlder);
  EXPECT_EQ(check_version(3, 3), VersionCheck::kCurrent);
  EXPECT_EQ(check_version(4, 3), VersionCheck::kNewer);
  EXPECT_TRUE(require_current_version(3, 3).ok());
  EXPECT_NE(require_current_version(2, 3).error().message.find("crconvert"), std::string::npos);
  EXPECT_NE(require_current_version(4, 3).error().message.find("newer"), std::string::npos);
  EXPECT_NE(require_current_version(0, 3).error().message.find("not a valid"), std::string::npos);
  EXPECT_TRUE(require_current_version(kFormatVersion).ok());
}

// A memfd holding bytes, rewound for reading.
int memfd_with(const std::vector<uint8_t>& bytes) {
  int fd = memfd_create("img", MFD_CLOEXEC);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd, 0, SEEK_SET);
  return fd;
}

std::vector<uint8_t> read_all(int fd) {
  std::vector<uint8_t> out;
  lseek(fd, 0, SEEK_SET);
  uint8_t buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  return out;
}

// Whether a reader walks `bytes` to a complete stream's end without an error.
bool reads_complete(const std::vector<uint8_t>& bytes) {
  int fd = memfd_with(bytes);
  auto r = RecordReader::open(fd);
  bool ok = r.ok();
  while (ok) {
    auto more = (*r)->next();
    if (!more.ok()) ok = false;
    else if (!*more) break;
  }
  close(fd);
  return ok;
}

std::vector<uint8_t> small_image(int zstd_level = 0, uint32_t version = kFormatVersion,
                                 int processes = 1) {
  int fd = memfd_create("src", MFD_CLOEXEC);
  WriterOptions o;
  o.zstd_level = zstd_level;
  o.format_version = version;
  schema::StreamHeader h;
  h.arch = 62;
  h.page_size = 4096;
  h.kernel_release = "6.18";
  h.tool_version = "test";
  auto w = RecordWriter::create(fd, o, h);
  EXPECT_TRUE(w.ok());
  schema::Process p;
  p.pid = 1234;
  p.comm = "demo";
  EXPECT_TRUE((*w)->write(p).ok());
  for (int i = 1; i < processes; ++i) {
    p.pid = 1234 + static_cast<uint32_t>(i);
    p.ppid = 1234;
    EXPECT_TRUE((*w)->write(p).ok());
  }
  schema::Vma v;
  v.pid = 1234;
  v.start = 0x10000;
  v.end = 0x12000;
  v.kind = schema::kVmaAnon;
  EXPECT_TRUE((*w)->write(v).ok());
  std::vector<uint8_t> page(8192, 0xAB);
  schema::Pages pg;
  pg.pid = 1234;
  pg.vaddr = 0x10000;
  pg.npages = 2;
  EXPECT_TRUE((*w)->write(pg, page).ok());
  EXPECT_TRUE((*w)->finish().ok());
  auto bytes = read_all(fd);
  close(fd);
  return bytes;
}

TEST(Convert, CurrentVersionIsCopiedByteForByte) {
  auto src = small_image();
  int in = memfd_with(src);
  int out = memfd_create("out", MFD_CLOEXEC);
  ConvertStats stats;
  auto st = convert_stream(in, out, {}, &stats);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(stats.from_version, kFormatVersion);
  EXPECT_EQ(read_all(out), src);  // up (a no-op here) then read back: the same bytes
  close(in);
  close(out);
}

std::vector<uint8_t> convert(const std::vector<uint8_t>& src, uint32_t to, Status* status,
                             ConvertStats* stats = nullptr) {
  int in = memfd_with(src);
  int out = memfd_create("out", MFD_CLOEXEC);
  ConvertOptions o;
  o.to_version = to;
  *status = convert_stream(in, out, o, stats);
  auto bytes = read_all(out);
  close(in);
  close(out);
  return bytes;
}

// Every older version converts up; every lossless downgrade gives back the original bytes.
TEST(Convert, UpThenDownGivesTheOriginalBytes) {
  for (uint32_t v = kOldestFormatVersion; v < kFormatVersion; ++v) {
    auto old_image = small_image(0, v);
    Status st;
    ConvertStats stats;
    auto up = convert(old_image, kFormatVersion, &st, &stats);
    ASSERT_TRUE(st.ok()) << "v" << v << " up: " << st.error().message;
    EXPECT_EQ(stats.from_version, v);
    EXPECT_EQ(up, small_image(0, kFormatVersion)) << "v" << v << " up is the current image";
    auto down = convert(up, v, &st);
    ASSERT_TRUE(st.ok()) << "down to v" << v << ": " << st.error().message;
    EXPECT_EQ(down, old_image) << "v" << v << " up then down";
  }
}

// A tree cannot go down to version 1 (one process): refused, naming what would be lost, and
// the output can never read as a complete image.
TEST(Convert, LossyDowngradeIsRefusedNamingWhatIsLost) {
  auto tree = small_image(0, kFormatVersion, 3);
  Status st;
  auto out = convert(tree, 1, &st);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("processes (1235, 1236) would be lost"), std::string::npos)
      << st.error().message;
  EXPECT_FALSE(reads_complete(out));
  // The same tree at its own version converts fine.
  convert(tree, kFormatVersion, &st);
  EXPECT_TRUE(st.ok());
}

TEST(Convert, ZstdInputGivesThePlainImage) {
  int in = memfd_with(small_image(1));
  int out = memfd_create("out", MFD_CLOEXEC);
  ASSERT_TRUE(convert_stream(in, out, {}, nullptr).ok());
  EXPECT_EQ(read_all(out), small_image());
  close(in);
  close(out);
}

TEST(Convert, TruncatedOrDamagedInputNeverLooksComplete) {
  auto src = small_image();
  for (size_t cut : {src.size() - 1, src.size() / 2, size_t{30}}) {
    std::vector<uint8_t> part(src.begin(), src.begin() + cut);
    int in = memfd_with(part);
    int out = memfd_create("out", MFD_CLOEXEC);
    auto st = convert_stream(in, out, {}, nullptr);
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    // Whatever was written must be refused by a reader too.
    auto written = read_all(out);
    if (!written.empty()) {
      EXPECT_FALSE(reads_complete(written))
          << "a cut input produced an output that reads as complete";
    }
    close(in);
    close(out);
  }
  auto bad = src;
  bad[bad.size() / 2] ^= 0x10;
  int in = memfd_with(bad);
  int out = memfd_create("out", MFD_CLOEXEC);
  auto st = convert_stream(in, out, {}, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("offset"), std::string::npos) << st.error().message;
  close(in);
  close(out);
}

TEST(Convert, UnknownTargetVersionsAreRefused) {
  auto src = small_image();
  for (uint32_t to : {kFormatVersion + 1, 0u}) {
    int in = memfd_with(src);
    int out = memfd_create("out", MFD_CLOEXEC);
    ConvertOptions o;
    o.to_version = to;
    auto st = convert_stream(in, out, o, nullptr);
    EXPECT_FALSE(st.ok()) << "to " << to;
    close(in);
    close(out);
  }
}

TEST(Convert, NewerImageIsRefusedWithAdvice) {
  auto src = small_image();
  // Rewrite the prefix version (and its CRC) as a newer writer would.
  src[8] = static_cast<uint8_t>(kFormatVersion + 1);
  auto prefix = make_prefix(kFormatVersion + 1, load_le32(src.data() + 12));
  std::copy(prefix.begin(), prefix.end(), src.begin());
  int in = memfd_with(src);
  int out = memfd_create("out", MFD_CLOEXEC);
  auto st = convert_stream(in, out, {}, nullptr);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("newer"), std::string::npos) << st.error().message;
  close(in);
  close(out);
}

}  // namespace
}  // namespace cr::format
