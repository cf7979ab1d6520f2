// Deleted regular files ("ghosts"): only their data extents are stored, so a sparse file keeps
// its holes and costs the image what it holds, not its size. The contents are read when the
// FileData records are written, through an fd of crdump's own, so a large file never sits in
// memory whole.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "common/text.h"
#include "dump/passes.h"

namespace cr::dump {

namespace {

constexpr uint64_t kFileDataChunk = 1u << 20;

// The data extents of `fd` below `size`: SEEK_DATA finds the next byte that is not in a hole,
// SEEK_HOLE where that run ends (a filesystem without holes reports one run up to the end).
Result<std::vector<std::pair<uint64_t, uint64_t>>> data_extents(int fd, uint64_t size,
                                                                const std::string& what) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole from here on
    if (data < 0) return errno_error(what + ": SEEK_DATA");
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return errno_error(what + ": SEEK_HOLE");
    const uint64_t start = static_cast<uint64_t>(data);
    const uint64_t end = std::min(static_cast<uint64_t>(hole), size);
    if (start >= end) break;
    out.emplace_back(start, end - start);
    pos = end;
  }
  return out;
}

}  // namespace

Result<GhostData> read_ghost_extents(const DumpContext& ctx, int fd, const struct stat& st,
                                     const std::string& path) {
  const std::string what = fd_name(fd) + ": deleted file " + path;
  GhostData g;
  // A description of our own (not a copy of the task's): seeking it leaves the task's offset.
  // O_NOATIME: reading it must not change the atime of a file the dump leaves running.
  const std::string entry = "fd/" + std::to_string(fd);
  g.src.reset(::openat(ctx.proc.fd(), entry.c_str(), O_RDONLY | O_CLOEXEC | O_NOATIME));
  if (!g.src.valid() && errno == EPERM)  // not the owner, without CAP_FOWNER
    g.src.reset(::openat(ctx.proc.fd(), entry.c_str(), O_RDONLY | O_CLOEXEC));
  if (!g.src.valid()) return errno_error(what + ": reopen");
  CR_TRY_ASSIGN(g.extents, data_extents(g.src.get(), static_cast<uint64_t>(st.st_size), what));
  uint64_t bytes = 0;
  for (const auto& e : g.extents) bytes += e.second;
  const uint64_t limit = ctx.opts.ghost_limit;
  if (limit != 0 && bytes > limit)
    return make_error(what + " holds " + std::to_string(bytes) + " bytes of data (size " +
                      std::to_string(st.st_size) + "), over --ghost-limit " +
                      std::to_string(limit));
  return g;
}

Status write_file_data(format::RecordWriter& out, const GhostData& g) {
  std::vector<uint8_t> buf;
  for (const auto& [start, len] : g.extents) {
    for (uint64_t off = start; off < start + len; off += kFileDataChunk) {
      buf.resize(static_cast<size_t>(std::min(kFileDataChunk, start + len - off)));
      size_t got = 0;
      while (got < buf.size()) {
        ssize_t r =
            ::pread(g.src.get(), buf.data() + got, buf.size() - got, static_cast<off_t>(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return errno_error("read deleted file (file " + std::to_string(g.file) + ")");
        if (r == 0) break;  // shrank meanwhile (a process outside the tree): keep what is there
        got += static_cast<size_t>(r);
      }
      if (got == 0) return {};
      buf.resize(got);
      CR_TRY(out.write(schema::FileData{g.file, off}, buf));
      if (got < std::min(kFileDataChunk, start + len - off)) return {};
    }
  }
  return {};
}

}  // namespace cr::dump
