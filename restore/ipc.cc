#include "restore/ipc.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/scoped_fd.h"
#include "restore/user_ns.h"

namespace cr::restore {

namespace {

// SysvLimits order, and how many numbers each sysctl holds.
constexpr struct {
  const char* name;
  size_t count;
} kLimits[] = {{"msgmax", 1}, {"msgmnb", 1}, {"msgmni", 1}, {"shmmax", 1},
               {"shmall", 1}, {"shmmni", 1}, {"sem", 4}};

union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

Status write_sysctl(const std::string& name, const std::string& value) {
  const std::string path = "/proc/sys/kernel/" + name;
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + path);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return errno_error("write " + value + " to " + path);
  return {};
}

template <class Perm>
void set_perm(Perm& p, uint32_t uid, uint32_t gid, uint32_t mode) {
  p.uid = uid;
  p.gid = gid;
  p.mode = static_cast<unsigned short>(mode & 0777);
}

// The id the kernel handed out must be the dumped one (the next_id sysctl is a request: a
// wrong id means the slot was taken, which a new namespace rules out).
Status expect_id(int got, uint32_t want, const char* what) {
  if (got < 0) return errno_error(std::string(what) + " " + std::to_string(want));
  if (static_cast<uint32_t>(got) != want)
    return make_error(std::string(what) + " came back as id " + std::to_string(got) +
                      " instead of " + std::to_string(want));
  return {};
}

}  // namespace

IpcBuilder::~IpcBuilder() { detach_all(); }

Status IpcBuilder::enter_new_ns() {
  if (in_new_ns_) return {};
  if (::unshare(CLONE_NEWIPC) != 0) return errno_error("unshare(CLONE_NEWIPC) for the tree");
  in_new_ns_ = true;
  return {};
}

bool IpcBuilder::handles(uint32_t type) {
  return type == schema::SysvLimits::kType || type == schema::SysvShm::kType ||
         type == schema::SysvShmData::kType || type == schema::SysvMsgQueue::kType ||
         type == schema::SysvMsg::kType || type == schema::SysvSem::kType;
}

template <typename R>
Status IpcBuilder::translate(R& r) const {
  if (user_ns_ == nullptr) return {};
  // The creator's ids are crrestore's whatever they were (IPC_SET sets the owner only).
  const Translator t(*user_ns_);
  const std::string what = "SysV object key " + std::to_string(r.key) + " owner";
  CR_TRY(t.uid(r.uid, what));
  return t.gid(r.gid, what);
}

Status IpcBuilder::record(const format::RecordReader& reader) {
  // Objects made in crrestore's own namespace would be the host's: never.
  CR_TRY(enter_new_ns());
  switch (reader.type()) {
    case schema::SysvLimits::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvLimits>());
      return set_limits(r);
    }
    case schema::SysvShm::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvShm>());
      CR_TRY(translate(r));
      return make_shm(r);
    }
    case schema::SysvShmData::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvShmData>());
      return fill_shm(r, reader.tail());
    }
    case schema::SysvMsgQueue::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvMsgQueue>());
      CR_TRY(translate(r));
      return make_queue(r);
    }
    case schema::SysvMsg::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvMsg>());
      return send(r, reader.tail());
    }
    case schema::SysvSem::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::SysvSem>());
      CR_TRY(translate(r));
      return make_sem(r);
    }
    default:
      return {};
  }
}

Status IpcBuilder::set_limits(const schema::SysvLimits& l) {
  size_t at = 0;
  for (const auto& lim : kLimits) {
    if (at + lim.count > l.values.size()) return make_error("sysv_limits: too few values");
    std::string v;
    for (size_t i = 0; i < lim.count; ++i) v += (i ? " " : "") + std::to_string(l.values[at + i]);
    at += lim.count;
    CR_TRY(write_sysctl(lim.name, v));
  }
  return {};
}

Status IpcBuilder::set_next_id(const char* which, uint32_t id) {
  return write_sysctl(std::string(which) + "_next_id", std::to_string(id));
}

Status IpcBuilder::make_shm(const schema::SysvShm& s) {
  if (shmids_.count(s.id) != 0) return make_error("sysv_shm " + std::to_string(s.id) + " twice");
  if (s.size == 0 || s.size > (uint64_t{1} << 40))
    return make_error("SysV segment " + std::to_string(s.shmid) + ": size " + std::to_string(s.size));
  CR_TRY(set_next_id("shm", s.shmid));
  const key_t key = (s.flags & schema::kSysvShmRemoved) != 0 ? IPC_PRIVATE : static_cast<key_t>(s.key);
  const int id = ::shmget(key, s.size, static_cast<int>(s.mode & 0777) | IPC_CREAT | IPC_EXCL);
  CR_TRY(expect_id(id, s.shmid, "SysV segment"));
  shmids_[s.id] = s.shmid;
  void* p = ::shmat(id, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1)) return errno_error("shmat SysV segment " + std::to_string(id));
  maps_[s.id] = {p, (s.size + 4095) & ~uint64_t{4095}};
  shmid_ds ds{};
  if (::shmctl(id, IPC_STAT, &ds) != 0) return errno_error("shmctl IPC_STAT");
  set_perm(ds.shm_perm, s.uid, s.gid, s.mode);
  if (::shmctl(id, IPC_SET, &ds) != 0) return errno_error("shmctl IPC_SET " + std::to_string(id));
  if ((s.flags & schema::kSysvShmLocked) != 0 && ::shmctl(id, SHM_LOCK, nullptr) != 0)
    return errno_error("shmctl SHM_LOCK " + std::to_string(id));
  if ((s.flags & schema::kSysvShmRemoved) != 0) to_remove_.push_back(s.shmid);
  return {};
}

