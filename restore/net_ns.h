// A tree's own net namespace (kProcessOwnNetNs): made by crrestore's main thread before
// anything of the tree, configured from the NetLink, NetAddr, NetRoute and NetSysctl records,
// and kept while the tree's sockets are made (open_files: a socket belongs to the namespace its
// maker is in, and an abstract unix name is the namespace's) and its root is forked (a child
// is made in its parent thread's net namespace). Then crrestore goes back to its own.
#pragma once

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/context.h"
#include "restore/image.h"

namespace cr::restore {

/// What names no veth of the image with its other end outside is refused (before anything
/// is made).
Status check_external_veths(const ProcessImage& shared,
                            const std::map<std::string, ExternalVeth>& external);

class NetNsScope {
 public:
  /// unshare(CLONE_NEWNET) on the calling thread, then lo up with its MTU and addresses (those
  /// the kernel adds that the image does not have removed), the routes and the sysctls.
  /// Veths come first: a pair with both ends inside, or one end inside and the other in
  /// crrestore's namespace, named (and made a port of a bridge) as `external` says for it or
  /// else as recorded.
  static Result<NetNsScope> enter_new(const ProcessImage& shared,
                                      const std::map<std::string, ExternalVeth>& external);

  NetNsScope(NetNsScope&&) = default;
  NetNsScope& operator=(NetNsScope&&) = default;
  ~NetNsScope() { (void)leave(); }

  /// Back to crrestore's own net namespace (a crrestore left in the tree's would be a process
  /// outside the tree in it: a dump of the restored tree refuses that). Once only.
  Status leave();
  /// Stays in the tree's namespace: a restorer inside a user namespace of the tree's has no
  /// capability in crrestore's own net namespace (the host's), so setns back would fail. It
  /// has nothing more to do there (the veths' outside ends are made), and it is itself in the
  /// tree's user namespace already.
  void stay() { home_.reset(); }

 private:
  explicit NetNsScope(ScopedFd home) : home_(std::move(home)) {}
  ScopedFd home_;
};

}  // namespace cr::restore
