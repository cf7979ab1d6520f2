// Per-thread signal and scheduling state, with three workers:
//   handler  runs a loop, gets SIGUSR1 from pthread_kill() and is inside the SA_ONSTACK
//            handler at dump time, spinning on its own sigaltstack until main releases it.
//            After SIGTERM the handler finishes (still on the altstack, SIGUSR1 and the
//            sa_mask still blocked, si_pid ours), returns, and the interrupted loop goes
//            on with its locals intact and the pre-handler mask back (the signal frame on
//            the altstack and the in-handler mask must both come back).
//   pending  has SIGUSR2 (pthread_kill) and two instances of SIGRTMIN+4 (pthread_sigqueue,
//            values 41 and 42) pending and blocked: thread-private, so after restore they are
//            in this thread's SigPnd, not in the process-wide ShdPnd, and sigtimedwait() in
//            this thread takes each exactly once, in order, with si_code and si_value.
//   attrs    has its own signal mask, comm (pthread_setname_np), nice 5 and SCHED_BATCH, and
//            its own sigaltstack; after restore it checks all of them, and main checks that
//            none of it leaked to the main thread.
// Every thread blocks SIGUSR1, SIGUSR2 and the RT signal except as said above, and SIGTERM
// except main. pending and attrs wait at a barrier with main during the dump.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

#define ALTSTACK_SIZE (64 * 1024)
static char h_altstack[ALTSTACK_SIZE] __attribute__((aligned(16)));
static char q_altstack[ALTSTACK_SIZE] __attribute__((aligned(16)));
static const char q_name[] = "zdtm-attrs";

static pthread_barrier_t go;  // main, pending, attrs
static volatile int h_looping, h_in_handler, h_release, h_handler_done;
static volatile int p_ready, q_ready;
static char msg[3][256];
static int rt_sig;

// What the handler saw, before the dump (spin start) and after it (release).
static struct {
  char *local_before, *local_after;
  int onstack_before, onstack_after;
  int usr1_blocked, winch_blocked, code;
  pid_t sender;
} h_seen;

static int in_altstack(const void *p, const char *stack) {
  return (const char *)p >= stack && (const char *)p < stack + ALTSTACK_SIZE;
}

static void on_usr1(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  char here;
  stack_t cur;
  h_seen.local_before = &here;
  sigaltstack(NULL, &cur);
  h_seen.onstack_before = (cur.ss_flags & SS_ONSTACK) != 0;
  h_in_handler = 1;
  while (!h_release) __asm__ volatile("pause");
  char there;
  h_seen.local_after = &there;
  sigaltstack(NULL, &cur);
  h_seen.onstack_after = (cur.ss_flags & SS_ONSTACK) != 0;
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, NULL, &m);
  h_seen.usr1_blocked = sigismember(&m, SIGUSR1);
  h_seen.winch_blocked = sigismember(&m, SIGWINCH);
  h_seen.code = si->si_code;
  h_seen.sender = si->si_pid;
  h_handler_done = 1;
}

#define FAIL_RET(i, ...)                           \
  do {                                             \
    snprintf(msg[i], sizeof(msg[i]), __VA_ARGS__); \
    return msg[i];                                 \
  } while (0)

static void *handler_thread(void *arg) {
  (void)arg;
  stack_t ss = {.ss_sp = h_altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) FAIL_RET(0, "sigaltstack: %s", strerror(errno));
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  pid_t tid = gettid();
  volatile uint64_t canary = 0x5ca1ab1e0ddba11ull, spins = 0;
  h_looping = 1;
  while (!h_handler_done) spins++;  // SIGUSR1 interrupts this loop
  if (canary != 0x5ca1ab1e0ddba11ull) FAIL_RET(0, "local of the interrupted loop changed");
  if (!spins) FAIL_RET(0, "the loop never ran");
  if (!in_altstack(h_seen.local_before, h_altstack))
    FAIL_RET(0, "handler before the dump not on the altstack (%p)", (void *)h_seen.local_before);
  if (!in_altstack(h_seen.local_after, h_altstack))
    FAIL_RET(0, "handler after the restore not on the altstack (%p)", (void *)h_seen.local_after);
  if (!h_seen.onstack_before || !h_seen.onstack_after)
    FAIL_RET(0, "SS_ONSTACK in the handler: %d before the dump, %d after", h_seen.onstack_before,
             h_seen.onstack_after);
  if (!h_seen.usr1_blocked || !h_seen.winch_blocked)
    FAIL_RET(0, "mask in the handler: SIGUSR1 blocked %d, SIGWINCH (sa_mask) blocked %d",
             h_seen.usr1_blocked, h_seen.winch_blocked);
  if ((h_seen.code != SI_TKILL && h_seen.code != SI_USER) || h_seen.sender != getpid())
    FAIL_RET(0, "SIGUSR1 si_code %d si_pid %d, want SI_TKILL from %d", h_seen.code, h_seen.sender,
             getpid());
  sigset_t m;
  pthread_sigmask(SIG_SETMASK, NULL, &m);
  if (sigismember(&m, SIGUSR1) || sigismember(&m, SIGWINCH))
    FAIL_RET(0, "the handler's mask stayed after it returned");
  stack_t cur;
  sigaltstack(NULL, &cur);
  if (cur.ss_sp != h_altstack || cur.ss_size != ALTSTACK_SIZE || cur.ss_flags != 0)
    FAIL_RET(0, "sigaltstack now %p/%zu/%d", cur.ss_sp, cur.ss_size, cur.ss_flags);
  if (gettid() != tid) FAIL_RET(0, "gettid() %d, was %d", gettid(), tid);
  return NULL;
}

