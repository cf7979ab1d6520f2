// Memory that changes all through a pre-copy dump (crdump --pre-copy): two threads keep
// rewriting pages of a 32 MiB region after ready, one with plain stores, the other through
// process_vm_writev on itself; every fifth version of a page is MADV_DONTNEED instead (and
// read back half of the time: the shared zero page); a small region moves back and forth with
// mremap; new mappings come and go. Each page's expected contents follow from its version in
// a table, and the table's sum from a counter in another page: a page restored from an older
// copy, a lost zap or a lost table update fails the check. An operation cut by the freeze is
// finished by the restored thread, so the check is exact.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zdtmlib.h"

#define PAGE 4096
#define NPAGES 8192  // 32 MiB
#define MOVE_PAGES 8
#define RING 16
#define RING_PAGES 4

static char *data;
static uint32_t *versions;        // per page; its own mapping
static uint64_t *total;           // operations done, in yet another mapping
static char *move_area, *moved;   // two slots of MOVE_PAGES; `moved` is where the region is now
static uint32_t move_gen;
static char *ring[RING];
static uint32_t ring_seed[RING];
static uint32_t ops_by[2];
// Ready only once both workers run their own code: a thread being created has every signal
// blocked for a moment, and the harness reads the threads' masks after ready.
static pthread_barrier_t started;

static uint32_t seed_of(uint32_t page, uint32_t version) { return page * 7919u + version; }

static void write_page(int via_vm, uint32_t k, uint32_t v) {
  static __thread char buf[PAGE];
  char *p = data + (size_t)k * PAGE;
  if (!via_vm) {
    test_fill(p, PAGE, 0, seed_of(k, v));
    return;
  }
  test_fill(buf, PAGE, 0, seed_of(k, v));
  struct iovec local = {buf, PAGE}, remote = {p, PAGE};
  if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) != PAGE)
    test_fail_errno("process_vm_writev page %u", k);
}

static void one_op(int who, uint64_t i) {
  // Thread 0 takes the even pages, thread 1 the odd ones.
  uint32_t k = (uint32_t)(((i * 2654435761u) % (NPAGES / 2)) * 2 + who);
  uint32_t v = versions[k] + 1;
  if (v % 5 == 0) {
    if (madvise(data + (size_t)k * PAGE, PAGE, MADV_DONTNEED)) test_fail_errno("madvise");
    if (v % 2 == 0 && data[(size_t)k * PAGE + 17] != 0) test_fail("page %u not zero after zap", k);
  } else {
    write_page(who, k, v);
  }
  versions[k] = v;
  __atomic_add_fetch(total, 1, __ATOMIC_SEQ_CST);
  ops_by[who]++;
}

static void move_region(void) {
  char *to = moved == move_area ? move_area + MOVE_PAGES * PAGE : move_area;
  char *r = mremap(moved, MOVE_PAGES * PAGE, MOVE_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  if (r == MAP_FAILED) test_fail_errno("mremap");
  // The old slot is a hole now: map it again (empty) so the next move has somewhere to go.
  if (mmap(moved, MOVE_PAGES * PAGE, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
    test_fail_errno("mmap old slot");
  moved = r;
  // Half of the moves also rewrite the first page.
  if (++move_gen % 2 == 0) test_fill(moved, PAGE, 0, 0x77000000u + move_gen);
}

static void new_mapping(uint64_t n) {
  int slot = (int)(n % RING);
  if (ring[slot] && munmap(ring[slot], RING_PAGES * PAGE)) test_fail_errno("munmap");
  char *p = mmap(NULL, RING_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) test_fail_errno("mmap ring");
  ring_seed[slot] = 0x5a000000u + (uint32_t)n;
  test_fill(p, RING_PAGES * PAGE, 0, ring_seed[slot]);
  ring[slot] = p;
}

static void *worker(void *arg) {
  int who = (int)(long)arg;
  pthread_barrier_wait(&started);
  uint64_t i = 0;
  do {  // at least once, even when SIGTERM comes at once (the baseline run)
    one_op(who, i);
    if (who == 0 && i % 64 == 63) move_region();
    if (who == 0 && i % 32 == 31) new_mapping(i / 32);
    // Paced, so that the rounds see some pages change and most not.
    if (++i % 16 == 0) usleep(200);
  } while (!test_stopped);
  return NULL;
}

static void *map_rw(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) test_fail_errno("mmap %zu", len);
  return p;
}

int main(void) {
  test_init();
  data = map_rw((size_t)NPAGES * PAGE);
  versions = map_rw(NPAGES * sizeof(uint32_t));
  total = map_rw(PAGE);
  move_area = map_rw(2 * MOVE_PAGES * PAGE);
  moved = move_area;
  for (uint32_t k = 0; k < NPAGES; k++) test_fill(data + (size_t)k * PAGE, PAGE, 0, seed_of(k, 0));
  test_fill(moved, MOVE_PAGES * PAGE, 0, 0x66000000u);
  pthread_t t[2];
  pthread_barrier_init(&started, NULL, 3);
  for (long w = 0; w < 2; w++)
    if (pthread_create(&t[w], NULL, worker, (void *)w)) test_fail("pthread_create");
  pthread_barrier_wait(&started);
  test_ready();
  for (int w = 0; w < 2; w++) pthread_join(t[w], NULL);

  uint64_t sum = 0;
  for (uint32_t k = 0; k < NPAGES; k++) {
    uint32_t v = versions[k];
    sum += v;
    const char *p = data + (size_t)k * PAGE;
    if (v % 5 == 0 && v != 0) {
      for (int j = 0; j < PAGE; j++)
        if (p[j]) test_fail("page %u (version %u, zapped) not zero at %d", k, v, j);
    } else {
      long bad = test_check(p, PAGE, 0, seed_of(k, v));
      if (bad >= 0) test_fail("page %u differs from its version %u at %ld", k, v, bad);
    }
  }
  if (sum != *total)
    test_fail("versions sum to %llu, %llu operations were done", (unsigned long long)sum,
              (unsigned long long)*total);
  if (move_gen > 0 && move_gen % 2 == 0) {
    if (test_check(moved, PAGE, 0, 0x77000000u + move_gen) >= 0)
      test_fail("moved region's first page differs (move %u)", move_gen);
  } else if (test_check(moved, PAGE, 0, 0x66000000u) >= 0 &&
             (move_gen == 0 || test_check(moved, PAGE, 0, 0x77000000u + move_gen - 1) >= 0)) {
    test_fail("moved region's first page differs (move %u)", move_gen);
  }
  if (test_check(moved + PAGE, (MOVE_PAGES - 1) * PAGE, PAGE, 0x66000000u) >= 0)
    test_fail("moved region differs (move %u)", move_gen);
  for (int s = 0; s < RING; s++)
    if (ring[s] && test_check(ring[s], RING_PAGES * PAGE, 0, ring_seed[s]) >= 0)
      test_fail("new mapping %d differs", s);
  if (ops_by[0] == 0 || ops_by[1] == 0) test_fail("a worker did nothing");
  return test_pass();
}
