// The probes of crdump --check. A probe that needs another process forks a child of its own
// (ProbeChild: killed and reaped when the probe ends), one that needs a pid namespace makes it
// in such a child, and those that touch crdump itself change nothing it relies on (a userfaultfd
// and a socket closed again, soft-dirty bits crdump never reads, a prctl that only reports).
#include "sys/kernel_features.h"

#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <utility>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "sys/linux_abi.h"
#include "sys/netlock.h"
#include "sys/proc_parse.h"
#include "sys/tracee.h"
#include "sys/vdso.h"
#include "sys/xstate.h"

// Newer than the 6.1 headers.
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40  // Linux 5.9
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)  // Linux 6.4
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)  // Linux 6.6
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)  // Linux 6.7
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)  // Linux 6.8
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

namespace cr::sys {

namespace {

KernelFeature yes(const char* name, bool required, std::string detail) {
  return {name, true, required, std::move(detail)};
}
KernelFeature no(const char* name, bool required, std::string detail) {
  return {name, false, required, std::move(detail)};
}

// Set before each fork to a value the child keeps: process_vm_readv must read the child's copy,
// not ours (ours is changed right after the fork).
volatile uint64_t g_marker = 0;

// A child to probe on: it blocks reading a pipe whose write end only we hold, so it neither
// runs nor exits on its own; the destructor kills and reaps it (also when traced).
class ProbeChild {
 public:
  static Result<ProbeChild> start() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
    ProbeChild c;
    c.read_end_.reset(p[0]);
    c.write_end_.reset(p[1]);
    g_marker = 0x6372746f6f6c73ull ^ static_cast<uint64_t>(::getpid());
    c.pid_ = ::fork();
    if (c.pid_ < 0) return errno_error("fork");
    if (c.pid_ == 0) {
      ::close(p[1]);
      char b;
      while (::read(p[0], &b, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    c.expected_ = g_marker;
    g_marker = 0;
    return c;
  }
  ProbeChild() = default;
  ProbeChild(ProbeChild&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)),
        expected_(o.expected_),
        read_end_(std::move(o.read_end_)),
        write_end_(std::move(o.write_end_)) {}
  ProbeChild& operator=(ProbeChild&&) = delete;
  ~ProbeChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }
  /// The marker's value in the child, and where it is (the same address in both).
  uint64_t expected_marker() const { return expected_; }
  /// An fd the child holds (the pipe's read end has the same number there), and ours.
  int read_end() const { return read_end_.get(); }

 private:
  pid_t pid_ = -1;
  uint64_t expected_ = 0;
  ScopedFd read_end_, write_end_;
};

std::string hexa(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// A line of /proc/sys, for hints ("" when unreadable).
std::string sysctl(const char* path) {
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return "";
  char buf[64] = {};
  if (std::fgets(buf, sizeof buf, f) == nullptr) buf[0] = 0;
  std::fclose(f);
  std::string s = buf;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

KernelFeature probe_ptrace() {
  constexpr const char* kName = "ptrace";
  auto child = ProbeChild::start();
  if (!child.ok()) return no(kName, true, "cannot fork a child to probe: " + child.error().message);
  auto t = Tracee::seize(child->pid(), 0);
  if (!t.ok()) {
    const std::string yama = sysctl("/proc/sys/kernel/yama/ptrace_scope");
    return no(kName, true,
              "PTRACE_SEIZE of a child failed (" + t.error().message + ")" +
                  (yama.empty() ? "" : ", yama ptrace_scope " + yama) +
                  ": crdump cannot freeze a process");
  }
  auto regs = t->get_regs();
  if (!regs.ok())
    return no(kName, true, "registers of a seized child unreadable: " + regs.error().message);
  (void)t->detach();
  return yes(kName, true,
             "PTRACE_SEIZE and PTRACE_INTERRUPT stop a child, its registers read: crdump "
             "freezes every thread and injects system calls with them");
}

KernelFeature probe_process_vm_readv() {
  constexpr const char* kName = "process_vm_readv";
  auto child = ProbeChild::start();
  if (!child.ok()) return no(kName, true, "cannot fork a child to probe: " + child.error().message);
  uint64_t got = 0;
  iovec local{&got, sizeof got};
  iovec remote{const_cast<uint64_t*>(&g_marker), sizeof got};
  const ssize_t n = ::process_vm_readv(child->pid(), &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(sizeof got))
    return no(kName, true,
              n < 0 ? errno_error("process_vm_readv of a child").message
                    : "process_vm_readv of a child read " + std::to_string(n) + " bytes" +
                          ": crdump cannot read memory");
  if (got != child->expected_marker())
    return no(kName, true,
              "process_vm_readv read " + hexa(got) + ", not the child's " +
                  hexa(child->expected_marker()));
  return yes(kName, true, "a child's memory read: crdump copies pages with it");
}

KernelFeature probe_pidfd() {
  constexpr const char* kName = "pidfd_getfd";
  auto child = ProbeChild::start();
  if (!child.ok()) return no(kName, true, "cannot fork a child to probe: " + child.error().message);
  ScopedFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child->pid(), 0)));
  if (!pidfd.valid())
    return no(kName, true,
              errno_error("pidfd_open (5.3+)").message + ": crdump cannot copy a process's fds");
  ScopedFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), child->read_end(), 0)));
  if (!copy.valid())
    return no(kName, true,
              errno_error("pidfd_getfd (5.6+)").message +
                  ": crdump cannot read sockets, ptys, timerfds or file owners of a process");
  struct stat a {
  }, b{};
  if (::fstat(copy.get(), &a) != 0 || ::fstat(child->read_end(), &b) != 0 || a.st_ino != b.st_ino)
    return no(kName, true, "pidfd_getfd gave another file than the child's fd");
  return yes(kName, true,
             "pidfd_open and pidfd_getfd copy a child's fd: crdump reads sockets, ptys, "
             "timerfds and file owners through such copies");
}

