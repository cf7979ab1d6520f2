// malloc'd data survives; the brk is where it was and keeps growing after restore.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kBlocks = 2000 };

int main(void) {
  test_init();
  static char *blocks[kBlocks];
  for (int i = 0; i < kBlocks; i++) {
    size_t len = 16 + (size_t)(i * 37) % 900;
    blocks[i] = malloc(len);
    if (!blocks[i]) test_fail("malloc");
    test_fill(blocks[i], len, 0, (uint32_t)i);
  }
  for (int i = 0; i < kBlocks; i += 3) {  // holes in the heap
    free(blocks[i]);
    blocks[i] = NULL;
  }
  char *brk_before = sbrk(0);
  // Grow the brk by hand as well, beyond what malloc asked for.
  char *own = sbrk(8192);
  if (own == (void *)-1) test_fail_errno("sbrk");
  test_fill(own, 8192, 0, 0xbb);
  char *brk_after_own = sbrk(0);
  (void)brk_before;

  test_ready();
  test_wait();

  for (int i = 0; i < kBlocks; i++) {
    if (!blocks[i]) continue;
    size_t len = 16 + (size_t)(i * 37) % 900;
    if (test_check(blocks[i], len, 0, (uint32_t)i) >= 0) test_fail("heap block %d differs", i);
  }
  if (test_check(own, 8192, 0, 0xbb) >= 0) test_fail("sbrk'd area differs");
  if (sbrk(0) != brk_after_own) test_fail("brk %p, want %p", sbrk(0), (void *)brk_after_own);
  char *more = sbrk(1 << 20);
  if (more == (void *)-1) test_fail_errno("sbrk(1 MiB) after restore");
  if (more != brk_after_own) test_fail("sbrk grew from %p, want %p", (void *)more, (void *)brk_after_own);
  memset(more, 0x5a, 1 << 20);
  for (int i = 0; i < 1000; i++) {
    void *p = malloc(4000);
    if (!p) test_fail("malloc after restore");
    memset(p, i, 4000);
  }
  return test_pass();
}
