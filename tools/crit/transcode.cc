// crit decode and encode: image <-> JSON through format/json.h.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "format/json.h"
#include "tools/crit/crit.h"

namespace cr::crit {

int cmd_decode(const std::string& path, bool pages) {
  Image img = open_image(path, /*bookkeeping=*/true);
  std::ios::sync_with_stdio(false);
  take(format::stream_to_json(*img.reader, pages, std::cout));
  return 0;
}

int cmd_encode(const std::string& in, const std::string& out) {
  nlohmann::ordered_json doc;
  try {
    if (in == "-") {
      doc = nlohmann::ordered_json::parse(std::cin);
    } else {
      std::ifstream f(in);
      if (!f) fail(errno_error(in).message);
      doc = nlohmann::ordered_json::parse(f);
    }
  } catch (const nlohmann::json::parse_error& e) {
    fail((in == "-" ? std::string("stdin") : in) + ": " + e.what());
  }
  ScopedFd owned;
  int fd = 1;
  if (out != "-") {
    owned = ScopedFd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!owned.valid()) fail(errno_error(out).message);
    fd = owned.get();
  } else if (::isatty(1)) {
    fail("encode: refusing to write an image to a terminal (use -o FILE or a redirect)");
  }
  auto st = format::json_to_stream(doc, fd);
  if (!st.ok()) {
    // Do not leave a half-written image behind under the name the user gave.
    if (out != "-") ::unlink(out.c_str());
    fail("encode: " + st.error().message);
  }
  return 0;
}

}  // namespace cr::crit
