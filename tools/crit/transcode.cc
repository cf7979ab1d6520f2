// crit decode and encode: image <-> JSON through format/json.h.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "format/json.h"
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
    encode_incrementally(in == "-" ? std::cin : file, in == "-" ? "stdin" : in, fd);
  } catch (const Failure& e) {
    // Do not leave a half-written image behind under the name the user gave (a device or a
    // FIFO is not ours to remove).
    if (out != "-" && !special) ::unlink(out.c_str());
    fail(std::string("encode: ") + e.what());
  }
  return 0;
}

}  // namespace cr::crit
