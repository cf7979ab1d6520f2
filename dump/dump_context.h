// DumpContext: everything the dump passes share, passed explicitly (no globals). Each pass
// fills its part; the writing passes turn it into records in the stream's fixed order.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/scoped_fd.h"
#include "dump/dump.h"
#include "dump/undo_guard.h"
#include "sys/file_locks.h"
#include "sys/netlock.h"
#include "format/record_writer.h"
#include "schema/records.h"
#include "sys/proc_parse.h"
#include "sys/sigreturn_frame.h"
#include "sys/tracee.h"

namespace cr::dump {

// The /proc parsers live in sys/ (restore reads /proc too); dump uses them unqualified.
using namespace ::cr::sys;  // NOLINT(google-build-using-namespace)

/// State read from inside the task by injected system calls (remote_state.cc).
struct RemoteState {
  std::vector<schema::Sigaction> sigactions;  // non-SIG_DFL only
  std::vector<schema::Itimer> itimers;
  std::vector<schema::PosixTimer> posix_timers;
  uint32_t securebits = 0;
  uint64_t brk = 0;
  bool child_subreaper = false;
  uint32_t dumpable = 1;     // PR_GET_DUMPABLE
  uint32_t thp_disable = 0;  // PR_GET_THP_DISABLE
  uint32_t membarrier = 0;   // MEMBARRIER_CMD_GET_REGISTRATIONS
  uint32_t mlockall = 0;     // MCL_FUTURE [| MCL_ONFAULT] in force (the scratch page was locked)
  uint32_t pkeys = 0;        // protection keys allocated in the mm, bit N for key N (not 0)
};

/// One thread, frozen by freeze.cc and queried by remote_state.cc. Each owns its ptrace
/// attachment: a dump that fails or leaves the task running detaches every thread.
struct ThreadState {
  pid_t tid = 0;
  sys::Tracee tracee;
  user_regs_struct regs{};   // after sys::restart_fixup: what is saved and set back
  bool epoll_rerun = false;  // regs re-run an epoll wait the freeze ended with EINTR: they are
                             // set back on detach too (the kernel would return EINTR)
  std::vector<uint8_t> xsave;
  uint64_t sigmask = 0;
  sys::Tracee::Rseq rseq;
  uint64_t robust_head = 0, robust_len = 0;
  std::vector<schema::PendingSignal> pending;  // signals queued to this thread only
  // remote_state.cc (per-thread, so asked of each thread)
  uint64_t ss_sp = 0, ss_size = 0;
  uint32_t ss_flags = 0;
  uint64_t clear_child_tid = 0;
  uint32_t pdeathsig = 0;       // PR_GET_PDEATHSIG
  uint64_t timer_slack_ns = 0;  // PR_GET_TIMERSLACK
  // seccomp.cc: 0 none, 1 strict, 2 filter; in filter mode its newest SeccompFilter's id.
  uint32_t seccomp_mode = 0;
  uint32_t seccomp_filter = 0;
};

/// A deleted file's contents, read when written: an fd of crdump's own on it and its data
/// extents (offset, length), holes left out (ghost_files.cc).
struct GhostData {
  uint32_t file = 0;  // File id
  ScopedFd src;
  std::vector<std::pair<uint64_t, uint64_t>> extents;
};

/// Open files, ready to be written: objects first, then what points at them (files.cc).
struct FileTable {
  std::vector<schema::Pty> ptys;  // written before the Files that open them
  std::optional<schema::ShellTty> shell_tty;  // --shell-job: the terminal of the tty Files
  std::vector<schema::Pipe> pipes;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> pipe_data;  // pipe id, queued bytes
  std::vector<schema::File> files;
  std::vector<GhostData> file_data;  // deleted files' contents, after the Files
  std::vector<schema::UnixSocket> unix_sockets;
  struct UnixQueued {
    uint32_t socket;
    std::string sender;  // a datagram's sender name ("": unnamed, or not a datagram)
    std::vector<uint8_t> bytes;
    std::vector<uint64_t> files;  // File ids of the fds in flight with it (SCM_RIGHTS)
    std::optional<schema::UnixSocketCreds> creds;  // SCM_CREDENTIALS it carries, if any
  };
  std::vector<UnixQueued> unix_data;  // one message, or a run of stream bytes, each
  std::vector<schema::InetSocket> inet_sockets;
  struct InetQueued {
    uint32_t socket;
    uint32_t queue;  // schema::InetQueue
    std::vector<uint8_t> bytes;
    std::vector<uint8_t> from;  // a datagram's sender address and port
    uint32_t from_port = 0;
  };
  std::vector<InetQueued> inet_data;
  std::vector<schema::InetMcast> inet_mcast;  // after the inet sockets
  std::vector<schema::NetlinkSocket> netlink_sockets;
  std::vector<schema::InotifyWatch> inotify_watches;  // after the Files they name
  std::vector<schema::FanotifyGroup> fanotify_groups;  // after the Files they name
  std::vector<schema::FanotifyMark> fanotify_marks;
  std::vector<schema::Fd> fds;
  std::vector<schema::EpollItem> epoll_items;  // after every Fd: targets and epolls are Files
  std::vector<schema::FileLock> locks;         // after every Fd (file_locks.cc)
  std::vector<schema::FileOwner> owners;
};

struct DumpTree;

/// The tree's seccomp filters (seccomp.cc), each written once, oldest first: a filter is known
/// by its program, its flags and the filter before it, so a chain inherited by a child or
/// shared by threads (TSYNC) is found again as the same ids.
struct SeccompTable {
  std::vector<schema::SeccompFilter> filters;
  std::map<std::tuple<uint32_t, uint32_t, std::vector<uint8_t>>, uint32_t> ids;
};

/// A run of pages: its first address and how many.
struct PageSpan {
  uint64_t vaddr = 0;
  uint64_t npages = 0;
  bool prefork = false;  // a parent run: the contents its PagesPrefork gives, not its memory
};

/// A run of pages the children share and the process no longer has: read from `source`.
struct PreforkSpan {
  uint64_t vaddr = 0;
  uint64_t npages = 0;
  pid_t source = 0;
};

/// One process of the tree being dumped.
struct DumpContext {
  DumpContext(pid_t p, const DumpOptions& o, format::RecordWriter& w, DumpTree& t)
      : pid(p), opts(o), out(w), tree(t) {}