KernelFeature probe_clone3_set_tid() {
  constexpr const char* kName = "clone3 set_tid";
  // In a pid namespace of its own, so no pid of the host is asked for: the child unshares,
  // forks the namespace's init (pid 1), which makes pid kWant with set_tid. Each stage
  // reports on a pipe {stage, errno}; {0, 0} is success.
  constexpr pid_t kWant = 4242;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return no(kName, true, errno_error("pipe2").message);
  ScopedFd rd(p[0]), wr(p[1]);
  const pid_t c = ::fork();
  if (c < 0) return no(kName, true, errno_error("fork").message);
  if (c == 0) {
    auto report = [&](int stage, int err) {
      const int msg[2] = {stage, err};
      (void)!::write(wr.get(), msg, sizeof msg);
      ::_exit(0);
    };
    if (::unshare(CLONE_NEWPID) != 0) report(1, errno);
    const pid_t init = ::fork();
    if (init < 0) report(2, errno);
    if (init == 0) {
      pid_t tid = kWant;
      clone_args args{};
      args.exit_signal = SIGCHLD;
      args.set_tid = reinterpret_cast<uint64_t>(&tid);
      args.set_tid_size = 1;
      const long r = ::syscall(SYS_clone3, &args, sizeof args);
      if (r == 0) ::_exit(0);
      if (r < 0) report(3, errno);
      while (::waitpid(static_cast<pid_t>(r), nullptr, 0) < 0 && errno == EINTR) {
      }
      report(r == kWant ? 0 : 4, 0);
    }
    while (::waitpid(init, nullptr, 0) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  wr.reset();
  int msg[2] = {-1, 0};
  ssize_t n;
  while ((n = ::read(rd.get(), msg, sizeof msg)) < 0 && errno == EINTR) {
  }
  while (::waitpid(c, nullptr, 0) < 0 && errno == EINTR) {
  }
  const std::string limits = ": crrestore cannot give processes their pids back";
  if (n != static_cast<ssize_t>(sizeof msg)) return no(kName, true, "the probe child said nothing");
  switch (msg[0]) {
    case 0:
      return yes(kName, true,
                 "clone3 made pid " + std::to_string(kWant) +
                     " in a pid namespace of the probe's: crrestore gives every process and "
                     "thread its pid and tid back");
    case 1:
      return no(kName, true, errno_error("unshare(CLONE_NEWPID)", msg[1]).message + limits);
    case 2:
      return no(kName, true, errno_error("fork in a new pid namespace", msg[1]).message + limits);
    case 3:
      return no(kName, true,
                errno_error("clone3 with set_tid (5.5+)", msg[1]).message +
                    (msg[1] == EPERM ? " (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)" : "") +
                    limits);
    default:
      return no(kName, true, "clone3 with set_tid made another pid than asked" + limits);
  }
}

KernelFeature probe_mm_map() {
  constexpr const char* kName = "PR_SET_MM_MAP";
  // PR_SET_MM_MAP_SIZE only reports the size of struct prctl_mm_map; the kernel answers it
  // only when built with CONFIG_CHECKPOINT_RESTORE, as PR_SET_MM_MAP itself.
  unsigned int size = 0;
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) != 0)
    return no(kName, true,
              errno_error("prctl(PR_SET_MM_MAP_SIZE)").message +
                  " (CONFIG_CHECKPOINT_RESTORE off?): crrestore cannot set cmdline, environ, "
                  "auxv and the exe link");
  return yes(kName, true,
             "struct prctl_mm_map of " + std::to_string(size) +
                 " bytes: crrestore sets the mm's cmdline, environ, auxv, brk and exe link");
}

