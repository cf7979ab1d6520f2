// `threads_count N`: N worker threads keep running across the dump, each with its own state.
// Each worker loads ymm0-15 with its own pattern and then, inside one asm loop, increments a
// __thread counter and copies it into its slot of a shared array until main sets a stop flag.
// The harness dumps them mid-loop. This checks that every thread comes back with its own
// registers (a restorer that gives every thread the main thread's FPU state, or one thread's
// state to all, fails), its own TLS (fs base), its tid and pthread_self(), and that it runs
// again after the restore.
//
// Workers block SIGTERM, so the harness's SIGTERM goes to main. Main then waits until every
// slot has moved past the value it saw before test_ready() (the thread ran after the restore),
// counts /proc/self/task, sets the stop flag and joins. Each worker then stores its ymm
// registers and checks them, and checks that its TLS counter equals its shared copy (the
// counter and the copy are restored from the same moment). Workers get 256 KiB stacks so that
// 200 threads make a small image.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

#define MAX_THREADS 256

struct worker {
  uint8_t ymm_in[16][32] __attribute__((aligned(32)));
  uint8_t ymm_out[16][32] __attribute__((aligned(32)));
  volatile uint64_t shared;  // the asm loop copies the TLS counter here on every iteration
  uint64_t at_ready;         // main's reading of `shared` just before test_ready()
  int index;
  pid_t tid;
  pthread_t self;
  unsigned long fs;
  uint64_t *tls_addr;
  pthread_t handle;
  volatile int finished;  // set just before worker_main returns
  char fail[256];         // empty: the worker's own checks passed
} __attribute__((aligned(64)));

static struct worker workers[MAX_THREADS];
static volatile int stop;
static int nthreads;
static __thread uint64_t counter;

static unsigned long fs_base(void) {
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  return fs;
}

static void worker_run(struct worker *w);

static void *worker_main(void *arg) {
  struct worker *w = arg;
  worker_run(w);
  w->finished = 1;
  return NULL;
}