  pid_t pid;
  const DumpOptions& opts;
  format::RecordWriter& out;
  DumpTree& tree;
  pid_t parent = 0;             // its parent in the tree, 0 for the root
  pid_t files_of = 0;           // its parent, if it shares its fd table (sharing.cc)
  pid_t fs_of = 0;              // its parent, if it shares its fs context (sharing.cc)
  bool zombie = false;          // exited, not reaped: only its Process record is written
  std::vector<pid_t> children;  // read once it is frozen (freeze.cc)

  ProcDir proc;
  ProcStatus status;
  ProcStat stat;
  ScopedFd pidfd;  // opened on first use by copy_task_fd, kept for the dump

  // freeze.cc
  std::vector<ThreadState> threads;  // ascending tid; the leader (tid == pid) is first
  bool group_stopped = false;
  int stop_signo = 0;                                 // the group stop's signal
  std::vector<schema::PendingSignal> shared_pending;  // the process-wide queue

  /// The leader's attachment: memory reads and process-wide injected calls go through it.
  sys::Tracee& tracee() { return threads.front().tracee; }

  // vmas.cc
  std::vector<MapEntry> maps;     // as smaps shows them, [vsyscall] included
  std::vector<schema::Vma> vmas;  // what is written, address order
  uint64_t syscall_insn = 0;      // a `syscall` in [vdso]
  // What makes injected calls survive crdump's death (sys/sigreturn_frame.h); not ok(): the
  // task lacks one of them and its calls run unprotected.
  sys::HealGadgets heal;

  RemoteState remote;

  // process_info.cc
  schema::Process process;
  schema::Creds creds;
  schema::Rlimits rlimits;
  schema::FsInfo fs;
  schema::ProcAttrs attrs;
  schema::Mm mm;
  schema::PidNsIds ns_ids;  // namespaces.cc, when the tree owns its pid namespace

  // cow.cc: runs of pages it still shares copy-on-write with its parent (address order), left
  // out of its Pages (PagesParent instead).
  std::vector<PageSpan> parent_pages;
  // cow.cc: runs its children share among themselves but it no longer has (PagesPrefork), and
  // while the pass runs, its own pages a sibling may share (address, frame number).
  std::vector<PreforkSpan> prefork;
  std::vector<std::pair<uint64_t, uint64_t>> cow_candidates;
  // precopy.cc (settle): runs whose pre-copied contents still hold (address order), written as
  // PagesPrecopied instead of Pages.
  std::vector<PageSpan> precopied;

  // pages.cc statistics
  uint64_t pages_scanned = 0, pages_written = 0, pages_zero = 0, pages_precopied = 0;
};

/// A shared memory object (one shmem file: anonymous shared memory or a memfd), and where to
/// read it: /proc/`pid`/`entry`, a map_files entry of a mapping of it or an fd on it.
struct ShmemObject {
  schema::Shmem rec;  // id, ino, size (page multiple), and for a memfd its name, seals, ...
  uint64_t dev = 0;   // with rec.ino: an inode number alone may repeat across filesystems
  pid_t pid = 0;
  std::string entry;
};

/// The SysV objects of the tree's own IPC namespace (ipc.cc); empty when the tree shares
/// crdump's namespace (then the objects are the whole system's, not the tree's).
struct IpcTable {
  bool own_ns = false;
  std::vector<uint64_t> limits;  // SysvLimits.values
  std::vector<schema::SysvShm> shms;
  std::vector<schema::SysvMsgQueue> queues;  // messages are read when written
  std::vector<schema::SysvSem> sems;

