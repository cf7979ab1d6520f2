#include "restore/vdso.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include <algorithm>
#include <map>

#include "common/text.h"
#include "format/crc32c.h"
#include "restore/context.h"
#include "sys/vdso.h"

namespace cr::restore {

Result<VdsoPlan> plan_vdso(const std::optional<schema::Vdso>& dumped,
                           const std::string& dumped_release, std::span<const uint8_t> own,
                           const std::string& release) {
  VdsoPlan plan;
  if (!dumped) {
    if (dumped_release == release) return plan;
    return make_error("the image was written on kernel " + dumped_release + " by a crdump that " +
                      "did not record its vDSO, whose code may differ on this kernel (" +
                      release + "): restore it on " + dumped_release +
                      ", or dump the program again with this crdump");
  }
  if (own.size() == dumped->size && format::crc32c(own.data(), own.size()) == dumped->crc)
    return plan;
  if (own.empty()) return make_error("the image has a vDSO and this kernel gives none");
  CR_TRY_ASSIGN(auto ours, sys::vdso_functions(own));
  std::map<std::string, uint64_t> by_name;
  for (const auto& f : ours) by_name.emplace(f.name, f.offset);
  plan.proxy = true;
  plan.dumped_size = dumped->size;
  if (plan.dumped_size == 0 || plan.dumped_size > (1u << 20) || plan.dumped_size % 4096 != 0)
    return make_error("vdso record: size " + std::to_string(plan.dumped_size));
  std::vector<std::string> names;
  for (size_t at = 0; at <= dumped->names.size();) {
    size_t nl = dumped->names.find('\n', at);
    if (nl == std::string::npos) nl = dumped->names.size();
    names.push_back(dumped->names.substr(at, nl - at));
    at = nl + 1;
  }
  if (dumped->names.empty()) names.clear();
  if (names.size() != dumped->offsets.size())
    return make_error("vdso record: " + std::to_string(names.size()) + " names for " +
                      std::to_string(dumped->offsets.size()) + " offsets");
  for (size_t i = 0; i < names.size(); ++i) {
    const auto it = by_name.find(names[i]);
    if (it == by_name.end())
      return make_error("the dumped vDSO's " + names[i] + " does not exist on this kernel (" +
                        release + ")");
    if (dumped->offsets[i] > plan.dumped_size - sys::kJumpSize)
      return make_error("vdso record: " + names[i] + " at " + hex(dumped->offsets[i]) +
                        " leaves no room for a jump");
    plan.stubs.push_back({dumped->offsets[i], it->second});
  }
  std::sort(plan.stubs.begin(), plan.stubs.end(),
            [](const auto& a, const auto& b) { return a.dumped_offset < b.dumped_offset; });
  std::vector<VdsoPlan::Stub> unique;
  for (const auto& s : plan.stubs) {
    if (!unique.empty() && unique.back().dumped_offset == s.dumped_offset) {
      // Aliases (clock_gettime, __vdso_clock_gettime): one function, one stub.
      if (unique.back().own_offset != s.own_offset)
        return make_error("vdso: the dumped function at " + hex(s.dumped_offset) +
                          " is two different functions here");
      continue;
    }
    if (!unique.empty() && s.dumped_offset - unique.back().dumped_offset < sys::kJumpSize)
      return make_error("vdso: dumped functions at " + hex(unique.back().dumped_offset) + " and " +
                        hex(s.dumped_offset) + " are too close for a jump each");
    unique.push_back(s);
  }
  plan.stubs = std::move(unique);
  return plan;
}

Result<VdsoPlan> plan_vdso_here(const TreeHead& head) {
  CR_TRY_ASSIGN(auto own, sys::own_vdso());
  utsname u{};
  if (::uname(&u) != 0) return errno_error("uname");
  return plan_vdso(head.vdso, head.kernel_release, own, u.release);
}

Status map_vdso_stubs(RestoreContext& ctx, const schema::Vma& v) {
  const VdsoPlan& plan = *ctx.vdso;
  if (v.end - v.start != plan.dumped_size)
    return make_error("vdso " + hex(v.start) + ": " + std::to_string((v.end - v.start) / 4096) +
                      " pages, its record says " + std::to_string(plan.dumped_size / 4096));
  auto r = ctx.call("mmap vdso jumps", SYS_mmap, v.start, plan.dumped_size,
                    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                    static_cast<uint64_t>(-1), 0);
  if (!r.ok()) return std::move(r).error().wrap("vdso " + hex(v.start));
  if (*r != v.start) return make_error("vdso jumps mapped at " + hex(*r));
  std::vector<uint8_t> page(plan.dumped_size, 0xcc);  // int3 anywhere but a function's start
  for (const auto& s : plan.stubs)
    sys::encode_jump(ctx.vdso_base + s.own_offset, page.data() + s.dumped_offset);
  CR_TRY(ctx.tracee.write_mem(v.start, page.data(), page.size()));
  auto p = ctx.call("mprotect vdso jumps", SYS_mprotect, v.start, plan.dumped_size,
                    PROT_READ | PROT_EXEC);
  if (!p.ok()) return std::move(p).error().wrap("vdso " + hex(v.start));
  return {};
}

Status check_threads_outside_vdso(const RestoreContext& ctx) {
  const VdsoPlan& plan = *ctx.vdso;
  for (const auto& v : ctx.img.vmas) {
    if (v.kind != schema::kVmaVdso) continue;
    for (const auto& t : ctx.img.threads) {
      constexpr size_t kRip = 16;  // user_regs_struct
      if (t.regs.size() <= kRip) continue;
      const uint64_t ip = t.regs[kRip];
      if (ip < v.start || ip >= v.end) continue;
      const bool at_stub = std::any_of(plan.stubs.begin(), plan.stubs.end(), [&](const auto& s) {
        return v.start + s.dumped_offset == ip;
      });
      if (!at_stub)
        return make_error("thread " + std::to_string(t.tid) + " was inside the vDSO (at " +
                          hex(ip) + "), whose code differs on this kernel: not supported");
    }
  }
  return {};
}

}  // namespace cr::restore
