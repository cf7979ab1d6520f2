// libFuzzer target: arbitrary bytes through a memfd into RecordReader, decoding every record
// this build knows and walking every described one. Any crash, sanitizer report or hang is a
// bug; errors are the expected answer to almost every input.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <tuple>

#include "format/record_reader.h"
#include "format/self_description.h"

namespace {

using namespace cr;
using namespace cr::format;

int memfd() {
  static int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
  return fd;
}

template <class R>
void try_decode(const RecordReader& r) {
  if (r.type() != R::kType) return;
  auto d = r.decode<R>();
  if (d.ok()) {
    // Re-encoding a decoded record must not crash either.
    std::vector<uint8_t> out;
    encode_fields(*d, out);
  }
}

void read_all(const ReaderOptions& opts) {
  lseek(memfd(), 0, SEEK_SET);
  auto r = RecordReader::open(memfd(), opts);
  if (!r.ok()) return;
  (void)(*r)->header();
  for (int n = 0; n < 100000; ++n) {
    auto more = (*r)->next();
    if (!more.ok() || !*more) return;
    const RecordReader& rd = **r;
    std::apply([&](auto... rec) { (try_decode<decltype(rec)>(rd), ...); }, schema::AllRecords{});
    if (const StreamType* t = rd.describe(rd.type())) {
      size_t sum = 0;
      auto end = walk_fields(*t, rd.payload(), [&](const FieldView& f) { sum += f.bytes.size(); });
      (void)end;
    }
    (void)rd.tail();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd();
  if (fd < 0) return 0;
  if (ftruncate(fd, 0) != 0) return 0;
  size_t off = 0;
  while (off < size) {
    const ssize_t w = pwrite(fd, data + off, size - off, static_cast<off_t>(off));
    if (w <= 0) return 0;
    off += static_cast<size_t>(w);
  }
  ReaderOptions opts;
  read_all(opts);
  // Without checksums the parser sees mutated structure that CRCs would otherwise hide.
  opts.verify_checksums = false;
  opts.include_bookkeeping = true;
  read_all(opts);
  return 0;
}
