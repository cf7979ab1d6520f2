// crit decode and encode: image <-> JSON through format/json.h.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "format/json.h"
#include "format/record_reader.h"
#include "format/stream_format.h"
#include "tools/output_path.h"
#include "tools/crit/crit.h"

namespace cr::crit {

int cmd_decode(const std::string& path, bool pages) {
  Image img = open_image(path, /*bookkeeping=*/true);
  std::ios::sync_with_stdio(false);
  take(format::stream_to_json(*img.reader, pages, std::cout));
  return 0;
}

namespace {

// Parses the JSON incrementally and hands each element of "records" to the encoder as soon as
// it is complete, then drops it: memory stays one record, however big the image.
void encode_incrementally(std::istream& in, const std::string& name, int fd) {
  using Json = nlohmann::ordered_json;
  format::JsonStreamEncoder enc(fd);
  Json head = Json::object();
  std::string key;
  bool in_records = false, saw_records = false;
  auto cb = [&](int depth, Json::parse_event_t ev, Json& parsed) -> bool {
    if (depth == 1 && ev == Json::parse_event_t::key) key = parsed.get<std::string>();
    if (depth == 1 && ev == Json::parse_event_t::value) head[key] = parsed;
    if (depth == 1 && ev == Json::parse_event_t::array_start && key == "records") {
      if (saw_records) fail(name + ": two \"records\" arrays");
      auto values = take(format::stream_values(head));
      take(enc.begin(values.first, values.second));
      in_records = saw_records = true;
    }
    if (depth == 1 && ev == Json::parse_event_t::array_end) in_records = false;
    if (depth == 2 && in_records && ev == Json::parse_event_t::object_end) {
      take(enc.add(parsed));
      return false;  // encoded: do not keep it in the document
    }
    if (depth == 2 && in_records && ev == Json::parse_event_t::value)
      fail(name + ": records must be objects, got " + parsed.dump());
    return true;
  };
  try {
    Json doc = Json::parse(in, cb);
    if (!doc.is_object()) fail(name + ": the document is not an object");
  } catch (const nlohmann::json::exception& e) {
    fail(name + ": " + e.what());
  }
  if (!saw_records) fail(name + ": no \"records\" array");
  take(enc.finish());
}

// What encode made must be an image its own reader takes whole: read it through once.
void verify_encoded(int fd) {
  uint8_t prefix[format::kPrefixSize] = {};
  if (::pread(fd, prefix, sizeof prefix, 0) != static_cast<ssize_t>(sizeof prefix))
    fail("the encoded stream is shorter than its prefix");
  format::ReaderOptions opts;
  opts.verify_checksums = (format::load_le32(prefix + 12) & format::kFlagNoChecksums) == 0;
  opts.allow_newer_version = true;
  if (::lseek(fd, 0, SEEK_SET) != 0) fail(errno_error("lseek").message);
  auto r = take(format::RecordReader::open(fd, opts));
  while (take(r->next())) {
  }
}

void copy_fd(int from, int to) {
  if (::lseek(from, 0, SEEK_SET) != 0) fail(errno_error("lseek").message);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(from, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno_error("read").message);
    if (n == 0) return;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(to, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(errno_error("write").message);
      done += w;
    }
  }
}

}  // namespace

int cmd_encode(const std::string& in, const std::string& out) {
  std::ifstream file;
  if (in != "-") {
    file.open(in, std::ios::binary);
    if (!file) fail(errno_error(in).message);
  }
  ScopedFd owned;
  int fd = 1;
  const bool special = out != "-" && tools::is_special_output(out);
  if (out != "-") {
    owned = ScopedFd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!owned.valid()) fail(errno_error(out).message);
    fd = owned.get();
  } else if (::isatty(1)) {
    fail("encode: refusing to write an image to a terminal (use -o FILE or a redirect)");
  }
  try {
    // Encoded into memory first and read back: an image the reader refuses is never written.
    ScopedFd mem(::memfd_create("crit-encode", MFD_CLOEXEC));
    if (!mem.valid()) fail(errno_error("memfd_create").message);
    encode_incrementally(in == "-" ? std::cin : file, in == "-" ? "stdin" : in, mem.get());
    try {
      verify_encoded(mem.get());
    } catch (const Failure& e) {
      fail(std::string("the encoded image does not read back: ") + e.what());
    }
    copy_fd(mem.get(), fd);
  } catch (const Failure& e) {
    // Do not leave a half-written image behind under the name the user gave (a device or a
    // FIFO is not ours to remove).
    if (out != "-" && !special) ::unlink(out.c_str());
    fail(std::string("encode: ") + e.what());
  }
  return 0;
}

}  // namespace cr::crit
