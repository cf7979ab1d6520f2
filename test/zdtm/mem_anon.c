// Several MiB of patterned private anonymous memory, a PROT_NONE guard, a read-only region and
// an untouched region. argv[1] = the size in MiB (default 8; the harness uses 64 for the
// large-image failure test).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

static void check_perms(const void *addr, const char *want, const char *what) {
  char line[512];
  if (test_maps_line(addr, line, sizeof(line)) != 0) test_fail("%s: not in /proc/self/maps", what);
  char perms[5] = {0};
  if (sscanf(line, "%*x-%*x %4s", perms) != 1) test_fail("%s: bad maps line", what);
  if (strcmp(perms, want) != 0) test_fail("%s: perms %s, want %s (%s)", what, perms, want, line);
}

int main(int argc, char **argv) {
  test_init();
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 8;
  size_t len = mib << 20;
  const size_t page = 4096;
  // One reservation: [guard][data len][guard][ro 4 pages][untouched 16 pages]
  size_t total = page + len + page + 4 * page + 16 * page;
  char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) test_fail_errno("mmap %zu", total);
  char *guard1 = base, *data = base + page, *guard2 = data + len, *ro = guard2 + page;
  char *untouched = ro + 4 * page;
  test_fill(data, len, 0, 0x51);
  test_fill(ro, 4 * page, 0, 0x52);
  if (mprotect(guard1, page, PROT_NONE) || mprotect(guard2, page, PROT_NONE))
    test_fail_errno("mprotect guard");
  if (mprotect(ro, 4 * page, PROT_READ)) test_fail_errno("mprotect ro");
  // A small separate mapping written sparsely: every other page.
  char *sparse = mmap(NULL, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sparse == MAP_FAILED) test_fail_errno("mmap sparse");
  for (int i = 0; i < 64; i += 2) memset(sparse + i * page, i + 1, page);

  test_ready();
  test_wait();

  long bad = test_check(data, len, 0, 0x51);
  if (bad >= 0) test_fail("data differs at offset %ld (page %ld)", bad, bad / 4096);
  if ((bad = test_check(ro, 4 * page, 0, 0x52)) >= 0) test_fail("read-only region differs at %ld", bad);
  for (size_t i = 0; i < 16 * page; i++)
    if (untouched[i]) test_fail("untouched region not zero at %zu", i);
  for (int i = 0; i < 64; i++)
    for (size_t j = 0; j < page; j++)
      if (sparse[i * page + j] != (i % 2 ? 0 : i + 1)) test_fail("sparse page %d differs", i);
  check_perms(guard1, "---p", "guard1");
  check_perms(guard2, "---p", "guard2");
  check_perms(ro, "r--p", "ro");
  check_perms(data, "rw-p", "data");
  check_perms(untouched, "rw-p", "untouched");
  return test_pass();
}
