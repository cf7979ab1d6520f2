// Memory read at random pages from the moment it runs (crrestore --lazy): SIZE MiB (default 64)
// whose pages each hold their number, and a thread that keeps reading random pages, directly
// and (one read in eight) through write(2) to a pipe, so the kernel faults on a missing page
// too. A page that reads other than it was written (a zero page where data was) fails at once,
// on the log: the lazy restore's kill test (test/e2e/lazy_test.cc) looks for it after killing
// crrestore at random moments. On SIGTERM every page is checked.
//   lazy_random [SIZE_MIB]
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

#define PAGE 4096

static uint64_t *mem;
static size_t npages;
static int pipefd[2];
// Ready only once the reader runs its own code: a thread being created has every signal blocked
// for a moment, and the harness reads the threads' masks after ready.
static pthread_barrier_t started;

static uint64_t want(size_t p) { return (p + 1) * 0x9e3779b97f4a7c15ull; }

static void check(size_t p, int via_kernel) {
  uint64_t w[2];
  const uint64_t *at = mem + p * (PAGE / 8);
  if (via_kernel) {
    if (write(pipefd[1], at, sizeof w) != sizeof w) test_fail_errno("write to pipe");
    if (read(pipefd[0], w, sizeof w) != sizeof w) test_fail_errno("read from pipe");
  } else {
    w[0] = at[0];
    w[1] = at[1];
  }
  if (w[0] != want(p) || w[1] != ~want(p))
    test_fail("page %zu reads %016llx %016llx%s", p, (unsigned long long)w[0],
              (unsigned long long)w[1], via_kernel ? " (through the kernel)" : "");
}

static void *reader(void *arg) {
  (void)arg;
  pthread_barrier_wait(&started);
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (uint64_t i = 0; !test_stopped; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    check(x % npages, i % 8 == 0);
  }
  return NULL;
}

int main(int argc, char **argv) {
  test_init();
  const size_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 64;
  npages = (mib << 20) / PAGE;
  mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) test_fail_errno("mmap");
  for (size_t p = 0; p < npages; p++) {
    mem[p * (PAGE / 8)] = want(p);
    mem[p * (PAGE / 8) + 1] = ~want(p);
  }
  if (pipe(pipefd)) test_fail_errno("pipe");
  pthread_t t;
  pthread_barrier_init(&started, NULL, 2);
  if (pthread_create(&t, NULL, reader, NULL)) test_fail("pthread_create");
  pthread_barrier_wait(&started);
  test_ready();
  pthread_join(t, NULL);
  for (size_t p = 0; p < npages; p++) check(p, 0);
  return test_pass();
}
