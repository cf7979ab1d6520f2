#include "sys/tracee.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "common/text.h"
#include "sys/proc_parse.h"
// Newer than the 6.1 headers.
// PTRACE_GET_RSEQ_CONFIGURATION is Linux 5.13; glibc's enum may or may not carry it.
constexpr int kPtraceGetRseqConfiguration = 0x420f;
struct RseqConfiguration {  // struct ptrace_rseq_configuration
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

namespace cr::sys {

namespace {
// Kernel-internal restart codes, as seen in rax of a task stopped inside a system call.
constexpr long kErestartSys = 512;
constexpr long kErestartNoIntr = 513;
constexpr long kErestartNoHand = 514;
constexpr long kErestartRestartBlock = 516;

}  // namespace

std::string WaitStatus::describe() const {
  if (exited()) return "exited with status " + std::to_string(exit_code());
  if (signaled()) return std::string("killed by signal ") + strsignal(term_sig());
  if (stopped()) {
    if (syscall_stop()) return "syscall stop";
    if (ptrace_event() != 0) return "ptrace event " + std::to_string(ptrace_event());
    return std::string("stopped by ") + strsignal(stop_sig());
  }
  return "wait status " + hex(static_cast<uint32_t>(raw));
}

Result<WaitStatus> wait_for(pid_t tid, int flags) {
  int st = 0;
  for (;;) {
    pid_t r = ::waitpid(tid, &st, flags | __WALL);
    if (r == tid) return WaitStatus::from(st);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno_error("waitpid(" + std::to_string(tid) + ")");
    return make_error("waitpid(" + std::to_string(tid) + ") returned " + std::to_string(r));
  }
}

Error Tracee::ptrace_error(const char* request, uint64_t addr) const {
  int err = errno;
  if (err == ESRCH)
    return Error{"task " + std::to_string(tid_) + " is gone (" + request + ")", err};
  std::string msg = std::string(request) + " on task " + std::to_string(tid_);
  if (addr != 0) msg += " at " + hex(addr);
  return errno_error(msg, err);
}

Result<Tracee> Tracee::seize(pid_t tid, unsigned options) {
  CR_TRY_ASSIGN(Tracee t, seize_nowait(tid, options));
  CR_TRY(t.wait_seized());
  return t;
}

// " (already traced by pid 77 (gdb))" when /proc says someone else ptraces `tid`: the usual
// reason PTRACE_SEIZE fails with EPERM.
static std::string tracer_text(pid_t tid) {
  auto proc = ProcDir::open(tid);
  if (!proc.ok()) return {};
  auto text = proc->read("status");
  if (!text.ok()) return {};
  auto st = parse_status(*text);
  if (!st.ok() || st->tracer_pid == 0) return {};
  std::string comm = "?";
  if (auto tp = ProcDir::open(st->tracer_pid); tp.ok())
    if (auto ts = tp->read("status"); ts.ok())
      if (auto t = parse_status(*ts); t.ok()) comm = t->name;
  return " (already traced by pid " + std::to_string(st->tracer_pid) + " (" + comm + "))";
}

Result<Tracee> Tracee::seize_nowait(pid_t tid, unsigned options) {
  if (::ptrace(PTRACE_SEIZE, tid, nullptr, reinterpret_cast<void*>(uintptr_t{options})) != 0) {
    const int err = errno;
    if (err == ESRCH) return Error{"no process with pid " + std::to_string(tid), ESRCH};
    return errno_error("PTRACE_SEIZE " + std::to_string(tid) + tracer_text(tid), err);
  }
  Tracee t(tid);
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0)
    return t.ptrace_error("PTRACE_INTERRUPT");
  return t;
}

Status Tracee::wait_seized() {
  // The first stop is the interrupt (PTRACE_EVENT_STOP), or a signal that was already on its
  // way: such a signal is put back on resume by the caller seeing last_stop().
  CR_TRY_ASSIGN(last_, wait_for(tid_));
  if (!last_.stopped()) {
    pid_t tid = std::exchange(tid_, -1);
    return make_error("task " + std::to_string(tid) + " " + last_.describe() + " while seizing");
  }
  return {};
}

void Tracee::traceme_and_stop() {
  ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
  ::raise(SIGSTOP);
}

Result<Tracee> Tracee::adopt_stopped_child(pid_t tid, unsigned options) {
  Tracee t(tid);
  CR_TRY_ASSIGN(t.last_, wait_for(tid));
  if (!t.last_.stopped()) {
    t.tid_ = -1;
    return make_error("restored task " + std::to_string(tid) + " " + t.last_.describe() +
                      " before it could be adopted");
  }
  if (::ptrace(PTRACE_SETOPTIONS, tid, nullptr, reinterpret_cast<void*>(uintptr_t{options})) != 0)
    return t.ptrace_error("PTRACE_SETOPTIONS");
  return t;
}

Tracee::Tracee(Tracee&& o) noexcept
    : tid_(std::exchange(o.tid_, -1)), last_(o.last_), mem_fd_(std::move(o.mem_fd_)) {}

Tracee& Tracee::operator=(Tracee&& o) noexcept {
  if (this != &o) {
    if (attached()) (void)detach();
    tid_ = std::exchange(o.tid_, -1);
    last_ = o.last_;
    mem_fd_ = std::move(o.mem_fd_);
  }
  return *this;
}

Tracee::~Tracee() {
  if (attached()) (void)detach();
}

Result<user_regs_struct> Tracee::get_regs() const {
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, tid_, nullptr, &regs) != 0) return ptrace_error("PTRACE_GETREGS");
  return regs;
}