  const schema::SysvShm* shm(uint32_t shmid) const {
    for (const auto& s : shms)
      if (s.shmid == shmid) return &s;
    return nullptr;
  }
};

/// The cgroups of the tree (cgroups.cc): every directory a task is in and its ancestors,
/// parents first, each with the settings restore gives it if it has to create it; then where
/// each process (and each thread in other cgroups than its process) is.
struct CgroupTable {
  struct Dir {
    schema::Cgroup rec;
    std::vector<schema::CgroupProperty> props;
  };
  std::vector<Dir> dirs;
  std::vector<schema::CgroupMember> members;
  bool differs = false;  // some task is in another cgroup than crdump (kProcessCgroups)
};

/// A POSIX lock as /proc/locks and fdinfo both print it, less its pid: device, inode, first and
/// last byte, type (file_locks.cc).
using PosixLockKey = std::tuple<std::string, uint64_t, uint64_t, uint64_t, std::string>;

/// The whole subtree: the root and its descendants, parents before children. Open files and
/// pipes are the tree's: one File per open file description whichever processes share it.
/// The tree's established TCP connections while they are dumped (inet_sockets.cc): the network
/// lock dropping their packets, and crdump's copies of them with TCP_REPAIR on.
struct NetState {
  sys::NetLock lock;
  // A connection in repair mode: crdump's copy, and its SO_REUSEADDR before (turning repair off
  // clears it).
  struct Repaired {
    ScopedFd s;
    int reuse = 0;
  };
  std::vector<Repaired> repaired;

  /// The dump failed or leaves the tree running: repair off (each connection carries on where
  /// it was), then the lock goes. Before the tree runs again.
  Status resume();
  /// The tree was killed: the copies close silently (a socket in repair sends no reset) and
  /// the lock stays until crrestore has the connections back.
  void leave_for_restore();
};

/// The namespaces the tree's root owns (namespaces.cc), as /proc/PID/ns links show them.
struct NsTable {
  bool own_pid = false, own_uts = false, own_time = false, own_cgroup = false, own_mnt = false,
       own_net = false, own_user = false;
  std::string pid_link, uts_link, time_link, cgroup_link, mnt_link, net_link, user_link;
  std::optional<schema::UserNs> user;  // the maps of its own user namespace
  std::optional<schema::UtsNs> uts;
  std::optional<schema::TimeNs> time;      // the offsets of its own time namespace
  std::optional<schema::CgroupNs> cgroup;  // the roots of its own cgroup namespace (cgroups.cc)
  std::vector<schema::Mount> mounts;  // mount_ns.cc, when the tree owns its mount namespace
  std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>> tmpfs;  // entry, contents
  // net_ns.cc, when the tree owns its net namespace.
  std::vector<schema::NetLink> net_links;
  std::vector<schema::NetAddr> net_addrs;
  std::vector<schema::NetRoute> net_routes;
  std::vector<schema::NetSysctl> net_sysctls;
};

struct DumpTree {
  std::vector<std::unique_ptr<DumpContext>> procs;
  NsTable ns;
  uint64_t sigreturn_hint = 0;  // where the last process had its rt_sigreturn code (forks share it)
  FileTable files;              // objects, then every process's Fd records
  std::vector<ShmemObject> shmems;
  IpcTable ipc;
  NetState net;
  // Puts back what crdump changed on sockets and in the firewall if crdump dies mid-dump.
  UndoGuard undo;
  CgroupTable cgroups;
  SeccompTable seccomp;
  // cow.cc: a range no process maps, for crrestore to fill before forking (PremapArea);
  // {0, 0}: none (no pages shared with a parent, or no room).
  std::pair<uint64_t, uint64_t> premap{0, 0};
  uint32_t next_obj_id = 1;  // objdef ids of Pipe and File records
  // file_locks.cc: /proc/locks as read on a thread of its own once the tree is frozen (a read
  // waits for an RCU grace period, milliseconds), and the POSIX locks the tree's fds show,
  // checked against it at the end of the dump (the future's destructor waits for the read).
  std::set<PosixLockKey> posix_shown;
  std::future<Result<std::string>> proc_locks;
  // A dry run (find_blockers): each refusal is kept here, one line naming its process, and the
  // pass goes on with the next item; nothing is written, the network is not locked.
  bool dry_run = false;
  std::vector<std::string> blockers;

  /// Where an item (an fd, a mapping, a thread, a lock...) of process `pid` refuses the dump:
  /// returns `err` (the dump ends there), or in a dry run keeps it and returns success, for
  /// the caller to skip the item and go on with the next.
  Status refuse(pid_t pid, Error err);

  DumpContext* find(pid_t pid) const {
    for (const auto& p : procs)
      if (p->pid == pid) return p.get();
    return nullptr;
  }
};

}  // namespace cr::dump
