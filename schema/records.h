// Every record type of the image stream, declared once (see describe.h for the macro).
//
// Rules (they are the format; docs/FORMAT.md repeats them):
// - A type id is never reused. A field is never removed or retyped; new fields are appended
//   at the end of a record, and a reader fills fields missing from an older record with zero.
//   Anything else is a format version bump with a crconvert step.
// - Records that other records point at carry an `objdef` id; pointers are `objref` fields,
//   which must name an id defined earlier in the stream (0 = none).
// - Numbers follow the kernel's own meaning (MAP_*, PROT_*, O_*, signal numbers, x86_64
//   user_regs_struct order); enums of our own are spelled out beside the field.
#pragma once

#include <tuple>

#include "schema/describe.h"

namespace cr::schema {

// ---- Stream bookkeeping (0x0001-0x00ff). Layouts of these four are frozen forever: a reader
// needs them to bootstrap before it has read the stream's own description.

CR_RECORD(StreamHeader, 0x0001, "stream_header", "who wrote the stream, for which machine",
          (u32, arch),  // ELF e_machine: 62 = x86_64
          (u32, page_size), (str, kernel_release), (str, tool_version), (str, hostname),
          (u64, created_unix_ns),
          (u32, root_pid))  // the PID crdump was given

CR_RECORD(SchemaType, 0x0002, "schema_type",
          "self-description: one record type, its name and fields ('name:kind,...')",
          (u32, type_id), (str, name), (str, doc),
          (str, fields),  // e.g. "start:u64,end:u64,path:str"
          (u32, has_tail))

CR_RECORD(Trailer, 0x0003, "trailer", "end of a complete stream",
          (u64, record_count),  // records before the trailer, header and schema included
          (u32, stream_crc))    // CRC32C over the 20-byte prefix and every record header before
                                // the trailer, chained; each header holds its payload's CRC, so
                                // this covers every byte before the trailer (docs/FORMAT.md)

CR_RECORD(ErrorRecord, 0x0004, "error", "the writer failed: the stream is incomplete",
          (str, message))

// crdump --live-update: written once the tree is killed and every pid of it is free again,
// after the tree's records and before the seal. A restore on the same host (crdump | crrestore)
// makes the processes only after it.
CR_RECORD(TreeReleased, 0x0006, "tree_released",
          "the dumped tree is killed and its pids are free: the restore may make them now",
          (u32, root_pid))

// The seal: right before the Trailer of a stream whose self-description describes it (every
// stream written since; docs/FORMAT.md section 4). It is what the Trailer's stream_crc was meant
// to be: that one chains whole record headers, and a header ends with the CRC of its first 12
// bytes, so each header drives CRC32C to the same residue and the chain depends on the record
// count alone (swapped or copied records pass). A new record rather than a new meaning of
// stream_crc, so images of format version 2 keep their meaning and need no conversion.
CR_RECORD(StreamSeal, 0x0005, "stream_seal", "what a reader needs to know it has all of the stream",
          (u64, record_count),  // records before the seal, header and schema included
          (u64, byte_count),    // stream bytes before the seal (= its offset, uncompressed)
          (u32, chain),         // CRC32C over the prefix, then per record before the seal its
                                // le64 offset, le32 type, le32 length, le32 payload CRC
          (bytes, mac))         // HMAC-SHA256 over stream bytes [0, byte_count) with the
                                // signer's key (crdump --sign-key); empty: not signed

// ---- Processes (0x0100-0x01ff)

CR_RECORD(Process, 0x0100, "process", "one process and its per-process attributes", (u32, pid),
          (u32, ppid), (u32, pgid), (u32, sid),
          (u32, nthreads),  // Thread records that follow for this pid
          (str, comm), (u32, personality), (u32, umask), (u32, flags),  // ProcessFlags below
          (u32, exit_status),        // a zombie's status as waitpid() reports it
          (u32, files_shared_with),  // its parent's pid if it shares its parent's fd table
                                     // (CLONE_FILES): then it has no Fd records of its own
          (u32, fs_shared_with),     // its parent's pid if it shares cwd, root and umask
                                     // (CLONE_FS)
          // A zombie as it exited, as /proc/PID/status shows it: bits of signals 1-64 caught
          // (SigCgt), ignored (SigIgn), pending for the process (ShdPnd: signals blocked at
          // its death, and the fatal one unless it was dequeued) and blocked (SigBlk).
          // Restore makes its copy exit with the same.
          (u64, zombie_caught), (u64, zombie_ignored), (u64, zombie_pending), (u64, zombie_blocked))

enum ProcessFlags : uint32_t {
  kProcessShellJob = 1,  // dumped with --shell-job: tty fds reconnect to the restorer's tty
  kProcessZombie = 2,    // exited, not yet reaped by its parent: no other record of it follows
  kProcessOwnIpcNs = 4,  // (root) the tree has an IPC namespace of its own: its SysV objects
                         // are in the image and restore makes a new namespace for them
  kProcessChildSubreaper = 8,      // PR_SET_CHILD_SUBREAPER: orphans below it are reparented to it
  kProcessSessionLeaderGone = 16,  // in a session (and the group of the same id) whose leader
                                   // has exited: restore remakes it with a helper of that pid
  kProcessGroupLeaderGone = 32,    // in a group of its parent's session whose leader has
                                   // exited (and its parent is not in it): the same, for the group
  kProcessOwnUserNs = 0x40,        // (root) the tree is in a user namespace of its own (UserNs,
                                   // the first record of the head): an older build would
                                   // restore it in crrestore's, as root of the host
  kProcessGuardRegions = 0x400,    // some Vma has guard regions (`guards`) to install again
  kProcessCwdDeleted = 0x800,      // its cwd was removed (rmdir) while it was there: restore makes
                                   // a directory at FsInfo.cwd (mode and owner of FsInfo), enters
                                   // it and removes it again
  kProcessFileLocks = 0x2000,      // (root) the image holds FileLock or FileOwner records: a build
                                   // that does not know them would skip them and restore the files
                                   // unlocked, so it must refuse the image instead
  kProcessExtUnix = 0x4000,       // (root) some UnixSocket is kUnixExternal (crdump --ext-unix-sk):
                                  // an older build would leave it unconnected
  kProcessCgroups = 0x8000,       // (root) some process or thread was in another cgroup than
                                  // crdump (CgroupMember): an older build would leave it in its own
  kProcessMcast = 0x20000,        // (root) some InetSocket is in multicast groups (InetMcast): an
                                  // older build would restore it outside them
  kProcessParentPages = 0x10000,  // its section has PagesParent records: an older build would
                                  // leave those pages empty
  kProcessTcpHalfClosed = 0x80000,  // (root) an InetSocket has a `tcp_state`: an older build
                                    // would restore it established, its sequence numbers off
  kProcessUnixRights = 0x100000,    // (root) UnixSocketRights records: an older build would put
                                    // the messages back without their fds
  kProcessUnixPending = 0x40000,    // (root) a unix listener has connections not yet accepted
                                    // (UnixSocket `pending`): an older build would drop them
  kProcessSeccomp = 0x200000,       // (root) some thread has seccomp (SeccompThread records): an
                                    // older build would restore it unfiltered
  kProcessOwnPidNs = 0x800000,      // (root) it is pid 1 of a pid namespace of its own: every live
                                    // process has a PidNsIds record, and restore makes the
                                    // namespace (an older build would give them host pids only)
  kProcessOwnUtsNs = 0x1000000,     // (root) the tree has a UTS namespace of its own (UtsNs):
                                    // an older build would restore it with the host's hostname
  kProcessOwnTimeNs = 0x2000000,    // (root) the tree has a time namespace of its own (TimeNs):
                                    // an older build would restore it with the host's clocks
  kProcessOwnCgroupNs = 0x4000000,  // (root) the tree has a cgroup namespace of its own
                                    // (CgroupNs): an older build would show it the host's paths
  kProcessOwnMntNs = 0x8000000,     // (root) the tree has a mount namespace of its own (Mount
                                    // records): an older build would restore it in crrestore's
  kProcessOwnNetNs = 0x10000000,    // (root) the tree has a net namespace of its own (NetLink,
                                    // NetAddr, NetRoute, NetSysctl): an older build would
                                    // restore it in crrestore's, its sockets there too
  kProcessMemLock = 0x20000000,     // some Vma is locked (kMadvLocked) or ProcAttrs.mlockall is
                                    // set: an older build would restore the memory unlocked
  kProcessPkeys = 0x40000000,       // protection keys allocated (ProcAttrs.pkeys) or on a Vma
                                    // (`pkey`): an older build would restore memory without them
  kProcessLiveUpdate = 0x100,       // (root) crdump --live-update: the tree is killed before the
                                    // stream ends and a TreeReleased record says its pids are
                                    // free; restore reads the whole stream before making them
  kProcessPrecopied = 0x80,         // its section has PagesPrecopied records (crdump --pre-copy):
                                    // an older build would leave those pages empty
};

CR_RECORD(Creds, 0x0101, "creds", "credentials of a process",
          (u32, pid), (u32, uid), (u32, euid), (u32, suid), (u32, fsuid), (u32, gid), (u32, egid),
          (u32, sgid), (u32, fsgid), (u64s, groups), (u64, cap_inh), (u64, cap_prm), (u64, cap_eff),
          (u64, cap_bnd), (u64, cap_amb), (u32, securebits), (u32, no_new_privs))

// Attributes of a process that neither /proc/PID/status nor the other records carry; one per
// live process, after its FsInfo. Readers that predate it skip it (the restored process then
// has crrestore's own values, as before it existed).
CR_RECORD(ProcAttrs, 0x0130, "proc_attrs", "per-process attributes: oom, audit, prctl, membarrier",
          (u32, pid),
          (i32, oom_score_adj),  // /proc/PID/oom_score_adj
          (u32, loginuid),       // /proc/PID/loginuid (4294967295: unset)
          (u32, dumpable),       // PR_GET_DUMPABLE (0 or 1)
          (u32, thp_disable),    // PR_GET_THP_DISABLE: 0, 1, or 1|PR_THP_DISABLE_EXCEPT_ADVISED
          (u32, membarrier),     // MEMBARRIER_CMD_GET_REGISTRATIONS: MEMBARRIER_CMD_REGISTER_* bits
          // mlockall(MCL_FUTURE) in force (the mm's def_flags, which /proc does not show: found
          // by a page crdump maps in the task): MCL_FUTURE, | MCL_ONFAULT. The process has
          // kProcessMemLock, so an older build refuses it.
          (u32, mlockall),
          // Memory protection keys allocated in the mm (pkey_alloc), bit N for key N (key 0,
          // always there, left out): /proc shows only the keys on mappings, crdump asks the
          // task. With kProcessPkeys.
          (u32, pkeys))

// ---- seccomp (0x0125-0x012f), in the head after every process's ProcAttrs. A SeccompFilter is
// one BPF program of the kernel's filter tree (objdef), naming the filter installed before it
// (`prev`, 0: the oldest): a chain shared by threads or by a parent and its child (inherited at
// fork or clone, or TSYNC) is written once, its programs compared, and each thread names its
// newest filter. Written oldest first, so `prev` is always defined before.
CR_RECORD(SeccompFilter, 0x0125, "seccomp_filter",
          "one seccomp BPF filter (objdef): its program, flags and the filter before it",
          (objdef, id), (objref, prev),
          (u32, flags),      // SECCOMP_FILTER_FLAG_LOG (PTRACE_SECCOMP_GET_METADATA)
          (bytes, program))  // struct sock_filter[], 8 bytes each, as the kernel keeps it

// A thread with seccomp (none for a thread without). The root has kProcessSeccomp.
CR_RECORD(SeccompThread, 0x0126, "seccomp_thread", "a thread's seccomp mode and newest filter",
          (u32, pid), (u32, tid),
          (u32, mode),         // 1 strict (SECCOMP_MODE_STRICT), 2 filter (SECCOMP_MODE_FILTER)
          (objref, filter))    // mode 2: its newest SeccompFilter; mode 1: 0

// ---- cgroups (0x0140-0x014f), after every process's ProcAttrs. A Cgroup is one directory of
// one hierarchy (objdef) that a task of the tree is in, or an ancestor of one, parents first;
// its CgroupProperty records follow it, in the order they are written back. Restore creates a
// Cgroup that does not exist (and only then writes its properties), then moves each process and
// thread into its own (CgroupMember).
CR_RECORD(Cgroup, 0x0140, "cgroup", "a cgroup directory of one hierarchy (objdef)", (objdef, id),
          (str, controllers),  // as /proc/PID/cgroup names the hierarchy: "" for cgroup v2,
                               // "cpu,cpuacct", "memory", "name=systemd" for v1
          (str, path))         // as /proc/PID/cgroup shows it: absolute from crdump's cgroup
                               // namespace root ("/" is the root), no "." or ".." parts

CR_RECORD(CgroupProperty, 0x0141, "cgroup_property",
          "a setting of a Cgroup, written back when restore creates the cgroup", (objref, cgroup),
          (str, name),   // the control file: "memory.max", "cpu.shares", "cgroup.subtree_control"
          (str, value))  // as written: one line (a file of several lines has one record per line)

CR_RECORD(CgroupMember, 0x0142, "cgroup_member",
          "the cgroups a process or one of its threads is in", (u32, pid),
          (u32, tid),       // == pid: the process (and every thread not listed apart); another
                            // tid: a thread in other cgroups than its process (v1, v2 threaded)
          (u64s, cgroups))  // Cgroup ids, one per hierarchy the task is in

CR_RECORD(Rlimits, 0x0102, "rlimits", "resource limits: [cur, max] pairs in RLIMIT_* order",
          (u32, pid), (u64s, limits))  // RLIM_INFINITY as ~0

CR_RECORD(FsInfo, 0x0103, "fs", "filesystem context of a process", (u32, pid),
          (str, cwd),  // without " (deleted)" when kProcessCwdDeleted
          (str, root), (u32, cwd_mode), (u32, cwd_uid),
          (u32, cwd_gid))  // the cwd directory's st_mode, owner

// Address space. Vma records come in address order, then the Pages of that process.
CR_RECORD(Mm, 0x0110, "mm", "address-space fields restored with PR_SET_MM_MAP",
          (u32, pid), (u64, start_code), (u64, end_code), (u64, start_data), (u64, end_data),
          (u64, start_brk), (u64, brk), (u64, start_stack), (u64, arg_start), (u64, arg_end),
          (u64, env_start), (u64, env_end),
          (u64s, auxv),  // (type, value) pairs, AT_NULL included
          (str, exe_path), (u64, exe_dev), (u64, exe_ino))

enum VmaKind : uint32_t {
  kVmaAnon = 1,        // private anonymous
  kVmaFilePrivate = 2, // MAP_PRIVATE of a file: only pages that differ from the file are stored
  kVmaHeap = 3,        // [heap]
  kVmaStack = 4,       // [stack] (grows down)
  kVmaVdso = 5,        // [vdso]
  kVmaVvar = 6,        // [vvar]
  kVmaVvarVclock = 7,  // [vvar_vclock] (kernel 6.13+)
  kVmaFileShared = 8,  // MAP_SHARED of a file: contents live in the file
  kVmaAnonShared = 9,  // MAP_SHARED of the Shmem object `shmem` (anonymous or a memfd)
  kVmaShmemPrivate = 10,  // MAP_PRIVATE of the memfd Shmem `shmem`: its copied pages stored
  kVmaSysvShm = 11,    // a shmat() attach: `shmem` names the SysvShm, `pgoff` is into it
  kVmaDroppable = 12,  // MAP_DROPPABLE anonymous memory (Linux 6.11): its pages as kVmaAnon's
};

CR_RECORD(Vma, 0x0111, "vma", "one mapping of a process", (u32, pid), (u64, start), (u64, end),
          (u64, pgoff),  // file offset in pages
          (u32, prot),   // PROT_*
          (u32, flags),  // MAP_PRIVATE/MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN
          (u32, kind),   // VmaKind
          (u32, madv),   // MadvFlags below
          (str, path), (u64, dev), (u64, ino),
          (u64, file_size), (u64, file_mtime_ns),  // checked at restore for file mappings
          (objref, shmem),  // kVmaAnonShared, kVmaShmemPrivate: the Shmem object it maps
                            // (pgoff is into it); kVmaSysvShm: the SysvShm segment attached
          // Guard regions in it (MADV_GUARD_INSTALL, Linux 6.13): pairs of start address and
          // page count; the Process has kProcessGuardRegions, so older readers refuse it.
          (u64s, guards),
          (u32, file_open_mode),  // file mappings: how the mapped file was opened, as the
                                  // mode of its map_files link shows it (S_IRUSR read,
                                  // S_IWUSR write); 0 (older images): read-only for private,
                                  // read-write if it can be for shared
          (u32, pkey))  // its memory protection key (pkey_mprotect; smaps ProtectionKey), 0 the
                        // default; the process has kProcessPkeys

enum ShmemKind : uint32_t {
  kShmemAnon = 0,   // MAP_SHARED|MAP_ANONYMOUS or a deleted shared file (images before memfd)
  kShmemMemfd = 1,  // memfd_create(): `name`, `seals`, `file_size`, `mode`, `mfd_flags`
};

// Shared memory (MAP_SHARED|MAP_ANONYMOUS, shared across fork, or a memfd): one object per
// shmem file in the tree, its contents once, in the head before the files (a memfd File names
// it) and before any process's memory.
CR_RECORD(Shmem, 0x0113, "shmem", "a shared memory object: anonymous or a memfd (objdef)",
          (objdef, id), (u64, ino),
          (u64, size),       // bytes of contents stored, a page multiple (0: an empty memfd)
          (u32, kind),       // ShmemKind
          (str, name),       // memfd: the memfd_create name (no "memfd:", no " (deleted)")
          (u32, seals),      // memfd: F_GET_SEALS (F_SEAL_SEAL alone: sealing not allowed)
          (u64, file_size),  // memfd: st_size, exact
          (u32, mode),       // memfd: st_mode permission bits (exec bits, MFD_NOEXEC_SEAL)
          (u32, mfd_flags))  // memfd: MFD_ALLOW_SEALING, MFD_NOEXEC_SEAL as far as visible

CR_RECORD_TAIL(ShmemData, 0x0114, "shmem_data",
               "contents of a shmem object from `offset`; tail = the bytes (zero pages omitted)",
               (objref, shmem), (u64, offset))

enum MadvFlags : uint32_t {
  kMadvDontDump = 1,   // VM_DONTDUMP "dd"
  kMadvHugepage = 2,   // VM_HUGEPAGE "hg"
  kMadvNoHugepage = 4, // VM_NOHUGEPAGE "nh"
  kMadvDontFork = 8,   // VM_DONTCOPY "dc"
  kMadvWipeOnFork = 16,// VM_WIPEONFORK "wf"
  kMadvMergeable = 32, // VM_MERGEABLE "mg"
  // Not advice but the same kind of per-mapping bit: mlock(2) / mlockall(MCL_CURRENT) "lo",
  // with mlock2(MLOCK_ONFAULT) / MCL_ONFAULT also "lf". Locked again once the pages are in;
  // the process has kProcessMemLock.
  kMadvLocked = 64,        // VM_LOCKED "lo"
  kMadvLockOnFault = 128,  // VM_LOCKONFAULT "lf" (with kMadvLocked)
};
constexpr uint32_t kMadvKnown = 255;  // every MadvFlags bit this build restores

CR_RECORD_TAIL(Pages, 0x0112, "pages", "contents of a run of pages; tail = npages * page_size bytes",
               (u32, pid), (u64, vaddr), (u32, npages))

// Pages a process still shares copy-on-write with its parent (pagemap shows the same physical
// page at the same address in both): stored once, in the parent's section, which comes first.
// Restore gives the process its restored parent's contents there. Only in a process flagged
// kProcessParentPages, before its Pages records.
CR_RECORD(PagesParent, 0x0115, "pages_parent",
          "a run of pages shared copy-on-write with the parent: their contents are the parent's",
          (u32, pid), (u64, vaddr), (u64, npages),
          (u32, prefork))  // 1: shared with siblings, not the parent: its PagesPrefork has them

// Pages a process's children still share among themselves but it no longer has (it wrote its
// own copy after forking them; python's reference counts do): their contents, in its section
// after its PagesParent and before its Pages. crrestore places them before the process forks
// and its own pages there after.
CR_RECORD_TAIL(PagesPrefork, 0x0118, "pages_prefork",
               "contents the children inherited and the process has since rewritten (tail)",
               (u32, pid), (u64, vaddr), (u32, npages))

// Pre-copy (crdump --pre-copy): pages copied while the tree still ran, in rounds, before the
// tree's head. A later record of the same pid and page replaces an earlier one. Restore keeps
// them aside until the process's section says which still stand (PagesPrecopied).
CR_RECORD_TAIL(PrecopyPages, 0x0119, "precopy_pages",
               "contents of a run of pages copied while the tree ran (tail), round `round`",
               (u32, pid), (u64, vaddr), (u32, npages), (u32, round))

// Pages whose contents are the newest PrecopyPages of this pid for each page: nothing wrote
// them since they were copied (userfaultfd write-protect kept watch). In a process flagged
// kProcessPrecopied, after its PagesParent and PagesPrefork, before its Pages.
CR_RECORD(PagesPrecopied, 0x011a, "pages_precopied",
          "a run of pages unchanged since pre-copy: their contents are the precopy_pages",
          (u32, pid), (u64, vaddr), (u64, npages))

// Where crrestore may put memory it fills before forking a process's children, so that they
// inherit it copy-on-write (PagesParent): a range no process of the tree maps, as large as all
// their private anonymous mappings together. Written with PagesParent; without it, or when
// crrestore's own memory is there, the children get copies.
CR_RECORD(PremapArea, 0x0117, "premap_area",
          "a range no process of the tree maps: restore fills memory there before forking",
          (u64, start), (u64, end))

// The dumped kernel's vDSO (the root's [vdso]), once per image, in the head. Its code differs
// between kernel builds, and programs hold pointers into it (libc's, taken at start): crrestore
// compares it with its own and, when they differ, maps a jump to its kernel's function at each
// dumped function's offset. Images without it are restored only on the kernel release that
// wrote them (StreamHeader.kernel_release).
CR_RECORD(Vdso, 0x0116, "vdso", "the dumped vDSO: size, CRC32C of its bytes, its functions",
          (u64, size), (u32, crc),
          (str, names),      // the exported functions, '\n' between names
          (u64s, offsets))   // each one's offset from the vDSO's start, in the same order

// Per-thread state. For a single-threaded process there is one, with tid == pid.
CR_RECORD(Thread, 0x0120, "thread", "registers and per-thread state of one thread",
          (u32, pid), (u32, tid),
          (u64s, regs),   // struct user_regs_struct, 27 words, kernel order (fs_base, gs_base in it)
          (bytes, xsave), // NT_X86_XSTATE regset, whole
          (u64, sigmask), (u64, ss_sp), (u64, ss_size), (u32, ss_flags),
          (u64, clear_child_tid), (u64, robust_head), (u64, robust_len),
          (u64, rseq_addr), (u32, rseq_len), (u32, rseq_sig),
          (str, comm), (u32, sched_policy), (u32, sched_priority), (i32, nice),
          (u32, flags),         // ThreadFlags below
          (u64s, xsave_layout), // the dumping CPU's (component, offset, size) triples; empty
                                // in images written before it was recorded
          (u32, pdeathsig),     // PR_GET_PDEATHSIG (0: none)
          (u64, timer_slack_ns),  // PR_GET_TIMERSLACK (0: not recorded, or an RT thread's)
          (u32, stop_signo))      // kThreadStopped: the signal of the group stop (0: SIGSTOP)

enum ThreadFlags : uint32_t {
  kThreadStopped = 1,  // was in group stop (SIGSTOP'd) when dumped
};

CR_RECORD(Sigaction, 0x0121, "sigaction", "a signal disposition that is not SIG_DFL",
          (u32, pid), (u32, signo), (u64, handler), (u64, flags), (u64, restorer), (u64, mask))

CR_RECORD(PendingSignal, 0x0122, "pending_signal", "a queued signal with its siginfo",
          (u32, pid),
          (u32, tid),       // 0: process-wide (shared) queue
          (bytes, siginfo)) // 128-byte siginfo_t as PTRACE_PEEKSIGINFO returns it

CR_RECORD(Itimer, 0x0123, "itimer", "ITIMER_REAL/VIRTUAL/PROF", (u32, pid), (u32, which),
          (u64, interval_us), (u64, value_us))

CR_RECORD(PosixTimer, 0x0124, "posix_timer", "a timer_create() timer", (u32, pid), (u32, timer_id),
          (u32, clock_id), (u32, notify), (u32, signo), (u64, sigval), (u32, notify_tid),
          (u64, interval_ns), (u64, value_ns), (u32, overrun))

// ---- SysV IPC (0x0300-0x03ff): the objects of the tree's own IPC namespace (kProcessOwnIpcNs),
// with their ids, keys and permissions; restore creates each with its id (ipc sysctl *_next_id).

CR_RECORD(SysvLimits, 0x0305, "sysv_limits",
          "the namespace's IPC limits, set before its objects are made",
          (u64s, values))  // kernel.msgmax, msgmnb, msgmni, shmmax, shmall, shmmni, sem (4)

CR_RECORD(SysvShm, 0x0300, "sysv_shm", "a SysV shared memory segment (objdef)",
          (objdef, id), (u32, shmid), (u32, key), (u32, uid), (u32, gid), (u32, cuid),
          (u32, cgid), (u32, mode),  // permission bits
          (u64, size),               // bytes, as shmget() was given
          (u32, flags))              // SysvShmFlags

enum SysvShmFlags : uint32_t {
  kSysvShmRemoved = 1,  // IPC_RMID done while still attached: goes with its last detach
  kSysvShmLocked = 2,   // SHM_LOCK
};

CR_RECORD_TAIL(SysvShmData, 0x0301, "sysv_shm_data",
               "contents of a SysV segment from `offset`; tail = the bytes (zero pages omitted)",
               (objref, shm), (u64, offset))

CR_RECORD(SysvMsgQueue, 0x0302, "sysv_msg_queue", "a SysV message queue; its messages follow",
          (u32, msqid), (u32, key), (u32, uid), (u32, gid), (u32, cuid), (u32, cgid), (u32, mode),
          (u64, qbytes))  // msg_qbytes: the queue's byte limit

CR_RECORD_TAIL(SysvMsg, 0x0303, "sysv_msg", "one queued message, in queue order; tail = its text",
               (u32, msqid), (u64, mtype))

CR_RECORD(SysvSem, 0x0304, "sysv_sem", "a SysV semaphore set",
          (u32, semid), (u32, key), (u32, uid), (u32, gid), (u32, cuid), (u32, cgid), (u32, mode),
          (u64s, values))  // semval of each semaphore

// ---- Files (0x0200-0x02ff). A File is one open file description; Fds point at Files.

enum FileKind : uint32_t {
  kFileRegular = 1,  // path, checked by size and mtime at restore
  kFileDirectory = 2,
  kFileDevice = 3,     // /dev/null, zero, random, urandom (by rdev)
  kFilePipe = 4,       // an end of a pipe: `pipe` names the Pipe
  kFileFifo = 5,       // an end of a named FIFO at `path`: `pipe` names its data
  kFileTty = 6,        // the shell's terminal (--shell-job)
  kFileDeleted = 7,    // regular file unlinked while open: contents in FileData records
  kFileExternal = 8,   // outside the dump: reconnected with crrestore --inherit-fd KEY
  kFileEventfd = 9,    // `counter`, kFileEfdSemaphore in `kflags`
  kFileSignalfd = 10,  // `sigmask`
  kFileTimerfd = 11,   // `clockid`, remaining `value_ns`, `interval_ns`, `counter` = ticks unread
  // Kinds whose state is an object record of their own, named by `object`:
  kFileMemfd = 12,          // `object` = the Shmem holding its contents
  kFileUnixSocket = 13,     // `object` = its UnixSocket record
  kFileEpoll = 14,          // its watches are EpollItem records after the Fds
  kFilePtyMaster = 15,      // `object` = its Pty record
  kFilePtySlave = 16,       // `object` = its Pty record
  kFileInetSocket = 17,     // `object` = its InetSocket record
  kFileNetlinkSocket = 18,  // `object` = its NetlinkSocket record
  kFileInotify = 19,        // an inotify instance (O_NONBLOCK in `flags`): its watches are the
                            // InotifyWatch records naming it, written after the Files
  kFilePath = 20,      // an O_PATH fd at `path` (`flags`: O_PATH, O_NOFOLLOW, O_DIRECTORY as the
                       // kernel kept them); `mode` gives its type: a symlink (O_PATH|O_NOFOLLOW)
                       // is the link itself
  kFilePidfd = 21,     // a pidfd (pidfd_open, PIDFD_NONBLOCK and PIDFD_THREAD in `flags`) of
                       // process `pidfd_pid` of the tree: opened by its holder once that exists
  kFileFanotify = 22,  // a fanotify group (O_NONBLOCK in `flags`): its FanotifyGroup and
                       // FanotifyMark records name it, written after the Files
  // 40 and up: deleted and unusual files (issue 11).
  kFileGhostNode = 40,  // a directory, FIFO or character device removed while open: the type
                        // is in `mode` (S_IFDIR, S_IFIFO, S_IFCHR with `rdev`); restore makes a
                        // node at `path`, opens it and removes it; a FIFO's data is `pipe`'s
  kFileProcPid = 41,    // a file or directory under /proc/PID of a process of the tree: opened
                        // by the process holding it, once PID exists (itself, an ancestor or a
                        // child), at `path` with `flags` and `pos`
};

enum FileKernelFlags : uint32_t {
  kFileEfdSemaphore = 1,  // eventfd in EFD_SEMAPHORE mode
  kFileGhostTmpfile = 2,  // kFileDeleted opened with O_TMPFILE (never had a name): `path` is
                          // its directory; restore makes it with O_TMPFILE there
};

CR_RECORD(Pipe, 0x0200, "pipe", "a pipe or FIFO buffer", (objdef, id), (u64, ino),
          (u32, capacity))

CR_RECORD_TAIL(PipeData, 0x0201, "pipe_data", "bytes queued in a pipe; tail = the bytes",
               (objref, pipe))

CR_RECORD(File, 0x0202, "file", "an open file description", (objdef, id), (u32, kind),  // FileKind
          (str, path),
          (u32, flags),  // O_* as F_GETFL shows them (O_APPEND, O_NONBLOCK, access mode)
          (u64, pos), (u32, mode), (u64, size), (u64, mtime_ns), (u64, dev), (u64, ino),
          (u64, rdev), (objref, pipe),  // kFilePipe / kFileFifo
          (str, key),                   // kFileExternal: the key crrestore --inherit-fd must name
          (u64, counter), (u64, sigmask), (u32, clockid), (u64, value_ns), (u64, interval_ns),
          (u32, kflags),           // the event fds' state (FileKind says which)
          (objref, object),        // kinds 12 to 39: the object record this file is an open of
                                   // (Shmem for memfd, the socket or pty record), written before it
          (u64, abs_ns),           // timerfd armed with TFD_TIMER_ABSTIME: its expiry on its clock
                                   // (value_ns is the time that was left; 0: a relative timer)
          (u32, uid), (u32, gid),  // owner (kFileDeleted, kFileGhostNode: set at restore)
          (u64, atime_ns),         // kFileDeleted, kFileGhostNode: atime (mtime in mtime_ns)
          (u32, pidfd_pid))        // kFilePidfd: the process (PIDFD_THREAD: thread) it refers to

// A deleted file's data extents (SEEK_DATA/SEEK_HOLE), at most 1 MiB a record; what lies
// between them and up to File.size is a hole.
CR_RECORD_TAIL(FileData, 0x0203, "file_data",
               "contents of a deleted file from `offset`; tail = the bytes (holes omitted)",
               (objref, file), (u64, offset))

// ---- Pseudo-terminals (0x0240-0x024f). A Pty is one pair, defined before the Files that open
// its master (kFilePtyMaster) or slave (kFilePtySlave) and name it as their `object`.

enum PtyFlags : uint32_t {
  kPtyPacket = 1,     // TIOCPKT mode on the master
  kPtyLocked = 2,     // TIOCSPTLCK: the slave cannot be opened
  kPtyExclusive = 4,  // TIOCEXCL on the slave
};

CR_RECORD(Pty, 0x0240, "pty", "a pseudo-terminal pair (objdef): /dev/pts/<index> and its master",
          (objdef, id), (u32, index),
          (u32, iflag), (u32, oflag), (u32, cflag), (u32, lflag), (u32, line),
          (bytes, cc),                  // c_cc as struct termios2 holds it (19 bytes)
          (u32, ispeed), (u32, ospeed),  // baud rates (TCGETS2)
          (u32, rows), (u32, cols), (u32, xpixel), (u32, ypixel),  // TIOCGWINSZ
          (u32, flags),  // PtyFlags
          (u32, sid),    // the session whose controlling terminal the slave is, 0 = none
          (u32, pgrp),   // its foreground process group (with sid)
          // The /dev/pts/N node's owner and st_mode (file type bits included, so 0 means an
          // image from before they were kept: the node is left as devpts makes it).
          (u32, slave_uid), (u32, slave_gid), (u32, slave_mode))

// The shell's terminal (crdump --shell-job): a terminal the tree's kFileTty Files are open on,
// whose other side (a pty master, the console) is outside the tree. Once per image, before the
// Files, with the state crrestore gives the terminal it connects the job to. A reader that
// predates it skips it: the job then runs with that terminal's modes as they are.
CR_RECORD(ShellTty, 0x0241, "shell_tty",
          "the shell's terminal as the job left it (--shell-job): termios, window size, session",
          (str, path),  // the tty fds' link at dump time (/dev/pts/3): for messages only
          (u64, rdev), (u32, iflag), (u32, oflag), (u32, cflag), (u32, lflag), (u32, line),
          (bytes, cc),                   // c_cc as struct termios2 holds it (19 bytes)
          (u32, ispeed), (u32, ospeed),  // TCGETS2
          (u32, rows), (u32, cols), (u32, xpixel), (u32, ypixel),  // TIOCGWINSZ
          (u32, sid),   // a session leader of the tree whose controlling terminal it was, 0: none
          (u32, pgrp))  // with sid: that terminal's foreground process group

CR_RECORD(Fd, 0x0210, "fd", "one slot of a process's fd table", (u32, pid), (u32, fd),
          (objref, file), (u32, fd_flags))  // FD_CLOEXEC

// One watch of an epoll (a kFileEpoll File), after every Fd: the kernel keys a watch by
// (target file, fd number it was added under), and the program later names it by that number
// in epoll_ctl(MOD/DEL), so `tfd` is kept even when the fd now holds something else.
CR_RECORD(EpollItem, 0x0230, "epoll_item", "one watch of an epoll: target file, fd, events, data",
          (objref, epoll),   // the epoll File
          (objref, target),  // the watched File
          (u32, tfd),        // the fd number it was registered under
          (u32, events),     // EPOLL* as the kernel holds them (EPOLLERR|EPOLLHUP included;
                             // a fired EPOLLONESHOT watch keeps only its flag bits)
          (u64, data))

// ---- inotify (0x0280-0x028f). One InotifyWatch per watch of a kFileInotify File, after the
// Files. The program keeps the watch descriptors, so restore gives each the same `wd`. The
// watched inode is found again by its file handle on the filesystem of device `dev`.
// The mask bits a watch keeps (fdinfo shows no others): IN_ALL_EVENTS, IN_EXCL_UNLINK, IN_ONESHOT.
inline constexpr uint32_t kInotifyMaskBits = 0x00000fffu | 0x04000000u | 0x80000000u;
// Restore makes a wd by adding and removing watches up to it: a bound on that work.
inline constexpr uint32_t kMaxInotifyWd = 1u << 20;

CR_RECORD(InotifyWatch, 0x0280, "inotify_watch",
          "one watch of an inotify: its wd, mask and the inode, by file handle",
          (objref, file),  // the kFileInotify File
          (u32, wd),       // the watch descriptor inotify_add_watch returned
          (u32, mask),     // IN_* events, IN_ONESHOT and IN_EXCL_UNLINK as fdinfo shows them
          (u64, ino),      // the watched inode
          (u64, dev),      // st_dev of its filesystem (user-space encoding, as stat gives it)
          (u32, handle_type), (bytes, handle),  // name_to_handle_at's, as fdinfo shows them
          (str, path))                          // where it was at dump: for crit and messages only

// ---- fanotify (0x0290-0x029f). One FanotifyGroup per kFileFanotify File and one FanotifyMark
// per mark of it, after the Files (an older build refuses the image: it does not know the File
// kind). Marks are in the kernel's order (newest first); restore adds them oldest first.

// fanotify_init flags a group may have (FAN_CLOEXEC .. FAN_REPORT_TARGET_FID of Linux 6.1);
// the permission classes (FAN_CLASS_CONTENT, FAN_CLASS_PRE_CONTENT) are refused by crdump.
inline constexpr uint32_t kFanotifyInitBits = 0x00001ff3u;
// What an unprivileged process may pass to fanotify_init (Linux 5.13+): FAN_CLOEXEC,
// FAN_NONBLOCK and the FID reports, one of which it must ask for (kFanotifyFidBits).
inline constexpr uint32_t kFanotifyUserInitBits = 0x00001e03u;
inline constexpr uint32_t kFanotifyFidBits = 0x00001600u;  // FID, DIR_FID, TARGET_FID
// Mark mask bits restore passes back: the events up to FAN_RENAME without the permission ones
// (FAN_*_PERM, 0x00070000), FAN_EVENT_ON_CHILD, FAN_ONDIR.
inline constexpr uint32_t kFanotifyMaskBits = 0x1000ffffu | 0x08000000u | 0x40000000u;
// mflags as fdinfo shows them and restore gives back: FAN_MARK_IGNORED_SURV_MODIFY,
// FAN_MARK_EVICTABLE, FAN_MARK_IGNORE.
inline constexpr uint32_t kFanotifyMarkFlagBits = 0x40u | 0x200u | 0x400u;

enum FanotifyMarkType : uint32_t {
  kFanMarkInode = 1,       // an inode: by file handle (`ino`, `dev`, `handle`), `path` for crit
  kFanMarkMount = 2,       // a mount: the one at `path` (mount point) of device `dev` whose
                           // root in its filesystem is `root`
  kFanMarkFilesystem = 3,  // the filesystem of device `dev` (`path`: a mount of it, for crit)
};

CR_RECORD(FanotifyGroup, 0x0290, "fanotify_group", "a fanotify group: its fanotify_init flags",
          (objref, file),      // the kFileFanotify File
          (u32, flags),        // fanotify_init flags (FAN_CLASS_*, FAN_REPORT_*, ...)
          (u32, event_flags))  // its event_f_flags (O_RDONLY, O_LARGEFILE, ...)

CR_RECORD(FanotifyMark, 0x0291, "fanotify_mark",
          "one mark of a fanotify group: what it is on, its mask and ignored mask",
          (objref, file),                       // the kFileFanotify File
          (u32, type),                          // FanotifyMarkType
          (u32, mflags),                        // kFanotifyMarkFlagBits as fdinfo shows them
          (u32, mask), (u32, ignored_mask),     // FAN_* events (kFanotifyMaskBits)
          (u64, ino),                           // kFanMarkInode: the inode
          (u64, dev),                           // st_dev of its filesystem (user-space encoding)
          (u32, handle_type), (bytes, handle),  // kFanMarkInode: name_to_handle_at's
          (str, path),  // inode: where it was; mount: its mount point; fs: a mount
          (str, root))  // kFanMarkMount: the mount's root within its filesystem

// ---- File locks and async I/O owners (0x0250-0x025f), after every Fd. Each names the File it
// is on and the fd (`pid`, `fd`) restore takes or sets it through.

enum FileLockKind : uint32_t {
  kLockPosix = 1,  // fcntl F_SETLK/F_SETLKW, lockf: owned by the fd table of `pid` (a child
                   // sharing it with CLONE_FILES shares its locks), taken by `pid` itself
  kLockOfd = 2,    // F_OFD_SETLK: owned by the open file description
  kLockFlock = 3,  // flock(): owned by the open file description, whole file
  kLockLease = 4,  // F_SETLEASE: owned by the open file description, whole file
};

CR_RECORD(FileLock, 0x0250, "file_lock",
          "a lock held by the tree: POSIX (process), OFD, flock or lease (file description)",
          (objref, file),  // the File it was taken through
          (u32, pid),      // the process whose fd `fd` restore takes it through
          (u32, fd),
          (u32, kind),     // FileLockKind
          (u32, type),     // F_RDLCK 0, F_WRLCK 1
          (u64, start),    // first byte (0 for flock and leases)
          (u64, end))      // last byte, ~0 = to the end of the file, however it grows

enum FileOwnerType : uint32_t {  // as F_GETOWN_EX reports it
  kOwnerTid = 0,   // F_OWNER_TID: one thread
  kOwnerPid = 1,   // F_OWNER_PID: a process
  kOwnerPgrp = 2,  // F_OWNER_PGRP: a process group
};

CR_RECORD(FileOwner, 0x0251, "file_owner",
          "who gets SIGIO/SIGURG from an open file description (F_SETOWN_EX) and which signal "
          "(F_SETSIG); only for a file with an owner or a signal set",
          (objref, file),
          (u32, pid), (u32, fd),  // an fd of the file: O_ASYNC is set again through it, so the
                                  // signal's si_fd is this fd number (the owner's if it holds one)
          (u32, owner_type),      // FileOwnerType
          (u32, owner),           // tid, pid or pgid (0: none)
          (u32, signo))           // F_GETSIG: 0 = SIGIO without siginfo

// ---- Unix sockets (0x0220-0x022f). One UnixSocket object per socket in the tree, written
// before the Files that are opens of it (File kind kFileUnixSocket, `object`); then the bytes
// queued in each socket's receive queue, oldest first.

enum UnixSocketState : uint32_t {
  kUnixUnconnected = 0,  // created, maybe bound, not connected (TCP_CLOSE)
  kUnixListening = 1,    // listen() called; its accept queue was empty
  kUnixConnected = 2,    // connected to `peer_ino` (stream/seqpacket: both ways)
  kUnixPeerGone = 3,     // was connected; its peer has been closed since (no `peer_ino`)
  kUnixExternal = 4,     // connected to a socket outside the tree bound to the path
                         // `peer_name` (crdump --ext-unix-sk): restore connects to it again
  kUnixConnecting = 5,   // connected to the listener `peer_ino` of the tree, which has not
                         // accepted it yet: restore connects it in the listener's `pending` order
};

enum UnixSocketFlags : uint32_t {
  kUnixPassCred = 1,     // SO_PASSCRED
  kUnixNameUnlinked = 2,  // its path name's file was unlinked: restore binds, then unlinks it
};

CR_RECORD(UnixSocket, 0x0220, "unix_socket", "an AF_UNIX socket (objdef)",
          (objdef, id), (u64, ino),
          (u32, type),      // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
          (u32, state),     // UnixSocketState
          (u32, shutdown),  // its own RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2
          (bytes, name),    // sun_path as bound: a path, or '\0' + abstract name; empty: none.
                            // An accepted socket shows its listener's name.
          (str, dir),       // a relative path name: the directory it resolves from
          (u64, peer_ino),  // the socket it is connected to (0: none)
          (objref, peer),   // that socket's record when written before this one, else 0
          (u32, flags),     // UnixSocketFlags
          (u32, sndbuf), (u32, rcvbuf),  // SO_SNDBUF, SO_RCVBUF as getsockopt reports them
          (i32, peek_off),  // SO_PEEK_OFF (-1: off)
          (u32, backlog),   // a listener's backlog
          (u32, file_mode), (u32, file_uid), (u32, file_gid),  // a path name's socket file
          (str, peer_name),  // kUnixExternal: the absolute path its outside peer is bound to
          (u64s, pending))   // a listener's connections not yet accepted, oldest first: the
                             // ino of the tree's socket connecting (kUnixConnecting), or 0 for
                             // a client outside the tree (--ext-unix-sk): restore connects a
                             // stand-in, which closes (the client's connection ended with the dump)

CR_RECORD_TAIL(UnixSocketData, 0x0221, "unix_socket_data",
               "data queued for reading on `socket`: one message (dgram, seqpacket) or a run "
               "of stream bytes; tail = the bytes",
               (objref, socket),
               (bytes, sender))  // a datagram's sender name as recvmsg showed it (empty: none)

// The fds in flight with one queued message (SCM_RIGHTS), after the Files they name (every one
// an open file description some fd of the tree holds): restore sends that message with them.
// The root has kProcessUnixRights.
CR_RECORD(UnixSocketRights, 0x0222, "unix_socket_rights",
          "fds in flight with a queued message of a unix socket",
          (objref, socket),  // the UnixSocket whose queue holds the message
          (u32, message),    // which UnixSocketData of that socket, from 0
          (u64s, files))     // the File ids, in the order they were sent

// The credentials (SCM_CREDENTIALS) one queued message carries, read by a receiver with
// SO_PASSCRED on: its sender's pid (a process of the tree), uid and gid as crdump saw them.
// Restore sends such a queue once every process of the tree exists (the kernel takes a
// message's pid only then). A message without one was sent with none.
CR_RECORD(UnixSocketCreds, 0x0223, "unix_socket_creds",
          "the credentials (SCM_CREDENTIALS) a queued message of a unix socket carries",
          (objref, socket),  // the UnixSocket whose queue holds the message
          (u32, message),    // which UnixSocketData of that socket, from 0
          (u32, pid), (u32, uid), (u32, gid))

// ---- Internet sockets (0x0260-0x026f). One InetSocket object per AF_INET/AF_INET6 socket of
// the tree, written before the Files that open it (File kind kFileInetSocket, `object`); then
// an established TCP connection's queues (InetSocketData), and a NetLock when crdump left the
// connections' packets dropped for crrestore to let through again.

enum InetSocketState : uint32_t {
  kInetClosed = 0,       // never connected or listening; bound if kInetBound
  kInetListening = 1,    // TCP listen(); its accept queue was empty, or held one connection
                         // of a kInetConnecting client
  kInetEstablished = 2,  // TCP connection, restored with TCP_REPAIR (crdump --tcp-established)
  kInetConnected = 3,    // UDP (or ping) socket connect()ed to `dst`
  kInetConnecting = 4,   // TCP client of the tree whose connection waits in the accept queue of
                         // a listener of the tree, nothing sent yet: it connect()s again
};

enum InetSocketFlags : uint32_t {
  kInetBound = 1,               // bind() to `src`: a listener's or an unconnected socket's own
  kInetLinger = 2,              // SO_LINGER on, for `linger` seconds
  kInetTcpSack = 0x100,         // an established connection's negotiated options (tcp_info)
  kInetTcpWscale = 0x200,
  kInetTcpTimestamps = 0x400,
};

/// One integer socket option as InetSocket.opts and NetlinkSocket.opts hold it:
/// level << 48 | name << 32 | value (level and name 16 bits each, value 32).
struct SocketOption {
  int level = 0, name = 0, value = 0;
  constexpr uint64_t encode() const {
    return static_cast<uint64_t>(static_cast<uint16_t>(level)) << 48 |
           static_cast<uint64_t>(static_cast<uint16_t>(name)) << 32 | static_cast<uint32_t>(value);
  }
  static constexpr SocketOption decode(uint64_t o) {
    return {static_cast<int16_t>(o >> 48), static_cast<uint16_t>(o >> 32),
            static_cast<int>(static_cast<uint32_t>(o))};
  }
};

CR_RECORD(InetSocket, 0x0260, "inet_socket", "an AF_INET or AF_INET6 socket (objdef)",
          (objdef, id), (u64, ino),
          (u32, family), (u32, type), (u32, protocol),  // as socket() took them
          (u32, state),                                 // InetSocketState
          (bytes, src), (u32, src_port),  // getsockname: 4 or 16 address bytes, host-order port
          (bytes, dst), (u32, dst_port),  // getpeername (established, connected)
          (u32, flags),                   // InetSocketFlags
          (u32, backlog),                 // a listener's
          (u32, linger),                  // with kInetLinger
          // Integer options whose value differs from a new socket's, each
          // level << 48 | name << 32 | value (SO_SNDBUF, SO_RCVBUF: as getsockopt shows them).
          (u64s, opts),
          (str, bind_dev),    // SO_BINDTODEVICE
          (str, congestion),  // TCP_CONGESTION when not the default
          // An established TCP connection, as TCP_REPAIR shows it:
          (u32, snd_seq),     // write_seq: the sequence number after the last byte queued
          (u32, rcv_seq),     // rcv_nxt: the next one expected
          (u32, outq_len),    // bytes in the send queue (sent and not acknowledged, or unsent)
          (u32, unsent_len),  // of them, never sent
          (u32, inq_len),     // bytes received and not read
          (u32, mss),         // mss_clamp
          (u32, snd_wscale), (u32, rcv_wscale),
          (u32, timestamp),  // TCP_TIMESTAMP: the connection's clock
          (u32, snd_wl1), (u32, snd_wnd), (u32, max_window), (u32, rcv_wnd), (u32, rcv_wup),
          // The TCP state (tcp_info) of a kInetEstablished connection half closed: FIN_WAIT1
          // (4), FIN_WAIT2 (5), CLOSE_WAIT (8), LAST_ACK (9), CLOSING (11); 0: established.
          // snd_seq and rcv_seq count a FIN sent or received as the kernel does; outq_len and
          // unsent_len leave it out. The root has kProcessTcpHalfClosed.
          (u32, tcp_state))

enum InetQueue : uint32_t {
  kInetRecvQueue = 1,  // received, not read by the program
  kInetSendQueue = 2,  // written by the program, not acknowledged by the peer
  kInetDatagram = 3,   // one UDP datagram received and not read, from `from`:`from_port`
};

CR_RECORD_TAIL(InetSocketData, 0x0261, "inet_socket_data",
               "bytes of an established TCP connection's queue, or one queued UDP datagram; "
               "tail = the bytes",
               (objref, socket), (u32, queue),  // InetQueue
               (bytes, from), (u32, from_port))  // a datagram's sender (4 or 16 bytes)

// A multicast group an inet datagram socket joined (IP_ADD_MEMBERSHIP, IPV6_JOIN_GROUP,
// MCAST_JOIN_GROUP, or with sources: IP_ADD_SOURCE_MEMBERSHIP, MCAST_BLOCK_SOURCE, ...), after
// the socket's record; joined again on the device of that name, its source filter set again
// (MCAST_MSFILTER). The root has kProcessMcast.
CR_RECORD(InetMcast, 0x0263, "inet_mcast", "a multicast group an inet socket is in",
          (objref, socket), (bytes, group),  // 4 or 16 address bytes
          (str, device),
          (u32, include),   // 1: only from `sources` (MCAST_INCLUDE); 0: all but them
          (bytes, sources))  // addresses of the group's size, one after another

CR_RECORD(NetLock, 0x0262, "net_lock",
          "crdump dropped the packets of the image's TCP connections with the nftables table "
          "`table` (family inet) and left it for crrestore to delete once they are restored",
          (str, table))

// ---- Netlink sockets (0x0270-0x027f). One NetlinkSocket object per AF_NETLINK socket of the
// tree, written before the Files that open it (File kind kFileNetlinkSocket, `object`). Only
// sockets with nothing queued are written: the kernel's messages cannot be replayed.

enum NetlinkSocketFlags : uint32_t {
  kNetlinkBound = 1,      // has a port id (`portid`): bind() or the kernel's autobind
  kNetlinkConnected = 2,  // connect()ed to `dst_portid` / `dst_group`
};

CR_RECORD(NetlinkSocket, 0x0270, "netlink_socket", "an AF_NETLINK socket (objdef)",
          (objdef, id), (u64, ino),
          (u32, type), (u32, protocol),  // as socket() took them: SOCK_RAW or SOCK_DGRAM
          (u32, flags),                  // NetlinkSocketFlags
          (u32, portid),                 // getsockname nl_pid (kNetlinkBound)
          (u64s, groups),                // every multicast group joined (NETLINK_LIST_MEMBERSHIPS), 1-based
          // getpeername (kNetlinkConnected): port id, and the group as a mask of one bit
          (u32, dst_portid), (u32, dst_group),
          // Options whose value differs from a new socket's, each level << 48 | name << 32 |
          // value: SOL_NETLINK flags, SO_SNDBUF, SO_RCVBUF (as getsockopt shows them).
          (u64s, opts))

// ---- Namespaces (0x0400-0x040f): the namespaces the tree's root owns, after every process's
// ProcAttrs (in the head: restore needs them before the tree is forked).

// One per live process of a tree whose root is pid 1 of its own pid namespace
// (kProcessOwnPidNs). Process.pid, Thread.tid and every other pid of the image stay the host's
// (crdump's view); these are the same tasks seen from inside: restore creates each with both
// (clone3 set_tid {ns_pid, pid}) and uses these where a task itself names a task.
CR_RECORD(PidNsIds, 0x0400, "pid_ns_ids",
          "a process's ids inside the tree's own pid namespace (kProcessOwnPidNs)", (u32, pid),
          (u32, ns_pid),   // 1 for the root
          (u32, ns_pgid),  // its group and session there: 0 when led from outside the namespace
          (u32, ns_sid),
          (u64s, tids),     // every thread's host tid, leader first (Thread records' order)
          (u64s, ns_tids))  // the same threads' tids in the namespace

// The tree's own UTS namespace (kProcessOwnUtsNs): restore makes a new one for the root and
// sets these in it.
CR_RECORD(UtsNs, 0x0401, "uts_ns", "hostname and domainname of the tree's own UTS namespace",
          (str, hostname),    // uname nodename, at most 64 bytes
          (str, domainname))  // uname domainname (NIS), at most 64 bytes

// ---- Time and cgroup namespaces (0x0410-0x041f), beside the others.

// The tree's own time namespace (kProcessOwnTimeNs), as /proc/PID/timens_offsets shows it:
// restore makes a new one with these offsets before the root is made in it. Same host, same
// boot: CLOCK_MONOTONIC and CLOCK_BOOTTIME read inside go on as they did.
CR_RECORD(TimeNs, 0x0410, "time_ns", "clock offsets of the tree's own time namespace",
          (i64, monotonic_sec), (u32, monotonic_nsec),  // nsec below 1e9, as the kernel keeps it
          (i64, boottime_sec), (u32, boottime_nsec))

// The tree's own cgroup namespace (kProcessOwnCgroupNs): its root in each hierarchy, the
// cgroup the root's creator was in when it unshared. After the Cgroup records. Restore puts the
// root there, unshares, then moves it (and every other task) to its own cgroups (CgroupMember).
CR_RECORD(CgroupNs, 0x0411, "cgroup_ns", "the roots of the tree's own cgroup namespace",
          (u64s, roots))  // Cgroup ids, one per hierarchy

// The tree's own user namespace (kProcessOwnUserNs), a child of crdump's: the first record
// after the self-description, so that crrestore knows before it reads anything else that the
// restore must run inside a new one (made with these maps, the tree's other namespaces made
// from inside it so that it owns them). Every uid and gid elsewhere in the image is as crdump's
// namespace sees it (outside): crrestore translates them through the maps.
CR_RECORD(UserNs, 0x0412, "user_ns", "the id maps of the tree's own user namespace",
          (u64s, uid_map),   // (inside, outside, count) triples, as /proc/ROOT/uid_map lists them
          (u64s, gid_map),   // the same for gids
          (u32, setgroups),  // 1: allow, 2: deny (/proc/ROOT/setgroups)
          (u64s, groups))    // with deny: the supplementary groups (outside) every process has
// ---- The tree's own mount namespace (0x0420-0x043f; kProcessOwnMntNs), in the head after
// UtsNs: every mount as /proc/ROOT/mountinfo lists it (parents first). Restore makes a new
// namespace for the root (a copy of crrestore's), makes it private, detaches what no kMountHost
// record matches and mounts the others in order, a tmpfs filled from its TmpfsEntry records
// before anything is mounted inside it.

enum MountKind : uint32_t {
  kMountHost = 1,   // a copy of crdump's mount at the same place (same source, fs type, root,
                    // options): restore keeps crrestore's
  kMountProc = 2,   // a new proc instance (of the tree's pid namespace when it owns one)
  kMountTmpfs = 3,  // a new tmpfs: its contents are the TmpfsEntry records of `id`
  kMountBind = 4,   // a bind of `bind_from`, a path of crdump's namespace (on a host mount)
  kMountSysfs = 5,  // a new sysfs instance
  kMountBindTree = 6,  // a bind of part of an earlier mount of the image: `bind_from` is its path
                       // as the tree sees it (runc's masked and read-only paths)
  kMountDevpts = 7,    // a new devpts instance (no pty of the tree is on it)
  kMountMqueue = 8,    // a new mqueue instance: the tree's IPC namespace's queues
};

CR_RECORD(Mount, 0x0420, "mount", "one mount of the tree's own mount namespace",
          (u32, id), (u32, parent),  // ids of the dumped namespace (only links the records)
          (u32, kind),               // MountKind
          (str, mount_point),        // as the tree sees it
          (str, root),               // within its filesystem
          (str, fstype), (str, source),
          (str, options),        // per-mount options, as mountinfo shows them ("rw,nosuid")
          (str, super_options),  // the filesystem's ("rw,size=1024k,mode=755")
          (str, bind_from))      // kMountBind: the path of crdump's namespace it binds
                                 // (the root mount's, after pivot_root: the tree's root
                                 // directory there); kMountBindTree: the tree's path

// One file, directory, symlink or device node of a kMountTmpfs mount, parents first; tail = the
// file's bytes, the link's target or the node's device number ("MAJOR:MINOR").
CR_RECORD_TAIL(TmpfsEntry, 0x0421, "tmpfs_entry",
               "a file, directory, symlink or device node of the tree's own tmpfs; tail = contents, "
               "target or MAJOR:MINOR",
               (u32, mount),  // the Mount id
               (str, path),   // relative to the mount's root ("" for the root itself)
               (u32, mode),   // type and permission bits
               (u32, uid), (u32, gid), (u64, atime_ns), (u64, mtime_ns))

// ---- The tree's own net namespace (0x0440-0x044f; kProcessOwnNetNs), in the head after the
// mount records: its links, their addresses, the routes the user added to the main table and
// the namespace's sysctls worth keeping. Restore makes a new namespace, sets these in it and
// makes the tree's sockets there before the root is forked into it.

enum NetLinkKind : uint32_t {
  kNetLinkLoopback = 1,  // lo, which every net namespace has (ifindex 1)
  kNetLinkVeth = 2,      // one end of a veth pair; the other is `peer`: a NetLink of the
                         // namespace, or a link outside it (made again in crrestore's namespace)
};

CR_RECORD(NetLink, 0x0440, "net_link", "a link of the tree's own net namespace",
          (u32, ifindex),  // in the dumped namespace: NetAddr and NetRoute name it
          (str, name),     // at most 15 bytes
          (u32, kind),     // NetLinkKind
          (u32, flags),    // IFF_UP (the only flag restore sets)
          (u32, mtu),
          (bytes, address),     // the MAC (IFLA_ADDRESS) of a veth; empty for lo
          (str, peer),          // a veth's other end: its name, "" when crdump could not see it
                                // (outside both the tree's namespace and crdump's)
          (str, peer_master))   // the bridge an outside peer was a port of, or ""

// One address of a link (RTM_GETADDR), as `ip addr add` would give it again.
CR_RECORD(NetAddr, 0x0441, "net_addr", "an address of a link of the tree's own net namespace",
          (u32, ifindex), (u32, family),   // AF_INET or AF_INET6
          (u32, prefixlen), (u32, flags),  // IFA_F_* (IFA_FLAGS): NODAD, NOPREFIXROUTE...
          (u32, scope),                    // RT_SCOPE_*
          (bytes, address),                // IFA_ADDRESS (4 or 16 bytes)
          (bytes, local))                  // IFA_LOCAL (IPv4; empty for IPv6)

// A route of the main table the namespace's user added (not the kernel's own, proto kernel).
CR_RECORD(NetRoute, 0x0442, "net_route",
          "a route of the main table of the tree's own net namespace",
          (u32, family),    // AF_INET or AF_INET6
          (u32, dst_len),   // prefix length of `dst`
          (u32, type),      // RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, RTN_PROHIBIT
          (u32, scope),     // RT_SCOPE_*
          (u32, protocol),  // RTPROT_* (boot, static...)
          (u32, oif),       // NetLink ifindex, 0: none
          (u32, priority),  // RTA_PRIORITY (metric)
          (bytes, dst), (bytes, gateway), (bytes, prefsrc),  // empty when absent
          (bytes, metrics))  // RTA_METRICS as the kernel gave it (nested attributes), or empty

// A sysctl of the namespace (/proc/sys/net/NAME) from crtools' fixed list.
CR_RECORD(NetSysctl, 0x0443, "net_sysctl", "a sysctl of the tree's own net namespace",
          (str, name),   // below /proc/sys/net: "ipv4/ip_forward"
          (str, value))  // as read, without its newline

/// Every record type, for the writer's self-description, crit and the id check below.
using AllRecords =
    std::tuple<StreamHeader, SchemaType, Trailer, ErrorRecord, Process, Creds, Rlimits, FsInfo,
               ProcAttrs, Mm, Vma, Pages, Shmem, ShmemData, Thread, Sigaction, PendingSignal,
               Itimer, PosixTimer, Pipe, PipeData, File, FileData, Fd, SysvShm, SysvShmData,
               SysvMsgQueue, SysvMsg, SysvSem, SysvLimits, Pty, ShellTty, EpollItem, UnixSocket,
               UnixSocketData, FileLock, FileOwner, StreamSeal, InetSocket, InetSocketData, NetLock,
               NetlinkSocket, Cgroup, CgroupProperty, CgroupMember, PagesParent, Vdso, PremapArea,
               PagesPrefork, InetMcast, SeccompFilter, SeccompThread, PidNsIds, UtsNs, InotifyWatch,
               UnixSocketRights, UnixSocketCreds, TimeNs, CgroupNs, UserNs, Mount, TmpfsEntry, FanotifyGroup, FanotifyMark,
               NetLink, NetAddr, NetRoute, NetSysctl, PrecopyPages, PagesPrecopied,
               TreeReleased>;

namespace detail {
template <class Tuple, size_t... I>
constexpr bool ids_unique(std::index_sequence<I...>) {
  constexpr uint32_t ids[] = {std::tuple_element_t<I, Tuple>::kType...};
  for (size_t a = 0; a < sizeof...(I); ++a)
    for (size_t b = a + 1; b < sizeof...(I); ++b)
      if (ids[a] == ids[b]) return false;
  return true;
}
}  // namespace detail

static_assert(detail::ids_unique<AllRecords>(
                  std::make_index_sequence<std::tuple_size_v<AllRecords>>{}),
              "record type ids must be unique");

}  // namespace cr::schema