Status Tracee::set_regs(const user_regs_struct& regs) const {
  if (::ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) return ptrace_error("PTRACE_SETREGS");
  return {};
}

Result<std::vector<uint8_t>> Tracee::get_xstate() const {
  // Big enough for any XSAVE layout (AMX included); the kernel says how much it filled.
  std::vector<uint8_t> buf(16384);
  iovec iov{buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return ptrace_error("PTRACE_GETREGSET(NT_X86_XSTATE)");
  buf.resize(iov.iov_len);
  return buf;
}

Status Tracee::set_xstate(std::span<const uint8_t> area) const {
  std::vector<uint8_t> copy(area.begin(), area.end());
  iovec iov{copy.data(), copy.size()};
  if (::ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0)
    return ptrace_error("PTRACE_SETREGSET(NT_X86_XSTATE)");
  return {};
}

Result<uint64_t> Tracee::get_sigmask() const {
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, tid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    return ptrace_error("PTRACE_GETSIGMASK");
  return mask;
}

Status Tracee::set_sigmask(uint64_t mask) const {
  if (::ptrace(PTRACE_SETSIGMASK, tid_, reinterpret_cast<void*>(sizeof mask), &mask) != 0)
    return ptrace_error("PTRACE_SETSIGMASK");
  return {};
}

Status Tracee::set_options(unsigned options) const {
  if (::ptrace(PTRACE_SETOPTIONS, tid_, nullptr, reinterpret_cast<void*>(uintptr_t{options})) != 0)
    return ptrace_error("PTRACE_SETOPTIONS");
  return {};
}

Result<std::vector<uint8_t>> Tracee::seccomp_filter(unsigned index) const {
  constexpr size_t kInsn = 8;  // struct sock_filter
  void* const off = reinterpret_cast<void*>(uintptr_t{index});
  const long n = ::ptrace(PTRACE_SECCOMP_GET_FILTER, tid_, off, nullptr);
  if (n < 0) return ptrace_error("PTRACE_SECCOMP_GET_FILTER", index);
  std::vector<uint8_t> prog(static_cast<size_t>(n) * kInsn);
  // The chain cannot change while the task is stopped: the count read above holds.
  const long m = ::ptrace(PTRACE_SECCOMP_GET_FILTER, tid_, off, prog.data());
  if (m < 0) return ptrace_error("PTRACE_SECCOMP_GET_FILTER", index);
  if (m != n)
    return make_error("PTRACE_SECCOMP_GET_FILTER on task " + std::to_string(tid_) + ": filter " +
                      std::to_string(index) + " changed size");
  return prog;
}

Result<uint64_t> Tracee::seccomp_filter_flags(unsigned index) const {
  __ptrace_seccomp_metadata md{};
  md.filter_off = index;
  if (::ptrace(PTRACE_SECCOMP_GET_METADATA, tid_, reinterpret_cast<void*>(sizeof md), &md) < 0)
    return ptrace_error("PTRACE_SECCOMP_GET_METADATA", index);
  return md.flags;
}

Result<std::vector<siginfo_t>> Tracee::peek_siginfo(bool shared) const {
  std::vector<siginfo_t> out;
  for (;;) {
    __ptrace_peeksiginfo_args args{};
    args.off = out.size();
    args.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    args.nr = 32;
    siginfo_t buf[32];
    long n = ::ptrace(PTRACE_PEEKSIGINFO, tid_, &args, buf);
    if (n < 0) return ptrace_error("PTRACE_PEEKSIGINFO");
    if (n == 0) return out;
    out.insert(out.end(), buf, buf + n);
  }
}

Result<Tracee::Rseq> Tracee::get_rseq() const {
  RseqConfiguration conf{};
  if (::ptrace(static_cast<__ptrace_request>(kPtraceGetRseqConfiguration), tid_,
               reinterpret_cast<void*>(sizeof conf), &conf) < 0)
    return ptrace_error("PTRACE_GET_RSEQ_CONFIGURATION");
  return Rseq{conf.rseq_abi_pointer, conf.rseq_abi_size, conf.signature};
}

Status Tracee::read_mem(uint64_t addr, void* buf, size_t len) const {
  iovec local{buf, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_readv(tid_, &local, 1, &remote, 1, 0);
  if (n < 0) return ptrace_error("process_vm_readv", addr);
  if (static_cast<size_t>(n) != len)
    return make_error("process_vm_readv on task " + std::to_string(tid_) + " at " + hex(addr) +
                      ": short read " + std::to_string(n) + " of " + std::to_string(len));
  return {};
}

Status Tracee::write_mem(uint64_t addr, const void* buf, size_t len) const {
  iovec local{const_cast<void*>(buf), len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  ssize_t n = ::process_vm_writev(tid_, &local, 1, &remote, 1, 0);
  if (n < 0) return ptrace_error("process_vm_writev", addr);
  if (static_cast<size_t>(n) != len)
    return make_error("process_vm_writev on task " + std::to_string(tid_) + " at " + hex(addr) +
                      ": short write " + std::to_string(n) + " of " + std::to_string(len));
  return {};
}

Status Tracee::poke_mem(uint64_t addr, const void* buf, size_t len) const {
  if (!mem_fd_.valid()) {
    std::string path = "/proc/" + std::to_string(tid_) + "/mem";
    mem_fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!mem_fd_.valid()) return errno_error("open " + path);
  }
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(mem_fd_.get(), p, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ptrace_error("write /proc/PID/mem", addr);
    p += n;
    addr += n;
    len -= n;
  }
  return {};
}

namespace {
std::atomic<uint64_t> g_resumes{0};  // a figure for -v only
}  // namespace

uint64_t Tracee::resumes() { return g_resumes.load(std::memory_order_relaxed); }

Result<WaitStatus> Tracee::cont_and_wait(int sig) {
  g_resumes.fetch_add(1, std::memory_order_relaxed);
  if (::ptrace(PTRACE_CONT, tid_, nullptr, reinterpret_cast<void*>(intptr_t{sig})) != 0)
    return ptrace_error("PTRACE_CONT");
  CR_TRY_ASSIGN(last_, wait_for(tid_));
  if (last_.exited() || last_.signaled()) tid_ = -1;
  return last_;
}

Result<WaitStatus> Tracee::syscall_and_wait() {
  g_resumes.fetch_add(1, std::memory_order_relaxed);
  if (::ptrace(PTRACE_SYSCALL, tid_, nullptr, nullptr) != 0) return ptrace_error("PTRACE_SYSCALL");
  CR_TRY_ASSIGN(last_, wait_for(tid_));
  if (last_.exited() || last_.signaled()) tid_ = -1;
  return last_;
}

Status Tracee::detach(int sig) {
  pid_t tid = std::exchange(tid_, -1);
  errno = 0;
  if (::ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(intptr_t{sig})) != 0 &&
      errno != ESRCH)
    return errno_error("PTRACE_DETACH " + std::to_string(tid));
  return {};
}

bool rerun_interrupted_epoll_wait(user_regs_struct& regs) {
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441  // Linux 5.11
#endif
  const int64_t nr = static_cast<int64_t>(regs.orig_rax);
  if (nr != SYS_epoll_wait && nr != SYS_epoll_pwait && nr != SYS_epoll_pwait2) return false;
  if (static_cast<int64_t>(regs.rax) != -EINTR) return false;
  regs.rax = regs.orig_rax;
  regs.rip -= 2;
  return true;
}

std::string restart_fixup(user_regs_struct& regs) {
  if (static_cast<int64_t>(regs.orig_rax) < 0) return {};
  const int64_t rax = static_cast<int64_t>(regs.rax);
  switch (-rax) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
      regs.rax = regs.orig_rax;
      regs.rip -= 2;  // back onto the 2-byte `syscall` instruction
      return "syscall " + std::to_string(regs.orig_rax) + " will be restarted";
    case kErestartRestartBlock:
      // The kernel's restart block (saved deadline) does not survive; re-run the call instead.
      // A relative sleep resumes from the remaining time the kernel wrote to `rem`; without a
      // `rem` (glibc's usleep passes none) the remaining time is nowhere to be read, and the
      // sleep starts over: longer than asked, never a spurious EINTR the program did not expect.
      if (regs.orig_rax == SYS_nanosleep) {
        if (regs.rsi != 0) regs.rdi = regs.rsi;  // req := rem
      } else if (regs.orig_rax == SYS_clock_nanosleep) {
        if (regs.r10 != 0) regs.rdx = regs.r10;
      }
      // Other users (poll, futex, select with timeouts) re-run with their arguments as they
      // stand: poll and futex restart their timeout, select continues from what it wrote back.
      regs.rax = regs.orig_rax;
      regs.rip -= 2;
      return "syscall " + std::to_string(regs.orig_rax) + " will be re-run";
    default:
      break;
  }
  return {};
}

}  // namespace cr::sys
