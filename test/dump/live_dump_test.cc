// Dumps of real child processes, in-process through the dump API into an in-memory writer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <mqueue.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "test/common/devpts_lock.h"
#include "dump/dump.h"
#include "sys/fd_passing.h"
#include "sys/proc_parse.h"
#include "test/dump/fake_writer.h"

namespace cr::dump {
using namespace ::cr::sys;  // the /proc parsers  NOLINT
namespace {

using testing::FakeWriter;

constexpr int kCmdFd = 100;  // the child's end of the command pipe
constexpr int kAnsFd = 101;  // the child's end of the answer pipe
constexpr size_t kPage = 4096;
constexpr size_t kRegionPages = 64;

// Where the rich child puts things, fixed so the parent knows them without asking.
uint8_t* const g_region = reinterpret_cast<uint8_t*>(0x210000000000);
uint8_t* const g_noaccess = reinterpret_cast<uint8_t*>(0x220000000000);
uint8_t* const g_cow = reinterpret_cast<uint8_t*>(0x230000000000);
void* const g_altstack = reinterpret_cast<void*>(0x240000000000);
const int g_pipe[2] = {30, 31};
char g_file_path[64];  // made by the parent before the fork

void* map_at(void* addr, size_t len, int prot, int flags, int fd = -1) {
  void* p = mmap(addr, len, prot, flags | MAP_FIXED_NOREPLACE, fd, 0);
  if (p != addr) _exit(92);
  return p;
}

void on_usr1(int) {}

uint8_t pattern(size_t page) { return page % 7 == 3 ? 0 : static_cast<uint8_t>(page + 1); }

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n <= 0) _exit(90);
    s.remove_prefix(static_cast<size_t>(n));
  }
}

