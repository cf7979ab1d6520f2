// Writes a handful of small valid images (plain and zstd) as fuzzing seeds into argv[1].
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/scoped_fd.h"
#include "format/record_writer.h"

namespace {

using namespace cr;
using namespace cr::format;

Status write_image(const std::string& path, int level, int variant) {
  ScopedFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return errno_error("open " + path);
  WriterOptions opts;
  opts.zstd_level = level;
  schema::StreamHeader h;
  h.arch = 62;
  h.page_size = 4096;
  h.kernel_release = "6.18.0";
  h.tool_version = "seed";
  h.root_pid = 100;
  CR_TRY_ASSIGN(auto w, RecordWriter::create(fd.get(), opts, h));
  schema::Process p;
  p.pid = 100;
  p.comm = "seed";
  CR_TRY(w->write(p));
  schema::Vma v;
  v.pid = 100;
  v.start = 0x400000;
  v.end = 0x402000;
  v.path = "/bin/seed";
  CR_TRY(w->write(v));
  std::vector<uint8_t> page(variant == 2 ? 4096 : 64, 0xab);
  schema::Pages pg;
  pg.pid = 100;
  pg.vaddr = 0x400000;
  pg.npages = 1;
  CR_TRY(w->write(pg, page));
  schema::Pipe pipe;
  pipe.id = 1;
  CR_TRY(w->write(pipe));
  schema::File f;
  f.id = 2;
  f.kind = schema::kFilePipe;
  f.pipe = 1;
  CR_TRY(w->write(f));
  schema::Fd fdr;
  fdr.pid = 100;
  fdr.fd = 3;
  fdr.file = 2;
  CR_TRY(w->write(fdr));
  schema::PipeData pd;
  pd.pipe = 1;
  CR_TRY(w->write(pd, std::span<const uint8_t>(page.data(), 5)));
  if (variant == 1) {
    w->fail("seed: writer failed on purpose");
    return {};
  }
  return w->finish();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const struct {
    const char* name;
    int level, variant;
  } seeds[] = {{"plain", 0, 0},
               {"plain_error", 0, 1},
               {"plain_page", 0, 2},
               {"zstd", 3, 0},
               {"zstd_error", 1, 1}};
  for (const auto& s : seeds) {
    Status st = write_image(dir + "/" + s.name, s.level, s.variant);
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s\n", s.name, st.error().message.c_str());
      return 1;
    }
  }
  return 0;
}