// Pending bits of this thread (SigPnd) and of the process (ShdPnd) from /proc.
static void pending_bits(pid_t tid, unsigned long long *thread, unsigned long long *shared) {
  char path[64], buf[4096];
  snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
  long n = test_read_file(path, buf, sizeof(buf) - 1);
  buf[n > 0 ? n : 0] = 0;
  *thread = *shared = ~0ull;
  char *p = strstr(buf, "SigPnd:");
  if (p) sscanf(p, "SigPnd: %llx", thread);
  p = strstr(buf, "ShdPnd:");
  if (p) sscanf(p, "ShdPnd: %llx", shared);
}

static void *pending_thread(void *arg) {
  (void)arg;
  pid_t tid = gettid();
  p_ready = 1;
  pthread_barrier_wait(&go);
  unsigned long long thr, shd;
  pending_bits(tid, &thr, &shd);
  unsigned long long want = (1ull << (SIGUSR2 - 1)) | (1ull << (rt_sig - 1));
  if (thr != want || (shd & want))
    FAIL_RET(1, "SigPnd %#llx ShdPnd %#llx, want %#llx and none of it", thr, shd, want);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, rt_sig);
  // Standard signals first, then RT ones in queue order; then nothing. A tgkill()ed signal
  // that stays pending comes back as SI_USER, not SI_TKILL, on some kernels (6.18 here), so
  // either code passes; si_pid must be ours either way.
  struct {
    int sig, code, value;
  } want_si[] = {{SIGUSR2, SI_TKILL, 0}, {rt_sig, SI_QUEUE, 41}, {rt_sig, SI_QUEUE, 42}};
  struct timespec zero = {0, 0};
  for (int k = 0; k < 4; k++) {
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    int s = sigtimedwait(&set, &si, &zero);
    if (k == 3) {
      if (s >= 0) FAIL_RET(1, "signal %d delivered once too often", s);
      if (errno != EAGAIN) FAIL_RET(1, "sigtimedwait: %s", strerror(errno));
      break;
    }
    if (s < 0) FAIL_RET(1, "signal #%d lost: sigtimedwait: %s", k, strerror(errno));
    int code_ok = si.si_code == want_si[k].code || (k == 0 && si.si_code == SI_USER);
    if (s != want_si[k].sig || !code_ok || si.si_pid != getpid() ||
        (want_si[k].code == SI_QUEUE && si.si_value.sival_int != want_si[k].value))
      FAIL_RET(1, "signal #%d: sig %d code %d pid %d value %d, want sig %d code %d pid %d value %d",
               k, s, si.si_code, si.si_pid, si.si_value.sival_int, want_si[k].sig, want_si[k].code,
               getpid(), want_si[k].value);
  }
  if (gettid() != tid) FAIL_RET(1, "gettid() %d, was %d", gettid(), tid);
  return NULL;
}

static void attrs_mask(sigset_t *m) {
  sigemptyset(m);
  sigaddset(m, SIGTERM);
  sigaddset(m, SIGHUP);
  sigaddset(m, SIGWINCH);
  sigaddset(m, SIGPIPE);
  sigaddset(m, SIGRTMIN + 7);
  // The pending thread's signals too: if they came back on the process-wide queue, nobody
  // takes them (main reports them) instead of the default action killing the process.
  sigaddset(m, SIGUSR2);
  sigaddset(m, rt_sig);
}

static int same_mask(const sigset_t *a, const sigset_t *b) {
  for (int s = 1; s < 32; s++)
    if (sigismember(a, s) != sigismember(b, s)) return 0;
  for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
    if (sigismember(a, s) != sigismember(b, s)) return 0;
  return 1;
}

