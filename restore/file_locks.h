// Taking the tree's file locks again and setting the async I/O owners of its files
// (FileLock, FileOwner records; dump/file_locks.cc).
#pragma once

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Per process, once its memory is mapped (the remote open and close of a mapped file would
/// drop a POSIX lock on it) and before its credentials change: takes the locks it holds by
/// injected calls, POSIX ones in their owner by force of the kernel's rules, the
/// description's (OFD, flock, lease) through the fd the image names; sets O_ASYNC again
/// through the fd a FileOwner names, so the signal's si_fd is that fd number.
Status take_file_locks(RestoreContext& ctx);

/// Once every process and thread exists: F_SETOWN_EX and F_SETSIG on each FileOwner's file,
/// through a pidfd_getfd copy of its fd.
Status set_file_owners(RestoreContext& root);

/// "POSIX WRITE lock 5-14" for messages.
std::string lock_name(const schema::FileLock& l);

}  // namespace cr::restore
