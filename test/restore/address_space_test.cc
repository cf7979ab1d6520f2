// Live tests of the remote address-space passes on a forked stub child (no crdump needed):
// trampoline placement, vDSO moves onto overlapping targets, unmapping, mapping VMAs and
// putting their protections back.
#include "restore/address_space.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "restore/trampoline.h"

namespace cr::restore {
namespace {

struct Stub {
  RestoreContext ctx;

  // A child that stops for us at once, like the restore's own child does.
  void start() {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      sys::Tracee::traceme_and_stop();
      ::_exit(0);
    }
    ctx.child = ChildGuard(pid);
    auto t = sys::Tracee::adopt_stopped_child(pid, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL);
    ASSERT_TRUE(t.ok()) << t.error().message;
    ctx.tracee = std::move(t).value();
    ctx.img.process = schema::Process{};
    ctx.img.process->pid = static_cast<uint32_t>(pid);
  }

  std::vector<MapsEntry> maps() {
    auto m = read_task_maps(ctx.tracee.tid());
    EXPECT_TRUE(m.ok());
    return m.ok() ? *m : std::vector<MapsEntry>{};
  }

  const MapsEntry* find(const std::vector<MapsEntry>& m, const std::string& name) {
    for (const auto& e : m)
      if (e.name == name) return &e;
    return nullptr;
  }
};

schema::Vma vma(uint64_t start, uint64_t end, uint32_t kind, uint32_t prot) {
  schema::Vma v{};
  v.start = start;
  v.end = end;
  v.kind = kind;
  v.prot = prot;
  v.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  return v;
}

TEST(AddressSpace, VdsoMovesOntoOverlappingTargetsThenEverythingElseGoes) {
  Stub s;
  ASSERT_NO_FATAL_FAILURE(s.start());
  auto before = s.maps();
  const MapsEntry* vvar = s.find(before, "[vvar]");
  const MapsEntry* vclock = s.find(before, "[vvar_vclock]");
  const MapsEntry* vdso = s.find(before, "[vdso]");
  ASSERT_TRUE(vvar && vdso) << "no vDSO in the child";
  // Every piece shifts up by two pages: each target overlaps its own or a neighbour's source,
  // which needs the planner's ordering and a temporary for the self-overlapping [vvar].
  const uint64_t shift = 2 * 4096;
  s.ctx.img.vmas.push_back(
      vma(vvar->range.start + shift, vvar->range.end + shift, schema::kVmaVvar, PROT_READ));
  if (vclock != nullptr)
    s.ctx.img.vmas.push_back(vma(vclock->range.start + shift, vclock->range.end + shift,
                                 schema::kVmaVvarVclock, PROT_READ));
  s.ctx.img.vmas.push_back(vma(vdso->range.start + shift, vdso->range.end + shift, schema::kVmaVdso,
                               PROT_READ | PROT_EXEC));
  // And one anonymous VMA far away that the restore maps.
  const uint64_t anon = 0x500000000000ull;
  s.ctx.img.vmas.push_back(vma(anon, anon + 4 * 4096, schema::kVmaAnon, PROT_READ));
  std::sort(s.ctx.img.vmas.begin(), s.ctx.img.vmas.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });

  ASSERT_TRUE(setup_trampoline(s.ctx).ok());
  uint8_t insn[2] = {};
  ASSERT_TRUE(s.ctx.tracee.read_mem(s.ctx.tramp.addr, insn, 2).ok());
  EXPECT_EQ(insn[0], 0x0f);
  EXPECT_EQ(insn[1], 0x05);

  auto st = move_vdso(s.ctx);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto moved = s.maps();
  EXPECT_EQ(s.find(moved, "[vvar]")->range.start, vvar->range.start + shift);
  EXPECT_EQ(s.find(moved, "[vdso]")->range.start, vdso->range.start + shift);
  if (vclock != nullptr) {
    EXPECT_EQ(s.find(moved, "[vvar_vclock]")->range.start, vclock->range.start + shift);
  }

  st = unmap_rest(s.ctx);
  ASSERT_TRUE(st.ok()) << st.error().message;
  for (const auto& e : s.maps()) {
    const bool tramp = e.range.start == s.ctx.tramp.addr;
    const bool kernel = e.name == "[vvar]" || e.name == "[vvar_vclock]" || e.name == "[vdso]" ||
                        e.name == "[vsyscall]";
    EXPECT_TRUE(tramp || kernel) << "left mapped: " << e.name << " at " << std::hex
                                 << e.range.start;
  }

  st = map_vmas(s.ctx);
  ASSERT_TRUE(st.ok()) << st.error().message;
  // Mapped writable for its pages, read-only once they are in.
  const char data[] = "restored page";
  ASSERT_TRUE(s.ctx.tracee.write_mem(anon + 4096, data, sizeof data).ok());
  ASSERT_TRUE(set_protections(s.ctx).ok());
  char back[sizeof data] = {};
  ASSERT_TRUE(s.ctx.tracee.read_mem(anon + 4096, back, sizeof back).ok());
  EXPECT_STREQ(back, data);
  EXPECT_FALSE(s.ctx.tracee.write_mem(anon + 4096, data, sizeof data).ok())
      << "process_vm_writev into a read-only VMA should fail after set_protections";
}

TEST(AddressSpace, VdsoOfAnotherSizeIsRefused) {
  Stub s;
  ASSERT_NO_FATAL_FAILURE(s.start());
  auto before = s.maps();
  const MapsEntry* vdso = s.find(before, "[vdso]");
  ASSERT_NE(vdso, nullptr);
  s.ctx.img.vmas.push_back(vma(0x600000000000ull, 0x600000000000ull + vdso->range.size() + 4096,
                               schema::kVmaVdso, PROT_READ | PROT_EXEC));
  ASSERT_TRUE(setup_trampoline(s.ctx).ok());
  auto st = move_vdso(s.ctx);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("vdso layout differs from the dump"), std::string::npos)
      << st.error().message;
}

}  // namespace
}  // namespace cr::restore