static void *attrs_thread(void *arg) {
  (void)arg;
  pid_t tid = gettid();
  sigset_t mine, now;
  attrs_mask(&mine);
  pthread_sigmask(SIG_SETMASK, &mine, NULL);
  stack_t ss = {.ss_sp = q_altstack, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (sigaltstack(&ss, NULL)) FAIL_RET(2, "sigaltstack: %s", strerror(errno));
  int e = pthread_setname_np(pthread_self(), q_name);
  if (e) FAIL_RET(2, "pthread_setname_np: %s", strerror(e));
  if (setpriority(PRIO_PROCESS, tid, 5)) FAIL_RET(2, "setpriority: %s", strerror(errno));
  struct sched_param sp = {.sched_priority = 0};
  if (sched_setscheduler(tid, SCHED_BATCH, &sp)) FAIL_RET(2, "SCHED_BATCH: %s", strerror(errno));
  q_ready = 1;
  pthread_barrier_wait(&go);

  char name[32] = "";
  pthread_getname_np(pthread_self(), name, sizeof(name));
  if (strcmp(name, q_name)) FAIL_RET(2, "comm '%s', want '%s'", name, q_name);
  int nice = getpriority(PRIO_PROCESS, tid);
  if (nice != 5) FAIL_RET(2, "nice %d, want 5", nice);
  int pol = sched_getscheduler(0);
  if (pol != SCHED_BATCH) FAIL_RET(2, "policy %d, want SCHED_BATCH (%d)", pol, SCHED_BATCH);
  pthread_sigmask(SIG_SETMASK, NULL, &now);
  if (!same_mask(&now, &mine)) FAIL_RET(2, "signal mask changed");
  stack_t cur;
  sigaltstack(NULL, &cur);
  if (cur.ss_sp != q_altstack || cur.ss_size != ALTSTACK_SIZE || cur.ss_flags != 0)
    FAIL_RET(2, "sigaltstack now %p/%zu/%d", cur.ss_sp, cur.ss_size, cur.ss_flags);
  if (gettid() != tid) FAIL_RET(2, "gettid() %d, was %d", gettid(), tid);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void wait_flag(volatile int *flag, const char *what) {
  double deadline = now_s() + 20;
  while (!*flag) {
    if (now_s() > deadline) test_fail("%s never happened", what);
    sched_yield();
  }
}

int main(void) {
  test_init();
  rt_sig = SIGRTMIN + 4;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGWINCH);
  if (sigaction(SIGUSR1, &sa, NULL)) test_fail_errno("sigaction(SIGUSR1)");
  pthread_barrier_init(&go, NULL, 3);
  char main_comm[32] = "";
  pthread_getname_np(pthread_self(), main_comm, sizeof(main_comm));
  const int main_nice = getpriority(PRIO_PROCESS, gettid());
  const int main_policy = sched_getscheduler(0);

  sigset_t blocked, main_mask;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGUSR1);
  sigaddset(&blocked, SIGUSR2);
  sigaddset(&blocked, rt_sig);
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);  // main keeps these blocked
  pthread_sigmask(SIG_SETMASK, NULL, &main_mask);
  sigaddset(&blocked, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);  // what the workers start with
  pthread_t th[3];
  void *(*fn[3])(void *) = {handler_thread, pending_thread, attrs_thread};
  static const char *const names[3] = {"handler", "pending", "attrs"};
  for (int i = 0; i < 3; i++) {
    int e = pthread_create(&th[i], NULL, fn[i], NULL);
    if (e) test_fail("pthread_create #%d: %s", i, strerror(e));
  }
  pthread_sigmask(SIG_SETMASK, &main_mask, NULL);

  wait_flag(&h_looping, "handler thread looping");
  int e = pthread_kill(th[0], SIGUSR1);
  if (e) test_fail("pthread_kill(SIGUSR1): %s", strerror(e));
  wait_flag(&h_in_handler, "SIGUSR1 handler entry");
  wait_flag(&p_ready, "pending thread start");
  if ((e = pthread_kill(th[1], SIGUSR2))) test_fail("pthread_kill(SIGUSR2): %s", strerror(e));
  for (int v = 41; v <= 42; v++)
    if ((e = pthread_sigqueue(th[1], rt_sig, (union sigval){.sival_int = v})))
      test_fail("pthread_sigqueue(%d): %s", v, strerror(e));
  wait_flag(&q_ready, "attrs thread setup");

  test_ready();
  test_wait();

  // Nothing of the workers' state on main.
  char comm[32] = "";
  pthread_getname_np(pthread_self(), comm, sizeof(comm));
  if (strcmp(comm, main_comm)) test_fail("main comm '%s', was '%s'", comm, main_comm);
  int nice = getpriority(PRIO_PROCESS, gettid());
  if (nice != main_nice) test_fail("main nice %d, was %d", nice, main_nice);
  int policy = sched_getscheduler(0);
  if (policy != main_policy) test_fail("main policy %d, was %d", policy, main_policy);
  sigset_t m, pend;
  pthread_sigmask(SIG_SETMASK, NULL, &m);
  if (!same_mask(&m, &main_mask)) test_fail("main signal mask changed");
  sigpending(&pend);
  if (sigismember(&pend, SIGUSR1) || sigismember(&pend, SIGUSR2) || sigismember(&pend, rt_sig))
    test_fail("a worker's signal is pending for main");
  stack_t cur;
  sigaltstack(NULL, &cur);
  if (!(cur.ss_flags & SS_DISABLE)) test_fail("main has a sigaltstack (%p)", cur.ss_sp);

  h_release = 1;
  pthread_barrier_wait(&go);
  for (int i = 0; i < 3; i++) {
    void *ret = (void *)1;
    if ((e = pthread_join(th[i], &ret))) test_fail("pthread_join #%d: %s", i, strerror(e));
    if (ret) test_fail("%s thread: %s", names[i], ret == msg[i] ? msg[i] : "bad return value");
  }
  return test_pass();
}
