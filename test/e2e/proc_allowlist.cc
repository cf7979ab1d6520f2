// The allowlist of the zdtm /proc comparison (proc_snapshot.h): what may differ between the
// tree before its dump and the restored tree, one entry a field, each with its reason.
// Keys look like "PID/fdinfo/4/mnt_id"; globs match the whole key ('*' crosses '/').
#include <fnmatch.h>

#include "proc_snapshot.h"

namespace cr::e2e {

const std::vector<AllowEntry>& zdtm_allowlist() {
  static const std::vector<AllowEntry> all = {
      // ---- Legitimate changes -------------------------------------------------------------
      {"mntns_*", "*/fdinfo/*/mnt_id",
       "a mount namespace of the tree's own is made anew at restore and the kernel numbers its "
       "mounts anew (the mount table itself is compared, without ids); an fd opened before "
       "the tree's namespace was made is on crdump's mount, the restored one on the tree's copy"},
      {"ns_mnt", "*/fdinfo/*/mnt_id",
       "the same: the mount namespace the root unshared is made anew at restore"},
      {"netns_container", "*/fdinfo/*/mnt_id",
       "the same: the container's mount namespace (beside its net namespace) is made anew"},
      {"*", "*/status/FDSize",
       "the fd table's capacity: it grows with the highest fd ever open and never shrinks; a "
       "restored table is sized for the fds it holds"},
      {"*", "*/stat/flags/0x00000040",
       "PF_FORKNOEXEC: set by fork, cleared only by execve; restored processes are forked by "
       "crrestore and never exec"},
      {"*", "*/stat/flags/0x00000100",
       "PF_SUPERPRIV: a history bit (the task has used a capability); crrestore's injected "
       "calls (PR_SET_MM_MAP, clone3 with set_tid) use CAP_SYS_ADMIN / CAP_CHECKPOINT_RESTORE"},
      {"*", "*/smaps/*/VmFlags/ac",
       "VM_ACCOUNT: crrestore maps every private mapping writable first (its pages are written "
       "in, then mprotect), so the kernel charges mappings the original never had writable; "
       "commit accounting only (maps are compared with VMAs split only by it merged)"},
      {"deleted_file", "*/fdinfo/4/ino",
       "an unlinked file cannot be linked back: crrestore makes a new one with its content"},
      {"deleted_nodes", "*/fdinfo/*/ino",
       "deleted directories, FIFOs and device nodes cannot be linked back: crrestore makes new "
       "ones"},
      {"deleted_tmpfile", "*/fdinfo/4/ino",
       "an O_TMPFILE file cannot be linked back: crrestore makes a new one with its content"},
      {"deleted_tmpfile", "*/fd/4",
       "an O_TMPFILE file's name is '#' and its inode number, which is new (see ino)"},
      {"creds_user_files", "*/fdinfo/5/ino",
       "fd 5 is an unlinked file: crrestore makes a new one with its content"},
      {"deleted_sparse", "*/fdinfo/*/ino",
       "its deleted files cannot be linked back: crrestore makes new ones with their extents"},
      {"proc_files", "*/fdinfo/*/ino",
       "/proc inodes are made per process instance: the restored process's /proc/PID entries "
       "are new ones"},
      {"file_locks", "*/fdinfo/7/ino",
       "fd 7 is a deleted file: crrestore makes a new one (a new inode)"},
      {"file_locks", "*/fdinfo/7/lock/*",
       "the lock lines of fd 7 name its inode, which is new (a deleted file remade)"},
      {"file_locks", "*/locks/*",
       "/proc/locks entries are keyed by device:inode, and the deleted file's is new; the "
       "program itself checks every lock after restore (F_GETLK, F_OFD_GETLK, flock from "
       "another description)"},
      {"proc_prctl", "*/sessionid",
       "the audit session id: the kernel gives a new one whenever loginuid is written, and "
       "nothing sets it (README: not preserved)"},
      {"file_map_private", "*/map_files/*",
       "a private mapping never writes to its file: crrestore maps it through a read-only open "
       "(the original used its O_RDWR fd), which only the map_files link mode shows: "
       "'120600' -> '120400'"},
      {"posix_timer", "*/status/ShdPnd",
       "a periodic 20 ms timer: whether its signal is pending at the instant of reading is timing"},
      {"posix_timer", "*/status/SigPnd",
       "a periodic 20 ms timer: whether its signal is pending at the instant of reading is timing"},

      // ---- Cases that keep working after ready: what their own work changes ----------------
      {"threads_churn", "*/task/*", "short-lived threads come and go while it runs"},
      {"threads_churn", "*/status/Threads", "short-lived threads come and go while it runs"},
      {"threads_churn", "*/stat/num_threads", "short-lived threads come and go while it runs"},
      {"threads_churn", "*/maps/*", "the stacks of short-lived threads are mapped and freed"},
      {"threads_churn", "*/smaps/*", "the stacks of short-lived threads are mapped and freed"},
      {"threads_churn", "*/map_files/*", "the stacks of short-lived threads are mapped and freed"},
      {"threads_churn", "*/status/Vm*", "the stacks of short-lived threads are mapped and freed"},
      {"threads_churn", "*/stat/vsize", "the stacks of short-lived threads are mapped and freed"},
      {"threads_churn", "*/status/SigBlk",
       "read at once after ready (busy): the main thread may not be in sigsuspend yet"},
      {"threads_churn", "*/syscall",
       "read at once after ready (busy): the main thread may not be in sigsuspend yet"},
      {"precopy_writer*", "*/task/*", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/maps/*", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/smaps/*", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/map_files/*", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/status/Vm*", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/status/RssAnon", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/stat/vsize", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/stat/rss", "its threads rewrite, zap, move and map memory while it runs"},
      {"precopy_writer*", "*/status/SigBlk",
       "read at once after ready (busy): the main thread may not be in pthread_join yet"},
      {"precopy_writer*", "*/syscall",
       "read at once after ready (busy): the main thread may not be in pthread_join yet"},

      // ---- KNOWN BUGS (to fix) ------------------------------------------------------------
      // Each names the zdtm case, the field and the values seen before the dump -> after the
      // restore. Not legitimate: remove the entry with the fix.
  };
  return all;
}

bool zdtm_busy(const std::string& case_name) {
  // These never block in a system call after ready: counter_loop counts, regs_gpr_avx spins
  // on its flag with its registers loaded, threads_churn makes threads, the threads of
  // threads_count and threads_sighandler keep counting, rseq_cs loops in its critical section,
  // precopy_writer's threads keep rewriting memory, lazy_random's thread keeps reading it.
  for (const char* busy : {"counter_loop", "regs_gpr_avx", "threads_churn", "threads_count*",
                           "threads_sighandler", "rseq_cs", "precopy_writer*", "tree_busy*", "lazy_random"})
    if (fnmatch(busy, case_name.c_str(), 0) == 0) return true;
  return false;
}

}  // namespace cr::e2e
