// Putting an epoll's watches back. The kernel keys a watch by (file, fd number) and takes the
// fd number from the caller's own fd table, so the watches are added by a short-lived process
// forked from crrestore after every File is open: it inherits the carriers, puts each target at
// the fd number it was added under, and calls epoll_ctl(EPOLL_CTL_ADD) on the epoll carrier.
// The watches live on the epoll's open file description, which the tree inherits; a watch goes
// only when its target file's last reference does, so they outlast the helper.
#pragma once

#include "common/result.h"
#include "restore/child_setup.h"
#include "restore/image.h"

namespace cr::restore {

/// Adds every EpollItem of `img` to its epoll carrier, then reads each epoll's fdinfo back and
/// checks every watch is there with its dumped fd number, events and data. A fired
/// EPOLLONESHOT watch is disarmed the way the kernel does it: added armed for any event and
/// reported once by an epoll_wait before the epoll's other watches are added.
Status restore_epoll_items(const ProcessImage& img, const Carriers& carriers);

}  // namespace cr::restore
