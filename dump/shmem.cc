// Shared memory objects: anonymous shared memory and memfds, one Shmem record per shmem file in
// the tree, then its contents as ShmemData records, read through /proc/PID/map_files (or an fd)
// of one process that has it (the shmem file itself: holes read as zeros without being
// allocated, pages in swap come back). Zero pages are left out.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "dump/passes.h"
#include "sys/linux_abi.h"

namespace cr::dump {

namespace {

constexpr size_t kChunk = 1u << 20;  // one read; also the ShmemData record cap
constexpr size_t kPage = 4096;

bool zero_page(const uint8_t* p) {
  static const uint8_t kZero[kPage] = {};
  return std::memcmp(p, kZero, kPage) == 0;
}

uint64_t page_up(uint64_t n) { return (n + kPage - 1) & ~uint64_t{kPage - 1}; }

// A memfd's name, seals, size and mode, read through a reopen of its fd or mapping (the
// process is stopped: the reopen is a description of our own on the same inode).
Status describe_memfd(DumpContext& ctx, const std::string& entry, const std::string& name,
                      schema::Shmem& rec) {
  // "fd 4: memfd \"buf\"", as the other fd refusals start.
  const std::string what =
      (entry.starts_with("fd/") ? "fd " + entry.substr(3) : entry) + ": memfd \"" + name + "\"";
  ScopedFd fd(::openat(ctx.proc.fd(), entry.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("reopen " + what);
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0) return errno_error("fstatfs " + what);
  if (static_cast<uint64_t>(fs.f_type) == HUGETLBFS_MAGIC)
    return make_error(what + " with MFD_HUGETLB (hugetlbfs) not supported yet");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return errno_error("fstat " + what);
  const int seals = ::fcntl(fd.get(), F_GET_SEALS);
  if (seals < 0) return errno_error("F_GET_SEALS " + what);
  rec.kind = schema::kShmemMemfd;
  rec.name = name;
  rec.seals = static_cast<uint32_t>(seals);
  rec.file_size = static_cast<uint64_t>(st.st_size);
  rec.size = page_up(rec.file_size);
  rec.mode = st.st_mode & 07777;
  // A memfd made without MFD_ALLOW_SEALING starts with F_SEAL_SEAL alone (and one that allowed
  // sealing and then sealed only that is the same state). MFD_NOEXEC_SEAL shows as F_SEAL_EXEC
  // on a mode without exec bits.
  rec.mfd_flags = rec.seals == F_SEAL_SEAL ? 0u : uint32_t{MFD_ALLOW_SEALING};
  if ((rec.seals & F_SEAL_EXEC) != 0 && (rec.mode & 0111) == 0) rec.mfd_flags |= MFD_NOEXEC_SEAL;
  return {};
}

// The pages of [off, min(off + kChunk, end)) as ShmemData records, zero pages left out.
Status write_run(format::RecordWriter& out, const ShmemObject& o, int fd, std::vector<uint8_t>& buf,
                 uint64_t off, uint64_t end) {
  const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, end - off));
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd, buf.data() + got, want - got, static_cast<off_t>(off + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read shared memory of pid " + std::to_string(o.pid));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  // A file shorter than its last page (a 32-byte semaphore, a memfd of 5000 bytes) reads
  // short: the rest is zeros.
  std::memset(buf.data() + got, 0, want - got);
  return for_each_nonzero_run(std::span<const uint8_t>(buf.data(), want),
                              [&](size_t at, std::span<const uint8_t> run) {
                                return out.write(schema::ShmemData{o.rec.id, off + at}, run);
                              });
}

Status write_object(format::RecordWriter& out, const ShmemObject& o) {
  const schema::Shmem& r = o.rec;
  CR_TRY(out.write(r));
  if (r.size == 0) return {};
  CR_TRY_ASSIGN(ProcDir proc, ProcDir::open(o.pid));
  ScopedFd fd(::openat(proc.fd(), o.entry.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return errno_error("open /proc/" + std::to_string(o.pid) + "/" + o.entry + " (shared memory)");
  // Only the runs SEEK_DATA finds: a sparse object (a large memfd written in a few places) is
  // not read hole by hole. shmem counts pages in swap as data.
  std::vector<uint8_t> buf(kChunk);
  uint64_t off = 0;
  while (off < r.size) {
    const off_t data = ::lseek(fd.get(), static_cast<off_t>(off), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // holes up to the end
    if (data < 0) return errno_error("SEEK_DATA in shared memory of pid " + std::to_string(o.pid));
    const off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);  // at the file's end at the latest
    if (hole < 0) return errno_error("SEEK_HOLE in shared memory of pid " + std::to_string(o.pid));
    const uint64_t start = static_cast<uint64_t>(data) & ~uint64_t{kPage - 1};
    const uint64_t end = std::min(r.size, page_up(static_cast<uint64_t>(hole)));
    if (start >= end) break;
    for (off = start; off < end; off += kChunk) CR_TRY(write_run(out, o, fd.get(), buf, off, end));
    off = end;
  }
  return {};
}

}  // namespace

Result<const ShmemObject*> shmem_object(DumpContext& ctx, const std::string& entry,
                                        const struct stat& st, const std::string& link) {
  for (const auto& o : ctx.tree.shmems)
    if (o.rec.ino == static_cast<uint64_t>(st.st_ino) && o.dev == st.st_dev) return &o;
  ShmemObject o;
  o.dev = st.st_dev;
  o.rec.id = ctx.tree.next_obj_id++;
  o.rec.ino = st.st_ino;
  o.rec.kind = schema::kShmemAnon;
  o.rec.size = page_up(static_cast<uint64_t>(st.st_size));  // whole pages
  o.pid = ctx.pid;
  o.entry = entry;
  if (auto name = memfd_name(link)) {
    CR_TRY(describe_memfd(ctx, entry, *name, o.rec));
  }
  ctx.tree.shmems.push_back(std::move(o));
  return &ctx.tree.shmems.back();
}

Status for_each_nonzero_run(std::span<const uint8_t> buf,
                            const std::function<Status(size_t, std::span<const uint8_t>)>& fn) {
  for (size_t p = 0; p + kPage <= buf.size();) {
    if (zero_page(buf.data() + p)) {
      p += kPage;
      continue;
    }
    size_t e = p + kPage;
    while (e + kPage <= buf.size() && !zero_page(buf.data() + e)) e += kPage;
    CR_TRY(fn(p, buf.subspan(p, e - p)));
    p = e;
  }
  return {};
}

Status write_shmem(DumpTree& tree) {
  for (const ShmemObject& o : tree.shmems) CR_TRY(write_object(tree.procs.front()->out, o));
  return {};
}

}  // namespace cr::dump
