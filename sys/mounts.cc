#include "sys/mounts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace cr::sys {

Result<ScopedFd> open_mount_of(dev_t dev, const char* who) {
  CR_TRY_ASSIGN(ProcDir self, ProcDir::open(::getpid()));
  CR_TRY_ASSIGN(std::string text, self.read("mountinfo"));
  CR_TRY_ASSIGN(std::vector<MountLine> mounts, parse_mountinfo(text));
  const MountLine* best = nullptr;
  for (const MountLine& m : mounts) {
    if (makedev(m.major, m.minor) != dev) continue;
    if (best == nullptr || (best->root != "/" && m.root == "/")) best = &m;
  }
  if (best == nullptr)
    return make_error("no mount of device " + std::to_string(major(dev)) + ":" +
                      std::to_string(minor(dev)) + " in " + who + " mount namespace");
  ScopedFd fd(::open(best->mount_point.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open mount " + best->mount_point);
  return fd;
}

namespace {

Result<std::vector<MountLine>> own_mounts() {
  CR_TRY_ASSIGN(ProcDir self, ProcDir::open(::getpid()));
  CR_TRY_ASSIGN(std::string text, self.read("mountinfo"));
  return parse_mountinfo(text);
}

}  // namespace

Result<MountLine> find_mount(uint32_t id, const char* who) {
  CR_TRY_ASSIGN(std::vector<MountLine> mounts, own_mounts());
  for (MountLine& m : mounts)
    if (m.id == id) return std::move(m);
  return make_error("mount " + std::to_string(id) + " not in " + who + " mount namespace");
}

Result<ScopedFd> open_mount_at(const std::string& mount_point, dev_t dev, const std::string& root,
                               const char* who) {
  CR_TRY_ASSIGN(std::vector<MountLine> mounts, own_mounts());
  const MountLine* found = nullptr;
  for (const MountLine& m : mounts)
    if (m.mount_point == mount_point && makedev(m.major, m.minor) == dev && m.root == root)
      found = &m;
  const std::string what = "mount of " + std::to_string(major(dev)) + ":" +
                           std::to_string(minor(dev)) + " (root " + root + ") at " + mount_point;
  if (found == nullptr) return make_error("no " + what + " in " + who + " mount namespace");
  ScopedFd fd(::open(mount_point.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + what);
  struct statx stx {};
  if (::statx(fd.get(), "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) != 0)
    return errno_error("statx " + what);
  if ((stx.stx_mask & STATX_MNT_ID) == 0 || stx.stx_mnt_id != found->id)
    return make_error(what + ": another mount is on top of it");
  return fd;
}

int open_by_handle(int mount_fd, int type, std::span<const uint8_t> handle) {
  std::vector<uint8_t> buf(sizeof(file_handle) + handle.size());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(handle.size());
  fh->handle_type = type;
  std::memcpy(fh->f_handle, handle.data(), handle.size());
  return ::open_by_handle_at(mount_fd, fh, O_PATH | O_CLOEXEC);
}

}  // namespace cr::sys
