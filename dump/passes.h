// The passes of a dump, in the order dump.cc runs them. Each reads or writes one part of the
// DumpContext; each lives in its own file, named after what it handles.
#pragma once

#include <functional>
#include <span>

#include "dump/dump_context.h"
#include "sys/remote_syscalls.h"

namespace cr::dump {

/// remote_state.cc: an injection scope in thread `t` of `ctx` (frozen): it gives the thread its
/// fixed-up registers back when it ends, and heals itself should crdump die (ctx.heal).
Result<sys::RemoteSyscalls> injection_scope(DumpContext& ctx, ThreadState& t);

/// dump.cc: freezes the tree of `root` as a dump does, reads every process's mappings
/// (collect_vmas: a syscall instruction for injected calls), runs `fn` and lets every process
/// run on where it was, whatever `fn` returned (pre-copy's start).
Status with_frozen_tree(pid_t root, const DumpOptions& opts, format::RecordWriter& out,
                        const std::function<Status(DumpTree&)>& fn);

/// freeze.cc: refuses zombies, seizes every thread and settles it in a ptrace
/// stop; lists the children; reads registers (with restart_fixup), xstate, sigmask, rseq,
/// robust list, pending signals. Refuses a thread with credentials, an fd table, an fs context
/// or namespaces other than its process's, and a stop by a signal restore could not send again.
Status freeze(DumpContext& ctx);

/// seccomp.cc (from freeze, once every thread is stopped): a thread with seccomp (`status`
/// is its /proc status) gets PTRACE_O_SUSPEND_SECCOMP, so no injected call of crdump meets
/// its filters, and its mode and filter chain are read into the tree's SeccompTable.
Status read_seccomp(DumpContext& ctx, ThreadState& t, const ProcStatus& status);
/// The SeccompFilter records, then a SeccompThread per thread with seccomp (in the head).
Status write_seccomp(DumpTree& tree);

/// sharing.cc: which processes share an fd table or fs context (kcmp): with its parent it is
/// recorded (restore clones with CLONE_FILES / CLONE_FS), otherwise refused; so are memory and
/// signal handlers shared between processes.
Status check_sharing(DumpTree& tree);

/// vmas.cc: smaps -> Vma records (kinds, file identity, madvise flags); shared anonymous memory
/// and shared mappings of deleted files become the tree's ShmemObjects; refuses SysV shm,
/// devices and private mappings of deleted files. Finds a `syscall` in [vdso].
Status collect_vmas(DumpContext& ctx);

/// cow.cc: for each process whose parent is in the tree, the runs of private pages both still
/// map copy-on-write (the same frame in pagemap at the same address): its `parent_pages`, and
/// kProcessParentPages on its Process. Before the head is written (it holds the flag).
Status find_parent_pages(DumpTree& tree);

/// files.cc: every process's fd table -> Pipe, PipeData, File, FileData (once per object in
/// the tree), Fd (per slot); refuses what is not handled.
Status collect_files(DumpTree& tree);

/// inotify.cc: the watches of inotify fd `fd` of `proc` (its fdinfo `info`; `file` left 0 for
/// the caller), each opened by its file handle to check restore can; `where` names the fd in
/// errors. Refuses events queued, a watch on a deleted file or a symlink, a filesystem without
/// handles, a wd above schema::kMaxInotifyWd.
Result<std::vector<schema::InotifyWatch>> read_inotify_watches(DumpContext& proc, int fd,
                                                               const Fdinfo& info,
                                                               const std::string& where);

/// fanotify.cc: the group of fanotify fd `fd` of `proc` (its fdinfo `info`) and its marks, in
/// the kernel's order (`file` left 0 for the caller). Refuses events queued, permission
/// classes and events, marks on deleted inodes or symlinks, a mount crdump's mount namespace
/// does not reach at its mount point, mark types and flags this build does not know.
struct FanotifyState {
  schema::FanotifyGroup group;
  std::vector<schema::FanotifyMark> marks;
};
Result<FanotifyState> read_fanotify(DumpContext& proc, int fd, const Fdinfo& info,
                                    const std::string& where);

/// An epoll fd of the tree (the first fd of each epoll File) and its fdinfo watches.
struct EpollRef {
  pid_t pid = 0;
  int fd = -1;
  uint32_t file_id = 0;
  std::vector<EpollWatch> watches;
};
/// One fd of the tree, as a candidate target of a watch.
struct OpenFileRef {
  pid_t pid = 0;
  int fd = -1;
  uint64_t ino = 0;
  uint32_t file_id = 0;
};
/// One fd of the tree (of the processes with their own fd table) with the locks its fdinfo
/// shows, for file_locks.cc.
struct LockedFd {
  pid_t pid = 0;
  int fd = -1;
  uint32_t file_id = 0;
  bool external = false;  // given with --inherit-fd, or the shell's terminal: not the tree's
  std::vector<LockLine> locks;
};
/// file_locks.cc: a FileLock per lock the tree holds (POSIX per process, OFD, flock and lease
/// per open file description) and a FileOwner per open file description with an async I/O
/// owner or signal (F_GETOWN_EX, F_GETSIG through a copy of the fd). Refuses a lease being
/// broken, lock kinds it cannot take again, a lock on an --inherit-fd file and an owner outside
/// the tree. Keeps the POSIX locks the fds show for check_unseen_posix_locks.
Status collect_file_locks(DumpTree& tree, const std::vector<LockedFd>& fds);
/// file_locks.cc: starts reading /proc/locks on a thread of its own (tree.proc_locks); called
/// once every process of the tree is frozen, so what it reads is the tree's final state.
void start_reading_proc_locks(DumpTree& tree);
/// file_locks.cc: waits for that read (or reads it now if no thread could be started) and
/// refuses a POSIX lock of a tree process that no fd of the tree shows (collect_file_locks).
Status check_unseen_posix_locks(DumpTree& tree);

/// epoll.cc: one EpollItem per watch (tree.files.epoll_items), its target found among `open`
/// with kcmp(KCMP_EPOLL_TFD). Refuses a watch on a file the tree does not have open, and a
/// fired EPOLLONESHOT watch whose file has no event ready (restore could not disarm it).
Status collect_epoll_items(DumpTree& tree, const std::vector<EpollRef>& epolls,
                           const std::vector<OpenFileRef>& open);
/// Calls `fn` with every process outside the tree until it returns true; returns
/// whether it did. For the checks that an object has no holder outside (a pipe's other end, a
/// pty): they walk every process, so they run only for objects that need them. `fn` gets the
/// process's open fds too.
bool any_outside_process(const DumpTree& tree,
                         const std::function<bool(const ProcDir&, const std::vector<int>&)>& fn);
/// A copy of fd `fd` of `proc` in crdump (pidfd_getfd): the same open file description, to
/// read state only an open file shows (a socket's queue, a pty's termios, a file's readiness).
/// The process's pidfd is opened once (proc.pidfd).
Result<ScopedFd> copy_task_fd(DumpContext& proc, int fd);
/// The same for process `pid` of the tree.
Result<ScopedFd> copy_task_fd(const DumpTree& tree, pid_t pid, int fd);
/// The pid of a path under /proc/PID ("/proc/12/stat" -> 12), 0 for any other path.
pid_t proc_path_pid(std::string_view path);
/// For a file or cwd under /proc/PID held by `holder`: refuses (message starting with `what`) a
/// process outside the tree, and one that may not exist yet when restore opens it there.
Status check_proc_path(const DumpTree& tree, const DumpContext& holder, const std::string& path,
                       const std::string& what);
/// ghost_files.cc: the data extents of deleted file `fd` of `ctx` (SEEK_DATA/SEEK_HOLE up to
/// `st.st_size`) and an fd to read them later; refuses more data than opts.ghost_limit.
Result<GhostData> read_ghost_extents(const DumpContext& ctx, int fd, const struct stat& st,
                                     const std::string& path);
/// Writes a deleted file's data extents as FileData records of at most 1 MiB each.
Status write_file_data(format::RecordWriter& out, const GhostData& g);

/// pty.cc: where the tree holds a pty pair: its master and one slave fd (pid 0: none).
struct PtyEnds {
  uint32_t index = 0;
  pid_t master_pid = 0, slave_pid = 0;
  int master_fd = -1, slave_fd = -1;
  struct stat slave_st {};
};
/// The pair's state (termios, window size, packet/lock/exclusive, session and foreground group)
/// read through copies of the tree's fds; refuses queued bytes, a slave open nowhere in the
/// tree, another devpts instance, and a session the tree does not lead.
Result<schema::Pty> read_pty(const DumpTree& tree, const PtyEnds& ends);
/// Refuses when a process outside the tree holds one of `ptys` (either end, or as its
/// controlling terminal): the restored pair would leave it out.
Status check_pty_holders(const DumpTree& tree, const std::vector<schema::Pty>& ptys);
/// --shell-job: the state of the shell's terminal that fd `fd` of `pid` is open on (`st`, `link`
/// as /proc shows them): termios and window size through a copy of the fd, and the session
/// leader of the tree it is the controlling terminal of, if any.
Result<schema::ShellTty> read_shell_tty(const DumpTree& tree, pid_t pid, int fd,
                                        const struct stat& st, const std::string& link);
/// A slave's device number as /proc/PID/stat prints tty_nr.
uint32_t pty_tty_nr(dev_t rdev);

/// remote_state.cc: sigactions, altstack, itimers, posix timers, clear_child_tid,
/// securebits and brk, by system calls injected into the task.
Status collect_remote_state(DumpContext& ctx);

/// process_info.cc: Process, Creds, Rlimits, FsInfo, Mm.
Status collect_process_info(DumpContext& ctx);

/// cgroups.cc: the cgroups of every process and thread of the tree, with the settings of each
/// directory and its ancestors (tree.cgroups).
Status collect_cgroups(DumpTree& tree);

/// records.cc: writes everything but the pages, in stream order (docs/FORMAT.md):
/// the tree head (every Process; per process Creds, Rlimits, FsInfo; the shared memory
/// objects; the file objects; every Fd), then per process Mm, Vma | its Pages | its
/// Sigaction .. Thread.
Status write_tree_head(DumpTree& tree);
Status write_mm_records(DumpContext& ctx);    // Mm, Vma
Status write_tail_records(DumpContext& ctx);  // Sigaction .. Thread

/// shmem.cc: the Shmem object of the shmem file at /proc/PID/`entry` (a map_files entry or
/// "fd/N"), added to the tree on first sight (one per inode). A memfd (`link` as readlink shows
/// it names one) gets its name, seals, exact size and mode; one on hugetlbfs is refused.
Result<const ShmemObject*> shmem_object(DumpContext& ctx, const std::string& entry,
                                        const struct stat& st, const std::string& link);
/// shmem.cc: every shared memory object of the tree -> Shmem, ShmemData.
Status write_shmem(DumpTree& tree);
/// Calls `fn(offset, bytes)` for each run of whole pages of `buf` that are not all zero (the
/// contents records of shared memory leave zero pages out).
Status for_each_nonzero_run(std::span<const uint8_t> buf,
                            const std::function<Status(size_t, std::span<const uint8_t>)>& fn);

/// ipc.cc: the SysV objects of the tree's own IPC namespace (none when it shares crdump's):
/// collect_ipc reads what they are; write_ipc writes them with their contents and messages.
Status collect_ipc(DumpTree& tree);
Status write_ipc(DumpTree& tree);

/// namespaces.cc: the root's namespaces must be crdump's but for its pid namespace (when it
/// is pid 1 of it), UTS and IPC (checked before anything is seized; sets tree.ns).
Status check_root_namespaces(DumpTree& tree, pid_t root);
/// namespaces.cc: a process of the tree must be in its root's namespaces.
Status check_namespaces(const DumpContext& p, const DumpContext& root);
/// namespaces.cc: each process's ids in the tree's pid namespace, the UTS names, and the
/// refusal of a process outside the tree in either namespace.
Status collect_namespaces(DumpTree& tree);
/// mount_ns.cc: the mounts of the tree's own mount namespace (refusing what restore could not
/// make again), its tmpfs contents, and every path of the image checked to lead to the same
/// file in the tree's namespace and in crdump's (which crrestore's copy starts as).
Status collect_mount_ns(DumpTree& tree);
/// net_ns.cc: the links, addresses, routes and sysctls of the tree's own net namespace
/// (refusing links other than lo, routes restore would not make alike, policy rules, firewall
/// tables and a process outside the tree in the namespace).
Status collect_net_ns(DumpTree& tree);

/// pages.cc: pagemap + process_vm_readv -> Pages records.
Status write_pages(DumpContext& ctx);

}  // namespace cr::dump
