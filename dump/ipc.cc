// SysV IPC objects. They belong to an IPC namespace, not to a process: only a tree with a
// namespace of its own (the root's differs from crdump's) owns them, and then every segment,
// queue and semaphore set of that namespace is dumped with its id, key and permissions. crdump
// enters the namespace on its own thread for the reads (setns affects only the calling thread)
// and goes back to its own afterwards.
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <vector>

#include "common/scoped_fd.h"
#include "dump/passes.h"

#ifndef MSG_COPY
#define MSG_COPY 040000  // Linux 3.8, CONFIG_CHECKPOINT_RESTORE: read a message without taking it
#endif
#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#define SEM_STAT_ANY 20
#define MSG_STAT_ANY 13
#endif

namespace cr::dump {

namespace {

constexpr size_t kChunk = 1u << 20;  // ShmemData/SysvShmData record cap

// The ipc sysctls, in SysvLimits order ("sem" holds four numbers).
constexpr const char* kLimitFiles[] = {"msgmax", "msgmnb", "msgmni", "shmmax",
                                       "shmall", "shmmni", "sem"};

union SemArg {
  int val;
  semid_ds* buf;
  unsigned short* array;
};

// Inside the tree's IPC namespace for as long as it lives (the calling thread only).
class IpcNsScope {
 public:
  static Result<IpcNsScope> enter(pid_t pid) {
    IpcNsScope s;
    s.own_.reset(::open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
    if (!s.own_.valid()) return errno_error("open our own IPC namespace");
    const std::string theirs = "/proc/" + std::to_string(pid) + "/ns/ipc";
    ScopedFd target(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!target.valid()) return errno_error("open " + theirs);
    if (::setns(target.get(), CLONE_NEWIPC) != 0) return errno_error("setns " + theirs);
    s.entered_ = true;
    return s;
  }
  IpcNsScope() = default;
  IpcNsScope(IpcNsScope&& o) noexcept
      : own_(std::move(o.own_)), entered_(std::exchange(o.entered_, false)) {}
  ~IpcNsScope() {
    if (entered_) (void)::setns(own_.get(), CLONE_NEWIPC);
  }

 private:
  ScopedFd own_;
  bool entered_ = false;
};

Result<std::vector<uint64_t>> read_limits() {
  std::vector<uint64_t> out;
  for (const char* name : kLimitFiles) {
    const std::string path = std::string("/proc/sys/kernel/") + name;
    ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return errno_error("open " + path);
    char buf[128] = {};
    const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) return errno_error("read " + path);
    auto vals = parse_uint_list(std::string_view(buf, static_cast<size_t>(n)));
    if (!vals) return make_error(path + ": cannot parse '" + std::string(buf) + "'");
    out.insert(out.end(), vals->begin(), vals->end());
  }
  return out;
}

template <class Perm>
void copy_perm(const Perm& p, uint32_t& key, uint32_t& uid, uint32_t& gid, uint32_t& cuid,
               uint32_t& cgid, uint32_t& mode) {
  key = static_cast<uint32_t>(p.__key);
  uid = p.uid;
  gid = p.gid;
  cuid = p.cuid;
  cgid = p.cgid;
  mode = p.mode & 0777;
}

Status collect_shm(IpcTable& t, uint32_t& next_id) {
  shm_info info{};
  const int max_idx = ::shmctl(0, SHM_INFO, reinterpret_cast<shmid_ds*>(&info));
  if (max_idx < 0) return errno_error("shmctl(SHM_INFO)");
  for (int idx = 0; idx <= max_idx; ++idx) {
    shmid_ds ds{};
    const int id = ::shmctl(idx, SHM_STAT_ANY, &ds);
    if (id < 0) continue;  // an unused slot
    schema::SysvShm s;
    s.id = next_id++;
    s.shmid = static_cast<uint32_t>(id);
    copy_perm(ds.shm_perm, s.key, s.uid, s.gid, s.cuid, s.cgid, s.mode);
    s.size = ds.shm_segsz;
    if ((ds.shm_perm.mode & SHM_DEST) != 0) s.flags |= schema::kSysvShmRemoved;
    if ((ds.shm_perm.mode & SHM_LOCKED) != 0) s.flags |= schema::kSysvShmLocked;
    t.shms.push_back(s);
  }
  return {};
}

Status collect_msg(IpcTable& t) {
  msginfo info{};
  const int max_idx = ::msgctl(0, MSG_INFO, reinterpret_cast<msqid_ds*>(&info));
  if (max_idx < 0) return errno_error("msgctl(MSG_INFO)");
  for (int idx = 0; idx <= max_idx; ++idx) {
    msqid_ds ds{};
    const int id = ::msgctl(idx, MSG_STAT_ANY, &ds);
    if (id < 0) continue;
    schema::SysvMsgQueue q;
    q.msqid = static_cast<uint32_t>(id);
    copy_perm(ds.msg_perm, q.key, q.uid, q.gid, q.cuid, q.cgid, q.mode);
    q.qbytes = ds.msg_qbytes;
    t.queues.push_back(q);
  }
  return {};
}

Status collect_sem(IpcTable& t) {
  seminfo info{};
  SemArg arg{};
  arg.buf = reinterpret_cast<semid_ds*>(&info);
  const int max_idx = ::semctl(0, 0, SEM_INFO, arg);
  if (max_idx < 0) return errno_error("semctl(SEM_INFO)");
  for (int idx = 0; idx <= max_idx; ++idx) {
    semid_ds ds{};
    arg.buf = &ds;
    const int id = ::semctl(idx, 0, SEM_STAT_ANY, arg);
    if (id < 0) continue;
    schema::SysvSem s;
    s.semid = static_cast<uint32_t>(id);
    copy_perm(ds.sem_perm, s.key, s.uid, s.gid, s.cuid, s.cgid, s.mode);
    std::vector<unsigned short> vals(ds.sem_nsems);
    arg.array = vals.data();
    if (::semctl(id, 0, GETALL, arg) != 0)
      return errno_error("semctl(" + std::to_string(id) + ", GETALL)");
    s.values.assign(vals.begin(), vals.end());
    t.sems.push_back(std::move(s));
  }
  return {};
}

// A segment's contents, read through a read-only attach of crdump's own (zero pages left out).
Status write_segment(format::RecordWriter& out, const schema::SysvShm& s) {
  CR_TRY(out.write(s));
  void* p = ::shmat(static_cast<int>(s.shmid), nullptr, SHM_RDONLY);
  if (p == reinterpret_cast<void*>(-1))
    return errno_error("shmat SysV segment " + std::to_string(s.shmid) + " to read it");
  struct Detach {
    void* p;
    ~Detach() { ::shmdt(p); }
  } detach{p};
  const uint64_t size = (s.size + 4095) & ~uint64_t{4095};
  const auto* base = static_cast<const uint8_t*>(p);
  for (uint64_t off = 0; off < size; off += kChunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, size - off));
    CR_TRY(for_each_nonzero_run(std::span<const uint8_t>(base + off, n),
                                [&](size_t at, std::span<const uint8_t> run) {
                                  return out.write(schema::SysvShmData{s.id, off + at}, run);
                                }));
  }
  return {};
}

