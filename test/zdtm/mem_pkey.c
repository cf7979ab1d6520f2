// Memory protection keys (issue 13; x86 PKU, skipped where the CPU has none): keys 1-4
// allocated, 2 freed again, so 1, 3 and 4 stay allocated; a mapping with key 1, one with key 3
// (write-disabled in PKRU), a second thread with its own PKRU, and key 5 on a mapping after
// it was freed (the kernel lets a program do that). After restore: each mapping's key (smaps
// ProtectionKey) and contents, each thread's rights, the allocated keys (2 is the next
// pkey_alloc gives; 3 and 4 can be freed, 5 cannot).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPage = 4096, kPages = 4 };

static long key_of(const void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) test_fail_errno("open smaps");
  char line[512];
  int in = 0;
  long key = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ':') > strchr(line, ' ')) {
      in = (unsigned long)addr >= s && (unsigned long)addr < e;
      continue;
    }
    if (in && strncmp(line, "ProtectionKey:", 14) == 0) {
      key = strtol(line + 14, NULL, 10);
      break;
    }
  }
  fclose(f);
  return key;
}

static char *a, *b, *c;
static pthread_barrier_t ready;
static volatile int thread_bad;

// The second thread: key 1 write-disabled in its own PKRU, key 3 accessible.
static void *thread_main(void *arg) {
  (void)arg;
  if (pkey_set(1, PKEY_DISABLE_WRITE) != 0 || pkey_set(3, 0) != 0) thread_bad = 1;
  pthread_barrier_wait(&ready);
  pthread_barrier_wait(&ready);  // after restore
  if (pkey_get(1) != PKEY_DISABLE_WRITE || pkey_get(3) != 0) thread_bad = 2;
  return NULL;
}

static void check(const char *when) {
  if (key_of(a) != 1 || key_of(b) != 3 || key_of(c) != 5)
    test_fail("%s: keys %ld %ld %ld, want 1 3 5", when, key_of(a), key_of(b), key_of(c));
  if (pkey_get(1) != 0 || pkey_get(3) != PKEY_DISABLE_WRITE)
    test_fail("%s: main thread's rights %d %d", when, pkey_get(1), pkey_get(3));
  long bad = test_check(a, kPages * kPage, 0, 91);
  if (bad < 0) bad = test_check(b, kPages * kPage, 0, 92);
  if (bad < 0) bad = test_check(c, kPages * kPage, 0, 93);
  if (bad >= 0) test_fail("%s: contents differ at offset %ld", when, bad);
}

int main(void) {
  test_init();
  int first = pkey_alloc(0, 0);
  if (first < 0 && (errno == ENOSPC || errno == EINVAL || errno == ENOSYS)) {
    // No protection keys on this CPU: nothing to test.
    test_ready();
    test_wait();
    return test_pass();
  }
  if (first != 1) test_fail("first pkey_alloc gave %d", first);
  for (int k = 2; k <= 5; ++k)
    if (pkey_alloc(0, 0) != k) test_fail_errno("pkey_alloc %d", k);
  a = mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  b = mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  c = mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED || c == MAP_FAILED) test_fail_errno("mmap");
  test_fill(a, kPages * kPage, 0, 91);
  test_fill(b, kPages * kPage, 0, 92);
  test_fill(c, kPages * kPage, 0, 93);
  if (pkey_mprotect(a, kPages * kPage, PROT_READ | PROT_WRITE, 1) != 0 ||
      pkey_mprotect(b, kPages * kPage, PROT_READ | PROT_WRITE, 3) != 0 ||
      pkey_mprotect(c, kPages * kPage, PROT_READ | PROT_WRITE, 5) != 0)
    test_fail_errno("pkey_mprotect");
  if (pkey_free(2) != 0 || pkey_free(5) != 0) test_fail_errno("pkey_free");
  if (pkey_set(3, PKEY_DISABLE_WRITE) != 0) test_fail_errno("pkey_set");
  pthread_barrier_init(&ready, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0) test_fail("pthread_create");
  pthread_barrier_wait(&ready);
  check("setup");
  test_ready();
  test_wait();
  check("after restore");
  pthread_barrier_wait(&ready);
  pthread_join(t, NULL);
  if (thread_bad) test_fail("second thread's rights wrong (%d)", thread_bad);
  if (pkey_free(5) == 0) test_fail("key 5 was freed before the dump, but is allocated now");
  if (pkey_free(3) != 0 || pkey_free(4) != 0) test_fail_errno("pkey_free of an allocated key");
  int next = pkey_alloc(0, 0);
  if (next != 2) test_fail("next pkey_alloc gave %d, want 2", next);
  return test_pass();
}
