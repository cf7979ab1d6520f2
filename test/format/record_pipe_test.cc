// Streams through real pipes: a writer and a reader thread, zstd with and without workers, a
// reader that went away, and memory that must not grow with the stream.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "stream_test_util.h"

namespace cr::format {
namespace {

struct Pipe {
  ScopedFd r, w;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      r.reset(fds[0]);
      w.reset(fds[1]);
    }
  }
};

struct ReadSummary {
  std::string error;  // empty: complete and intact
  uint64_t pages = 0, tail_bytes = 0, tail_sum = 0;
  size_t max_buffer = 0;
};

// Reads a whole stream from `fd`, summing page tails so the writer can check contents.
ReadSummary drain(int fd) {
  ReadSummary s;
  auto r = RecordReader::open(fd);
  if (!r.ok()) {
    s.error = r.error().message;
    return s;
  }
  for (;;) {
    auto more = (*r)->next();
    if (!more.ok()) {
      s.error = more.error().message;
      return s;
    }
    if (!*more) break;
    s.max_buffer = std::max(s.max_buffer, (*r)->buffer_capacity());
    if ((*r)->type() != schema::Pages::kType) continue;
    auto p = (*r)->decode<schema::Pages>();
    if (!p.ok() || p->npages * 4096ull != (*r)->tail().size()) {
      s.error = "bad pages record";
      return s;
    }
    ++s.pages;
    s.tail_bytes += (*r)->tail().size();
    for (size_t i = 0; i < (*r)->tail().size(); i += 4096) s.tail_sum += (*r)->tail()[i];
  }
  return s;
}

struct WriteSummary {
  uint64_t tail_bytes = 0, tail_sum = 0;
  size_t max_buffer = 0;
};

Status write_pages(int fd, const WriterOptions& opts, uint64_t total, WriteSummary* ws) {
  CR_TRY_ASSIGN(auto w, RecordWriter::create(fd, opts, testing::test_header()));
  std::vector<uint8_t> tail(kPagesPerRecordBytes);
  schema::Pages p;
  p.pid = 1;
  p.npages = static_cast<uint32_t>(tail.size() / 4096);
  for (uint64_t done = 0; done < total; done += tail.size()) {
    // Distinct contents per record, so a mix-up would show in the sums.
    for (size_t i = 0; i < tail.size(); i += 4096) {
      tail[i] = static_cast<uint8_t>(done / tail.size() + i / 4096);
      ws->tail_sum += tail[i];
    }
    p.vaddr = 0x10000000 + done;
    CR_TRY(w->write(p, tail));
    ws->tail_bytes += tail.size();
    ws->max_buffer = std::max(ws->max_buffer, w->buffer_capacity());
  }
  return w->finish();
}

void round_trip_through_pipe(const WriterOptions& opts, uint64_t total) {
  Pipe pipe;
  ASSERT_TRUE(pipe.r.valid());
  ReadSummary rs;
  std::thread reader([&] {
    rs = drain(pipe.r.get());
    pipe.r.reset();
  });
  WriteSummary ws;
  Status st = write_pages(pipe.w.get(), opts, total, &ws);
  pipe.w.reset();
  reader.join();
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(rs.error, "");
  EXPECT_EQ(rs.tail_bytes, ws.tail_bytes);
  EXPECT_EQ(rs.tail_sum, ws.tail_sum);
  EXPECT_EQ(rs.pages, total / kPagesPerRecordBytes);
}

TEST(RecordPipe, PlainThroughAPipe) { round_trip_through_pipe({}, 32 << 20); }

TEST(RecordPipe, ZstdThroughAPipe) {
  WriterOptions opts;
  opts.zstd_level = 1;
  round_trip_through_pipe(opts, 32 << 20);
}

TEST(RecordPipe, ZstdWithWorkerThreadsThroughAPipe) {
  WriterOptions opts;
  opts.zstd_level = 3;
  opts.zstd_threads = 2;
  round_trip_through_pipe(opts, 32 << 20);
}

TEST(RecordPipe, WriterToAClosedPipeFailsWithEpipe) {
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGPIPE, &ign, &old), 0);
  for (int level : {0, 1}) {
    Pipe pipe;
    pipe.r.reset();
    WriterOptions opts;
    opts.zstd_level = level;
    WriteSummary ws;
    Status st = write_pages(pipe.w.get(), opts, 4 << 20, &ws);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, EPIPE) << st.error().message;
    EXPECT_NE(st.error().message.find("write"), std::string::npos) << st.error().message;
  }
  sigaction(SIGPIPE, &old, nullptr);
}

TEST(RecordPipe, ReaderGetsTruncatedWhenTheWriterDies) {
  Pipe pipe;
  ReadSummary rs;
  std::thread reader([&] { rs = drain(pipe.r.get()); });
  {
    auto w = RecordWriter::create(pipe.w.get(), {}, testing::test_header());
    ASSERT_TRUE(w.ok());
    std::vector<uint8_t> tail(8192, 1);
    schema::Pages p;
    p.npages = 2;
    ASSERT_TRUE((*w)->write(p, tail).ok());
  }  // destroyed without finish(): what it had is flushed, no trailer
  pipe.w.reset();
  reader.join();
  EXPECT_NE(rs.error.find("truncated at offset"), std::string::npos) << rs.error;
}

TEST(RecordPipe, MemoryStaysBoundedOver256MiB) {
  for (int level : {0, 1}) {
    Pipe pipe;
    ReadSummary rs;
    std::thread reader([&] { rs = drain(pipe.r.get()); });
    WriterOptions opts;
    opts.zstd_level = level;
    WriteSummary ws;
    Status st = write_pages(pipe.w.get(), opts, 256ull << 20, &ws);
    pipe.w.reset();
    reader.join();
    ASSERT_TRUE(st.ok()) << st.error().message;
    ASSERT_EQ(rs.error, "");
    EXPECT_EQ(rs.tail_bytes, 256ull << 20);
    // A few MiB each, whatever the stream length (the page data is 256 MiB).
    EXPECT_GT(rs.max_buffer, 0u);
    EXPECT_LE(rs.max_buffer, 8u << 20) << "zstd level " << level;
    EXPECT_GT(ws.max_buffer, 0u);
    EXPECT_LE(ws.max_buffer, 8u << 20) << "zstd level " << level;
  }
}

}  // namespace
}  // namespace cr::format
