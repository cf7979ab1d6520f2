// The address space layout: one Vma record per mapping from /proc/PID/smaps, with the
// refusals for mappings a restore could not rebuild faithfully yet.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>
#include <vector>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/remote_syscalls.h"

namespace cr::dump {

namespace {

std::string range_name(const MapEntry& m) {
  char buf[64];
  snprintf(buf, sizeof buf, "vma 0x%llx-0x%llx", static_cast<unsigned long long>(m.start),
           static_cast<unsigned long long>(m.end));
  return buf;
}

Error refuse(const MapEntry& m, const std::string& what) {
  return make_error(range_name(m) + ": " + what + " not supported yet");
}

uint32_t madv_flags(const MapEntry& m) {
  uint32_t f = 0;
  if (m.has_flag("dd")) f |= schema::kMadvDontDump;
  if (m.has_flag("hg")) f |= schema::kMadvHugepage;
  if (m.has_flag("nh")) f |= schema::kMadvNoHugepage;
  if (m.has_flag("dc")) f |= schema::kMadvDontFork;
  if (m.has_flag("wf")) f |= schema::kMadvWipeOnFork;
  if (m.has_flag("mg")) f |= schema::kMadvMergeable;
  // mlock, mlockall(MCL_CURRENT): "lo"; mlock2(MLOCK_ONFAULT), MCL_ONFAULT: "lo lf".
  if (m.has_flag("lo")) f |= schema::kMadvLocked;
  if (m.has_flag("lo") && m.has_flag("lf")) f |= schema::kMadvLockOnFault;
  return f;
}

// Kind of a bracketed name, 0 if unknown.
uint32_t special_kind(std::string_view path) {
  if (path == "[heap]") return schema::kVmaHeap;
  if (path == "[stack]") return schema::kVmaStack;
  if (path == "[vdso]") return schema::kVmaVdso;
  if (path == "[vvar]") return schema::kVmaVvar;
  if (path == "[vvar_vclock]") return schema::kVmaVvarVclock;
  if (path.starts_with("[anon:")) return schema::kVmaAnon;  // PR_SET_VMA_ANON_NAME
  return 0;
}

// A mapping of a shmem file (MAP_SHARED|MAP_ANONYMOUS, a shared mapping of a deleted file, or
// any mapping of a memfd): the file (through map_files) is one object for the whole tree,
// however many processes map it or hold fds on it; the Vma names it, its contents are written
// once. A private mapping of a memfd keeps only its copied pages (pages.cc), like a private
// file mapping.
Result<schema::Vma> shmem_vma(DumpContext& ctx, const MapEntry& m, schema::Vma v) {
  const std::string entry = map_files_entry(m.start, m.end);
  CR_TRY_ASSIGN(struct stat st, ctx.proc.stat(entry));
  std::string link;  // names a memfd: its name as the fd link shows it
  if (m.path.starts_with("/memfd:")) {
    CR_TRY_ASSIGN(link, ctx.proc.readlink(entry));
  }
  CR_TRY_ASSIGN(const ShmemObject* obj, shmem_object(ctx, entry, st, link));
  const bool memfd = obj->rec.kind == schema::kShmemMemfd;
  // An anonymous object's size is fixed when it is made; a memfd can be mapped past its end
  // (a restore maps it the same way).
  if (!memfd && m.offset + (m.end - m.start) > obj->rec.size)
    return refuse(m, "shared memory beyond its object");
  v.kind = m.shared ? schema::kVmaAnonShared : schema::kVmaShmemPrivate;
  v.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
  if (!memfd) v.flags |= MAP_ANONYMOUS;
  if (memfd) v.path = m.path;  // for crit; restore maps the object
  v.shmem = obj->rec.id;
  // How the mapped object was opened (the link's mode bits are its f_mode): a memfd mapped
  // through an O_RDWR fd is mapped so again.
  CR_TRY_ASSIGN(struct stat lst, ctx.proc.lstat(entry));
  v.file_open_mode = lst.st_mode & (S_IRUSR | S_IWUSR);
  return v;
}

// A shmat() attach: maps shows the segment's id as its inode. Restore attaches the whole
// segment again at the same address, so an attach must still cover all of it: a first Vma at
// offset 0, then pieces split off by mprotect, contiguous, up to the segment's end.
Result<schema::Vma> sysv_attach(DumpContext& ctx, const MapEntry& m, schema::Vma v) {
  if (!ctx.tree.ipc.own_ns)
    return refuse(m,
                  "SysV shared memory of the host's IPC namespace (run the job in an IPC "
                  "namespace of its own, unshare --ipc)");
  const schema::SysvShm* seg = ctx.tree.ipc.shm(static_cast<uint32_t>(m.inode));
  if (seg == nullptr)
    return refuse(m, "SysV segment " + std::to_string(m.inode) + " that has gone");
  if (m.offset != 0) {
    const schema::Vma* prev = ctx.vmas.empty() ? nullptr : &ctx.vmas.back();
    if (prev == nullptr || prev->kind != schema::kVmaSysvShm || prev->shmem != seg->id ||
        prev->end != m.start || (prev->pgoff * 4096 + (prev->end - prev->start)) != m.offset)
      return refuse(m, "part of a SysV attach (its start is unmapped)");
  }
  const uint64_t seg_end = (seg->size + 4095) & ~uint64_t{4095};
  if (m.offset + (m.end - m.start) > seg_end) return refuse(m, "SysV attach beyond its segment");
  v.kind = schema::kVmaSysvShm;
  v.shmem = seg->id;
  v.ino = m.inode;
  v.path = m.path;
  return v;
}

// Every SysV attach reaches its segment's end (restore cannot attach less than a segment).
Status check_sysv_attaches(const DumpContext& ctx) {
  for (size_t i = 0; i < ctx.vmas.size(); ++i) {
    const schema::Vma& v = ctx.vmas[i];
    if (v.kind != schema::kVmaSysvShm) continue;
    const bool last = i + 1 == ctx.vmas.size() || ctx.vmas[i + 1].kind != schema::kVmaSysvShm ||
                      ctx.vmas[i + 1].pgoff == 0 || ctx.vmas[i + 1].shmem != v.shmem;
    if (!last) continue;
    for (const auto& seg : ctx.tree.ipc.shms)
      if (seg.id == v.shmem &&
          v.pgoff * 4096 + (v.end - v.start) < ((seg.size + 4095) & ~uint64_t{4095}))
        return make_error("vma " + hex(v.start) + "-" + hex(v.end) +
                          ": part of a SysV attach (its end is unmapped) not supported yet");
  }
  return {};
}

#ifdef MAP_DROPPABLE
constexpr uint32_t kMapDroppable = MAP_DROPPABLE;
#else
constexpr uint32_t kMapDroppable = 0x08;  // Linux 6.11
#endif

// The stat of each mapped file, by what maps shows of it (device, inode, path, deleted): a
// library is mapped four or five times, and its inode says the same through each mapping.
using FileStats =
    std::map<std::tuple<uint32_t, uint32_t, uint64_t, std::string, bool>, struct stat>;

Result<schema::Vma> make_vma(DumpContext& ctx, const MapEntry& m, FileStats& stats) {
  schema::Vma v;
  v.pid = static_cast<uint32_t>(ctx.pid);
  v.start = m.start;
  v.end = m.end;
  v.pgoff = m.offset / 4096;
  v.prot = (m.read ? PROT_READ : 0) | (m.write ? PROT_WRITE : 0) | (m.exec ? PROT_EXEC : 0);
  v.flags = m.shared ? MAP_SHARED : MAP_PRIVATE;
  if (m.has_flag("gd")) v.flags |= MAP_GROWSDOWN;
  v.madv = madv_flags(m);

  // MAP_HUGETLB ("/anon_hugepage"), MFD_HUGETLB ("/memfd:NAME"), a hugetlbfs file.
  if (m.has_flag("ht")) return refuse(m, "hugetlb memory" + (m.path.empty() ? "" : " " + m.path));
  // io_setup's ring: its requests in flight, and the kernel's context behind the ring, cannot
  // be rebuilt from the ring's memory.
  if (m.path == "/[aio]") return refuse(m, "AIO context (io_setup) ring /[aio]");
  if (m.has_flag("ss")) return refuse(m, "shadow stack");
  if (m.protection_key != 0) {
    // PROT_EXEC alone gets the kernel's own execute-only key, which pkey_mprotect cannot give.
    if (m.exec && !m.read && !m.write)
      return refuse(m, "execute-only memory (protection key " + std::to_string(m.protection_key) +
                           ", the kernel's)");
    v.pkey = m.protection_key;
  }
  // The kernel's own [vvar] pages are VM_PFNMAP too; those are handled by kind below.
  if (!m.special() && (m.has_flag("io") || m.has_flag("pf")))
    return refuse(m, "device mapping " + m.path);
  if (m.path.starts_with("/SYSV")) return sysv_attach(ctx, m, v);
  if (m.path.starts_with("/memfd:") && m.deleted) return shmem_vma(ctx, m, v);
  if (m.shared &&
      (m.path.empty() || m.path.starts_with("[anon_shmem") || (m.path == "/dev/zero" && m.deleted)))
    return shmem_vma(ctx, m, v);

  if (m.path.empty() || m.special()) {
    if (m.path.empty()) {
      v.kind = schema::kVmaAnon;
    } else {
      v.kind = special_kind(m.path);
      if (v.kind == 0) return refuse(m, "special mapping " + m.path);
    }
    if (v.kind == schema::kVmaAnon && m.has_flag("dp")) {
      // MAP_DROPPABLE (Linux 6.11): a mapping type of its own, which implies wipe-on-fork,
      // no core dump and no reserve; the kernel's pages may be dropped under pressure.
      v.kind = schema::kVmaDroppable;
      v.flags = kMapDroppable;
      v.madv &= ~(schema::kMadvWipeOnFork | schema::kMadvDontDump);
    }
    if (v.kind == schema::kVmaAnon || v.kind == schema::kVmaHeap || v.kind == schema::kVmaStack ||
        v.kind == schema::kVmaDroppable)
      v.flags |= MAP_ANONYMOUS;
    v.pgoff = 0;
    return v;
  }

  // A file mapping. Stat it through map_files so a renamed or deleted file is caught.
  const auto key = std::make_tuple(m.dev_major, m.dev_minor, m.inode, m.path, m.deleted);
  auto known = stats.find(key);
  if (known == stats.end()) {
    CR_TRY_ASSIGN(struct stat fresh, ctx.proc.stat(map_files_entry(m.start, m.end)));
    known = stats.emplace(key, fresh).first;
  }
  const struct stat st = known->second;
  if (S_ISCHR(st.st_mode)) {
    // MAP_PRIVATE of /dev/zero is plain anonymous memory.
    if (!m.shared && major(st.st_rdev) == 1 && minor(st.st_rdev) == 5) {
      v.kind = schema::kVmaAnon;
      v.flags |= MAP_ANONYMOUS;
      v.pgoff = 0;
      return v;
    }
    return refuse(m, "device mapping " + m.path);
  }
  if (!S_ISREG(st.st_mode)) return refuse(m, "mapping of non-regular file " + m.path);
  // A shared mapping of a deleted file (a POSIX semaphore or shm_open object unlinked at once,
  // as Python's multiprocessing does) is memory shared by whoever maps it, and nothing else can
  // reach it: it is dumped and restored as shared anonymous memory.
  if ((m.deleted || st.st_nlink == 0) && m.shared) return shmem_vma(ctx, m, v);
  if (m.deleted || st.st_nlink == 0) return refuse(m, "mapping of deleted file " + m.path);
  v.kind = m.shared ? schema::kVmaFileShared : schema::kVmaFilePrivate;
  // The link's mode bits are the mapped file's f_mode (read, write): a private mapping of a
  // file opened O_RDWR keeps that at restore.
  CR_TRY_ASSIGN(struct stat lst, ctx.proc.lstat(map_files_entry(m.start, m.end)));
  v.file_open_mode = lst.st_mode & (S_IRUSR | S_IWUSR);
  v.path = m.path;
  v.dev = st.st_dev;
  v.ino = st.st_ino;
  v.file_size = static_cast<uint64_t>(st.st_size);
  v.file_mtime_ns = mtime_ns(st);
  return v;
}

// The code searches below read the task's text in chunks this small: the pieces they look for
// usually lie in the first pages searched (glibc's signal restorer about 90 KiB into its text),
// and a read of 1 MiB costs a millisecond (256 pages pinned and copied, a fresh buffer faulted
// in), a tenth of a small dump. Chunks overlap by more than any sequence searched is long, so
// none is missed at a boundary.
constexpr uint64_t kSearchChunk = 64 << 10;
constexpr uint64_t kSearchOverlap = 64;

// Calls `fn(data, len, address)` on successive chunks of [start, end) of the task's memory
// until it returns true; stops at the first chunk that cannot be read. Returns whether `fn` did.
template <class F>
bool search_chunks(DumpContext& ctx, std::vector<uint8_t>& buf, uint64_t start, uint64_t end,
                   F&& fn) {
  for (uint64_t at = start; at < end; at += kSearchChunk) {
    const size_t len = std::min<uint64_t>(end - at, kSearchChunk + kSearchOverlap);
    buf.resize(len);
    if (!ctx.tracee().read_mem(at, buf.data(), len).ok()) return false;
    if (fn(buf.data(), len, at)) return true;
  }
  return false;
}

// The first rt_sigreturn sequence in the task's executable mappings, libc's first; a fork of
// the process dumped before has it at the same address, which is checked before the search.
void find_sigreturn_code(DumpContext& ctx, std::vector<uint8_t>& buf) {
  const uint64_t hint = ctx.tree.sigreturn_hint;
  for (const MapEntry& m : ctx.maps) {
    uint8_t code[9];
    if (hint == 0 || !m.exec || hint < m.start || hint + sizeof code > m.end) continue;
    if (ctx.tracee().read_mem(hint, code, sizeof code).ok() &&
        sys::is_sigreturn(code, sizeof code)) {
      ctx.heal.sigreturn = hint;
      return;
    }
  }
  std::vector<const MapEntry*> order;
  for (const MapEntry& m : ctx.maps)
    if (m.exec && m.read && m.path.find("libc") != std::string::npos) order.push_back(&m);
  for (const MapEntry& m : ctx.maps)
    if (m.exec && m.read && m.path.find("libc") == std::string::npos && m.path != "[vsyscall]")
      order.push_back(&m);
  for (const MapEntry* m : order) {
    const bool found =
        search_chunks(ctx, buf, m->start, m->end, [&](const uint8_t* d, size_t len, uint64_t at) {
          const uint64_t a = sys::find_sigreturn(d, len, at);
          if (a != 0) ctx.heal.sigreturn = ctx.tree.sigreturn_hint = a;
          return a != 0;
        });
    if (found) return;
  }
}

// A `syscall` instruction the injected calls can use: in [vdso], else in any executable
// mapping (its first MiB). Also the code that makes them safe against crdump's death
// (sys/sigreturn_frame.h): `syscall; ...; ret` in [vdso] and an rt_sigreturn sequence (libc's
// signal restorer).
Status find_syscall(DumpContext& ctx) {
  std::vector<const MapEntry*> candidates;
  for (const MapEntry& m : ctx.maps)
    if (m.path == "[vdso]") candidates.push_back(&m);
  for (const MapEntry& m : ctx.maps)
    if (m.exec && m.read && m.path != "[vdso]" && m.path != "[vsyscall]") candidates.push_back(&m);
  std::vector<uint8_t> buf;
  for (const MapEntry* m : candidates) {
    const uint64_t end = m->start + std::min<uint64_t>(m->end - m->start, 1 << 20);
    const bool both =
        search_chunks(ctx, buf, m->start, end, [&](const uint8_t* d, size_t len, uint64_t at) {
          if (ctx.syscall_insn == 0) ctx.syscall_insn = sys::find_syscall_insn(d, len, at);
          if (ctx.heal.syscall_ret == 0) ctx.heal.syscall_ret = sys::find_syscall_ret(d, len, at);
          return ctx.syscall_insn != 0 && ctx.heal.syscall_ret != 0;
        });
    if (both) break;
  }
  if (ctx.syscall_insn == 0)
    return make_error("pid " + std::to_string(ctx.pid) + ": no syscall instruction in [vdso]");
  find_sigreturn_code(ctx, buf);
  return {};
}

// Guard regions (MADV_GUARD_INSTALL) fault on every access and have no contents: pagemap shows
// each guard page with bit 58 (and as swapped). They are recorded as ranges, to install again.
Status find_guards(DumpContext& ctx, schema::Vma& v) {
  constexpr uint64_t kPmGuardRegion = 1ull << 58;  // Linux 6.15
  ScopedFd pm(::openat(ctx.proc.fd(), "pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm.valid()) return errno_error("open /proc/" + std::to_string(ctx.pid) + "/pagemap");
  const uint64_t first = v.start / 4096, total = (v.end - v.start) / 4096;
  std::vector<uint64_t> entries(std::min<uint64_t>(total, 4096));
  uint64_t run_start = 0, run_pages = 0;
  for (uint64_t done = 0; done < total;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(total - done, entries.size()));
    const ssize_t r =
        ::pread(pm.get(), entries.data(), n * 8, static_cast<off_t>((first + done) * 8));
    if (r != static_cast<ssize_t>(n * 8))
      return errno_error("read pagemap at " + hex((first + done) * 4096), r < 0 ? errno : EIO);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t addr = (first + done + i) * 4096;
      if ((entries[i] & kPmGuardRegion) == 0) continue;
      if (run_pages != 0 && run_start + run_pages * 4096 == addr) {
        ++run_pages;
        continue;
      }
      if (run_pages != 0) v.guards.insert(v.guards.end(), {run_start, run_pages});
      run_start = addr;
      run_pages = 1;
    }
    done += n;
  }
  if (run_pages != 0) v.guards.insert(v.guards.end(), {run_start, run_pages});
  return {};
}

}  // namespace

Status collect_vmas(DumpContext& ctx) {
  CR_TRY_ASSIGN(std::string text, ctx.proc.read("smaps"));
  CR_TRY_ASSIGN(ctx.maps, parse_smaps(text));
  FileStats stats;
  for (const MapEntry& m : ctx.maps) {
    if (m.path == "[vsyscall]") continue;  // fixed by the kernel, not a real mapping
    auto made = make_vma(ctx, m, stats);
    if (!made.ok()) {
      CR_TRY(ctx.tree.refuse(ctx.pid, std::move(made).error()));
      continue;  // a dry run: the next mapping
    }
    schema::Vma v = std::move(made).value();
    // "gu": guard regions were installed in it (MADV_GUARD_INSTALL, Linux 6.13).
    if (m.has_flag("gu")) CR_TRY(find_guards(ctx, v));
    ctx.vmas.push_back(std::move(v));
  }
  if (Status st = check_sysv_attaches(ctx); !st.ok())
    CR_TRY(ctx.tree.refuse(ctx.pid, std::move(st).error()));
  return find_syscall(ctx);
}

}  // namespace cr::dump
