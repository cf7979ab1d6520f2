// libFuzzer target: arbitrary bytes through a memfd into crrestore's image reading, as far as
// it goes without creating anything: the tree head (load_tree_head without the shmem and IPC
// callbacks), its checks, each process's memory map, page runs against it, the per-task records,
// the thread check, and the fd plan. Any crash, sanitizer report or hang is a bug.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "format/record_reader.h"
#include "restore/fd_plan.h"
#include "restore/image.h"

namespace {

using namespace cr;
using namespace cr::restore;

int memfd() {
  static int fd = memfd_create("fuzz-restore-image", MFD_CLOEXEC);
  return fd;
}

// One process's body: pages against its VMAs, then its per-task records, up to the next Mm.
Result<bool> read_body(format::RecordReader& r, ProcessImage& img) {
  CR_TRY_ASSIGN(bool more, load_body_head(r, img));
  if (!more) return false;
  CR_TRY(check_memory(img));
  size_t hint = 0;
  while (more && r.type() != schema::Mm::kType) {
    if (r.type() == schema::Pages::kType) {
      CR_TRY_ASSIGN(auto p, r.decode<schema::Pages>());
      const uint64_t len = uint64_t{p.npages} * 4096;
      if (r.tail().size() != len) return make_error("pages: tail size");
      CR_TRY_ASSIGN(hint, check_pages(img.vmas, p.vaddr, len, hint));
    } else {
      CR_TRY(stash_tail_record(r, img));
    }
    CR_TRY_ASSIGN(more, r.next());
  }
  CR_TRY(check_threads(img));
  return more;
}

Status read_image() {
  lseek(memfd(), 0, SEEK_SET);
  CR_TRY_ASSIGN(auto reader, format::RecordReader::open(memfd()));
  TreeHead head;
  CR_TRY_ASSIGN(bool more, load_tree_head(*reader, head));
  CR_TRY(check_tree_head(head));
  for (auto& img : head.procs) {
    std::vector<FdSource> sources;
    std::vector<FdTarget> targets;
    for (const auto& fd : img.fds) {
      sources.push_back({fd.file, 3});
      targets.push_back({static_cast<int>(fd.fd), fd.file, false});
    }
    (void)plan_fd_table(sources, targets, 4, 10);
  }
  for (auto& img : head.procs) {
    if (!more) break;
    if ((img.process->flags & schema::kProcessZombie) != 0) continue;
    CR_TRY_ASSIGN(more, read_body(*reader, img));
  }
  return {};
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
  (void)read_image();
  return 0;
}
