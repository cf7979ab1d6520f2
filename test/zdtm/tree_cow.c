// Private memory a forked child still shares copy-on-write with its parent: after restore each
// process sees its own contents. What parent and children kept since the fork, what the parent
// wrote after it (the children keep the old bytes), what one child wrote (only it sees them),
// what a child dropped with MADV_DONTNEED (zeros in it only), a heap, and the copied pages of a
// private file mapping, and memory from brk that one child grew further after the fork (its
// heap then reaches past its parent's). crdump stores the shared pages once and crrestore
// shares them again (test/e2e/cow_test.cc looks).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPage = 4096, kPages = 2048, kKids = 3, kHeap = 200 << 10, kFilePages = 8, kBrk = 64,
       kGrown = 32 };

static uint8_t *anon, *heap, *fmap, *brkmem;

// What process `who` (0: the parent, 1..kKids: a child) must see at anon page `p`.
static int anon_seed(int who, int p) {
  if (who == 0 && p < 64) return 2;  // written by the parent after the fork
  if (who > 0 && p >= 100 * who && p < 100 * who + 16) return 10 + who;
  if (who > 0 && p >= 1000 + 10 * who && p < 1000 + 10 * who + 8) return 0;  // dropped
  return 1;
}

static int file_seed(int who, int p) {
  if (who == 1 && p == 1) return 6;
  return p < 4 ? 5 : 4;
}

static void check(int who) {
  for (int p = 0; p < kPages; p++) {
    int seed = anon_seed(who, p);
    uint8_t *at = anon + (size_t)p * kPage;
    if (seed == 0) {
      for (int i = 0; i < kPage; i++)
        if (at[i] != 0) test_fail("process %d: anon page %d not zero", who, p);
    } else if (test_check(at, kPage, (uint64_t)p * kPage, (uint32_t)seed) >= 0) {
      test_fail("process %d: anon page %d differs (want seed %d)", who, p, seed);
    }
  }
  uint32_t hseed = who == 2 ? 7 : 3;
  if (test_check(heap, kHeap, 0, hseed) >= 0) test_fail("process %d: heap differs", who);
  for (int p = 0; p < kBrk + (who == 3 ? kGrown : 0); p++) {
    uint32_t seed = p >= kBrk ? 9 : (who == 3 && p == 0) ? 12 : 8;
    if (test_check(brkmem + p * kPage, kPage, (uint64_t)p * kPage, seed) >= 0)
      test_fail("process %d: brk page %d differs", who, p);
  }
  for (int p = 0; p < kFilePages; p++)
    if (test_check(fmap + p * kPage, kPage, (uint64_t)p * kPage, (uint32_t)file_seed(who, p)) >= 0)
      test_fail("process %d: file page %d differs", who, p);
}

int main(void) {
  test_init();
  anon = mmap(NULL, (size_t)kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  if (anon == MAP_FAILED) test_fail_errno("mmap");
  test_fill(anon, (size_t)kPages * kPage, 0, 1);
  heap = malloc(kHeap);
  if (!heap) test_fail("malloc");
  test_fill(heap, kHeap, 0, 3);
  int fd = open("mapped", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) test_fail_errno("create mapped");
  static uint8_t buf[kFilePages * kPage];
  test_fill(buf, sizeof buf, 0, 4);
  if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) test_fail_errno("write mapped");
  fmap = mmap(NULL, sizeof buf, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (fmap == MAP_FAILED) test_fail_errno("mmap file");
  close(fd);
  test_fill(fmap, 4 * kPage, 0, 5);
  // Whole pages from brkmem: the heap's end moves to a page boundary first.
  uintptr_t cur = (uintptr_t)sbrk(0);
  if (sbrk((intptr_t)(((cur + kPage - 1) & ~(uintptr_t)(kPage - 1)) - cur)) == (void *)-1)
    test_fail_errno("sbrk align");
  brkmem = sbrk(kBrk * kPage);
  if (brkmem == (void *)-1) test_fail_errno("sbrk");
  test_fill(brkmem, kBrk * kPage, 0, 8);

  int set[2], go[2];
  if (pipe(set) || pipe(go)) test_fail_errno("pipe");
  pid_t kids[kKids];
  for (int k = 1; k <= kKids; k++) {
    pid_t pid = fork();
    if (pid < 0) test_fail_errno("fork");
    if (pid == 0) {
      close(3);
      close(set[0]);
      close(go[1]);
      test_fill(anon + 100 * k * kPage, 16 * kPage, (uint64_t)100 * k * kPage, 10 + k);
      if (madvise(anon + (1000 + 10 * k) * kPage, 8 * kPage, MADV_DONTNEED)) _exit(30);
      if (k == 2) test_fill(heap, kHeap, 0, 7);
      if (k == 1) test_fill(fmap + kPage, kPage, kPage, 6);
      if (k == 3) {
        if (sbrk(kGrown * kPage) == (void *)-1) _exit(32);
        test_fill(brkmem + kBrk * kPage, kGrown * kPage, (uint64_t)kBrk * kPage, 9);
        test_fill(brkmem, kPage, 0, 12);
      }
      close(set[1]);
      char c;
      ssize_t n;
      while ((n = read(go[0], &c, 1)) < 0 && errno == EINTR) {
      }
      if (n != 0) _exit(31);  // EOF: the parent has checked its own
      check(k);
      _exit(0);
    }
    kids[k - 1] = pid;
  }
  close(set[1]);
  close(go[0]);
  test_fill(anon, 64 * kPage, 0, 2);
  char c;
  while (read(set[0], &c, 1) > 0) {  // EOF: every child is set up
  }
  close(set[0]);
  test_ready();
  test_wait();
  check(0);
  close(go[1]);
  for (int k = 0; k < kKids; k++) {
    int st = 0;
    if (waitpid(kids[k], &st, 0) != kids[k]) test_fail_errno("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("child %d ended with status %#x", k + 1, st);
  }
  return test_pass();
}