static void worker_run(struct worker *w) {
  w->tid = gettid();
  w->self = pthread_self();
  w->fs = fs_base();
  w->tls_addr = &counter;
  uint64_t *ctr = &counter;
  __asm__ volatile(
      "vmovdqa 0(%[in]), %%ymm0\n\t"
      "vmovdqa 32(%[in]), %%ymm1\n\t"
      "vmovdqa 64(%[in]), %%ymm2\n\t"
      "vmovdqa 96(%[in]), %%ymm3\n\t"
      "vmovdqa 128(%[in]), %%ymm4\n\t"
      "vmovdqa 160(%[in]), %%ymm5\n\t"
      "vmovdqa 192(%[in]), %%ymm6\n\t"
      "vmovdqa 224(%[in]), %%ymm7\n\t"
      "vmovdqa 256(%[in]), %%ymm8\n\t"
      "vmovdqa 288(%[in]), %%ymm9\n\t"
      "vmovdqa 320(%[in]), %%ymm10\n\t"
      "vmovdqa 352(%[in]), %%ymm11\n\t"
      "vmovdqa 384(%[in]), %%ymm12\n\t"
      "vmovdqa 416(%[in]), %%ymm13\n\t"
      "vmovdqa 448(%[in]), %%ymm14\n\t"
      "vmovdqa 480(%[in]), %%ymm15\n\t"
      "1:\n\t"
      "incq (%[ctr])\n\t"
      "mov (%[ctr]), %%rax\n\t"
      "mov %%rax, (%[shared])\n\t"
      "pause\n\t"
      "cmpl $0, (%[stop])\n\t"
      "je 1b\n\t"
      "vmovdqa %%ymm0, 0(%[out])\n\t"
      "vmovdqa %%ymm1, 32(%[out])\n\t"
      "vmovdqa %%ymm2, 64(%[out])\n\t"
      "vmovdqa %%ymm3, 96(%[out])\n\t"
      "vmovdqa %%ymm4, 128(%[out])\n\t"
      "vmovdqa %%ymm5, 160(%[out])\n\t"
      "vmovdqa %%ymm6, 192(%[out])\n\t"
      "vmovdqa %%ymm7, 224(%[out])\n\t"
      "vmovdqa %%ymm8, 256(%[out])\n\t"
      "vmovdqa %%ymm9, 288(%[out])\n\t"
      "vmovdqa %%ymm10, 320(%[out])\n\t"
      "vmovdqa %%ymm11, 352(%[out])\n\t"
      "vmovdqa %%ymm12, 384(%[out])\n\t"
      "vmovdqa %%ymm13, 416(%[out])\n\t"
      "vmovdqa %%ymm14, 448(%[out])\n\t"
      "vmovdqa %%ymm15, 480(%[out])\n\t"
      "vzeroupper\n\t"
      :
      : [in] "r"(w->ymm_in), [out] "r"(w->ymm_out), [ctr] "r"(ctr), [shared] "r"(&w->shared),
        [stop] "r"(&stop)
      : "rax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");

  char *f = w->fail;
  size_t cap = sizeof(w->fail);
  for (int r = 0; r < 16 && !f[0]; r++)
    if (memcmp(w->ymm_out[r], w->ymm_in[r], 32) != 0) {
      int lower_ok = memcmp(w->ymm_out[r], w->ymm_in[r], 16) == 0;
      // Another worker's pattern in the register means states were swapped between threads.
      int other = -1;
      for (int k = 0; k < nthreads && other < 0; k++)
        if (k != w->index && memcmp(w->ymm_out[r], workers[k].ymm_in[r], 32) == 0) other = k;
      int len = snprintf(f, cap, "thread %d: ymm%d differs (%s half)", w->index, r,
                         lower_ok ? "upper" : "lower");
      if (other >= 0) snprintf(f + len, cap - len, ", holds thread %d's pattern", other);
    }
  if (f[0]) return;
  if (counter != w->shared)
    snprintf(f, cap, "thread %d: TLS counter %llu but its shared copy %llu", w->index,
             (unsigned long long)counter, (unsigned long long)w->shared);
  else if (&counter != w->tls_addr)
    snprintf(f, cap, "thread %d: &counter moved from %p to %p", w->index, (void *)w->tls_addr,
             (void *)&counter);
  else if (gettid() != w->tid)
    snprintf(f, cap, "thread %d: gettid() %d, was %d", w->index, gettid(), w->tid);
  else if (!pthread_equal(pthread_self(), w->self))
    snprintf(f, cap, "thread %d: pthread_self() changed", w->index);
  else if (fs_base() != w->fs || fs_base() != (unsigned long)pthread_self())
    snprintf(f, cap, "thread %d: fs base %#lx, was %#lx (pthread_self %#lx)", w->index, fs_base(),
             w->fs, (unsigned long)pthread_self());
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_tasks(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  test_init();
  int n = argc > 1 ? atoi(argv[1]) : 0;
  if (n < 1 || n > MAX_THREADS) test_fail("usage: threads_count N (1..%d)", MAX_THREADS);
  nthreads = n;

  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);  // inherited by the workers
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  for (int i = 0; i < n; i++) {
    struct worker *w = &workers[i];
    w->index = i;
    for (int r = 0; r < 16; r++) test_fill(w->ymm_in[r], 32, (uint64_t)r * 32, 0x7000 + i);
    int e = pthread_create(&w->handle, &attr, worker_main, w);
    if (e) test_fail("pthread_create #%d: %s", i, strerror(e));
  }
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  // Every worker is in its loop (registers loaded) once its slot is non-zero.
  double deadline = now() + 30;
  for (int i = 0; i < n; i++)
    while (workers[i].shared == 0) {
      if (now() > deadline) test_fail("thread %d never reached its loop", i);
      sched_yield();
    }
  for (int i = 0; i < n; i++) workers[i].at_ready = workers[i].shared;

  test_ready();
  test_wait();

  int tasks = count_tasks();
  if (tasks != n + 1) test_fail("/proc/self/task has %d entries, want %d", tasks, n + 1);
  deadline = now() + 20;
  for (int i = 0; i < n; i++)
    while (workers[i].shared <= workers[i].at_ready) {
      if (now() > deadline)
        test_fail("thread %d stuck at %llu (was %llu before the dump): not running", i,
                  (unsigned long long)workers[i].shared, (unsigned long long)workers[i].at_ready);
      sched_yield();
    }
  stop = 1;
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 20;
  for (int i = 0; i < n; i++) {
    int e = pthread_timedjoin_np(workers[i].handle, NULL, &limit);
    if (e == ETIMEDOUT)
      test_fail(workers[i].finished ? "thread %d returned, but pthread_join() never saw it exit "
                                      "(tid word not cleared: clear_child_tid lost?)"
                                    : "thread %d did not stop within 20 s",
                i);
    if (e) test_fail("pthread_join #%d: %s", i, strerror(e));
  }
  for (int i = 0; i < n; i++)
    if (workers[i].fail[0]) test_fail("%s", workers[i].fail);
  return test_pass();
}
