#include "sys/mounts.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "sys/proc_parse.h"

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

int open_by_handle(int mount_fd, int type, std::span<const uint8_t> handle) {
  std::vector<uint8_t> buf(sizeof(file_handle) + handle.size());
  auto* fh = reinterpret_cast<file_handle*>(buf.data());
  fh->handle_bytes = static_cast<unsigned>(handle.size());
  fh->handle_type = type;
  std::memcpy(fh->f_handle, handle.data(), handle.size());
  return ::open_by_handle_at(mount_fd, fh, O_PATH | O_CLOEXEC);
}

}  // namespace cr::sys