KernelFeature probe_capabilities() {
  constexpr const char* kName = "capabilities";
  auto self = ProcDir::open(::getpid());
  if (!self.ok()) return no(kName, true, self.error().message);
  auto text = self->read("status");
  if (!text.ok()) return no(kName, true, text.error().message);
  auto st = parse_status(*text);
  if (!st.ok()) return no(kName, true, st.error().message);
  const uint64_t eff = st->cap_eff;
  auto has = [eff](int cap) { return ((eff >> cap) & 1) != 0; };
  static constexpr struct {
    int cap;
    const char* name;
    const char* use;
  } kCaps[] = {
      {CAP_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE", "set_tid, exe link"},
      {CAP_SYS_ADMIN, "CAP_SYS_ADMIN", "set_tid, namespaces, cgroups"},
      {CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "other users' processes"},
      {CAP_NET_ADMIN, "CAP_NET_ADMIN", "TCP_REPAIR, the network lock"},
      {CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE", "oom_score_adj below ours, rlimits above"},
  };
  std::string have, lack;
  for (const auto& c : kCaps) {
    std::string& to = has(c.cap) ? have : lack;
    to += (to.empty() ? "" : ", ") + std::string(c.name) +
          (has(c.cap) ? "" : std::string(" (") + c.use + ")");
  }
  const bool ok = has(CAP_CHECKPOINT_RESTORE) || has(CAP_SYS_ADMIN);
  std::string detail = "in effect: " + (have.empty() ? std::string("none") : have);
  if (!lack.empty()) detail += "; missing: " + lack;
  if (!ok)
    detail += "; without CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN crrestore cannot choose pids";
  return {kName, ok, true, detail};
}

KernelFeature probe_pagemap_scan() {
  constexpr const char* kName = "PAGEMAP_SCAN";
  ScopedFd pm(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm.valid()) return no(kName, false, errno_error("open /proc/self/pagemap").message);
  constexpr size_t kPages = 4;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* m =
      ::mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return no(kName, false, errno_error("mmap").message);
  ScopedMapping area(m, kPages * page);
  static_cast<volatile char*>(m)[page] = 1;  // one present page, the second
  PageRegion regions[kPages] = {};
  auto scan = [&](uint64_t categories) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = reinterpret_cast<uint64_t>(m);
    arg.end = arg.start + kPages * page;
    arg.vec = reinterpret_cast<uint64_t>(regions);
    arg.vec_len = kPages;
    arg.category_anyof_mask = categories;
    arg.return_mask = categories;
    return ::ioctl(pm.get(), kPagemapScan, &arg);
  };
  const int n = scan(kPageIsPresent);
  if (n < 0)
    return no(kName, false,
              errno_error("ioctl(PAGEMAP_SCAN) (6.7+)").message +
                  ": crdump reads every pagemap entry instead (slower on big sparse mappings)");
  if (n != 1 || regions[0].start != reinterpret_cast<uint64_t>(m) + page ||
      regions[0].end != regions[0].start + page)
    return no(kName, false,
              "PAGEMAP_SCAN found " + std::to_string(n) +
                  " regions where one page is present: crdump reads pagemap entries instead");
  const bool guard = scan(kPageIsPresent | kPageIsGuard) >= 0;
  return yes(kName, false,
             std::string("crdump finds the pages to store by ioctl, not entry by entry") +
                 (guard ? " (guard regions too)"
                        : " (not guard regions, PAGE_IS_GUARD is 6.15+: read from pagemap)"));
}

KernelFeature probe_userfaultfd() {
  constexpr const char* kName = "userfaultfd";
  ScopedFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (!uffd.valid() && errno == EPERM)  // vm.unprivileged_userfaultfd 0, without CAP_SYS_PTRACE
    uffd.reset(
        static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY)));
  if (!uffd.valid())
    return no(kName, false,
              errno_error("userfaultfd").message +
                  ": no lazy restore or write tracking by userfaultfd (crtools uses neither yet)");
  uffdio_api api{};
  api.api = UFFD_API;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0)
    return no(kName, false, errno_error("ioctl(UFFDIO_API)").message);
  static constexpr struct {
    uint64_t bit;
    const char* name;
  } kFeatures[] = {
      {UFFD_FEATURE_PAGEFAULT_FLAG_WP, "WP"},
      {UFFD_FEATURE_EVENT_FORK, "EVENT_FORK"},
      {UFFD_FEATURE_EVENT_REMAP, "EVENT_REMAP"},
      {UFFD_FEATURE_EVENT_REMOVE, "EVENT_REMOVE"},
      {UFFD_FEATURE_EVENT_UNMAP, "EVENT_UNMAP"},
      {UFFD_FEATURE_MISSING_SHMEM, "MISSING_SHMEM"},
      {UFFD_FEATURE_MISSING_HUGETLBFS, "MISSING_HUGETLBFS"},
      {UFFD_FEATURE_MINOR_SHMEM, "MINOR_SHMEM"},
      {UFFD_FEATURE_THREAD_ID, "THREAD_ID"},
      {UFFD_FEATURE_WP_HUGETLBFS_SHMEM, "WP_HUGETLBFS_SHMEM"},
      {UFFD_FEATURE_WP_UNPOPULATED, "WP_UNPOPULATED"},
      {UFFD_FEATURE_POISON, "POISON"},
      {UFFD_FEATURE_WP_ASYNC, "WP_ASYNC"},
      {UFFD_FEATURE_MOVE, "MOVE"},
  };
  std::string names;
  for (const auto& f : kFeatures)
    if ((api.features & f.bit) != 0) names += (names.empty() ? "" : " ") + std::string(f.name);
  const bool wp_async = (api.features & UFFD_FEATURE_WP_ASYNC) != 0;
  return yes(kName, false,
             "features " + (names.empty() ? std::string("none") : names) +
                 (wp_async ? "; WP_ASYNC could track writes for pre-copy (iterative) dumps"
                           : "; no WP_ASYNC (6.7+): no write tracking for pre-copy dumps") +
                 " (crtools uses userfaultfd for neither that nor lazy restore yet)");
}

