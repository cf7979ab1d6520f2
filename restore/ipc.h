// SysV IPC objects of a tree that had an IPC namespace of its own. crrestore unshares a new IPC
// namespace on its main thread as soon as the image says so (before the tree is forked, so
// every process starts in it) and makes each object there with its dumped id, by setting the
// namespace's shm/msg/sem_next_id first. Segments are filled through an attach of crrestore's
// own; the processes attach them again at their addresses (address_space.cc).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "common/result.h"
#include "format/record_reader.h"
#include "schema/records.h"

namespace cr::restore {

class IpcBuilder {
 public:
  IpcBuilder() = default;
  IpcBuilder(const IpcBuilder&) = delete;
  IpcBuilder& operator=(const IpcBuilder&) = delete;
  ~IpcBuilder();

  /// A new IPC namespace for crrestore's main thread (and so for the tree it forks), once.
  Status enter_new_ns();
  /// Whether `type` is a SysV record this builder takes.
  static bool handles(uint32_t type);
  /// Makes the object of one SysV record (the reader's current record).
  Status record(const format::RecordReader& reader);
  /// The owners of the objects are translated through these maps (a tree in a user namespace
  /// of its own, restored inside a new one): before the first record.
  void set_user_ns(const schema::UserNs* u) { user_ns_ = u; }
  /// The segment id of a SysvShm object (by its objdef id), for the processes' attaches.
  const std::map<uint32_t, uint32_t>& shmids() const { return shmids_; }
  /// Detaches crrestore's own attaches (the contents are in place).
  void detach_all();
  /// IPC_RMID for the segments that were removed while attached: called once every process
  /// has attached its own (the segment goes with the last detach, as before).
  Status remove_marked();

 private:
  Status set_next_id(const char* which, uint32_t id);
  template <typename R>
  Status translate(R& r) const;
  const schema::UserNs* user_ns_ = nullptr;
  Status make_shm(const schema::SysvShm& s);
  Status fill_shm(const schema::SysvShmData& d, std::span<const uint8_t> bytes);
  Status make_queue(const schema::SysvMsgQueue& q);
  Status send(const schema::SysvMsg& m, std::span<const uint8_t> text);
  Status make_sem(const schema::SysvSem& s);
  Status set_limits(const schema::SysvLimits& l);

  bool in_new_ns_ = false;
  std::map<uint32_t, uint32_t> shmids_;                   // SysvShm id -> shmid
  std::map<uint32_t, std::pair<void*, uint64_t>> maps_;  // SysvShm id -> our attach, size
  std::vector<uint32_t> to_remove_;                       // shmids marked kSysvShmRemoved
  std::map<uint32_t, bool> queues_;                       // msqids made so far
};

}  // namespace cr::restore
