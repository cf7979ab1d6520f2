// Helpers for the format tests: images in memory, fed to the reader through a memfd.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "format/record_reader.h"
#include "format/record_writer.h"
#include "format/self_description.h"
#include "format/stream_format.h"
#include "format/stream_seal.h"

namespace cr::format::testing {

inline ScopedFd memfd_with(const std::vector<uint8_t>& bytes) {
  ScopedFd fd(memfd_create("image", MFD_CLOEXEC));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (w <= 0) break;
    off += static_cast<size_t>(w);
  }
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

inline std::vector<uint8_t> slurp(int fd) {
  std::vector<uint8_t> out;
  ::lseek(fd, 0, SEEK_SET);
  uint8_t buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0) break;
    out.insert(out.end(), buf, buf + r);
  }
  return out;
}

inline schema::StreamHeader test_header() {
  schema::StreamHeader h;
  h.arch = 62;
  h.page_size = 4096;
  h.kernel_release = "6.18.0-test";
  h.tool_version = "test";
  h.hostname = "host";
  h.created_unix_ns = 1234567890;
  h.root_pid = 42;
  return h;
}

/// Writes an image with `body` (which writes the data records) and returns its bytes.
/// `finish` false leaves the stream without trailer.
inline std::vector<uint8_t> make_image(const WriterOptions& opts,
                                       const std::function<void(RecordWriter&)>& body,
                                       bool finish = true) {
  ScopedFd fd(memfd_create("image", MFD_CLOEXEC));
  auto w = RecordWriter::create(fd.get(), opts, test_header());
  if (!w.ok()) return {};
  body(**w);
  if (finish && !(*w)->finish().ok()) return {};
  w->reset();
  return slurp(fd.get());
}

struct ReadRecord {
  uint32_t type;
  uint64_t offset;
  std::vector<uint8_t> fields, tail;
};

/// Reads a whole image; the error of open() or next() if any.
inline Result<std::vector<ReadRecord>> read_image(const std::vector<uint8_t>& bytes,
                                                  const ReaderOptions& opts = {}) {
  ScopedFd fd = memfd_with(bytes);
  auto r = RecordReader::open(fd.get(), opts);
  if (!r.ok()) return std::move(r).error();
  std::vector<ReadRecord> out;
  for (;;) {
    auto more = (*r)->next();
    if (!more.ok()) return std::move(more).error();
    if (!*more) break;
    out.push_back({(*r)->type(),
                   (*r)->offset(),
                   {(*r)->fields().begin(), (*r)->fields().end()},
                   {(*r)->tail().begin(), (*r)->tail().end()}});
  }
  return out;
}

/// Builds streams byte by byte, for shapes the writer refuses to produce.
struct RawStream {
  std::vector<uint8_t> bytes;
  uint32_t chain = 0;
  uint64_t count = 0;
  SealChain seal = std::move(SealChain::create()).value();
  bool sealed = false;  // begin() described stream_seal: trailer() writes the seal first

  explicit RawStream(uint32_t version = kFormatVersion, uint32_t flags = 0) {
    auto p = make_prefix(version, flags);
    bytes.assign(p.begin(), p.end());
    chain = crc32c(p.data(), p.size());
    seal.prefix(p);
    seal.bytes(p);
  }
  void record(uint32_t type, const std::vector<uint8_t>& payload) {
    auto h = make_record_header(type, static_cast<uint32_t>(payload.size()), crc32c(payload), true);
    if (type != schema::Trailer::kType) {
      chain = crc32c_extend(chain, h.data(), h.size());
      ++count;
    }
    if (type != schema::Trailer::kType && type != schema::StreamSeal::kType) {
      seal.record(bytes.size(), type, static_cast<uint32_t>(payload.size()), crc32c(payload));
      seal.bytes(h);
      seal.bytes(payload);
    }
    bytes.insert(bytes.end(), h.begin(), h.end());
    bytes.insert(bytes.end(), payload.begin(), payload.end());
  }
  template <class R>
  void add(const R& rec) {
    std::vector<uint8_t> p;
    encode_fields(rec, p);
    record(R::kType, p);
  }
  /// StreamHeader and the compiled self-description, as the writer starts.
  void begin() {
    add(test_header());
    for (const StreamType& t : compiled_types()) add(to_schema_type(t));
    sealed = true;
  }
  void trailer() {
    if (sealed) add(std::move(seal.seal(true)).value());
    schema::Trailer t;
    t.record_count = count;
    t.stream_crc = chain;
    add(t);
  }
};

}  // namespace cr::format::testing