KernelFeature probe_soft_dirty() {
  constexpr const char* kName = "soft-dirty";
  const std::string limits =
      ": no write tracking by soft-dirty; pre-copy (iterative) dumps would track writes with "
      "userfaultfd WP_ASYNC instead";
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* m = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return no(kName, false, errno_error("mmap").message);
  ScopedMapping area(m, page);
  ScopedFd pm(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pm.valid()) return no(kName, false, errno_error("open /proc/self/pagemap").message);
  constexpr uint64_t kSoftDirty = 1ull << 55;
  auto dirty = [&]() -> int {
    uint64_t e = 0;
    const off_t at = static_cast<off_t>(reinterpret_cast<uint64_t>(m) / page * 8);
    if (::pread(pm.get(), &e, sizeof e, at) != static_cast<ssize_t>(sizeof e)) return -1;
    return (e & kSoftDirty) != 0;
  };
  static_cast<volatile char*>(m)[0] = 1;
  // Clears the soft-dirty bits of crdump's own pages (nobody reads them) and write-protects
  // them, so the write below sets the bit again on a kernel that tracks it.
  ScopedFd cr(::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC));
  if (!cr.valid() || ::write(cr.get(), "4", 1) != 1)
    return no(kName, false, errno_error("write 4 to /proc/self/clear_refs").message + limits);
  const int cleared = dirty();
  static_cast<volatile char*>(m)[0] = 2;
  const int again = dirty();
  if (cleared < 0 || again < 0) return no(kName, false, "pagemap unreadable" + limits);
  if (cleared != 0 || again != 1)
    return no(kName, false,
              "pagemap bit 55 " + std::string(again == 0 ? "never set" : "not cleared") +
                  " (CONFIG_MEM_SOFT_DIRTY off)" + limits);
  return yes(kName, false,
             "pagemap bit 55 cleared and set again by a write: writes could be tracked for "
             "pre-copy dumps (not used by crtools yet)");
}

