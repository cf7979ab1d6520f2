#include "restore/file_locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

#include "restore/tree.h"
#include "sys/linux_abi.h"

namespace cr::restore {

namespace {

std::string where(const RestoreContext& ctx, uint32_t fd) {
  return "pid " + std::to_string(ctx.pid()) + " fd " + std::to_string(fd);
}

// The lock as an injected fcntl takes it: `end` is the last byte, ~0 for "to EOF" (l_len 0).
Result<struct flock> flock_of(const schema::FileLock& l) {
  struct flock fl {};
  fl.l_type = static_cast<short>(l.type);
  fl.l_whence = SEEK_SET;
  if (l.start > static_cast<uint64_t>(INT64_MAX) ||
      (l.end != ~0ull && (l.end < l.start || l.end > static_cast<uint64_t>(INT64_MAX))))
    return make_error("range out of bounds");
  fl.l_start = static_cast<off_t>(l.start);
  fl.l_len = l.end == ~0ull ? 0 : static_cast<off_t>(l.end - l.start + 1);
  return fl;
}

Status take_one(RestoreContext& ctx, const schema::FileLock& l) {
  const uint64_t fd = l.fd;
  if (l.type != F_RDLCK && l.type != F_WRLCK) return make_error("unknown lock type");
  switch (l.kind) {
    case schema::kLockPosix:
    case schema::kLockOfd: {
      CR_TRY_ASSIGN(struct flock fl, flock_of(l));
      ctx.reset_scratch();
      CR_TRY_ASSIGN(uint64_t addr, ctx.put(&fl, sizeof fl));
      const uint64_t cmd = l.kind == schema::kLockPosix ? F_SETLK : F_OFD_SETLK;
      CR_TRY(ctx.call("fcntl", SYS_fcntl, fd, cmd, addr));
      return {};
    }
    case schema::kLockFlock:
      CR_TRY(ctx.call("flock", SYS_flock, fd,
                      static_cast<uint64_t>((l.type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB)));
      return {};
    case schema::kLockLease:
      CR_TRY(ctx.call("fcntl", SYS_fcntl, fd, F_SETLEASE, l.type));
      return {};
    default:
      return make_error("unknown lock kind " + std::to_string(l.kind));
  }
}

// O_ASYNC set again from inside the process: the kernel keeps the fd number it was set through
// and reports it as the signal's si_fd (crrestore set it through its own fd at open).
Status reassert_async(RestoreContext& ctx, const schema::FileOwner& o) {
  CR_TRY_ASSIGN(uint64_t flags, ctx.call("fcntl", SYS_fcntl, o.fd, F_GETFL));
  if ((flags & O_ASYNC) == 0) return {};
  CR_TRY(ctx.call("fcntl", SYS_fcntl, o.fd, F_SETFL, flags & ~static_cast<uint64_t>(O_ASYNC)));
  CR_TRY(ctx.call("fcntl", SYS_fcntl, o.fd, F_SETFL, flags));
  return {};
}

}  // namespace

std::string lock_name(const schema::FileLock& l) {
  static const char* const kinds[] = {"?", "POSIX", "OFD", "flock", "lease"};
  std::string s = l.kind < 5 ? kinds[l.kind] : "?";
  s += l.type == F_WRLCK ? " write" : " read";
  if (l.kind == schema::kLockPosix || l.kind == schema::kLockOfd)
    s += " lock " + std::to_string(l.start) + "-" +
         (l.end == ~0ull ? std::string("EOF") : std::to_string(l.end));
  else
    s += l.kind == schema::kLockLease ? "" : " lock";
  return s;
}

Status take_file_locks(RestoreContext& ctx) {
  for (const schema::FileLock& l : ctx.img.file_locks) {
    Status st = take_one(ctx, l);
    if (!st.ok()) return std::move(st).error().wrap(where(ctx, l.fd) + ": " + lock_name(l));
  }
  for (const schema::FileOwner& o : ctx.img.file_owners) {
    Status st = reassert_async(ctx, o);
    if (!st.ok()) return std::move(st).error().wrap(where(ctx, o.fd) + ": O_ASYNC");
  }
  return {};
}

Status set_file_owners(RestoreContext& root) {
  for (RestoreContext* ctx : tree_order(root))
    for (const schema::FileOwner& o : ctx->img.file_owners) {
      const std::string what = where(*ctx, o.fd);
      ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, ctx->pid(), 0)));
      if (!pidfd.valid()) return errno_error(what + ": pidfd_open");
      ScopedFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), o.fd, 0)));
      if (!copy.valid()) return errno_error(what + ": pidfd_getfd");
      f_owner_ex ex{};
      ex.type = o.owner_type == schema::kOwnerTid    ? F_OWNER_TID
                : o.owner_type == schema::kOwnerPgrp ? F_OWNER_PGRP
                                                     : F_OWNER_PID;
      ex.pid = static_cast<pid_t>(o.owner);
      if (::fcntl(copy.get(), F_SETOWN_EX, &ex) != 0)
        return errno_error(what + ": F_SETOWN_EX " + std::to_string(o.owner));
      if (::fcntl(copy.get(), F_SETSIG, static_cast<int>(o.signo)) != 0)
        return errno_error(what + ": F_SETSIG " + std::to_string(o.signo));
    }
  return {};
}

}  // namespace cr::restore