// A forked child that runs `setup`, says "ready", then answers commands on a pipe:
// 'c' runs `check` and writes its answer line; 'q' exits.
class Child {
 public:
  Child(std::function<void()> setup, std::function<std::string()> check) {
    int cmd[2], ans[2];
    if (::pipe(cmd) != 0 || ::pipe(ans) != 0) abort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(cmd[0], kCmdFd);
      ::dup2(ans[1], kAnsFd);
      ::close_range(3, kCmdFd - 1, 0);
      ::close_range(kAnsFd + 1, ~0u, 0);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      if (null > 2) ::close(null);
      setup();
      write_all(kAnsFd, "ready\n");
      for (;;) {
        char c = 0;
        ssize_t n = ::read(kCmdFd, &c, 1);
        if (n <= 0 || c == 'q') _exit(0);
        if (c == 'c') write_all(kAnsFd, check() + "\n");
      }
    }
    ::close(cmd[0]);
    ::close(ans[1]);
    cmd_ = cmd[1];
    ans_ = ans[0];
    ready_ = read_line() == "ready";
  }
  ~Child() {
    ::close(cmd_);
    ::close(ans_);
    if (!gone_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  bool ready() const { return ready_; }
  void mark_gone() { gone_ = true; }

  std::string ask(char c) {
    if (::write(cmd_, &c, 1) != 1) return "<write failed>";
    return read_line();
  }

 private:
  std::string read_line() {
    std::string line;
    char c;
    while (::read(ans_, &c, 1) == 1) {
      if (c == '\n') return line;
      line += c;
    }
    return line + "<eof>";
  }
  pid_t pid_ = -1;
  int cmd_ = -1, ans_ = -1;
  bool ready_ = false, gone_ = false;
};

std::string check_alive() { return "alive"; }

void rich_setup() {
  map_at(g_region, kRegionPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (size_t i = 0; i < kRegionPages; ++i) memset(g_region + i * kPage, pattern(i), kPage);

  map_at(g_noaccess, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  memset(g_noaccess, 0xab, kPage);
  mprotect(g_noaccess, 2 * kPage, PROT_NONE);

  struct sigaction sa {};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  signal(SIGUSR2, SIG_IGN);

  int f = open(g_file_path, O_RDWR);
  std::string content(5000, 'x');
  write_all(f, content);
  lseek(f, 1234, SEEK_SET);
  dup2(f, 20);  // same description as f
  map_at(g_cow, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, f);
  volatile uint8_t first = g_cow[0];  // a file page, present but not copied
  (void)first;
  g_cow[kPage] = 'Z';  // copied on write

  char del[] = "/tmp/crdump_del_XXXXXX";
  int d = mkstemp(del);
  write_all(d, "deleted content");
  unlink(del);

  int p[2];
  if (pipe(p) != 0) _exit(93);
  dup2(p[0], g_pipe[0]);
  dup2(p[1], g_pipe[1]);
  close(p[0]);
  close(p[1]);
  write_all(g_pipe[1], "hello pipe");

  stack_t ss{};
  map_at(g_altstack, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  ss.ss_sp = g_altstack;
  ss.ss_size = 65536;
  sigaltstack(&ss, nullptr);

  itimerval it{};
  it.it_value.tv_sec = 1000;
  it.it_interval.tv_sec = 2000;
  setitimer(ITIMER_REAL, &it, nullptr);

  sigevent sev{};
  sev.sigev_notify = SIGEV_NONE;
  timer_t tid;
  timer_create(CLOCK_MONOTONIC, &sev, &tid);
  itimerspec its{};
  its.it_value.tv_sec = 500;
  timer_settime(tid, 0, &its, nullptr);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
}

std::string rich_check() {
  for (size_t i = 0; i < kRegionPages; ++i)
    for (size_t b = 0; b < kPage; b += 512)
      if (g_region[i * kPage + b] != pattern(i)) return "bad memory";
  fcntl(g_pipe[0], F_SETFL, O_NONBLOCK);
  char buf[64] = {};
  ssize_t n = read(g_pipe[0], buf, sizeof buf - 1);
  sigset_t pend;
  sigpending(&pend);
  if (!sigismember(&pend, SIGRTMIN + 1)) return "signal lost";
  if (lseek(20, 0, SEEK_CUR) != 1234) return "offset moved";
  return "ok " + std::string(buf, n > 0 ? n : 0);
}

// Waits until the child sits in read(kCmdFd) (it said "ready" just before entering it):
// polls /proc/PID/syscall, which names the syscall a blocked task is in.
bool wait_blocked_in_read(pid_t pid) {
  auto proc = ProcDir::open(pid);
  if (!proc.ok()) return false;
  const std::string want = "0 0x" + [] {
    char b[16];
    snprintf(b, sizeof b, "%x ", kCmdFd);
    return std::string(b);
  }();
  timespec start{}, now{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    auto text = proc->read("syscall");
    if (text.ok() && text->starts_with(want)) return true;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec > 10) return false;
    sched_yield();
  }
}

struct DumpResult {
  Status status;
  FakeWriter w;
};

std::unique_ptr<DumpResult> run_dump(pid_t pid, DumpOptions opts) {
  auto r = std::make_unique<DumpResult>();
  r->status = dump_process(pid, opts, r->w);
  return r;
}

// A dump that leaves the child running, its command pipes recorded as external.
std::unique_ptr<DumpResult> dump_leaving_running(const Child& child) {
  DumpOptions opts;
  opts.leave_running = true;
  opts.inherit_fds = {kCmdFd, kAnsFd};
  return run_dump(child.pid(), opts);
}

template <class R>
size_t first_index(const FakeWriter& w) {
  for (size_t i = 0; i < w.recs.size(); ++i)
    if (w.recs[i].type == R::kType) return i;
  return SIZE_MAX;
}

TEST(LiveDump, RichChildLeaveRunning) {
  strcpy(g_file_path, "/tmp/crdump_test_XXXXXX");
  int made = mkstemp(g_file_path);
  ASSERT_GE(made, 0);
  close(made);
  Child child(rich_setup, rich_check);
  ASSERT_TRUE(child.ready());
  sigval v{};
  v.sival_int = 42;
  ASSERT_EQ(sigqueue(child.pid(), SIGRTMIN + 1, v), 0);
  ASSERT_TRUE(wait_blocked_in_read(child.pid()));

  auto proc = ProcDir::open(child.pid());
  ASSERT_TRUE(proc.ok());
  auto maps_text = proc->read("maps");
  ASSERT_TRUE(maps_text.ok());
  auto maps = parse_maps(*maps_text);
  ASSERT_TRUE(maps.ok());

  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  const FakeWriter& w = d->w;
  EXPECT_TRUE(w.finished);
  EXPECT_FALSE(w.failed);

  // Order: the Vdso (a kernel without one: none), Process, Thread last; objects before their
  // users; Vmas before Pages.
  ASSERT_GE(w.recs.size(), 2u);
  const bool vdso_first = w.recs.front().type == schema::Vdso::kType;
  EXPECT_EQ(w.recs[vdso_first ? 1 : 0].type, schema::Process::kType);
  EXPECT_EQ(w.recs.back().type, schema::Thread::kType);
  EXPECT_LT(first_index<schema::Pipe>(w), first_index<schema::File>(w));
  EXPECT_LT(first_index<schema::File>(w), first_index<schema::Fd>(w));
  EXPECT_LT(first_index<schema::Mm>(w), first_index<schema::Vma>(w));
  EXPECT_LT(first_index<schema::Vma>(w), first_index<schema::Pages>(w));
  EXPECT_LT(first_index<schema::Pages>(w), first_index<schema::Sigaction>(w));

  auto procs = w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(procs[0].ppid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(procs[0].nthreads, 1u);
  ASSERT_EQ(w.all<schema::Creds>().size(), 1u);
  EXPECT_EQ(w.all<schema::Creds>()[0].euid, geteuid());
  ASSERT_EQ(w.all<schema::Rlimits>().size(), 1u);
  EXPECT_EQ(w.all<schema::Rlimits>()[0].limits.size(), 32u);
  auto fs = w.all<schema::FsInfo>();
  ASSERT_EQ(fs.size(), 1u);
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(fs[0].cwd, cwd);

  // Vmas: exactly the child's maps without [vsyscall] (the scratch page is gone again).
  auto vmas = w.all<schema::Vma>();
  std::vector<std::pair<uint64_t, uint64_t>> want, got;
  for (const auto& m : *maps)
    if (m.path != "[vsyscall]") want.emplace_back(m.start, m.end);
  for (const auto& v : vmas) got.emplace_back(v.start, v.end);
  EXPECT_EQ(got, want);
  auto mm = w.all<schema::Mm>();
  ASSERT_EQ(mm.size(), 1u);
  EXPECT_NE(mm[0].brk, 0u);
  EXPECT_GE(mm[0].brk, mm[0].start_brk);
  EXPECT_FALSE(mm[0].auxv.empty());
  EXPECT_EQ(mm[0].auxv.size() % 2, 0u);

  // Pages: the pattern, without the zero pages; the PROT_NONE page; only the COW file page.
  std::map<uint64_t, const uint8_t*> pages;
  auto page_recs = w.all_with_tail<schema::Pages>();
  for (const auto& [rec, tail] : page_recs) {
    ASSERT_EQ(tail.size(), rec.npages * kPage);
    ASSERT_LE(tail.size(), format::kPagesPerRecordBytes);
    for (uint32_t i = 0; i < rec.npages; ++i)
      pages[rec.vaddr + i * kPage] = tail.data() + i * kPage;
  }
  for (size_t i = 0; i < kRegionPages; ++i) {
    uint64_t a = reinterpret_cast<uint64_t>(g_region) + i * kPage;
    if (pattern(i) == 0) {
      EXPECT_EQ(pages.count(a), 0u) << "zero page " << i << " stored";
      continue;
    }
    ASSERT_EQ(pages.count(a), 1u) << "page " << i << " missing";
    EXPECT_EQ(pages[a][0], pattern(i));
    EXPECT_EQ(pages[a][kPage - 1], pattern(i));
  }
  uint64_t na = reinterpret_cast<uint64_t>(g_noaccess);
  ASSERT_EQ(pages.count(na), 1u);
  EXPECT_EQ(pages[na][100], 0xab);
  EXPECT_EQ(pages.count(na + kPage), 0u);
  uint64_t cow = reinterpret_cast<uint64_t>(g_cow);
  EXPECT_EQ(pages.count(cow), 0u);
  ASSERT_EQ(pages.count(cow + kPage), 1u);
  EXPECT_EQ(pages[cow + kPage][0], 'Z');

  // Signal dispositions.
  std::map<uint32_t, schema::Sigaction> sa;
  for (const auto& s : w.all<schema::Sigaction>()) sa[s.signo] = s;
  ASSERT_EQ(sa.count(SIGUSR1), 1u);
  EXPECT_EQ(sa[SIGUSR1].handler, reinterpret_cast<uint64_t>(&on_usr1));
  EXPECT_TRUE(sa[SIGUSR1].flags & SA_RESTART);
  ASSERT_EQ(sa.count(SIGUSR2), 1u);
  EXPECT_EQ(sa[SIGUSR2].handler, reinterpret_cast<uint64_t>(SIG_IGN));
  EXPECT_EQ(sa.count(SIGTERM), 0u);

  // Files.
  std::map<uint32_t, schema::File> files;
  for (const auto& f : w.all<schema::File>()) files[f.id] = f;
  std::map<uint32_t, schema::Fd> fds;
  for (const auto& f : w.all<schema::Fd>()) fds[f.fd] = f;
  ASSERT_EQ(fds.count(20), 1u);
  const schema::File& reg = files[fds[20].file];
  EXPECT_EQ(reg.kind, schema::kFileRegular);
  EXPECT_EQ(reg.path, g_file_path);
  EXPECT_EQ(reg.pos, 1234u);
  EXPECT_EQ(reg.size, 5000u);
  int dups = 0;
  for (const auto& [n, fd] : fds) dups += fd.file == fds[20].file;
  EXPECT_EQ(dups, 2) << "the mkstemp fd and its dup2 share one File";
  EXPECT_EQ(files[fds[0].file].kind, schema::kFileDevice);
  EXPECT_EQ(fds[0].file, fds[1].file);
  for (int ext : {kCmdFd, kAnsFd}) {
    ASSERT_EQ(fds.count(ext), 1u);
    const schema::File& f = files[fds[ext].file];
    EXPECT_EQ(f.kind, schema::kFileExternal);
    EXPECT_TRUE(f.key.starts_with("pipe:[")) << f.key;
  }
  auto pipes = w.all<schema::Pipe>();
  ASSERT_EQ(pipes.size(), 1u);
  auto pdata = w.all_with_tail<schema::PipeData>();
  ASSERT_EQ(pdata.size(), 1u);
  EXPECT_EQ(pdata[0].first.pipe, pipes[0].id);
  EXPECT_EQ(std::string(pdata[0].second.begin(), pdata[0].second.end()), "hello pipe");
  EXPECT_GE(pipes[0].capacity, 4096u);
  ASSERT_EQ(fds.count(g_pipe[0]), 1u);
  ASSERT_EQ(fds.count(g_pipe[1]), 1u);
  EXPECT_EQ(files[fds[g_pipe[0]].file].kind, schema::kFilePipe);
  EXPECT_EQ(files[fds[g_pipe[0]].file].pipe, pipes[0].id);
  EXPECT_EQ(files[fds[g_pipe[1]].file].pipe, pipes[0].id);
  EXPECT_EQ(files[fds[g_pipe[1]].file].flags & O_ACCMODE, static_cast<uint32_t>(O_WRONLY));
  int deleted = 0;
  for (const auto& [id, f] : files) deleted += f.kind == schema::kFileDeleted;
  EXPECT_EQ(deleted, 1);
  auto fdata = w.all_with_tail<schema::FileData>();
  ASSERT_EQ(fdata.size(), 1u);
  EXPECT_EQ(files[fdata[0].first.file].kind, schema::kFileDeleted);
  EXPECT_EQ(std::string(fdata[0].second.begin(), fdata[0].second.end()), "deleted content");

  // Timers and signals.
  auto its = w.all<schema::Itimer>();
  ASSERT_EQ(its.size(), 1u);
  EXPECT_EQ(its[0].which, static_cast<uint32_t>(ITIMER_REAL));
  EXPECT_EQ(its[0].interval_us, 2000000000u);
  EXPECT_GT(its[0].value_us, 900000000u);
  auto pts = w.all<schema::PosixTimer>();
  ASSERT_EQ(pts.size(), 1u);
  EXPECT_EQ(pts[0].clock_id, static_cast<uint32_t>(CLOCK_MONOTONIC));
  EXPECT_EQ(pts[0].notify, static_cast<uint32_t>(SIGEV_NONE));
  EXPECT_GT(pts[0].value_ns, 400000000000u);
  auto pend = w.all<schema::PendingSignal>();
  ASSERT_EQ(pend.size(), 1u);
  EXPECT_EQ(pend[0].tid, 0u);
  ASSERT_EQ(pend[0].siginfo.size(), sizeof(siginfo_t));
  siginfo_t si;
  memcpy(&si, pend[0].siginfo.data(), sizeof si);
  EXPECT_EQ(si.si_signo, SIGRTMIN + 1);
  EXPECT_EQ(si.si_value.sival_int, 42);

  // The thread: stopped inside read(kCmdFd), saved so that it re-runs the read.
  auto th = w.all<schema::Thread>();
  ASSERT_EQ(th.size(), 1u);
  ASSERT_EQ(th[0].regs.size(), 27u);
  user_regs_struct regs;
  memcpy(&regs, th[0].regs.data(), sizeof regs);
  EXPECT_EQ(regs.orig_rax, static_cast<uint64_t>(SYS_read));
  EXPECT_EQ(regs.rax, static_cast<uint64_t>(SYS_read));
  EXPECT_EQ(regs.rdi, static_cast<uint64_t>(kCmdFd));
  EXPECT_TRUE(th[0].sigmask & (uint64_t{1} << (SIGRTMIN + 1 - 1)));
  EXPECT_EQ(th[0].ss_sp, reinterpret_cast<uint64_t>(g_altstack));
  EXPECT_EQ(th[0].ss_size, 65536u);
  EXPECT_GE(th[0].xsave.size(), 512u + 64u);
  EXPECT_NE(th[0].robust_head, 0u);  // glibc registers one per thread
  EXPECT_NE(th[0].clear_child_tid, 0u);

  // The child carries on: read() restarted, memory, pipe contents, pending signal untouched.
  EXPECT_EQ(child.ask('c'), "ok hello pipe");
  unlink(g_file_path);
}

// vaddr -> page contents of every Pages record.
std::map<uint64_t, std::vector<uint8_t>> page_contents(const FakeWriter& w) {
  std::map<uint64_t, std::vector<uint8_t>> out;
  for (const auto& [rec, tail] : w.all_with_tail<schema::Pages>())
    for (uint32_t i = 0; i < rec.npages; ++i)
      out[rec.vaddr + i * kPage].assign(tail.begin() + i * kPage, tail.begin() + (i + 1) * kPage);
  return out;
}

TEST(LiveDump, PagemapScanAndPagemapAgree) {
  // A sparse 16 GiB reservation with a few touched pages, next to the rich child's state.
  static uint8_t* const sparse = reinterpret_cast<uint8_t*>(0x250000000000);
  strcpy(g_file_path, "/tmp/crdump_test_XXXXXX");
  int made = mkstemp(g_file_path);
  ASSERT_GE(made, 0);
  close(made);
  Child child(
      [] {
        rich_setup();
        map_at(sparse, 16ull << 30, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
        for (uint64_t off : {0ull, 5ull << 30, (16ull << 30) - kPage}) sparse[off] = 0x5a;
      },
      rich_check);
  ASSERT_TRUE(child.ready());
  ASSERT_EQ(sigqueue(child.pid(), SIGRTMIN + 1, sigval{}), 0);
  ASSERT_TRUE(wait_blocked_in_read(child.pid()));
  std::map<uint64_t, std::vector<uint8_t>> by_mode[2];
  uint64_t rseq_page = 0;  // the kernel rewrites rseq's cpu_id when the task changes CPU
  for (int scan = 0; scan < 2; ++scan) {
    DumpOptions opts;
    opts.leave_running = true;
    opts.inherit_fds = {kCmdFd, kAnsFd};
    opts.pagemap_scan = scan == 1;
    auto d = run_dump(child.pid(), opts);
    ASSERT_TRUE(d->status.ok()) << d->status.error().message;
    by_mode[scan] = page_contents(d->w);
    rseq_page = d->w.all<schema::Thread>().at(0).rseq_addr & ~(kPage - 1);
  }
  EXPECT_EQ(by_mode[0].size(), by_mode[1].size());
  for (const auto& [addr, data] : by_mode[0]) {
    auto it = by_mode[1].find(addr);
    ASSERT_NE(it, by_mode[1].end()) << std::hex << addr;
    if (addr == rseq_page) continue;
    EXPECT_TRUE(it->second == data) << "page at " << std::hex << addr << " differs";
  }
  for (uint64_t off : {0ull, 5ull << 30, (16ull << 30) - kPage}) {
    uint64_t a = reinterpret_cast<uint64_t>(sparse) + off;
    ASSERT_EQ(by_mode[1].count(a), 1u);
    EXPECT_EQ(by_mode[1][a][0], 0x5a);
  }
  EXPECT_EQ(child.ask('c'), "ok hello pipe");
  unlink(g_file_path);
}

TEST(LiveDump, StoppedChildStaysStopped) {
  Child child([] {}, check_alive);
  ASSERT_TRUE(child.ready());
  ASSERT_EQ(kill(child.pid(), SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child.pid(), &status, WUNTRACED), child.pid());
  ASSERT_TRUE(WIFSTOPPED(status));
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto th = d->w.all<schema::Thread>();
  ASSERT_EQ(th.size(), 1u);
  EXPECT_TRUE(th[0].flags & schema::kThreadStopped);
  // Detached, it goes back into the group stop (it would sit in read(), state S, otherwise).
  auto proc = ProcDir::open(child.pid());
  ASSERT_TRUE(proc.ok());
  char state = 0;
  for (int i = 0; i < 100000 && state != 'T'; ++i) {
    auto stat = parse_stat(proc->read("stat").value());
    ASSERT_TRUE(stat.ok());
    state = stat->state;
    if (state != 'T') sched_yield();
  }
  EXPECT_EQ(state, 'T');
  ASSERT_EQ(kill(child.pid(), SIGCONT), 0);
  EXPECT_EQ(child.ask('c'), "alive");
}

TEST(LiveDump, WriteFailureLeavesTaskUntouched) {
  strcpy(g_file_path, "/tmp/crdump_test_XXXXXX");
  int made = mkstemp(g_file_path);
  ASSERT_GE(made, 0);
  close(made);
  Child child(rich_setup, rich_check);
  ASSERT_TRUE(child.ready());
  ASSERT_EQ(sigqueue(child.pid(), SIGRTMIN + 1, sigval{}), 0);
  ASSERT_TRUE(wait_blocked_in_read(child.pid()));
  auto proc = ProcDir::open(child.pid());
  ASSERT_TRUE(proc.ok());
  std::string maps_before = proc->read("maps").value();
  std::string status_before = proc->read("status").value();
  // Fails after the injected calls and in the middle of the pages (not leave-running: a
  // failed dump must not kill either).
  FakeWriter w;
  w.fail_on_type = schema::Pages::kType;
  Status st = dump_process(child.pid(), {.inherit_fds = {kCmdFd, kAnsFd}}, w);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("injected write failure"), std::string::npos);
  EXPECT_TRUE(w.failed);
  ASSERT_TRUE(wait_blocked_in_read(child.pid()));
  EXPECT_EQ(proc->read("maps").value(), maps_before) << "scratch page left behind";
  auto sigblk = [](const std::string& status) { return parse_status(status).value().sig_blk; };
  EXPECT_EQ(sigblk(proc->read("status").value()), sigblk(status_before));
  EXPECT_EQ(child.ask('c'), "ok hello pipe");
  unlink(g_file_path);
}

TEST(LiveDump, KilledAfterDump) {
  Child child([] {}, check_alive);
  ASSERT_TRUE(child.ready());
  DumpOptions opts;
  opts.inherit_fds = {kCmdFd, kAnsFd};
  auto d = run_dump(child.pid(), opts);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  EXPECT_TRUE(d->w.finished);
  // Killed, and reaped by the dump (we are its tracer and its parent).
  errno = 0;
  EXPECT_EQ(kill(child.pid(), 0), -1);
  EXPECT_EQ(errno, ESRCH);
  child.mark_gone();
}

TEST(LiveDump, PassesReported) {
  Child child([] {}, check_alive);
  ASSERT_TRUE(child.ready());
  DumpOptions opts;
  opts.leave_running = true;
  opts.inherit_fds = {kCmdFd, kAnsFd};
  std::vector<std::string> names;
  opts.on_pass = [&](std::string_view n, double s) {
    names.emplace_back(n);
    EXPECT_GE(s, 0.0);
  };
  auto d = run_dump(child.pid(), opts);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "freeze");
  EXPECT_EQ(names.back(), "detach");
  EXPECT_EQ(child.ask('c'), "alive");
}

// A refused dump fails with `expect` in its message, ends the stream with an error, and leaves
// the child running and answering.
void expect_refused(Child& child, const std::string& expect, DumpOptions opts = {}) {
  ASSERT_TRUE(child.ready());
  if (opts.inherit_fds.empty()) opts.inherit_fds = {kCmdFd, kAnsFd};
  auto d = run_dump(child.pid(), opts);
  ASSERT_FALSE(d->status.ok());
  EXPECT_NE(d->status.error().message.find(expect), std::string::npos) << d->status.error().message;
  EXPECT_TRUE(d->w.failed);
  EXPECT_FALSE(d->w.finished);
  EXPECT_EQ(d->w.fail_message, d->status.error().message);
  EXPECT_EQ(child.ask('c'), "alive");
}

// An epoll is a File; each watch an EpollItem after every Fd, naming its target File even when
// the fd number it was added under has been closed (the file lives on at another fd).
TEST(LiveDump, EpollWatchesAreItems) {
  Child child(
      [] {
        int empty = epoll_create1(0), e = epoll_create1(0);
        dup2(empty, 7);
        dup2(e, 8);
        int a = eventfd(0, 0), b = eventfd(0, 0);
        dup2(a, 9);
        dup2(b, 10);
        close(empty);
        close(e);
        close(a);
        close(b);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.u64 = 42;
        if (epoll_ctl(8, EPOLL_CTL_ADD, 9, &ev) != 0) _exit(95);
        ev.events = EPOLLOUT;
        ev.data.u64 = 43;
        if (epoll_ctl(8, EPOLL_CTL_ADD, 10, &ev) != 0) _exit(96);
        dup2(10, 11);
        close(10);  // the watch stays, keyed by (file, 10)
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  std::map<uint32_t, uint32_t> file_of;
  for (const auto& fd : d->w.all<schema::Fd>()) file_of[fd.fd] = fd.file;
  for (const auto& f : d->w.all<schema::File>()) {
    if (f.id == file_of[7] || f.id == file_of[8]) {
      EXPECT_EQ(f.kind, schema::kFileEpoll) << f.id;
    }
  }
  auto items = d->w.all<schema::EpollItem>();
  ASSERT_EQ(items.size(), 2u);
  std::sort(items.begin(), items.end(), [](auto& x, auto& y) { return x.data < y.data; });
  EXPECT_EQ(items[0].epoll, file_of[8]);
  EXPECT_EQ(items[0].target, file_of[9]);
  EXPECT_EQ(items[0].tfd, 9u);
  EXPECT_EQ(items[0].events, uint32_t{EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP});
  EXPECT_EQ(items[0].data, 42u);
  EXPECT_EQ(items[1].epoll, file_of[8]);
  EXPECT_EQ(items[1].target, file_of[11]);
  EXPECT_EQ(items[1].tfd, 10u);
  EXPECT_EQ(items[1].events, uint32_t{EPOLLOUT | EPOLLERR | EPOLLHUP});
  // Every EpollItem comes after every Fd.
  size_t last_fd = 0, first_item = d->w.recs.size();
  for (size_t i = 0; i < d->w.recs.size(); ++i) {
    if (d->w.recs[i].type == schema::Fd::kType) last_fd = i;
    if (d->w.recs[i].type == schema::EpollItem::kType) first_item = std::min(first_item, i);
  }
  EXPECT_LT(last_fd, first_item);
  EXPECT_EQ(child.ask('c'), "alive");
}

// A fired EPOLLONESHOT watch on a pipe with nothing to read: restore could not disarm it.
TEST(LiveDump, RefusesFiredOneShotWithNothingReady) {
  Child child(
      [] {
        int p[2];
        if (pipe(p) != 0 || write(p[1], "x", 1) != 1) _exit(95);
        dup2(p[0], 9);
        int e = epoll_create1(0);
        dup2(e, 7);
        close(e);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        if (epoll_ctl(7, EPOLL_CTL_ADD, 9, &ev) != 0 || epoll_wait(7, &ev, 1, 0) != 1) _exit(96);
        char c;
        if (read(9, &c, 1) != 1) _exit(97);
      },
      check_alive);
  expect_refused(child,
                 "fd 7: epoll watch of fd 9: a fired EPOLLONESHOT watch on a file with "
                 "no event ready");
}

TEST(LiveDump, RefusesTimerfdCancelledOnClockChange) {
  Child child(
      [] {
        int t = timerfd_create(CLOCK_REALTIME, 0);
        itimerspec at{};
        clock_gettime(CLOCK_REALTIME, &at.it_value);
        at.it_value.tv_sec += 3600;
        timerfd_settime(t, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &at, nullptr);
        dup2(t, 7);
        close(t);
      },
      check_alive);
  expect_refused(child, "fd 7: timerfd with TFD_TIMER_CANCEL_ON_SET not supported yet");
}

// A deleted file mapped MAP_SHARED is dumped as shared memory; with an fd still open on it the
// two would come back as separate objects, so it is refused.
TEST(LiveDump, RefusesDeletedFileOpenAndMappedShared) {
  Child child(
      [] {
        char path[] = "/tmp/crtools-deleted-shared-XXXXXX";
        int f = mkstemp(path);
        if (f < 0 || ftruncate(f, 4096) != 0) _exit(93);
        unlink(path);
        if (mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0) == MAP_FAILED) _exit(94);
        dup2(f, 7);
        close(f);
      },
      check_alive);
  expect_refused(child, "that is also mapped shared not supported yet");
}

// SysV objects of the host's IPC namespace are the whole system's, not the tree's.
TEST(LiveDump, RefusesSysvShmOfTheHostNamespace) {
  Child child(
      [] {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id < 0 || shmat(id, nullptr, 0) == reinterpret_cast<void*>(-1)) _exit(93);
        shmctl(id, IPC_RMID, nullptr);  // goes with the child
      },
      check_alive);
  expect_refused(child, "SysV shared memory of the host's IPC namespace");
}

// A POSIX message queue's fd looks like a regular file ("/name (deleted)" once unlinked): it
// must be refused, not dumped as a deleted file.
TEST(LiveDump, RefusesPosixMessageQueue) {
  Child child(
      [] {
        const std::string name = "/crtools-test-" + std::to_string(getpid());
        mqd_t q = mq_open(name.c_str(), O_CREAT | O_RDWR, 0600, nullptr);
        if (q < 0) _exit(93);
        mq_unlink(name.c_str());
        if (q != 7) {
          dup2(q, 7);
          close(q);
        }
      },
      check_alive);
  expect_refused(child, "fd 7: POSIX message queue");
}

TEST(LiveDump, EventFdsKeepTheirState) {
  Child child(
      [] {
        int e = eventfd(0, EFD_SEMAPHORE);
        uint64_t five = 5;
        if (write(e, &five, 8) != 8) _exit(94);
        dup2(e, 7);
        close(e);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR2);
        int s = signalfd(-1, &set, 0);
        dup2(s, 8);
        close(s);
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  std::map<uint32_t, uint32_t> file_of;
  for (const auto& fd : d->w.all<schema::Fd>()) file_of[fd.fd] = fd.file;
  for (const auto& f : d->w.all<schema::File>()) {
    if (f.id == file_of[7]) {
      EXPECT_EQ(f.kind, schema::kFileEventfd);
      EXPECT_EQ(f.counter, 5u);
      EXPECT_EQ(f.kflags, uint32_t{schema::kFileEfdSemaphore});
    }
    if (f.id == file_of[8]) {
      EXPECT_EQ(f.kind, schema::kFileSignalfd);
      EXPECT_EQ(f.sigmask, uint64_t{1} << (SIGUSR2 - 1));
    }
  }
  EXPECT_EQ(child.ask('c'), "alive");
}

// Shared anonymous memory: one Shmem object with its non-zero pages, the Vma naming it, no
// Pages of the process for it.
TEST(LiveDump, SharedAnonymousIsOneObject) {
  Child child(
      [] {
        void* p = mmap(reinterpret_cast<void*>(0x200000000000), 3 * kPage, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == MAP_FAILED) _exit(91);
        static_cast<uint8_t*>(p)[kPage] = 0x5a;  // the middle page only
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto shm = d->w.all<schema::Shmem>();
  ASSERT_EQ(shm.size(), 1u);
  EXPECT_EQ(shm[0].size, 3 * kPage);
  auto data = d->w.all_with_tail<schema::ShmemData>();
  ASSERT_EQ(data.size(), 1u) << "zero pages are left out";
  EXPECT_EQ(data[0].first.offset, kPage);
  ASSERT_EQ(data[0].second.size(), kPage);
  EXPECT_EQ(data[0].second[0], 0x5a);
  const auto vmas = d->w.all<schema::Vma>();
  const schema::Vma* vma = nullptr;
  for (const auto& v : vmas)
    if (v.start == 0x200000000000) vma = &v;
  ASSERT_NE(vma, nullptr);
  EXPECT_EQ(vma->kind, schema::kVmaAnonShared);
  EXPECT_EQ(vma->shmem, shm[0].id);
  for (const auto& [p, tail] : d->w.all_with_tail<schema::Pages>())
    EXPECT_FALSE(p.vaddr >= 0x200000000000 && p.vaddr < 0x200000003000) << "pages of the shmem";
  EXPECT_EQ(child.ask('c'), "alive");
}

// Locked memory is recorded per mapping (lock-on-fault apart), and the process is flagged so
// that an older build refuses it.
TEST(LiveDump, RecordsMlockedMemory) {
  Child child(
      [] {
        void* p = mmap(reinterpret_cast<void*>(0x210000000000), 4 * kPage, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        // The raw syscalls: ASan intercepts mlock() and makes it a no-op.
        if (p == MAP_FAILED || syscall(SYS_mlock, p, 2 * kPage) != 0 ||
            syscall(SYS_mlock2, static_cast<char*>(p) + 2 * kPage, 2 * kPage, MLOCK_ONFAULT) != 0)
          _exit(91);
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  uint32_t locked = 0, on_fault = 0;
  for (const auto& v : d->w.all<schema::Vma>()) {
    if (v.start == 0x210000000000) locked = v.madv;
    if (v.start == 0x210000002000) on_fault = v.madv;
  }
  EXPECT_EQ(locked & (schema::kMadvLocked | schema::kMadvLockOnFault), schema::kMadvLocked);
  EXPECT_EQ(on_fault & (schema::kMadvLocked | schema::kMadvLockOnFault),
            schema::kMadvLocked | schema::kMadvLockOnFault);
  auto procs = d->w.all<schema::Process>();
  ASSERT_FALSE(procs.empty());
  EXPECT_NE(procs[0].flags & schema::kProcessMemLock, 0u);
  EXPECT_EQ(child.ask('c'), "alive");
}

TEST(LiveDump, RefusesExternalPipeWithoutInheritFd) {
  Child child([] {}, check_alive);
  DumpOptions opts;
  opts.inherit_fds = {kAnsFd};  // kCmdFd's other end is ours
  expect_refused(child, "fd 100: pipe:[", opts);
}

// Thread state the workers of the threaded child set up; the parent reads it back from the
// image. Fixed addresses so the parent knows them without asking.
void* const g_thread_altstack = reinterpret_cast<void*>(0x250000000000);
pid_t g_worker_tids[2];

void start_workers(void* (*body)(void*)) {
  static pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, nullptr, 3);
  for (long i = 0; i < 2; ++i) {
    pthread_t t;
    struct Arg {
      long i;
      pthread_barrier_t* b;
      void* (*body)(void*);
    };
    auto* a = new Arg{i, &barrier, body};
    pthread_create(
        &t, nullptr,
        [](void* p) -> void* {
          auto* a = static_cast<Arg*>(p);
          void* r = a->body(reinterpret_cast<void*>(a->i));
          pthread_barrier_wait(a->b);
          for (;;) pause();
          return r;
        },
        a);
  }
  pthread_barrier_wait(&barrier);
}

TEST(LiveDump, EveryThreadGetsItsRecord) {
  Child child(
      [] {
        map_at(g_thread_altstack, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        start_workers([](void* arg) -> void* {
          const long i = reinterpret_cast<long>(arg);
          g_worker_tids[i] = static_cast<pid_t>(syscall(SYS_gettid));
          // Worker 0: its own altstack and name; worker 1: a blocked signal queued to it alone.
          if (i == 0) {
            stack_t ss{};
            ss.ss_sp = g_thread_altstack;
            ss.ss_size = 65536;
            sigaltstack(&ss, nullptr);
            pthread_setname_np(pthread_self(), "worker-zero");
          } else {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, SIGUSR2);
            pthread_sigmask(SIG_BLOCK, &s, nullptr);
            syscall(SYS_tgkill, getpid(), g_worker_tids[1], SIGUSR2);
          }
          return nullptr;
        });
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto proc = ProcDir::open(child.pid());
  ASSERT_TRUE(proc.ok());
  std::vector<pid_t> tids = proc->tasks().value();
  ASSERT_EQ(tids.size(), 3u);
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto procs = d->w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].nthreads, 3u);
  auto th = d->w.all<schema::Thread>();
  ASSERT_EQ(th.size(), 3u);
  EXPECT_EQ(th[0].tid, static_cast<uint32_t>(child.pid())) << "the leader comes first";
  std::set<uint32_t> got, want(tids.begin(), tids.end());
  for (const auto& t : th) got.insert(t.tid);
  EXPECT_EQ(got, want);
  const schema::Thread* w0 = nullptr;
  for (const auto& t : th)
    if (t.comm == "worker-zero") w0 = &t;
  ASSERT_NE(w0, nullptr) << "a thread's own name is kept";
  EXPECT_EQ(w0->ss_sp, reinterpret_cast<uint64_t>(g_thread_altstack));
  EXPECT_EQ(w0->ss_size, 65536u);
  // (the leader may have one of its own: ASan installs one)
  EXPECT_NE(th[0].ss_sp, reinterpret_cast<uint64_t>(g_thread_altstack))
      << "the altstack belongs to the worker only";
  for (const auto& t : th) {
    EXPECT_NE(t.clear_child_tid, 0u) << "glibc sets it in every thread";
    EXPECT_NE(t.robust_head, 0u) << "glibc registers a robust list in every thread";
  }
  auto pending = d->w.all<schema::PendingSignal>();
  int usr2 = 0;
  for (const auto& ps : pending) {
    siginfo_t si;
    ASSERT_EQ(ps.siginfo.size(), sizeof si);
    std::memcpy(&si, ps.siginfo.data(), sizeof si);
    if (si.si_signo == SIGUSR2) {
      ++usr2;
      EXPECT_NE(ps.tid, 0u) << "queued to one thread, not to the process";
      EXPECT_NE(ps.tid, static_cast<uint32_t>(child.pid()));
    }
  }
  EXPECT_EQ(usr2, 1);
  // Every thread is running again, the signal still pending in its thread.
  EXPECT_EQ(proc->tasks().value(), tids);
  EXPECT_EQ(child.ask('c'), "alive");
}

TEST(LiveDump, FailedDumpResumesEveryThread) {
  Child child(
      [] {
        start_workers([](void* arg) -> void* {
          g_worker_tids[reinterpret_cast<long>(arg)] = static_cast<pid_t>(syscall(SYS_gettid));
          return nullptr;
        });
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto proc = ProcDir::open(child.pid());
  ASSERT_TRUE(proc.ok());
  std::vector<pid_t> tids = proc->tasks().value();
  ASSERT_EQ(tids.size(), 3u);
  auto masks = [&] {
    std::vector<uint64_t> out;
    for (pid_t t : tids)
      out.push_back(parse_status(proc->read("task/" + std::to_string(t) + "/status").value())
                        .value()
                        .sig_blk);
    return out;
  };
  const std::vector<uint64_t> before = masks();
  // Fails after every thread's injected calls, in the middle of writing the threads.
  FakeWriter w;
  w.fail_on_type = schema::Thread::kType;
  Status st = dump_process(child.pid(), {.inherit_fds = {kCmdFd, kAnsFd}}, w);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(w.failed);
  EXPECT_EQ(proc->tasks().value(), tids);
  EXPECT_EQ(masks(), before) << "a thread kept the injection's blocked mask";
  for (pid_t t : tids) {
    // Not traced any more: TracerPid 0 in every thread.
    std::string status = proc->read("task/" + std::to_string(t) + "/status").value();
    EXPECT_NE(status.find("TracerPid:\t0\n"), std::string::npos) << "thread " << t;
  }
  EXPECT_EQ(child.ask('c'), "alive");
}

// A pipe whose writer has gone everywhere (as make gives its jobs for stdin) is dumped with its
// one end; a pipe whose other end another process holds is not (see the test above).
TEST(LiveDump, PipeWithItsWriterGoneIsDumped) {
  Child child(
      [] {
        int p[2];
        if (pipe(p) != 0) _exit(93);
        dup2(p[0], 20);
        close(p[0]);
        close(p[1]);
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  bool seen = false;
  for (const auto& fd : d->w.all<schema::Fd>()) seen |= fd.fd == 20;
  EXPECT_TRUE(seen);
  EXPECT_EQ(child.ask('c'), "alive");
}

TEST(LiveDump, RefusesThreadWithItsOwnCredentials) {
  Child child(
      [] {
        start_workers([](void* arg) -> void* {
          // The raw call changes only this thread (glibc's setresgid would change all).
          if (reinterpret_cast<long>(arg) == 1) syscall(SYS_setresgid, 0, 1, 0);
          return nullptr;
        });
      },
      check_alive);
  expect_refused(child, "has credentials different from its process's");
}

// A thread's own fd table or fs context would be lost: the image has one per process.
TEST(LiveDump, RefusesThreadWithItsOwnFdTable) {
  Child child(
      [] {
        start_workers([](void* arg) -> void* {
          if (reinterpret_cast<long>(arg) == 1 && unshare(CLONE_FILES) == 0) dup2(0, 30);
          return nullptr;
        });
      },
      check_alive);
  expect_refused(child, ": an fd table of its own (unshare(CLONE_FILES)) not supported yet");
}

TEST(LiveDump, RefusesThreadWithItsOwnFsContext) {
  Child child(
      [] {
        start_workers([](void* arg) -> void* {
          if (reinterpret_cast<long>(arg) == 1 && unshare(CLONE_FS) == 0) umask(077);
          return nullptr;
        });
      },
      check_alive);
  expect_refused(child, ": a cwd, root and umask of its own (unshare(CLONE_FS)) not supported yet");
}

// In a test's grandchild: dies with its parent, also when the parent died before the prctl.
void die_with_parent(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
}

TEST(LiveDump, ChildOfAThreadIsPartOfTheTree) {
  static pid_t grandchild;
  Child child(
      [] {
        start_workers([](void* arg) -> void* {
          if (reinterpret_cast<long>(arg) == 0) {
            const pid_t parent = getpid();
            grandchild = fork();
            if (grandchild == 0) {
              die_with_parent(parent);
              for (;;) pause();
            }
          }
          return nullptr;
        });
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto procs = d->w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[1].ppid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(procs[1].nthreads, 1u);
  EXPECT_EQ(child.ask('c'), "alive");
}

// The root, a child and a grandchild: one image, parents first, the open file descriptions
// they share by inheritance written once, the tree left running as it was.
TEST(LiveDump, DumpsTheWholeTree) {
  Child child(
      [] {
        const pid_t root = getpid();
        if (fork() == 0) {
          die_with_parent(root);
          const pid_t mid = getpid();
          if (fork() == 0) {
            die_with_parent(mid);
            for (;;) pause();
          }
          for (;;) pause();
        }
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto children = [&](pid_t pid) -> std::string {
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) return "";
    auto text = proc->read("task/" + std::to_string(pid) + "/children");
    return text.ok() ? *text : "";
  };
  // The child has forked before saying ready; its own child may still be on its way.
  std::string kids;
  for (int i = 0; i < 1000000 && kids.empty(); ++i) {
    kids = children(child.pid());
    if (!kids.empty() && children(std::stoi(kids)).empty()) kids.clear();
    if (kids.empty()) sched_yield();
  }
  ASSERT_FALSE(kids.empty());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto procs = d->w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 3u);
  EXPECT_EQ(procs[0].pid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(procs[1].ppid, procs[0].pid);
  EXPECT_EQ(procs[2].ppid, procs[1].pid);
  // Every Fd comes before any process's Mm; Mm records in tree order.
  auto mms = d->w.all<schema::Mm>();
  ASSERT_EQ(mms.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(mms[i].pid, procs[i].pid);
  EXPECT_LT(first_index<schema::Fd>(d->w), first_index<schema::Mm>(d->w));
  // fd 0 (/dev/null, inherited twice) is one File for all three.
  std::map<uint32_t, uint32_t> fd0;  // pid -> file
  for (const auto& fd : d->w.all<schema::Fd>())
    if (fd.fd == 0) fd0[fd.pid] = fd.file;
  ASSERT_EQ(fd0.size(), 3u);
  EXPECT_EQ(fd0[procs[0].pid], fd0[procs[1].pid]);
  EXPECT_EQ(fd0[procs[0].pid], fd0[procs[2].pid]);
  EXPECT_EQ(d->w.all<schema::Thread>().size(), 3u);
  EXPECT_EQ(child.ask('c'), "alive");
  for (size_t i = 1; i < 3; ++i) EXPECT_EQ(kill(static_cast<pid_t>(procs[i].pid), 0), 0);
}

// A fork that keeps one fd table with its parent (CLONE_FILES) is recorded as sharing it, and
// its fds are its parent's: no Fd records of its own.
TEST(LiveDump, ChildSharingTheFdTableIsRecorded) {
  Child child(
      [] {
        const pid_t parent = getpid();
        if (syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, 0, 0, 0) == 0) {
          die_with_parent(parent);
          for (;;) pause();
        }
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto procs = d->w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0].files_shared_with, 0u);
  EXPECT_EQ(procs[1].files_shared_with, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(procs[1].fs_shared_with, static_cast<uint32_t>(child.pid()));
  for (const auto& fd : d->w.all<schema::Fd>()) EXPECT_EQ(fd.pid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(child.ask('c'), "alive");
}

// Two children still sharing one fd table after their parent left it (unshare): restore can
// only clone a shared table from the parent, so this is refused.
TEST(LiveDump, RefusesSiblingsSharingAnFdTableWithoutTheirParent) {
  Child child(
      [] {
        const pid_t parent = getpid();
        for (int i = 0; i < 2; ++i)
          if (syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0) == 0) {
            die_with_parent(parent);
            for (;;) pause();
          }
        if (unshare(CLONE_FILES) != 0) _exit(95);
      },
      check_alive);
  expect_refused(child, "shares its fd table (CLONE_FILES) with pid");
}

// A child in a process group whose leader is alive outside the tree (the group this test runs
// in, while the root has one of its own): restore could not put it back there. Refused.
TEST(LiveDump, RefusesGroupLedByALiveProcessOutside) {
  static pid_t outside_group;
  outside_group = getpgrp();
  Child child(
      [] {
        const pid_t parent = getpid();
        if (setpgid(0, 0) != 0) _exit(96);  // the root leads its own group
        const pid_t kid = fork();
        if (kid == 0) {
          die_with_parent(parent);
          for (;;) pause();
        }
        if (setpgid(kid, outside_group) != 0) _exit(97);  // done before the root says ready
      },
      check_alive);
  // (This test's group leader may have exited while the group lives on: refused all the same.)
  expect_refused(child, "led from outside the tree: not supported yet");
}

TEST(LiveDump, ZombieChildKeepsItsExitStatus) {
  static pid_t zombie;
  Child child(
      [] {
        zombie = fork();
        if (zombie == 0) _exit(3);
        siginfo_t si;
        waitid(P_PID, static_cast<id_t>(zombie), &si, WEXITED | WNOWAIT);  // a zombie, not reaped
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto procs = d->w.all<schema::Process>();
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_TRUE(procs[1].flags & schema::kProcessZombie);
  EXPECT_EQ(procs[1].ppid, static_cast<uint32_t>(child.pid()));
  EXPECT_TRUE(WIFEXITED(procs[1].exit_status) && WEXITSTATUS(procs[1].exit_status) == 3)
      << procs[1].exit_status;
  EXPECT_EQ(procs[1].nthreads, 0u);
  // Nothing but its Process record: no Mm, no Thread, no Fd of its pid.
  EXPECT_EQ(d->w.all<schema::Mm>().size(), 1u);
  EXPECT_EQ(d->w.all<schema::Thread>().size(), 1u);
  for (const auto& fd : d->w.all<schema::Fd>()) EXPECT_NE(fd.pid, procs[1].pid);
  EXPECT_EQ(child.ask('c'), "alive");
}

// A unix socket connected to a listener of this test process: its peer is outside, refused.
TEST(LiveDump, RefusesUnixSocketWithPeerOutsideTheTree) {
  static sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "crtools-live-dump-" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  static socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ScopedFd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l.get(), 1), 0);
  Child child(
      [] {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(s, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(98);
        dup2(s, 9);
        close(s);
      },
      check_alive);
  ScopedFd accepted(accept(l.get(), nullptr, nullptr));
  ASSERT_TRUE(accepted.valid());
  expect_refused(child, "fd 9: unix socket connected to socket:[");
}

// A socket the child got (SCM_RIGHTS) after this process accepted it from its listener: the
// client end is in the tree too, but the listener that gives the name is outside, and alive.
TEST(LiveDump, RefusesUnixSocketAcceptedFromAListenerOutside) {
  static sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "crtools-live-dump-acc-" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  static socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ScopedFd l(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(l.get(), 2), 0);
  // Accepts the child's two connections and hands the second's accepted end over the first.
  std::thread server([&] {
    ScopedFd a1(accept(l.get(), nullptr, nullptr)), a2(accept(l.get(), nullptr, nullptr));
    const int fd = a2.get();
    const char byte = 'x';
    (void)sys::send_with_fds(a1.get(), &byte, 1, std::span<const int>(&fd, 1), 0);
  });
  Child child(
      [] {
        int s1 = socket(AF_UNIX, SOCK_STREAM, 0), s2 = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(s1, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
            connect(s2, reinterpret_cast<sockaddr*>(&addr), len) != 0)
          _exit(98);
        char byte, cbuf[CMSG_SPACE(sizeof(int))];
        iovec iov{&byte, 1};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = cbuf;
        m.msg_controllen = sizeof cbuf;
        if (recvmsg(s1, &m, 0) != 1 || CMSG_FIRSTHDR(&m) == nullptr) _exit(99);
        int got;
        std::memcpy(&got, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof got);
        dup2(got, 9);
        dup2(s2, 10);
        close(got);
        close(s1);
        close(s2);
      },
      check_alive);
  server.join();
  expect_refused(child, "fd 9: unix socket accepted from listener socket:[");
}

// Out-of-band data on a stream is refused (restore would send it as an ordinary byte), and the
// peek leaves both the data and the mark in place.
TEST(LiveDump, RefusesUnixStreamWithOutOfBandData) {
  Child child(
      [] {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) _exit(95);
        if (send(sv[0], "ab", 2, 0) != 2 || send(sv[0], "!", 1, MSG_OOB) != 1) _exit(96);
        dup2(sv[0], 8);
        dup2(sv[1], 9);
        close(sv[0]);
        close(sv[1]);
      },
      [] {  // "alive" when the bytes before the mark and the out-of-band byte are all there
        char oob = 0, data[4] = {0};
        ssize_t o = recv(9, &oob, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
        ssize_t n = recv(9, data, sizeof data, MSG_PEEK | MSG_DONTWAIT);
        std::string got = std::string(data, n > 0 ? n : 0) + (o == 1 ? std::string(1, oob) : "");
        return got == "ab!" ? std::string("alive") : "queue now '" + got + "'";
      });
  expect_refused(child, "fd 9: unix stream socket with out-of-band data (MSG_OOB) not supported yet");
}

// A route socket bound with a group, one above bind's 32 bits joined by option, and a flag
// set: one NetlinkSocket naming each group once, the option that differs from a new
// socket's, and the port id the kernel gave it (its pid, free at the first autobind).
TEST(LiveDump, NetlinkRouteSocketRecorded) {
  Child child(
      [] {
        int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        sockaddr_nl a{};
        a.nl_family = AF_NETLINK;
        a.nl_groups = 1;  // RTMGRP_LINK
        if (s < 0 || bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) _exit(95);
        int g = 33, on = 1;
        if (setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g) != 0 ||
            setsockopt(s, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on) != 0)
          _exit(96);
        dup2(s, 9);
        close(s);
      },
      check_alive);
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  auto socks = d->w.all<schema::NetlinkSocket>();
  ASSERT_EQ(socks.size(), 1u);
  const auto& n = socks[0];
  EXPECT_EQ(n.protocol, uint32_t{NETLINK_ROUTE});
  EXPECT_EQ(n.type, uint32_t{SOCK_RAW});
  EXPECT_EQ(n.flags, uint32_t{schema::kNetlinkBound});
  EXPECT_EQ(n.portid, static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(n.groups, (std::vector<uint64_t>{1, 33}));
  EXPECT_EQ(n.opts, (std::vector<uint64_t>{uint64_t{SOL_NETLINK} << 48 |
                                           uint64_t{NETLINK_NO_ENOBUFS} << 32 | 1}));
  bool named = false;
  for (const auto& f : d->w.all<schema::File>())
    if (f.kind == schema::kFileNetlinkSocket) named = f.object == n.id;
  EXPECT_TRUE(named);
  EXPECT_EQ(child.ask('c'), "alive");
}

TEST(LiveDump, RefusesNetlinkSockDiagSocket) {
  Child child(
      [] {
        int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG);
        dup2(s, 9);
        close(s);
      },
      check_alive);
  expect_refused(child, "fd 9: netlink sock_diag socket not supported yet");
}

// An ack the program has not read: the kernel's messages cannot be queued again at restore.
TEST(LiveDump, RefusesNetlinkSocketWithMessagesQueued) {
  Child child(
      [] {
        int s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
        nlmsghdr h{};
        h.nlmsg_len = sizeof h;
        h.nlmsg_type = NLMSG_NOOP;
        h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        if (s < 0 || send(s, &h, sizeof h, 0) != sizeof h) _exit(95);
        dup2(s, 9);
        close(s);
      },
      check_alive);
  expect_refused(child, "fd 9: netlink route socket with messages queued not supported yet");
}

TEST(LiveDump, RefusesRawInetSocket) {
  Child child(
      [] {
        int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        dup2(s, 9);
        close(s);
      },
      check_alive);
  expect_refused(child, "fd 9: raw socket (SOCK_RAW) not supported yet");
}

// Queued messages are peeked, not consumed: the image holds each one in order with its
// boundaries, the child still reads them all, and its own SO_PEEK_OFF is what it set.
TEST(LiveDump, UnixQueuesPeekedNotConsumed) {
  Child child(
      [] {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) _exit(95);
        if (send(sv[0], "one", 3, 0) != 3 || send(sv[0], "two!", 4, 0) != 4) _exit(96);
        int off = 1;  // the child peeks from offset 1 itself
        if (setsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off) != 0) _exit(97);
        dup2(sv[0], 8);
        dup2(sv[1], 9);
        close(sv[0]);
        close(sv[1]);
      },
      [] {
        int off = -2;
        socklen_t len = sizeof off;
        getsockopt(9, SOL_SOCKET, SO_PEEK_OFF, &off, &len);
        char a[8] = {0}, b[8] = {0};
        ssize_t n1 = recv(9, a, sizeof a, MSG_DONTWAIT), n2 = recv(9, b, sizeof b, MSG_DONTWAIT);
        return "peek_off " + std::to_string(off) + " " + std::string(a, n1 > 0 ? n1 : 0) + "," +
               std::string(b, n2 > 0 ? n2 : 0);
      });
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  std::map<uint32_t, uint32_t> object_of;  // fd -> UnixSocket id
  std::map<uint32_t, uint32_t> file_of;
  for (const auto& fd : d->w.all<schema::Fd>()) file_of[fd.fd] = fd.file;
  for (const auto& f : d->w.all<schema::File>())
    for (int fd : {8, 9})
      if (f.id == file_of[fd]) {
        EXPECT_EQ(f.kind, schema::kFileUnixSocket);
        object_of[fd] = f.object;
      }
  auto socks = d->w.all<schema::UnixSocket>();
  ASSERT_EQ(socks.size(), 2u);
  for (const auto& u : socks) {
    EXPECT_EQ(u.type, static_cast<uint32_t>(SOCK_SEQPACKET));
    EXPECT_EQ(u.state, uint32_t{schema::kUnixConnected});
    EXPECT_EQ(u.peek_off, u.id == object_of[9] ? 1 : -1);
  }
  EXPECT_EQ(socks[1].peer, socks[0].id);  // the second names the first
  auto data = d->w.all_with_tail<schema::UnixSocketData>();
  ASSERT_EQ(data.size(), 2u);
  EXPECT_EQ(data[0].first.socket, object_of[9]);
  EXPECT_EQ(std::string(data[0].second.begin(), data[0].second.end()), "one");
  EXPECT_EQ(std::string(data[1].second.begin(), data[1].second.end()), "two!");
  EXPECT_EQ(child.ask('c'), "peek_off 1 one,two!");
}

TEST(LiveDump, FifoDataKeptAndNotConsumed) {
  static char path[] = "/tmp/crdump_fifo_XXXXXX";
  ASSERT_NE(mkdtemp(path), nullptr);
  static std::string fifo = std::string(path) + "/f";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Child child(
      [] {
        int f = open(fifo.c_str(), O_RDWR | O_NONBLOCK);  // both ends in one description
        dup2(f, 12);
        close(f);
        write_all(12, "fifo bytes");
      },
      [] {
        char buf[32] = {};
        ssize_t n = read(12, buf, sizeof buf - 1);
        return std::string(buf, n > 0 ? n : 0);
      });
  ASSERT_TRUE(child.ready());
  auto d = dump_leaving_running(child);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  std::map<uint32_t, schema::Fd> fds;
  for (const auto& f : d->w.all<schema::Fd>()) fds[f.fd] = f;
  ASSERT_EQ(fds.count(12), 1u);
  schema::File file;
  for (const auto& f : d->w.all<schema::File>())
    if (f.id == fds[12].file) file = f;
  EXPECT_EQ(file.kind, schema::kFileFifo);
  EXPECT_EQ(file.path, fifo);
  EXPECT_EQ(file.flags & O_ACCMODE, static_cast<uint32_t>(O_RDWR));
  auto pdata = d->w.all_with_tail<schema::PipeData>();
  ASSERT_EQ(pdata.size(), 1u);
  EXPECT_EQ(pdata[0].first.pipe, file.pipe);
  EXPECT_EQ(std::string(pdata[0].second.begin(), pdata[0].second.end()), "fifo bytes");
  EXPECT_EQ(child.ask('c'), "fifo bytes");
  unlink(fifo.c_str());
  rmdir(path);
}

TEST(LiveDump, TtyNeedsShellJob) {
  test::DevptsLock devpts;  // a pty index another test is restoring must stay free
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  static std::string slave;
  slave = ptsname(master);
  Child child(
      [] {
        int t = open(slave.c_str(), O_RDWR | O_NOCTTY);
        dup2(t, 0);
        if (t != 0) close(t);
      },
      check_alive);
  expect_refused(child, "fd 0: tty " + slave + " is outside the process (dump with --shell-job)");
  DumpOptions opts;
  opts.leave_running = true;
  opts.shell_job = true;
  opts.inherit_fds = {kCmdFd, kAnsFd};
  auto d = run_dump(child.pid(), opts);
  ASSERT_TRUE(d->status.ok()) << d->status.error().message;
  EXPECT_EQ(d->w.all<schema::Process>().at(0).flags, uint32_t{schema::kProcessShellJob});
  bool found = false;
  for (const auto& f : d->w.all<schema::File>())
    if (f.kind == schema::kFileTty) found = f.path == slave;
  EXPECT_TRUE(found);
  EXPECT_EQ(child.ask('c'), "alive");
  close(master);
}

TEST(LiveDump, NoSuchProcess) {
  FakeWriter w;
  Status st = dump_process(999999, {}, w);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("999999"), std::string::npos) << st.error().message;
  EXPECT_TRUE(w.failed);
}

}  // namespace
}  // namespace cr::dump