KernelFeature probe_tcp_repair() {
  constexpr const char* kName = "TCP_REPAIR";
  ScopedFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return no(kName, false, errno_error("socket(AF_INET)").message);
  int on = 1;
  if (::setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0)
    return no(kName, false,
              errno_error("setsockopt TCP_REPAIR").message +
                  (errno == EPERM ? " (needs CAP_NET_ADMIN)" : "") +
                  ": established TCP connections cannot be dumped (--tcp-established) or "
                  "restored");
  // An unconnected socket in repair mode closes without sending anything.
  return yes(kName, false,
             "crdump --tcp-established reads established connections, crrestore makes them "
             "again");
}

KernelFeature probe_nft() {
  constexpr const char* kName = "nft";
  // netlock_delete adds and deletes the table in one transaction: nf_tables and the tool both
  // answer, and nothing shows outside the transaction.
  Status st = netlock_delete("crtools_check_" + std::to_string(::getpid()));
  if (!st.ok())
    return no(kName, false,
              st.error().message +
                  ": --tcp-established cannot lock the network (the connections are refused)");
  return yes(kName, false,
             "nft and nf_tables work: the network lock of --tcp-established holds a "
             "connection's packets from the dump until crrestore has it back");
}

KernelFeature probe_time_namespace() {
  constexpr const char* kName = "time namespace";
  struct stat st {};
  if (::stat("/proc/self/ns/time", &st) != 0)
    return no(kName, false,
              errno_error("/proc/self/ns/time").message +
                  ": no time namespaces (5.6+); clocks of a restored tree jump to this host's");
  return yes(kName, false,
             "time namespaces exist; crdump refuses a tree in another time namespace than "
             "its own (not supported yet), so restored monotonic clocks are this host's");
}

KernelFeature probe_vdso() {
  constexpr const char* kName = "vDSO";
  auto image = own_vdso();
  if (!image.ok()) return no(kName, false, image.error().message);
  if (image->empty())
    return no(kName, false,
              "no vDSO mapped (vdso=0 on the kernel command line?): nothing to move back at "
              "restore, and programs dumped elsewhere with one call into nothing");
  auto fns = vdso_functions(*image);
  if (!fns.ok()) return no(kName, false, "vDSO unreadable: " + fns.error().message);
  return yes(kName, false,
             std::to_string(image->size()) + " bytes, " + std::to_string(fns->size()) +
                 " functions: recorded in an image; a restore on another kernel build jumps "
                 "from the dumped functions to these");
}

KernelFeature probe_xsave() {
  constexpr const char* kName = "xsave";
  const XstateLayout& l = host_xstate_layout();
  if (l.features == 0)
    return no(kName, false, "no XSAVE: only x87 and SSE registers are saved (FXSAVE layout)");
  std::string names = "x87 SSE";
  for (const XstateComponent& c : l.components) names += ", " + xstate_component_name(c.bit);
  return yes(kName, false,
             "XCR0 " + hexa(l.features) + " (" + names +
                 "): saved per thread; an image from a CPU with state this one lacks restores "
                 "only while that state is unused");
}

KernelFeature probe_seccomp_suspend() {
  constexpr const char* kName = "seccomp suspend";
  auto child = ProbeChild::start();
  if (!child.ok())
    return no(kName, false, "cannot fork a child to probe: " + child.error().message);
  auto t = Tracee::seize(child->pid(), PTRACE_O_SUSPEND_SECCOMP);
  if (!t.ok())
    return no(kName, false,
              "PTRACE_O_SUSPEND_SECCOMP refused (" + t.error().message +
                  "; it needs CAP_SYS_ADMIN and no seccomp of our own): a tree with seccomp is "
                  "refused");
  (void)t->detach();
  return yes(kName, false,
             "PTRACE_O_SUSPEND_SECCOMP: a task's seccomp filters are dumped and restored, and "
             "never see the calls crdump and crrestore inject");
}

std::vector<KernelFeature> probe_kernel_features() {
  return {probe_ptrace(),       probe_process_vm_readv(),
          probe_pidfd(),        probe_clone3_set_tid(),
          probe_mm_map(),       probe_capabilities(),
          probe_pagemap_scan(), probe_userfaultfd(),
          probe_soft_dirty(),   probe_tcp_repair(),
          probe_nft(),          probe_time_namespace(),
          probe_vdso(),         probe_xsave(),
          probe_seccomp_suspend()};
}

}  // namespace cr::sys
