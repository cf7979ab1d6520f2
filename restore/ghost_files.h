// Files removed while open ("ghosts"), made anew by crrestore: a node of the dumped type at the
// dumped path (or beside it, when that name is taken again), filled, opened with the dumped
// flags and removed again, so /proc shows "PATH (deleted)" as before. Owner, mode and times
// are set back; an image whose owner is not root gets no setuid/setgid bits, and its ghosts are
// made as the user holding them (README "Trust model").
#pragma once

#include <functional>
#include <map>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "restore/image.h"
#include "restore/privilege.h"

namespace cr::restore {

class GhostMaker {
 public:
  /// A restricted image (`priv.restricted()`: no process of it is root) has each ghost made,
  /// owned and opened as the process holding it, and gets no setuid/setgid bits.
  GhostMaker(const ProcessImage& img, const Privileges& priv)
      : img_(img), priv_(priv), owner_root_(!priv.restricted()) {}

  /// A deleted regular file (kFileDeleted) with its data extents; O_TMPFILE ones are made
  /// with O_TMPFILE in their directory.
  Result<int> open_file(const schema::File& f);

  /// A deleted directory, FIFO or memory device node (kFileGhostNode). A FIFO's ends share
  /// one node: `fill` puts its queued bytes in through the first end made.
  Result<int> open_node(const schema::File& f, const std::function<Status(int wfd)>& fill);

 private:
  Status set_attrs(int fd, const schema::File& f) const;

  const ProcessImage& img_;
  const Privileges& priv_;
  bool owner_root_;
  std::map<uint32_t, ScopedFd> fifos_;  // by Pipe id: an O_RDWR hold on each remade FIFO
};

}  // namespace cr::restore
