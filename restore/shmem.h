// Shared memory objects (anonymous shared memory and memfds), built in crrestore itself as the
// image head brings them, held by fds of crrestore's own that every restored process maps and
// opens through /proc/<crrestore>/fd/N; a memfd's seals go on last (seal_shmems).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <utility>

#include "common/result.h"
#include "restore/context.h"
#include "schema/records.h"

namespace cr::restore {

class ShmemBuilder {
 public:
  ShmemBuilder() = default;
  ShmemBuilder(const ShmemBuilder&) = delete;
  ShmemBuilder& operator=(const ShmemBuilder&) = delete;
  ~ShmemBuilder();

  /// A new object: anonymous shared memory, or memfd_create() with the dumped name, its
  /// contents' room and mode (no seals yet).
  Status create(const schema::Shmem& s);
  /// Contents at an offset of an object created before.
  Status fill(const schema::ShmemData& d, std::span<const uint8_t> bytes);
  /// Gives each object's fd to `out` (a memfd cut to its exact size); the mappings go.
  Status hand_over(std::map<uint32_t, ShmemHandle>& out);

 private:
  struct Building {
    schema::Shmem rec;
    ScopedFd fd;  // memfd only; anonymous memory is held by its mapping until hand_over
    void* map = nullptr;
  };
  std::map<uint32_t, Building> objs_;
};

/// Adds every memfd's dumped seals, once every process has mapped what it maps (F_SEAL_WRITE
/// refuses to be added while a writable shared mapping exists, and forbids making one after).
Status seal_shmems(const std::map<uint32_t, ShmemHandle>& shmems);

}  // namespace cr::restore
