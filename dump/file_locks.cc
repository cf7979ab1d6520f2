// The file locks the tree holds and the async I/O owners of its open files.
//
// Locks are read from each fd's fdinfo "lock:" lines (sys/file_locks): the kernel lists there
// the locks taken through that open file description and owned by it (flock, OFD, lease) or by
// the reading process's fd table (POSIX), so each lock is matched to its owner without
// guessing from /proc/locks, where flock and lease pids name whoever took them and OFD locks
// show -1. /proc/locks is read once more to find POSIX locks of the tree that no fd of the tree
// shows (the tree would lose them). That read costs an RCU grace period (the kernel takes the
// write side of a per-CPU rwsem, file_rwsem, to walk the global list: 8-16 ms on 2 CPUs, most
// of a small dump), so it runs on a thread of its own from the moment the tree is frozen and
// is checked at the end of the dump, before the stream is finished. Owners (F_GETOWN_EX,
// F_GETSIG) are read through a pidfd_getfd copy of one fd of each open file description.
#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <set>
#include <system_error>
#include <tuple>

#include "common/text.h"
#include "dump/passes.h"

namespace cr::dump {

namespace {

std::string holder(const LockedFd& f) {
  return "pid " + std::to_string(f.pid) + " " + fd_name(f.fd);
}

Error refuse_lock(const LockedFd& f, const LockLine& l, const std::string& why) {
  return make_error(holder(f) + ": " + why + " (lock '" + l.text() + "') not supported");
}

Result<schema::FileLock> lock_record(const LockedFd& f, const LockLine& l) {
  schema::FileLock r;
  r.file = f.file_id;
  r.pid = static_cast<uint32_t>(f.pid);
  r.fd = static_cast<uint32_t>(f.fd);
  if (l.kind == "POSIX") {
    r.kind = schema::kLockPosix;
  } else if (l.kind == "OFDLCK") {
    r.kind = schema::kLockOfd;
  } else if (l.kind == "FLOCK") {
    r.kind = schema::kLockFlock;
  } else if (l.kind == "LEASE") {
    r.kind = schema::kLockLease;
  } else {
    return refuse_lock(f, l, "lock of kind " + l.kind);
  }
  // Mandatory locks are gone from the kernel (5.15); anything but an advisory lock or an
  // active lease (one being broken has an opener waiting, "BREAKING") cannot be taken again.
  const bool lease = r.kind == schema::kLockLease;
  if (lease && l.mode != "ACTIVE") return refuse_lock(f, l, "lease being broken");
  if (!lease && l.mode != "ADVISORY") return refuse_lock(f, l, l.mode + " lock");
  if (l.type == "READ") {
    r.type = F_RDLCK;
  } else if (l.type == "WRITE") {
    r.type = F_WRLCK;
  } else {
    return refuse_lock(f, l, l.type + " lock");
  }
  r.start = l.start;
  r.end = l.end;
  return r;
}

Result<std::string> read_proc_locks() {
  ScopedFd f(::open("/proc/locks", O_RDONLY | O_CLOEXEC));
  if (!f.valid()) return errno_error("open /proc/locks");
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(f.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read /proc/locks");
    if (n == 0) return text;
    text.append(buf, static_cast<size_t>(n));
  }
}

// The process of the tree that has thread `tid`, or 0.
pid_t process_of_thread(const DumpTree& tree, pid_t tid) {
  for (const auto& p : tree.procs)
    for (const ThreadState& t : p->threads)
      if (t.tid == tid) return p->pid;
  return 0;
}

// Whether a process of the tree is in group `pgid` (read from stat: the files pass runs before
// the process records are filled; frozen processes cannot change group).
bool group_in_tree(const DumpTree& tree, pid_t pgid) {
  for (const auto& p : tree.procs) {
    auto text = p->proc.read("stat");
    if (!text.ok()) continue;
    auto st = parse_stat(*text);
    if (st.ok() && st->pgrp == pgid) return true;
  }
  return false;
}

// The owner of the file `f` is on, if it has one or a signal set; refuses an owner outside
// the tree (restore could not name it).
Result<std::optional<schema::FileOwner>> read_owner(const DumpTree& tree, const LockedFd& f,
                                                    const std::vector<LockedFd>& fds) {
  CR_TRY_ASSIGN(ScopedFd copy, copy_task_fd(tree, f.pid, f.fd));
  f_owner_ex ex{};
  if (::fcntl(copy.get(), F_GETOWN_EX, &ex) != 0) return errno_error(holder(f) + ": F_GETOWN_EX");
  int sig = ::fcntl(copy.get(), F_GETSIG);
  if (sig < 0) return errno_error(holder(f) + ": F_GETSIG");
  if (ex.pid == 0 && sig == 0) return std::optional<schema::FileOwner>();
  schema::FileOwner o;
  o.file = f.file_id;
  o.pid = static_cast<uint32_t>(f.pid);
  o.fd = static_cast<uint32_t>(f.fd);
  o.owner = static_cast<uint32_t>(ex.pid);
  o.signo = static_cast<uint32_t>(sig);
  pid_t owner_process = 0;
  const char* what = "";
  switch (ex.type) {
    case F_OWNER_TID:
      o.owner_type = schema::kOwnerTid;
      what = "thread";
      owner_process = ex.pid == 0 ? 0 : process_of_thread(tree, ex.pid);
      break;
    case F_OWNER_PID:
      o.owner_type = schema::kOwnerPid;
      what = "pid";
      owner_process = ex.pid == 0 || tree.find(ex.pid) == nullptr ? 0 : ex.pid;
      break;
    case F_OWNER_PGRP:
      o.owner_type = schema::kOwnerPgrp;
      what = "process group";
      owner_process = ex.pid != 0 && group_in_tree(tree, ex.pid) ? ex.pid : 0;
      break;
    default:
      return make_error(holder(f) + ": async I/O owner of unknown type " + std::to_string(ex.type));
  }
  if (ex.pid != 0 && owner_process == 0)
    return make_error(holder(f) + ": async I/O owner " + what + " " + std::to_string(ex.pid) +
                      " (F_SETOWN) is outside the tree: not supported");
  // O_ASYNC is put back through an fd of the owner's if it holds the file: the signal's si_fd
  // is the fd number it was set through, and the owner is who reads it.
  if (o.owner_type != schema::kOwnerPgrp)
    for (const LockedFd& g : fds)
      if (g.file_id == f.file_id && g.pid == owner_process) {
        o.pid = static_cast<uint32_t>(g.pid);
        o.fd = static_cast<uint32_t>(g.fd);
        break;
      }
  return std::optional<schema::FileOwner>(o);
}

}  // namespace

Status collect_file_locks(DumpTree& tree, const std::vector<LockedFd>& fds) {
  FileTable& t = tree.files;
  // Keys of the locks already recorded: a description seen at several fds (dup, fork) shows
  // its flock/OFD/lease locks at each; a process's POSIX locks show at each dup of the fd.
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t, uint64_t, uint64_t>> seen;
  for (const LockedFd& f : fds) {
    for (const LockLine& l : f.locks) {
      if (l.blocked) continue;
      if (f.external) {
        CR_TRY(tree.refuse(f.pid, refuse_lock(f, l, "lock on an fd given with --inherit-fd")));
        continue;  // a dry run: the next lock
      }
      auto made = lock_record(f, l);
      if (!made.ok()) {
        CR_TRY(tree.refuse(f.pid, std::move(made).error()));
        continue;
      }
      const schema::FileLock r = *made;
      const uint32_t who = r.kind == schema::kLockPosix ? r.pid : 0;
      if (!seen.insert({r.file, who, r.kind, r.type, r.start, r.end}).second) continue;
      t.locks.push_back(r);
    }
  }
  for (const LockedFd& f : fds)
    for (const LockLine& l : f.locks)
      if (l.kind == "POSIX") tree.posix_shown.insert({l.dev, l.ino, l.start, l.end, l.type});
  std::set<uint32_t> asked;
  for (const LockedFd& f : fds) {
    if (f.external || !asked.insert(f.file_id).second) continue;
    auto o = read_owner(tree, f, fds);
    if (!o.ok()) {
      CR_TRY(tree.refuse(f.pid, std::move(o).error()));
      continue;
    }
    if (*o) t.owners.push_back(**o);
  }
  return {};
}

void start_reading_proc_locks(DumpTree& tree) {
  try {
    tree.proc_locks = std::async(std::launch::async, read_proc_locks);
  } catch (const std::system_error&) {
    // No thread to be had (RLIMIT_NPROC): check_unseen_posix_locks reads it itself.
  }
}

// A POSIX lock of the tree that no fd of the tree shows: its file is not open in the tree
// (it went with a table shared outside, or the kernel shows it elsewhere).
Status check_unseen_posix_locks(DumpTree& tree) {
  CR_TRY_ASSIGN(std::string text,
                tree.proc_locks.valid() ? tree.proc_locks.get() : read_proc_locks());
  CR_TRY_ASSIGN(std::vector<LockLine> all, parse_proc_locks(text));
  for (const LockLine& l : all) {
    if (l.blocked || l.kind != "POSIX" || l.pid <= 0) continue;
    if (tree.find(static_cast<pid_t>(l.pid)) == nullptr) continue;  // not ours
    if (tree.posix_shown.count({l.dev, l.ino, l.start, l.end, l.type}) != 0) continue;
    CR_TRY(tree.refuse(static_cast<pid_t>(l.pid),
                       make_error("pid " + std::to_string(l.pid) + ": lock '" + l.text() +
                                  "' on a file the tree does not have open not supported")));
  }
  return {};
}

}  // namespace cr::dump
