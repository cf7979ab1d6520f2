// Copy-on-write sharing made again. A forked child's private pages that it still shared with
// its parent (PagesParent) are shared again only if the child is forked after its parent's
// memory is in place: so when the image asks for it, each process, at the point where it would
// fork its children (child_setup.cc), waits while crrestore reads its section of the stream
// and fills its private anonymous mappings at free addresses ("slots", in the image's
// PremapArea); then it forks, and each child inherits them. A child's mapping that lies within
// one of its parent's uses the parent's slot: only its own pages are written there, and what
// it did not share is dropped (MADV_DONTNEED). Later, when the process is rebuilt
// (address_space.cc), each slot is moved into place with mremap, pages and all. CRIU's premap.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "restore/image.h"
#include "sys/remote_syscalls.h"

namespace cr::restore {

struct RestoreContext;

/// One private anonymous mapping of a process and where its memory waits.
struct PremapSlot {
  uint64_t start = 0, end = 0;  // the part of the mapping in the slot (a grown heap: less)
  uint64_t slot = 0;            // where its memory is until moved
  uint32_t kind = 0;
  bool growsdown = false;       // a stack: the slot is MAP_GROWSDOWN too (mremap keeps it)
  uint32_t madv = 0;            // its MadvFlags (huge pages or not while it is filled)
  std::string path;             // a private file mapping: its file, offset (pages), open mode
  uint64_t pgoff = 0;
  bool file_rw = false;
  bool inherited = false;       // within a slot of the parent's, made by fork
};

/// The tree's slots (root-owned).
struct Premap {
  uint64_t area_start = 0;
  uint64_t next = 0, end = 0;  // the rest of the PremapArea
  std::map<uint32_t, std::map<uint64_t, PremapSlot>> slots;  // by pid, then mapping start
  /// What each process's slots hold (by pid, then slot's mapping start): [first, end) runs of
  /// dumped addresses, sorted. A child drops from an inherited slot only what its parent held.
  using Runs = std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>>;
  std::map<uint32_t, Runs> held;
  const PremapSlot* find(uint32_t pid, uint64_t start) const;
};

/// The PagesPrefork contents of each process (by pid, then run start), kept while the tree is
/// restored: a child whose PagesParent run is marked prefork and not inherited in a slot (or
/// every such child, without premap) copies its pages from here.
struct PreforkStore {
  std::map<uint32_t, std::map<uint64_t, std::vector<uint8_t>>> runs;
  void add(uint32_t pid, uint64_t addr, std::span<const uint8_t> bytes);
  /// The bytes of [addr, addr + len) of `pid`'s runs into `out`; an error if a page is missing.
  Status read(uint32_t pid, uint64_t addr, uint64_t len, uint8_t* out) const;
};

/// Drops runs of the task's memory (task addresses) through `rs`: MADV_DONTNEED, or, in
/// `anonymous` memory, runs up to 16 pages overwritten with zeros, a thousand to one
/// process_vm_writev (an injected call costs tens of microseconds).
Status drop_pages(sys::RemoteSyscalls& rs, pid_t pid,
                  const std::vector<std::pair<uint64_t, uint64_t>>& runs, bool anonymous);

/// Whether this restore places memory before forking: the image has PagesParent, a
/// PremapArea, and crrestore's own memory is not in that area. Otherwise children get copies.
Result<std::unique_ptr<Premap>> plan_premap(const TreeHead& head);

/// At `x`'s fork point (it reported 'P' with `release_fd`, an fd of its own): reads its
/// section (Mm, Vmas, then to the next process's), maps its slots by injected calls, fills
/// them, keeps the pages of other mappings and the PagesParent runs outside slots for the pages
/// pass, stashes the rest; then lets it go on.
Status premap_process(RestoreContext& root, RestoreContext& x, int release_fd);

}  // namespace cr::restore
