// SysV IPC objects. They belong to an IPC namespace, not to a process: only a tree with a
// namespace of its own (the root's differs from crdump's) owns them, and then every segment,
// queue and semaphore set of that namespace is dumped with its id, key and permissions. crdump
// enters the namespace on its own thread for the reads (setns affects only the calling thread)
// and goes back to its own afterwards.
#include <fcntl.h>
#include <sched.h>
#include <dirent.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
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

// POSIX message queues live in the IPC namespace too, listed only by an mqueue mount of it,
// which the tree need not have. crtools does not dump them: a queue is refused by name rather
// than lost. A child of this thread (in the namespace since IpcNsScope) mounts one in a mount
// namespace of its own and lists it with raw syscalls (nothing that allocates after fork in a
// threaded process).
Status check_posix_queues(DumpTree& tree) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd rd(p[0]), wr(p[1]);
  const pid_t child = ::fork();
  if (child < 0) return errno_error("fork to list POSIX message queues");
  if (child == 0) {
    // count (-1: could not look, errno in `err`), then the first queue's name.
    struct {
      int32_t count = -1;
      int32_t err = 0;
      char name[256] = {};
    } r;
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("mqueue", "/proc", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      r.err = errno;
    } else {
      const int d = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      alignas(8) char buf[4096];
      long n = d < 0 ? -1 : 0;
      r.count = d < 0 ? -1 : 0;
      r.err = d < 0 ? errno : 0;
      while (d >= 0 && (n = ::syscall(SYS_getdents64, d, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
          const auto* e = reinterpret_cast<const struct dirent64*>(buf + off);
          off += e->d_reclen;
          if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
          if (r.count++ == 0) {
            const size_t len = ::strnlen(e->d_name, sizeof r.name - 1);
            std::memcpy(r.name, e->d_name, len);
          }
        }
      }
    }
    (void)!::write(p[1], &r, sizeof r);
    ::_exit(0);
  }
  wr.reset();
  struct {
    int32_t count;
    int32_t err;
    char name[256];
  } r{};
  const ssize_t got = ::read(rd.get(), &r, sizeof r);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  const pid_t root = tree.procs.front()->pid;
  if (got != static_cast<ssize_t>(sizeof r) || r.count < 0)
    return tree.refuse(root, errno_error("list the POSIX message queues of the tree's IPC "
                                         "namespace (mount mqueue)",
                                         got == static_cast<ssize_t>(sizeof r) ? r.err : EIO));
  if (r.count == 0) return {};
  r.name[sizeof r.name - 1] = '\0';
  return tree.refuse(root, make_error("POSIX message queue /" + std::string(r.name) +
                                      (r.count > 1 ? " (and " + std::to_string(r.count - 1) +
                                                         " more)"
                                                   : std::string()) +
                                      " in the tree's IPC namespace: not supported"));
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
  CR_TRY(collect_sem(t));
  return check_posix_queues(tree);
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
