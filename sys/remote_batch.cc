#include "sys/remote_batch.h"

#include <cstring>

// The loop (see remote_batch.h). At entry: rbx the first entry, r12 the number of entries, r13
// the first entry again. Each entry: nr at 0, a1..a6 at 8..48, the result stored at 56, flags
// at 64, subst at 72. It uses no stack and nothing of the task's but its entries: it runs while
// the task's own mappings are being torn down and rebuilt.
asm(R"(
  .text
  .globl cr_batch_code_start
  .globl cr_batch_code_end
cr_batch_code_start:
1:
  test %r12, %r12
  jz 4f
  mov 72(%rbx), %rcx        # subst: (slot << 32) | source index
  mov %rcx, %rdx
  shr $32, %rdx
  jz 2f
  mov %ecx, %ecx
  imul $80, %rcx, %rcx
  mov 56(%r13,%rcx), %rax   # the source's result
  mov %rax, (%rbx,%rdx,8)   # into argument slot 1..6
2:
  mov (%rbx), %rax
  mov 8(%rbx), %rdi
  mov 16(%rbx), %rsi
  mov 24(%rbx), %rdx
  mov 32(%rbx), %r10
  mov 40(%rbx), %r8
  mov 48(%rbx), %r9
  syscall
  mov %rax, 56(%rbx)
  cmp $-4095, %rax
  jb 3f                     # not an error
  testq $1, 64(%rbx)        # kMayFail
  jz 4f
3:
  add $80, %rbx
  dec %r12
  jmp 1b
4:
  int3
cr_batch_code_end:
)");
extern "C" const uint8_t cr_batch_code_start[];
extern "C" const uint8_t cr_batch_code_end[];

namespace cr::sys {

namespace {
constexpr uint64_t kAlign = 16;
uint64_t round_up(uint64_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }
}  // namespace

std::span<const uint8_t> batch_code() {
  return {cr_batch_code_start, static_cast<size_t>(cr_batch_code_end - cr_batch_code_start)};
}

RemoteBatch::RemoteBatch(RemoteSyscalls& rs, uint64_t code, uint64_t area, uint64_t area_size)
    : rs_(rs), code_(code), area_(area), size_(area_size & ~(kAlign - 1)) {}

Status RemoteBatch::reserve(size_t calls, size_t bytes) {
  const uint64_t want = (queued_.size() + calls) * kEntrySize + data_.size() + round_up(bytes);
  if (want <= size_) return {};
  CR_TRY(run());
  if (calls * kEntrySize + round_up(bytes) > size_)
    return make_error("remote batch: " + std::to_string(calls) + " calls and " +
                      std::to_string(bytes) + " bytes do not fit in " + std::to_string(size_));
  return {};
}

Result<uint64_t> RemoteBatch::put(const void* data, size_t len) {
  const uint64_t n = round_up(len);
  if (queued_.size() * kEntrySize + data_.size() + n > size_)
    return make_error("remote batch: no room for " + std::to_string(len) + " bytes (reserve)");
  data_.insert(data_.begin(), n, 0);
  std::memcpy(data_.data(), data, len);
  return area_ + size_ - data_.size();
}

Result<size_t> RemoteBatch::add(const char* name, long nr, std::array<uint64_t, 6> args,
                                std::string what, uint64_t flags) {
  if ((queued_.size() + 1) * kEntrySize + data_.size() > size_)
    return make_error(std::string("remote batch: no room for ") + name + " (reserve)");
  Entry e{};
  e.nr = static_cast<uint64_t>(nr);
  std::memcpy(e.args, args.data(), sizeof e.args);
  e.flags = flags;
  queued_.push_back(e);
  meta_.push_back(Meta{name, std::move(what)});
  return size() - 1;
}

Status RemoteBatch::use_result(size_t call, int arg, size_t from) {
  if (arg < 0 || arg > 5 || from >= call || call >= size() || call < results_.size())
    return make_error("remote batch: bad result reference");
  Entry& e = queued_[call - results_.size()];
  if (from < results_.size()) {
    e.args[arg] = static_cast<uint64_t>(results_[from]);  // ran already: its value
  } else {
    e.subst = (static_cast<uint64_t>(arg + 1) << 32) | (from - results_.size());
  }
  return {};
}

Status RemoteBatch::run() {
  if (queued_.empty()) {
    data_.clear();
    return {};
  }
  const size_t first = results_.size();
  const size_t count = queued_.size();
  Tracee& t = rs_.tracee();
  CR_TRY(t.write_mem(area_, queued_.data(), count * kEntrySize));
  if (!data_.empty()) CR_TRY(t.write_mem(area_ + size_ - data_.size(), data_.data(), data_.size()));
  CR_TRY_ASSIGN(size_t done, rs_.run_batch(code_, code_ + batch_code().size(), area_, count));
  // The results of what ran (the failed call's too).
  const size_t ran = done < count ? done + 1 : count;
  std::vector<Entry> back(ran);
  CR_TRY(t.read_mem(area_, back.data(), ran * kEntrySize));
  for (const Entry& e : back) results_.push_back(e.result);
  queued_.clear();
  data_.clear();
  if (done == count) return {};
  // The calls after the failed one never ran: gone with it (the batch is over).
  const size_t failed = first + done;
  const int64_t r = results_[failed];
  meta_.resize(results_.size());
  std::string msg = std::string("remote ") + meta_[failed].name + " in task " +
                    std::to_string(t.tid()) + ": " + std::strerror(static_cast<int>(-r));
  Error err{std::move(msg), static_cast<int>(-r)};
  if (!meta_[failed].what.empty()) return std::move(err).wrap(meta_[failed].what);
  return err;
}

}  // namespace cr::sys
