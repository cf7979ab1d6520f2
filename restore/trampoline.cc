#include "restore/trampoline.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "sys/proc_parse.h"

// `syscall; ret` at a global label in our text. The ret is never reached by remote calls
// (they stop at syscall exit), it only makes the label a well-formed function.
asm(R"(
  .text
  .globl cr_restore_syscall_insn
  .type cr_restore_syscall_insn, @function
cr_restore_syscall_insn:
  syscall
  ret
  .size cr_restore_syscall_insn, .-cr_restore_syscall_insn
)");
extern "C" char cr_restore_syscall_insn[];

namespace cr::restore {

namespace {
constexpr uint64_t kTrampolineSize = Trampoline::kSize;
static_assert(Trampoline::kScratchEnd <= Trampoline::kBatchOffset &&
              Trampoline::kBatchOffset < Trampoline::kSize);
}  // namespace

uint64_t own_syscall_insn() { return reinterpret_cast<uint64_t>(&cr_restore_syscall_insn[0]); }

Result<std::vector<MapsEntry>> read_task_maps(pid_t pid) {
  CR_TRY_ASSIGN(sys::ProcDir proc, sys::ProcDir::open(pid));
  CR_TRY_ASSIGN(std::string text, proc.read("maps"));
  CR_TRY_ASSIGN(std::vector<sys::MapEntry> maps, sys::parse_maps(text));
  std::vector<MapsEntry> out;
  out.reserve(maps.size());
  for (auto& m : maps) out.push_back(MapsEntry{Range{m.start, m.end}, std::move(m.path)});
  return out;
}

Result<uint64_t> RestoreContext::put(const void* data, size_t len) {
  const uint64_t off = Trampoline::kScratchOffset + ((tramp.used + 15) & ~uint64_t{15});
  if (off + len > Trampoline::kScratchEnd)
    return make_error("trampoline scratch full (" + std::to_string(len) + " bytes asked)");
  CR_TRY(tracee.write_mem(tramp.addr + off, data, len));
  tramp.used = off + len - Trampoline::kScratchOffset;
  return tramp.addr + off;
}

Status setup_trampoline(RestoreContext& ctx) {
  CR_TRY_ASSIGN(auto rs, sys::RemoteSyscalls::create(ctx.tracee, own_syscall_insn()));
  ctx.remote.emplace(std::move(rs));
  CR_TRY_ASSIGN(auto maps, read_task_maps(ctx.tracee.tid()));
  std::vector<Range> current, dumped;
  for (const auto& m : maps) current.push_back(m.range);
  for (const auto& v : ctx.img.vmas) dumped.push_back({v.start, v.end});
  // Keep clear of the stack's growth area below the dumped stack too.
  for (const auto& v : ctx.img.vmas)
    if (v.kind == schema::kVmaStack)
      dumped.push_back({v.start > (8u << 20) ? v.start - (8u << 20) : 0, v.start});
  CR_TRY_ASSIGN(uint64_t addr, choose_free_range(current, dumped, kTrampolineSize));
  CR_TRY_ASSIGN(uint64_t got,
                ctx.call("mmap trampoline", SYS_mmap, addr, kTrampolineSize,
                         PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, ~uint64_t{0}, 0));
  if (got != addr) return make_error("trampoline mapped at the wrong address");
  ctx.tramp = Trampoline{addr, kTrampolineSize, 0};
  const uint8_t insn[2] = {0x0f, 0x05};
  CR_TRY(ctx.tracee.write_mem(addr, insn, sizeof insn));
  const auto code = sys::batch_code();
  if (Trampoline::kBatchCodeOffset + code.size() > Trampoline::kScratchOffset)
    return make_error("remote batch code does not fit the trampoline");
  CR_TRY(ctx.tracee.write_mem(addr + Trampoline::kBatchCodeOffset, code.data(), code.size()));
  ctx.remote->set_syscall_insn(addr);
  ctx.start_maps = std::move(maps);
  return {};
}

Status remove_trampoline(RestoreContext& ctx) {
  auto r = ctx.call("munmap trampoline", SYS_munmap, ctx.tramp.addr, ctx.tramp.size);
  if (!r.ok()) return std::move(r).error();
  return {};
}

}  // namespace cr::restore
