#include "restore/address_space.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/io.h"
#include "common/text.h"
#include "restore/layout.h"
#include "restore/trampoline.h"
#include "restore/uffd_pages.h"
#include "restore/vdso.h"
#include "sys/linux_abi.h"

namespace cr::restore {

namespace {

constexpr uint64_t kRseqFlagUnregister = 1;

const char* vdso_name(uint32_t kind) {
  switch (kind) {
    case schema::kVmaVdso:
      return "[vdso]";
    case schema::kVmaVvar:
      return "[vvar]";
    case schema::kVmaVvarVclock:
      return "[vvar_vclock]";
    default:
      return nullptr;
  }
}

bool is_private(const schema::Vma& v) {
  return v.kind == schema::kVmaAnon || v.kind == schema::kVmaDroppable ||
         v.kind == schema::kVmaHeap || v.kind == schema::kVmaStack ||
         v.kind == schema::kVmaFilePrivate || v.kind == schema::kVmaShmemPrivate;
}

// What a VMA is mapped with before its pages arrive.
uint32_t initial_prot(const schema::Vma& v) {
  // A SysV attach is made read-write as a whole (attach_sysv); its pieces get their own after.
  if (v.kind == schema::kVmaSysvShm) return PROT_READ | PROT_WRITE;
  return is_private(v) ? v.prot | PROT_READ | PROT_WRITE : v.prot;
}

Status apply_madvise(sys::RemoteBatch& b, const schema::Vma& v) {
  static constexpr struct {
    uint32_t flag;
    int advice;
    const char* name;
  } kAdvice[] = {
      {schema::kMadvDontDump, MADV_DONTDUMP, "MADV_DONTDUMP"},
      {schema::kMadvHugepage, MADV_HUGEPAGE, "MADV_HUGEPAGE"},
      {schema::kMadvNoHugepage, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE"},
      {schema::kMadvDontFork, MADV_DONTFORK, "MADV_DONTFORK"},
      {schema::kMadvWipeOnFork, MADV_WIPEONFORK, "MADV_WIPEONFORK"},
      {schema::kMadvMergeable, MADV_MERGEABLE, "MADV_MERGEABLE"},
  };
  for (const auto& a : kAdvice) {
    if ((v.madv & a.flag) == 0) continue;
    CR_TRY(b.reserve(1, 0));
    CR_TRY(b.add(a.name, SYS_madvise,
                 {v.start, v.end - v.start, static_cast<uint64_t>(a.advice), 0, 0, 0},
                 "vma " + hex(v.start)));
  }
  return {};
}

#ifdef MAP_DROPPABLE
constexpr uint64_t kMapDroppable = MAP_DROPPABLE;
#else
constexpr uint64_t kMapDroppable = 0x08;  // Linux 6.11
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13
#endif

// Guard regions fault on every access; none of their pages is in the image.
Status install_guards(sys::RemoteBatch& b, const schema::Vma& v) {
  for (size_t i = 0; i + 1 < v.guards.size(); i += 2) {
    CR_TRY(b.reserve(1, 0));
    CR_TRY(b.add("MADV_GUARD_INSTALL", SYS_madvise,
                 {v.guards[i], v.guards[i + 1] * 4096, MADV_GUARD_INSTALL, 0, 0, 0},
                 "vma " + hex(v.start) + ": guard region"));
  }
  return {};
}

// A call's result that must be a given address (an mmap or mremap with MAP_FIXED), checked
// once its batch has run.
struct Expect {
  size_t call;
  uint64_t want;
  std::string what;  // "vma 0x1000 mapped at " ...
};

Status check_expected(const sys::RemoteBatch& b, const std::vector<Expect>& expects) {
  for (const auto& e : expects)
    if (static_cast<uint64_t>(b.result(e.call)) != e.want)
      return make_error(e.what + hex(static_cast<uint64_t>(b.result(e.call))));
  return {};
}

// A copy, in the task, of crrestore's fd `fd` (pidfd_getfd: the same open file description).
Result<int64_t> memfd_created_description(RestoreContext& ctx, int fd) {
  if (ctx.img.ns_ids) {
    // crrestore is outside the task's pid namespace: no pid names it there. The task opens
    // the file anew through crrestore's fd (/proc is the host's; a tree with a pid namespace
    // of its own is root's, README "Trust model"): the same file, another description.
    const std::string via = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd);
    CR_TRY_ASSIGN(uint64_t path, ctx.put_str(via));
    CR_TRY_ASSIGN(uint64_t got,
                  ctx.call("open shared memory", SYS_openat, static_cast<uint64_t>(AT_FDCWD), path,
                           O_RDWR | O_CLOEXEC));
    return static_cast<int64_t>(got);
  }
  CR_TRY_ASSIGN(uint64_t pidfd,
                ctx.call("pidfd_open", SYS_pidfd_open, static_cast<uint64_t>(::getpid()), 0));
  auto got = ctx.call("pidfd_getfd", SYS_pidfd_getfd, pidfd, static_cast<uint64_t>(fd), 0);
  auto closed = ctx.call("close", SYS_close, pidfd);
  if (!got.ok()) return std::move(got).error();
  if (!closed.ok()) return std::move(closed).error();
  return static_cast<int64_t>(*got);
}

}  // namespace

namespace {

Status do_vdso_moves(RestoreContext& ctx, sys::RemoteBatch& b, std::vector<Expect>& expects,
                     const std::vector<VdsoPiece>& pieces, const std::vector<Range>& avoid) {
  CR_TRY_ASSIGN(auto moves, plan_vdso_moves(pieces, avoid));
  for (const auto& m : moves) {
    CR_TRY(b.reserve(1, 0));
    CR_TRY_ASSIGN(size_t c, b.add("mremap vdso", SYS_mremap,
                                  {m.from, m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, m.to, 0},
                                  hex(m.from) + " -> " + hex(m.to)));
    expects.push_back({c, m.to, "mremap vdso landed at "});
  }
  ctx.vdso_ranges.clear();
  for (const auto& p : pieces) {
    ctx.vdso_ranges.emplace_back(p.target, p.target + p.current.size());
    if (p.name == "[vdso]") ctx.vdso_base = p.target;
  }
  return {};
}

// The dumped vDSO differs from ours (restore/vdso.h): this kernel's pieces move together, as
// the kernel laid them out, to a place free in crrestore's layout and the image's; the dumped
// [vdso] address gets the jumps later (map_vmas).
Status move_vdso_aside(RestoreContext& ctx, sys::RemoteBatch& b, std::vector<Expect>& expects,
                       const std::vector<MapsEntry>& maps, const std::vector<Range>& avoid) {
  std::vector<VdsoPiece> pieces;
  uint64_t lo = ~0ull, hi = 0;
  for (const auto& m : maps) {
    if (m.name != "[vdso]" && m.name != "[vvar]" && m.name != "[vvar_vclock]") continue;
    pieces.push_back({m.name, m.range, 0});
    lo = std::min(lo, m.range.start);
    hi = std::max(hi, m.range.end);
  }
  if (pieces.empty()) return make_error("this kernel gave the task no vDSO");
  std::vector<Range> image;
  for (const auto& v : ctx.img.vmas) image.push_back({v.start, v.end});
  CR_TRY_ASSIGN(uint64_t at, choose_free_range(avoid, image, hi - lo));
  for (auto& p : pieces) p.target = at + (p.current.start - lo);
  return do_vdso_moves(ctx, b, expects, pieces, avoid);
}

// Queues the vDSO's moves (move_vdso).
Status queue_vdso_moves(RestoreContext& ctx, sys::RemoteBatch& b, std::vector<Expect>& expects) {
  // As the task was when the trampoline went in (nothing else has changed it since).
  std::vector<MapsEntry> maps = ctx.start_maps;
  if (maps.empty()) {
    CR_TRY_ASSIGN(maps, read_task_maps(ctx.tracee.tid()));
  }
  std::vector<VdsoPiece> pieces;
  std::vector<Range> avoid;
  for (const auto& m : maps) avoid.push_back(m.range);
  if (ctx.tramp.size != 0) avoid.push_back({ctx.tramp.addr, ctx.tramp.addr + ctx.tramp.size});
  if (ctx.vdso != nullptr && ctx.vdso->proxy) return move_vdso_aside(ctx, b, expects, maps, avoid);
  for (const auto& v : ctx.img.vmas) {
    const char* name = vdso_name(v.kind);
    if (name == nullptr) continue;
    const MapsEntry* cur = nullptr;
    for (const auto& m : maps)
      if (m.name == name) cur = &m;
    if (cur == nullptr || cur->range.size() != v.end - v.start)
      return make_error(std::string("vdso layout differs from the dump (") + name + ": dumped " +
                        std::to_string((v.end - v.start) / 4096) + " pages, here " +
                        (cur ? std::to_string(cur->range.size() / 4096) : std::string("none")) +
                        ")");
    pieces.push_back({name, cur->range, v.start});
  }
  return do_vdso_moves(ctx, b, expects, pieces, avoid);
}

// Queues unmap_rest's calls.
Status queue_unmap_rest(RestoreContext& ctx, sys::RemoteBatch& b) {
  // The child inherited crrestore's rseq registration; once its TLS is unmapped the kernel
  // would kill it at the next return to user space.
  CR_TRY_ASSIGN(auto rseq, ctx.tracee.get_rseq());
  if (rseq.addr != 0) {
    CR_TRY(b.reserve(1, 0));
    CR_TRY(b.add("rseq unregister", SYS_rseq,
                 {rseq.addr, rseq.len, kRseqFlagUnregister, rseq.sig, 0, 0}));
  }
  std::vector<Range> keep{{ctx.tramp.addr, ctx.tramp.addr + ctx.tramp.size}};
  for (const auto& [start, end] : ctx.vdso_ranges) keep.push_back({start, end});
  // Memory placed before the fork (premap.cc) stays until map_vmas moves it into place.
  if (ctx.premap != nullptr)
    if (auto it = ctx.premap->slots.find(static_cast<uint32_t>(ctx.pid()));
        it != ctx.premap->slots.end())
      for (const auto& [start, s] : it->second)
        keep.push_back({s.slot, s.slot + (s.end - s.start)});
  for (const auto& r : unmap_ranges(keep)) {
    CR_TRY(b.reserve(1, 0));
    CR_TRY(b.add("munmap", SYS_munmap, {r.start, r.size(), 0, 0, 0, 0},
                 hex(r.start) + "-" + hex(r.end)));
  }
  return {};
}

}  // namespace

Status move_vdso(RestoreContext& ctx) {
  sys::RemoteBatch b = ctx.batch();
  std::vector<Expect> expects;
  CR_TRY(queue_vdso_moves(ctx, b, expects));
  CR_TRY(b.run());
  return check_expected(b, expects);
}

Status unmap_rest(RestoreContext& ctx) {
  sys::RemoteBatch b = ctx.batch();
  CR_TRY(queue_unmap_rest(ctx, b));
  return b.run();
}

Status move_vdso_and_unmap_rest(RestoreContext& ctx) {
  sys::RemoteBatch b = ctx.batch();
  std::vector<Expect> expects;
  CR_TRY(queue_vdso_moves(ctx, b, expects));
  CR_TRY(queue_unmap_rest(ctx, b));
  CR_TRY(b.run());
  return check_expected(b, expects);
}

// A SysV attach: the whole segment at the first Vma's address (pgoff 0); the Vmas after it that
// continue the same attach (split by mprotect) are covered by it. Read-write (initial_prot), so
// that the protections pass can give each piece its dumped protection, exec included.
Status attach_sysv(RestoreContext& ctx, sys::RemoteBatch& b, const schema::Vma& v) {
  if (v.pgoff != 0) return {};  // crdump checked that it continues the attach before it
  const auto& ids = ctx.ipc->shmids();
  const auto it = ids.find(v.shmem);
  if (it == ids.end())
    return make_error("vma " + hex(v.start) + ": SysV segment object " + std::to_string(v.shmem) +
                      " is not in the image");
  CR_TRY(b.run());  // what is queued goes first
  CR_TRY_ASSIGN(uint64_t at, ctx.call("shmat", SYS_shmat, it->second, v.start, 0));
  if (at != v.start)
    return make_error("SysV segment " + std::to_string(it->second) + " attached at " + hex(at) +
                      " instead of " + hex(v.start));
  return apply_madvise(b, v);
}

// The fd a shared memory mapping is made through, opened by single remote calls (the batch
// has run): crrestore's object, as the task may open it.
Result<int64_t> open_shmem(RestoreContext& ctx, const schema::Vma& v) {
  const auto* shmems = ctx.shmems;
  if (shmems == nullptr || shmems->count(v.shmem) == 0)
    return make_error("vma " + hex(v.start) + ": shmem " + std::to_string(v.shmem) +
                      " is not in the image");
  const ShmemHandle& h = shmems->find(v.shmem)->second;
  const bool shared = v.kind == schema::kVmaAnonShared;
  // Read-only where a writable open would stand in the way: a private mapping needs no
  // write access to the file, and a memfd sealed against writes cannot take its seal while
  // a shared mapping that may become writable exists (the kernel gave the dumped one no
  // VM_MAYWRITE for the same reason).
  const bool write_sealed = (h.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0;
  // The dumped open mode when the image has it: a memfd mapped through an O_RDWR fd is
  // mapped through crrestore's O_RDWR description again (a read-only shared mapping of a
  // write-sealed one keeps VM_SHARED: F_SEAL_WRITE went on when its contents were in,
  // shmem.cc, so the kernel drops only VM_MAYWRITE, as it did for the dumped one).
  const bool known = v.file_open_mode != 0 && h.kind == schema::kShmemMemfd;
  const bool rdonly = known ? (v.file_open_mode & S_IWUSR) == 0
                            : !shared || (write_sealed && (v.prot & PROT_WRITE) == 0);
  ctx.reset_scratch();
  // The task takes a copy of crrestore's description (its real uid is still root's, which
  // pidfd_getfd asks for); a user's process could not open /proc/<crrestore>/fd/N with
  // its own fs identity, but reopens its own copy through /proc/self as itself.
  CR_TRY_ASSIGN(int64_t fd, memfd_created_description(ctx, h.fd.get()));
  if (rdonly || h.kind != schema::kShmemMemfd) {
    // A writable reopen of a memfd would count as a writer for as long as the mapping
    // lives, and exec refuses a file with writers (ETXTBSY); memfd_create's description
    // does not count, so a writable memfd mapping keeps the copy itself.
    const std::string via = "/proc/self/fd/" + std::to_string(fd);
    CR_TRY_ASSIGN(uint64_t path, ctx.put_str(via));
    auto got = ctx.call("open shared memory", SYS_openat, static_cast<uint64_t>(AT_FDCWD), path,
                        (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    auto closed = ctx.call("close", SYS_close, static_cast<uint64_t>(fd));
    if (!got.ok()) return std::move(got).error().wrap("vma " + hex(v.start));
    if (!closed.ok()) return std::move(closed).error();
    fd = static_cast<int64_t>(*got);
  }
  return fd;
}

Status map_vmas(RestoreContext& ctx) {
  // Every call goes into one batch (a few, for many mappings): a mapping's calls need no
  // answer before the next mapping's. The few that do (shared memory, SysV, the vDSO's
  // jumps) run the batch first and go on by single calls.
  sys::RemoteBatch b = ctx.batch();
  std::vector<Expect> expects;
  // Consecutive VMAs of one file (a library's segments) share one remote open: either a call
  // of the batch (its result is the fd) or an fd opened by single calls.
  struct Open {
    bool valid = false;
    std::string path;
    bool shared = false;
    bool rw = false;
    bool queued = false;  // the fd is the result of batch call `call`
    size_t call = 0;
    int64_t fd = -1;
  } open;
  // Queues `nr` with `args`; the fd of the open file, if `fd_arg` >= 0, as that argument.
  auto queue = [&](const char* name, long nr, std::array<uint64_t, 6> args, std::string what,
                   int fd_arg = -1) -> Result<size_t> {
    CR_TRY(b.reserve(1, 0));
    if (fd_arg >= 0 && !open.queued) args[fd_arg] = static_cast<uint64_t>(open.fd);
    CR_TRY_ASSIGN(size_t c, b.add(name, nr, args, std::move(what)));
    if (fd_arg >= 0 && open.queued) CR_TRY(b.use_result(c, fd_arg, open.call));
    return c;
  };
  auto close_open = [&]() -> Status {
    if (!open.valid) return {};
    CR_TRY(queue("close", SYS_close, {0, 0, 0, 0, 0, 0}, {}, 0));
    open.valid = false;
    return {};
  };
  for (const auto& v : ctx.img.vmas) {
    if (v.kind == schema::kVmaVdso && ctx.vdso != nullptr && ctx.vdso->proxy) {
      CR_TRY(close_open());
      CR_TRY(b.run());
      CR_TRY(map_vdso_stubs(ctx, v));
      continue;
    }
    if (vdso_name(v.kind) != nullptr) continue;
    const uint64_t len = v.end - v.start;
    const std::string where = "vma " + hex(v.start) + "-" + hex(v.end);
    if (const PremapSlot* s =
            ctx.premap ? ctx.premap->find(static_cast<uint32_t>(ctx.pid()), v.start) : nullptr) {
      // Its memory is in place already (premap.cc), shared with the parent where it was.
      const uint64_t in_slot = s->end - s->start;
      if (in_slot == 0 || in_slot > len) return make_error("vma " + hex(v.start) + ": bad slot");
      CR_TRY_ASSIGN(
          size_t c,
          queue("mremap premap slot", SYS_mremap,
                {s->slot, in_slot, in_slot, MREMAP_MAYMOVE | MREMAP_FIXED, v.start, 0}, where));
      expects.push_back({c, v.start, "vma " + hex(v.start) + " moved to "});
      if (in_slot < len) {
        // Grown past the parent's mapping since the fork: the rest is new memory, one mapping
        // with the moved part again (nothing in it yet, so the kernel merges them).
        CR_TRY(queue("mmap", SYS_mmap,
                     {v.start + in_slot, len - in_slot, initial_prot(v),
                      MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, static_cast<uint64_t>(-1), 0},
                     "vma " + hex(v.start + in_slot)));
      }
      CR_TRY(install_guards(b, v));
      CR_TRY(apply_madvise(b, v));
      continue;
    }
    uint64_t flags = MAP_FIXED;
    bool with_fd = false;
    if (v.kind == schema::kVmaFilePrivate || v.kind == schema::kVmaFileShared) {
      const bool shared = v.kind == schema::kVmaFileShared;
      // The dumped open mode when the image has it (a private mapping of a file opened
      // O_RDWR stays so); else a shared mapping keeps the right to become writable only if
      // the file is open for writing: try that first, read-only files still map.
      const bool known = v.file_open_mode != 0;
      const bool rw = known ? (v.file_open_mode & S_IWUSR) != 0 : shared;
      if (!open.valid || open.path != v.path || open.shared != shared || open.rw != rw) {
        CR_TRY(close_open());
        // O_NOFOLLOW: /proc showed the resolved path; a symlink there now was swapped in.
        const uint64_t mode = (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW;
        if (shared && !known) {
          // Its fallback depends on the answer: single calls.
          CR_TRY(b.run());
          ctx.reset_scratch();
          CR_TRY_ASSIGN(uint64_t path, ctx.put_str(v.path));
          CR_TRY_ASSIGN(int64_t got, ctx.remote->call_raw(
                                         SYS_openat, static_cast<uint64_t>(AT_FDCWD), path, mode));
          if (got < 0) {
            CR_TRY_ASSIGN(got, ctx.remote->call_raw(SYS_openat, static_cast<uint64_t>(AT_FDCWD),
                                                    path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
          }
          if (got < 0)
            return make_error("remote open " + v.path + ": " +
                              std::strerror(static_cast<int>(-got)));
          open.queued = false;
          open.fd = got;
        } else {
          CR_TRY(b.reserve(1, v.path.size() + 1));
          CR_TRY_ASSIGN(uint64_t path, b.put_str(v.path));
          CR_TRY_ASSIGN(open.call,
                        b.add("open", SYS_openat,
                              {static_cast<uint64_t>(AT_FDCWD), path, mode, 0, 0, 0}, v.path));
          open.queued = true;
        }
        open.valid = true;
        open.path = v.path;
        open.shared = shared;
        open.rw = rw;
      }
      with_fd = true;
      flags |= shared ? MAP_SHARED : MAP_PRIVATE;
    } else if (v.kind == schema::kVmaAnonShared || v.kind == schema::kVmaShmemPrivate) {
      // The object crrestore built, opened through its own fd table by single calls.
      CR_TRY(close_open());
      CR_TRY(b.run());
      CR_TRY_ASSIGN(open.fd, open_shmem(ctx, v));
      open.valid = true;
      open.queued = false;
      open.path = "shmem " + std::to_string(v.shmem);
      open.shared = v.kind == schema::kVmaAnonShared;
      open.rw = false;
      with_fd = true;
      flags |= v.kind == schema::kVmaAnonShared ? MAP_SHARED : MAP_PRIVATE;
    } else if (v.kind == schema::kVmaSysvShm) {
      CR_TRY(close_open());
      CR_TRY(attach_sysv(ctx, b, v));
      continue;
    } else if (v.kind == schema::kVmaDroppable) {
      flags |= kMapDroppable | MAP_ANONYMOUS;
    } else {
      flags |= MAP_PRIVATE | MAP_ANONYMOUS;
      if (v.kind == schema::kVmaStack || (v.flags & MAP_GROWSDOWN) != 0) flags |= MAP_GROWSDOWN;
    }
    CR_TRY_ASSIGN(size_t c, queue("mmap", SYS_mmap,
                                  {v.start, len, initial_prot(v), flags, static_cast<uint64_t>(-1),
                                   with_fd ? v.pgoff * 4096 : 0},
                                  where + (v.path.empty() ? "" : " " + v.path), with_fd ? 4 : -1));
    expects.push_back({c, v.start, "vma " + hex(v.start) + " mapped at "});
    CR_TRY(install_guards(b, v));
    CR_TRY(apply_madvise(b, v));
  }
  CR_TRY(close_open());
  CR_TRY(b.run());
  return check_expected(b, expects);
}

namespace {

// Pages the process shared copy-on-write with its parent: the parent's section came first, so
// its memory holds them, restored. Read through /proc/PID/mem (it reads unreadable mappings
// too), written into ours.
class ParentPages {
 public:
  Status copy(RestoreContext& ctx, const schema::PagesParent& p) {
    const auto& proc = *ctx.img.process;
    if ((proc.flags & schema::kProcessParentPages) == 0)
      return make_error("pages of the parent at " + hex(p.vaddr) + " in pid " +
                        std::to_string(proc.pid) + ", not flagged to have any");
    if (p.pid != proc.pid || p.npages == 0 || p.npages > (uint64_t{1} << 36))
      return make_error("pages of the parent at " + hex(p.vaddr) + ": malformed run");
    if (p.prefork != 0) {
      // Shared with its siblings, not its parent's memory now: the parent's PagesPrefork.
      if (buf_.size() < kChunk) buf_.resize(kChunk);
      for (uint64_t done = 0; done < p.npages * 4096;) {
        const uint64_t n = std::min<uint64_t>(p.npages * 4096 - done, kChunk);
        CR_TRY(ctx.prefork->read(proc.ppid, p.vaddr + done, n, buf_.data()));
        CR_TRY(ctx.tracee.write_mem(p.vaddr + done, buf_.data(), n));
        done += n;
      }
      return {};
    }
    if (!mem_.valid()) {
      const std::string path = "/proc/" + std::to_string(proc.ppid) + "/mem";
      mem_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!mem_.valid()) return errno_error("open " + path);
      buf_.resize(kChunk);
    }
    const std::string what = "read parent " + std::to_string(proc.ppid) + "'s memory";
    for (uint64_t done = 0; done < p.npages * 4096;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(p.npages * 4096 - done, kChunk));
      CR_TRY(pread_full(mem_.get(), buf_.data(), n, p.vaddr + done, what));
      CR_TRY(ctx.tracee.write_mem(p.vaddr + done, buf_.data(), n));
      done += n;
    }
    return {};
  }

 private:
  static constexpr size_t kChunk = 1u << 20;
  ScopedFd mem_;
  std::vector<uint8_t> buf_;
};

}  // namespace

// A hold token for data that outlives the restore's page pass (the precopy store's).
const std::shared_ptr<const void> kStoreHold = std::make_shared<int>(0);

Status stream_pages(RestoreContext& ctx) {
  auto& reader = *ctx.reader;
  const auto& vmas = ctx.img.vmas;
  size_t hint = 0;
  auto t0 = std::chrono::steady_clock::now();
  ParentPages parent;
  if (ctx.preloaded) {
    // Read while the tree was created (premap.cc): what did not go into a slot.
    for (const auto& p : ctx.pending_parent) CR_TRY(parent.copy(ctx, p));
    for (const auto& [addr, bytes] : ctx.pending_pages)
      CR_TRY(ctx.tracee.write_mem(addr, bytes.data(), bytes.size()));
    // Its children are forked: what it held only for them (anonymous memory) goes.
    CR_TRY(drop_pages(*ctx.remote, ctx.pid(), ctx.pending_drop, true));
    ctx.pending_parent.clear();
    ctx.pending_pages.clear();
    ctx.pending_drop.clear();
    ctx.pages_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return {};
  }
  UffdPages uffd = UffdPages::start(ctx);
  bool more = true;
  while (more) {
    if (reader.type() == schema::Mm::kType) break;  // the next process's section
    if (reader.type() == schema::PagesPrefork::kType) {
      // Kept for its children (it has its own pages there).
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesPrefork>());
      auto tail = reader.tail();
      if (p.pid != ctx.img.process->pid || tail.size() != uint64_t{p.npages} * 4096 ||
          p.npages == 0)
        return make_error("prefork pages at " + hex(p.vaddr) + ": malformed run");
      CR_TRY_ASSIGN(hint, check_pages(vmas, p.vaddr, tail.size(), hint));
      ctx.prefork->add(p.pid, p.vaddr, tail);
    } else if (reader.type() == schema::PagesParent::kType) {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesParent>());
      if (p.npages > (uint64_t{1} << 36))
        return make_error("pages of the parent at " + hex(p.vaddr) + ": malformed run");
      CR_TRY_ASSIGN(hint, check_pages(vmas, p.vaddr, p.npages * 4096, hint));
      if (vdso_name(vmas[hint].kind) != nullptr)
        return make_error("pages of the parent at " + hex(p.vaddr) + " in the vdso");
      CR_TRY(parent.copy(ctx, p));
      ctx.page_bytes += p.npages * 4096;
    } else if (reader.type() == schema::PagesPrecopied::kType) {
      // Their contents came before the head (crdump --pre-copy), kept in the store.
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PagesPrecopied>());
      if ((ctx.img.process->flags & schema::kProcessPrecopied) == 0 ||
          p.pid != ctx.img.process->pid || p.npages == 0 || p.npages > (uint64_t{1} << 36))
        return make_error("pages_precopied at " + hex(p.vaddr) + " out of place");
      CR_TRY_ASSIGN(hint, check_pages(vmas, p.vaddr, p.npages * 4096, hint));
      if (vdso_name(vmas[hint].kind) != nullptr)
        return make_error("pages_precopied at " + hex(p.vaddr) + " in the vdso");
      // The store's memory lives as long as the restore: the copier may take it as it is. A
      // record read back from the file is held by its buffer.
      CR_TRY(ctx.precopy->each_run(
          p.pid, p.vaddr, p.npages,
          [&](uint64_t a, const uint8_t* d, uint64_t n,
              const std::shared_ptr<const void>& hold) -> Status {
            if (uffd.active()) return uffd.place(ctx, a, d, n, hold ? hold : kStoreHold, !hold);
            return ctx.tracee.write_mem(a, d, n);
          }));
      ctx.page_bytes += p.npages * 4096;
      if (ctx.opts.on_progress) ctx.opts.on_progress(ctx.page_bytes);
    } else if (reader.type() == schema::Pages::kType) {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::Pages>());
      const uint64_t len = uint64_t{p.npages} * 4096;
      // From a file the bytes stay there: the copier threads read (and check) them, or with
      // --lazy the pager when they are wanted.
      if (auto d = reader.deferred_tail()) {
        if (d->len == len && p.npages != 0) {
          CR_TRY_ASSIGN(size_t at, check_pages(vmas, p.vaddr, len, hint));
          bool taken = false;
          if (vdso_name(vmas[at].kind) == nullptr) {
            CR_TRY_ASSIGN(taken, uffd.place_from_file(ctx, p.vaddr, *d));
          }
          if (taken) {
            hint = at;
            ctx.page_bytes += len;
            if (ctx.opts.on_progress) ctx.opts.on_progress(ctx.page_bytes);
            CR_TRY_ASSIGN(more, reader.next());
            continue;
          }
        }
        CR_TRY(reader.load_tail());
      }
      auto tail = reader.tail();
      if (tail.size() != len)
        return make_error("pages at " + hex(p.vaddr) + ": " + std::to_string(tail.size()) +
                          " bytes for " + std::to_string(p.npages) + " pages");
      CR_TRY_ASSIGN(hint, check_pages(vmas, p.vaddr, len, hint));
      if (vdso_name(vmas[hint].kind) == nullptr) {
        // Into a VMA mapped writable above; one copy from the reader's buffer (held for the
        // copier thread while the next records are read).
        if (uffd.active())
          CR_TRY(uffd.place(ctx, p.vaddr, tail.data(), tail.size(), reader.hold()));
        else
          CR_TRY(ctx.tracee.write_mem(p.vaddr, tail.data(), tail.size()));
        ctx.page_bytes += len;
        if (ctx.opts.on_progress) ctx.opts.on_progress(ctx.page_bytes);
      }
    } else {
      auto st = stash_tail_record(reader, ctx.img);
      if (!st.ok()) return std::move(st).error().wrap("offset " + std::to_string(reader.offset()));
    }
    CR_TRY_ASSIGN(more, reader.next());
  }
  CR_TRY(uffd.finish());
  ctx.stream_ended = !more;
  ctx.pages_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return check_threads(ctx.img);
}

Status set_protections(RestoreContext& ctx) {
  sys::RemoteBatch b = ctx.batch();
  for (const auto& v : ctx.img.vmas) {
    if (vdso_name(v.kind) != nullptr || initial_prot(v) == v.prot) continue;
    CR_TRY(b.reserve(1, 0));
    CR_TRY(b.add("mprotect", SYS_mprotect, {v.start, v.end - v.start, v.prot, 0, 0, 0},
                 "vma " + hex(v.start)));
  }
  return b.run();
}

Status set_mm(RestoreContext& ctx) {
  const auto& mm = *ctx.img.mm;
  ctx.reset_scratch();
  prctl_mm_map map{};
  map.start_code = mm.start_code;
  map.end_code = mm.end_code;
  map.start_data = mm.start_data;
  map.end_data = mm.end_data;
  map.start_brk = mm.start_brk;
  map.brk = mm.brk;
  map.start_stack = mm.start_stack;
  map.arg_start = mm.arg_start;
  map.arg_end = mm.arg_end;
  map.env_start = mm.env_start;
  map.env_end = mm.env_end;
  map.exe_fd = ~0u;
  std::vector<uint64_t> auxv_words = mm.auxv;
  if (ctx.vdso != nullptr && ctx.vdso->proxy) {
    CR_TRY(check_threads_outside_vdso(ctx));
    // The dumped address holds only jumps now: whoever looks for the vDSO's ELF image (a
    // dynamic loader, a runtime) finds this kernel's.
    for (size_t i = 0; i + 1 < auxv_words.size(); i += 2)
      if (auxv_words[i] == AT_SYSINFO_EHDR) auxv_words[i + 1] = ctx.vdso_base;
  }
  if (!auxv_words.empty()) {
    CR_TRY_ASSIGN(uint64_t auxv, ctx.put(auxv_words.data(), auxv_words.size() * sizeof(uint64_t)));
    map.auxv = reinterpret_cast<__u64*>(auxv);
    map.auxv_size = static_cast<uint32_t>(auxv_words.size() * sizeof(uint64_t));
  }
  int64_t exe_fd = -1;
  if (!mm.exe_path.empty()) {
    CR_TRY_ASSIGN(uint64_t path, ctx.put_str(mm.exe_path));
    auto r = ctx.call("open executable", SYS_openat, static_cast<uint64_t>(AT_FDCWD), path,
                      O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (!r.ok()) return std::move(r).error().wrap(mm.exe_path);
    exe_fd = static_cast<int64_t>(*r);
    map.exe_fd = static_cast<uint32_t>(exe_fd);
  }
  CR_TRY_ASSIGN(uint64_t map_addr, ctx.put(&map, sizeof map));
  // The map and the close of the executable in one batch (the close runs whatever the map's
  // answer: the batch stops at a failed map only after the close, which may fail).
  sys::RemoteBatch b = ctx.batch();
  CR_TRY_ASSIGN(size_t set, b.add("prctl(PR_SET_MM_MAP)", SYS_prctl,
                                  {PR_SET_MM, PR_SET_MM_MAP, map_addr, sizeof map, 0, 0}, {},
                                  sys::RemoteBatch::kMayFail));
  if (exe_fd >= 0)
    CR_TRY(b.add("close", SYS_close, {static_cast<uint64_t>(exe_fd), 0, 0, 0, 0, 0}, {},
                 sys::RemoteBatch::kMayFail));
  CR_TRY(b.run());
  const int64_t r = b.result(set);
  if (r < 0 && r > -4096)
    return Error{"remote prctl(PR_SET_MM_MAP) in task " + std::to_string(ctx.tracee.tid()) + ": " +
                     std::strerror(static_cast<int>(-r)),
                 static_cast<int>(-r)};
  return {};
}

}  // namespace cr::restore