Status IpcBuilder::fill_shm(const schema::SysvShmData& d, std::span<const uint8_t> bytes) {
  auto it = maps_.find(d.shm);
  if (it == maps_.end())
    return make_error("sysv_shm_data for segment object " + std::to_string(d.shm) + " not made");
  const uint64_t size = it->second.second;
  if (d.offset > size || bytes.size() > size - d.offset)
    return make_error("sysv_shm_data at " + std::to_string(d.offset) + " beyond its segment");
  std::memcpy(static_cast<uint8_t*>(it->second.first) + d.offset, bytes.data(), bytes.size());
  return {};
}

Status IpcBuilder::make_queue(const schema::SysvMsgQueue& q) {
  CR_TRY(set_next_id("msg", q.msqid));
  const int id = ::msgget(static_cast<key_t>(q.key), static_cast<int>(q.mode & 0777) | IPC_CREAT | IPC_EXCL);
  CR_TRY(expect_id(id, q.msqid, "SysV message queue"));
  msqid_ds ds{};
  if (::msgctl(id, IPC_STAT, &ds) != 0) return errno_error("msgctl IPC_STAT");
  set_perm(ds.msg_perm, q.uid, q.gid, q.mode);
  ds.msg_qbytes = q.qbytes;  // within the namespace's msgmnb, set from SysvLimits
  if (::msgctl(id, IPC_SET, &ds) != 0)
    return errno_error("msgctl IPC_SET queue " + std::to_string(id) + " (qbytes " +
                       std::to_string(q.qbytes) + ")");
  queues_[q.msqid] = true;
  return {};
}

Status IpcBuilder::send(const schema::SysvMsg& m, std::span<const uint8_t> text) {
  if (queues_.count(m.msqid) == 0)
    return make_error("sysv_msg for queue " + std::to_string(m.msqid) + " not made");
  if (m.mtype == 0 || m.mtype > static_cast<uint64_t>(INT64_MAX))
    return make_error("sysv_msg of type " + std::to_string(m.mtype));
  std::vector<uint8_t> buf(sizeof(long) + text.size());
  const long mtype = static_cast<long>(m.mtype);
  std::memcpy(buf.data(), &mtype, sizeof mtype);
  if (!text.empty()) std::memcpy(buf.data() + sizeof(long), text.data(), text.size());
  if (::msgsnd(static_cast<int>(m.msqid), buf.data(), text.size(), IPC_NOWAIT) != 0)
    return errno_error("msgsnd to queue " + std::to_string(m.msqid));
  return {};
}

Status IpcBuilder::make_sem(const schema::SysvSem& s) {
  if (s.values.empty() || s.values.size() > 65536)
    return make_error("SysV semaphore set " + std::to_string(s.semid) + " of " +
                      std::to_string(s.values.size()) + " semaphores");
  CR_TRY(set_next_id("sem", s.semid));
  const int id = ::semget(static_cast<key_t>(s.key), static_cast<int>(s.values.size()),
                          static_cast<int>(s.mode & 0777) | IPC_CREAT | IPC_EXCL);
  CR_TRY(expect_id(id, s.semid, "SysV semaphore set"));
  std::vector<unsigned short> vals;
  for (uint64_t v : s.values) {
    if (v > 32767) return make_error("SysV semaphore value " + std::to_string(v));
    vals.push_back(static_cast<unsigned short>(v));
  }
  SemArg arg{};
  arg.array = vals.data();
  if (::semctl(id, 0, SETALL, arg) != 0) return errno_error("semctl SETALL " + std::to_string(id));
  semid_ds ds{};
  arg.buf = &ds;
  if (::semctl(id, 0, IPC_STAT, arg) != 0) return errno_error("semctl IPC_STAT");
  set_perm(ds.sem_perm, s.uid, s.gid, s.mode);
  if (::semctl(id, 0, IPC_SET, arg) != 0) return errno_error("semctl IPC_SET " + std::to_string(id));
  return {};
}

void IpcBuilder::detach_all() {
  for (auto& [id, m] : maps_) ::shmdt(m.first);
  maps_.clear();
}

Status IpcBuilder::remove_marked() {
  for (uint32_t shmid : to_remove_)
    if (::shmctl(static_cast<int>(shmid), IPC_RMID, nullptr) != 0)
      return errno_error("shmctl IPC_RMID " + std::to_string(shmid));
  to_remove_.clear();
  return {};
}

}  // namespace cr::restore
