#include "restore/shmem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/text.h"
#include "sys/linux_abi.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

std::string what(const schema::Shmem& s) {
  if (s.kind == schema::kShmemMemfd)
    return "memfd \"" + s.name + "\" (shmem " + std::to_string(s.id) + ")";
  return "shmem " + std::to_string(s.id);
}

// memfd_create as the dumped one was made, or as near as this kernel allows. Sealing is always
// allowed here: the dumped seals (F_SEAL_SEAL among them when it was not) are added last.
Result<ScopedFd> make_memfd(const schema::Shmem& s) {
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  // MFD_NOEXEC_SEAL makes it without exec bits and seals that; MFD_EXEC asks for exec bits
  // whatever vm.memfd_noexec says. Kernels before 6.3 know neither (EINVAL): their default
  // is an executable memfd, and the mode is set below anyway.
  const unsigned exec = (s.mfd_flags & MFD_NOEXEC_SEAL) != 0 ? MFD_NOEXEC_SEAL : MFD_EXEC;
  int fd = static_cast<int>(::syscall(SYS_memfd_create, s.name.c_str(), flags | exec));
  if (fd < 0 && errno == EINVAL)
    fd = static_cast<int>(::syscall(SYS_memfd_create, s.name.c_str(), flags));
  if (fd < 0) return errno_error("memfd_create " + what(s));
  ScopedFd out(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_error("fstat " + what(s));
  if ((st.st_mode & 07777) != (s.mode & 07777) && ::fchmod(fd, s.mode & 07777) != 0)
    return errno_error("fchmod " + what(s));
  if (::ftruncate(fd, static_cast<off_t>(s.size)) != 0) return errno_error("ftruncate " + what(s));
  return out;
}

}  // namespace

ShmemBuilder::~ShmemBuilder() {
  for (auto& [id, b] : objs_)
    if (b.map != nullptr) ::munmap(b.map, b.rec.size);
}

Status ShmemBuilder::create(const schema::Shmem& s) {
  if (objs_.count(s.id) != 0) return make_error(what(s) + " twice");
  Building b;
  b.rec = s;
  int fd = -1;
  if (s.kind == schema::kShmemMemfd) {
    CR_TRY_ASSIGN(b.fd, make_memfd(s));
    fd = b.fd.get();
  }
  if (s.size != 0) {
    // Filled through a mapping: contents arrive a page run at a time.
    const int flags = MAP_SHARED | (fd < 0 ? MAP_ANONYMOUS : 0);
    void* p = ::mmap(nullptr, s.size, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED)
      return errno_error(what(s) + ": shared memory of " + std::to_string(s.size) + " bytes");
    b.map = p;
  }
  objs_.emplace(s.id, std::move(b));
  return {};
}

Status ShmemBuilder::fill(const schema::ShmemData& d, std::span<const uint8_t> bytes) {
  auto it = objs_.find(d.shmem);
  if (it == objs_.end())
    return make_error("shmem_data for unknown shmem " + std::to_string(d.shmem));
  const Building& b = it->second;
  if (bytes.empty()) return {};
  if (d.offset > b.rec.size || bytes.size() > b.rec.size - d.offset)
    return make_error("shmem_data at " + std::to_string(d.offset) + " beyond " + what(b.rec));
  std::memcpy(static_cast<uint8_t*>(b.map) + d.offset, bytes.data(), bytes.size());
  return {};
}

Status ShmemBuilder::hand_over(std::map<uint32_t, ShmemHandle>& out) {
  for (auto& [id, b] : objs_) {
    ShmemHandle h;
    h.kind = b.rec.kind;
    h.seals = b.rec.seals;
    h.name = b.rec.name;
    if (b.rec.kind == schema::kShmemMemfd) {
      // Its last page was whole while it was filled; now its exact size.
      if (::ftruncate(b.fd.get(), static_cast<off_t>(b.rec.file_size)) != 0)
        return errno_error("ftruncate " + what(b.rec) + " to " + std::to_string(b.rec.file_size));
      h.fd = std::move(b.fd);
    } else {
      // Anonymous shared memory has no fd of its own: its shmem file through map_files.
      const auto a = reinterpret_cast<uintptr_t>(b.map);
      const std::string name = "/proc/self/" + sys::map_files_entry(a, a + b.rec.size);
      h.fd.reset(::open(name.c_str(), O_RDWR | O_CLOEXEC));
      if (!h.fd.valid()) return errno_error("open " + name);
    }
    if (b.map != nullptr) ::munmap(b.map, b.rec.size);
    b.map = nullptr;
    // Its contents are in (and crrestore's own mapping gone) and F_SEAL_WRITE means no
    // writable shared mapping of it existed: sealed now, a read-only shared mapping through a
    // writable fd keeps VM_SHARED (the other seals wait for every mapping, seal_shmems).
    if (h.kind == schema::kShmemMemfd && (h.seals & F_SEAL_WRITE) != 0 &&
        ::fcntl(h.fd.get(), F_ADD_SEALS, F_SEAL_WRITE) != 0)
      return errno_error("memfd \"" + h.name + "\": F_ADD_SEALS F_SEAL_WRITE");
    out[id] = std::move(h);
  }
  return {};
}

Status seal_shmems(const std::map<uint32_t, ShmemHandle>& shmems) {
  for (const auto& [id, h] : shmems) {
    if (h.kind != schema::kShmemMemfd || h.seals == 0) continue;
    if (::fcntl(h.fd.get(), F_ADD_SEALS, static_cast<int>(h.seals)) != 0)
      return errno_error("memfd \"" + h.name + "\": F_ADD_SEALS " + hex(h.seals));
  }
  return {};
}

}  // namespace cr::restore
