// The passes of a dump, in the order dump.cc runs them. Each reads or writes one part of the
// DumpContext; each lives in its own file, named after what it handles.
#pragma once

#include "dump/dump_context.h"

namespace cr::dump {

/// freeze.cc: refuses seccomp and zombies, seizes every thread and settles it in a ptrace
/// stop; lists the children; reads registers (with restart_fixup), xstate, sigmask, rseq,
/// robust list, pending signals.
Status freeze(DumpContext& ctx);

/// vmas.cc: smaps -> Vma records (kinds, file identity, madvise flags); refuses shared
/// anonymous memory, SysV shm, device and deleted-file mappings. Finds a `syscall` in [vdso].
Status collect_vmas(DumpContext& ctx);

/// files.cc: every process's fd table -> Pipe, PipeData, File, FileData (once per object in
/// the tree), Fd (per slot); refuses what is not handled.
Status collect_files(DumpTree& tree);
/// Writes a deleted file's contents as FileData records of at most 1 MiB each.
Status write_file_data(format::RecordWriter& out, uint32_t file, std::span<const uint8_t> data);

/// remote_state.cc: sigactions, altstack, itimers, posix timers, clear_child_tid,
/// securebits and brk, by system calls injected into the task.
Status collect_remote_state(DumpContext& ctx);

/// process_info.cc: Process, Creds, Rlimits, FsInfo, Mm.
Status collect_process_info(DumpContext& ctx);

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

/// pages.cc: pagemap + process_vm_readv -> Pages records.
Status write_pages(DumpContext& ctx);

}  // namespace cr::dump