// A queue's messages in order, copied with MSG_COPY (the queue keeps them).
Status write_queue(format::RecordWriter& out, const schema::SysvMsgQueue& q) {
  CR_TRY(out.write(q));
  msqid_ds ds{};
  if (::msgctl(static_cast<int>(q.msqid), IPC_STAT, &ds) != 0)
    return errno_error("msgctl(" + std::to_string(q.msqid) + ", IPC_STAT)");
  // No message is larger than the queue's byte limit.
  std::vector<uint8_t> buf(sizeof(long) + std::max<uint64_t>(ds.msg_qbytes, 1));
  for (msgqnum_t i = 0; i < ds.msg_qnum; ++i) {
    const ssize_t n = ::msgrcv(static_cast<int>(q.msqid), buf.data(), buf.size() - sizeof(long),
                               static_cast<long>(i), IPC_NOWAIT | MSG_COPY);
    if (n < 0)
      return errno_error("read message " + std::to_string(i) + " of SysV queue " +
                         std::to_string(q.msqid) + " (MSG_COPY)");
    long mtype = 0;
    std::memcpy(&mtype, buf.data(), sizeof mtype);
    CR_TRY(out.write(schema::SysvMsg{q.msqid, static_cast<uint64_t>(mtype)},
                     std::span<const uint8_t>(buf.data() + sizeof(long), static_cast<size_t>(n))));
  }
  return {};
}

}  // namespace

Status collect_ipc(DumpTree& tree) {
  DumpContext& root = *tree.procs.front();
  CR_TRY_ASSIGN(std::string theirs, root.proc.readlink("ns/ipc"));
  char ours[64] = {};
  if (::readlink("/proc/thread-self/ns/ipc", ours, sizeof ours - 1) < 0)
    return errno_error("readlink our own IPC namespace");
  if (theirs == ours) return {};  // the system's objects, not the tree's
  IpcTable& t = tree.ipc;
  t.own_ns = true;
  CR_TRY_ASSIGN(IpcNsScope in, IpcNsScope::enter(root.pid));
  CR_TRY_ASSIGN(t.limits, read_limits());
  CR_TRY(collect_shm(t, tree.next_obj_id));
  CR_TRY(collect_msg(t));
  return collect_sem(t);
}

Status write_ipc(DumpTree& tree) {
  const IpcTable& t = tree.ipc;
  if (!t.own_ns) return {};
  format::RecordWriter& out = tree.procs.front()->out;
  CR_TRY_ASSIGN(IpcNsScope in, IpcNsScope::enter(tree.procs.front()->pid));
  CR_TRY(out.write(schema::SysvLimits{t.limits}));
  for (const auto& s : t.shms) CR_TRY(write_segment(out, s));
  for (const auto& q : t.queues) CR_TRY(write_queue(out, q));
  for (const auto& s : t.sems) CR_TRY(out.write(s));
  return {};
}

}  // namespace cr::dump
