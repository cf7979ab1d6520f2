// A tree's own net namespace (kProcessOwnNetNs): made by crrestore's main thread before
// anything of the tree, configured from the NetLink, NetAddr, NetRoute and NetSysctl records,
// and kept while the tree's sockets are made (open_files: a socket belongs to the namespace its
// maker is in, and an abstract unix name is the namespace's) and its root is forked (a child
// is made in its parent thread's net namespace). Then crrestore goes back to its own.
#pragma once

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"

namespace cr::restore {

class NetNsScope {
 public:
  /// unshare(CLONE_NEWNET) on the calling thread, then lo up with its MTU and addresses (those
  /// the kernel adds that the image does not have removed), the routes and the sysctls.
  static Result<NetNsScope> enter_new(const ProcessImage& shared);

  NetNsScope(NetNsScope&&) = default;
  NetNsScope& operator=(NetNsScope&&) = default;
  ~NetNsScope() { (void)leave(); }

  /// Back to crrestore's own net namespace (a crrestore left in the tree's would be a process
  /// outside the tree in it: a dump of the restored tree refuses that). Once only.
  Status leave();

 private:
  explicit NetNsScope(ScopedFd home) : home_(std::move(home)) {}
  ScopedFd home_;
};

}  // namespace cr::restore
