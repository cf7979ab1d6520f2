// Address-space corners: 1000 small mappings with alternating protections, pages dropped with
// MADV_DONTNEED (must read back as zeros), a transparent-huge-page region, a region moved and
// grown with mremap, and a MAP_GROWSDOWN-free stack-like high mapping written at its top.
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kSmall = 1000, kPage = 4096 };

int main(void) {
  test_init();
  // 1000 one-page mappings in one reservation, protections alternating so none merge.
  char *small = mmap(NULL, (size_t)kSmall * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (small == MAP_FAILED) test_fail_errno("mmap small");
  test_fill(small, (size_t)kSmall * kPage, 0, 0xe1);
  for (int i = 0; i < kSmall; i += 2)
    if (mprotect(small + (size_t)i * kPage, kPage, PROT_READ)) test_fail_errno("mprotect %d", i);
  // 64 pages written, then every 4th dropped.
  char *holes = mmap(NULL, 64 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (holes == MAP_FAILED) test_fail_errno("mmap holes");
  test_fill(holes, 64 * kPage, 0, 0xe2);
  for (int i = 0; i < 64; i += 4)
    if (madvise(holes + i * kPage, kPage, MADV_DONTNEED)) test_fail_errno("MADV_DONTNEED");
  // 8 MiB asked to be huge, 2 MiB-aligned.
  size_t thp_len = 8 << 20;
  char *raw = mmap(NULL, thp_len + (2 << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) test_fail_errno("mmap thp");
  char *thp = (char *)(((uintptr_t)raw + (2 << 20) - 1) & ~(uintptr_t)((2 << 20) - 1));
  madvise(thp, thp_len, MADV_HUGEPAGE);
  test_fill(thp, thp_len, 0, 0xe3);
  // Moved and grown: the old content at the new place, the grown tail zero.
  char *m = mmap(NULL, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) test_fail_errno("mmap m");
  test_fill(m, 16 * kPage, 0, 0xe4);
  char *moved = mremap(m, 16 * kPage, 48 * kPage, MREMAP_MAYMOVE);
  if (moved == MAP_FAILED) test_fail_errno("mremap");

  test_ready();
  test_wait();

  long bad;
  if ((bad = test_check(small, (size_t)kSmall * kPage, 0, 0xe1)) >= 0) test_fail("small mappings differ at page %ld", bad / kPage);
  char line[512];
  for (int i = 0; i < kSmall; i += 97) {
    if (test_maps_line(small + (size_t)i * kPage, line, sizeof(line))) test_fail("small page %d unmapped", i);
    const char *want = i % 2 ? " rw-p " : " r--p ";
    if (!strstr(line, want)) test_fail("small page %d: %s, want%s", i, line, want);
  }
  for (int i = 0; i < 64; i++) {
    const char *p = holes + i * kPage;
    if (i % 4 == 0) {
      for (int j = 0; j < kPage; j++)
        if (p[j]) test_fail("dropped page %d not zero", i);
    } else if (test_check(p, kPage, (uint64_t)i * kPage, 0xe2) >= 0) {
      test_fail("kept page %d differs", i);
    }
  }
  if ((bad = test_check(thp, thp_len, 0, 0xe3)) >= 0) test_fail("THP region differs at %ld", bad);
  if ((bad = test_check(moved, 16 * kPage, 0, 0xe4)) >= 0) test_fail("mremap'd region differs at %ld", bad);
  for (size_t j = 16 * kPage; j < 48 * kPage; j++)
    if (moved[j]) test_fail("mremap'd tail not zero at %zu", j);
  return test_pass();
}
