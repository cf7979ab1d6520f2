// A live dump through the real RecordWriter, read back and verified by RecordReader.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "common/scoped_fd.h"
#include "dump/dump.h"
#include "format/record_reader.h"
#include "format/record_writer.h"

namespace cr::dump {
namespace {

constexpr size_t kPage = 4096;
uint8_t* const kData = reinterpret_cast<uint8_t*>(0x260000000000);

// A child with `npages` numbered pages that waits for SIGKILL; `ready` is closed once set up.
pid_t spawn_child(size_t npages) {
  int ready[2];
  if (pipe(ready) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    void* p = mmap(kData, npages * kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != kData) _exit(1);
    for (size_t i = 0; i < npages; ++i)
      for (size_t w = 0; w < kPage / 8; ++w)
        reinterpret_cast<uint64_t*>(kData + i * kPage)[w] = i * 1000 + w;
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    close_range(3, ~0u, 0);  // closes `ready` too: the parent sees EOF
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  while (read(ready[0], &c, 1) > 0) {
  }
  close(ready[0]);
  return pid;
}

void roundtrip(int zstd_level, size_t npages) {
  pid_t pid = spawn_child(npages);
  ASSERT_GT(pid, 0);
  ScopedFd mem(memfd_create("image", MFD_CLOEXEC));
  ASSERT_TRUE(mem.valid());
  auto header = stream_header(pid);
  ASSERT_TRUE(header.ok());
  format::WriterOptions wopts;
  wopts.zstd_level = zstd_level;
  auto writer = format::RecordWriter::create(mem.get(), wopts, *header);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  Status st = dump_process(pid, {}, **writer);  // kills and reaps the child
  ASSERT_TRUE(st.ok()) << st.error().message;
  errno = 0;
  EXPECT_EQ(kill(pid, 0), -1);

  ASSERT_EQ(lseek(mem.get(), 0, SEEK_SET), 0);
  auto reader = format::RecordReader::open(mem.get());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_EQ((*reader)->header().root_pid, static_cast<uint32_t>(pid));
  EXPECT_EQ((*reader)->header().arch, 62u);
  std::map<uint32_t, int> counts;
  size_t pages_checked = 0;
  for (;;) {
    auto more = (*reader)->next();
    ASSERT_TRUE(more.ok()) << more.error().message;
    if (!*more) break;
    uint32_t type = (*reader)->type();
    counts[type]++;
    if (type == schema::Pages::kType) {
      auto rec = (*reader)->decode<schema::Pages>();
      ASSERT_TRUE(rec.ok());
      auto tail = (*reader)->tail();
      ASSERT_EQ(tail.size(), rec->npages * kPage);
      uint64_t base = reinterpret_cast<uint64_t>(kData);
      for (uint32_t i = 0; i < rec->npages; ++i) {
        uint64_t a = rec->vaddr + i * kPage;
        if (a < base || a >= base + npages * kPage) continue;
        uint64_t page = (a - base) / kPage, w0 = 0, w9 = 0;
        memcpy(&w0, tail.data() + i * kPage, 8);
        memcpy(&w9, tail.data() + i * kPage + 9 * 8, 8);
        EXPECT_EQ(w0, page * 1000);
        EXPECT_EQ(w9, page * 1000 + 9);
        ++pages_checked;
      }
    }
  }
  EXPECT_EQ(pages_checked, npages);
  EXPECT_EQ(counts[schema::Process::kType], 1);
  EXPECT_EQ(counts[schema::Thread::kType], 1);
  EXPECT_EQ(counts[schema::Mm::kType], 1);
  EXPECT_EQ(counts[schema::Fd::kType], 3);
  EXPECT_GT(counts[schema::Vma::kType], 5);
}

TEST(StreamRoundtrip, Plain) { roundtrip(0, 768); }
TEST(StreamRoundtrip, Zstd) { roundtrip(3, 768); }
// Enough anonymous memory for the page reader thread (dump/pages.cc, from 64 MiB).
TEST(StreamRoundtrip, LargeThreaded) { roundtrip(0, 80 << 8); }

}  // namespace
}  // namespace cr::dump
