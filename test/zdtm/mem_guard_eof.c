// Memory with pages that cannot be read (issue 11: they failed the dump). A guard region
// (MADV_GUARD_INSTALL, Linux 6.13; that part is skipped where the kernel has none) in the middle
// of anonymous memory: pagemap shows it as swapped, and reading it faults. File mappings of a
// 100-byte file that reach two pages past its end (a read there raises SIGBUS), one private and
// written, one shared. After restore the guard is a guard again (pagemap bit 58, and reading it
// fails with EFAULT), the pages around it keep their pattern, and the file mappings their bytes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux 6.13
#endif

enum { kPage = 4096 };

static int is_guard(void *addr) {
  int fd = open("/proc/self/pagemap", O_RDONLY);
  uint64_t e = 0;
  if (fd < 0 || pread(fd, &e, sizeof e, (off_t)((uintptr_t)addr / kPage * 8)) != sizeof e)
    test_fail_errno("pagemap");
  close(fd);
  return (e >> 58) & 1;
}

int main(void) {
  test_init();
  char *anon = mmap(NULL, 4 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) test_fail_errno("mmap");
  test_fill(anon, 4 * kPage, 0, 81);
  int guard = madvise(anon + kPage, kPage, MADV_GUARD_INSTALL) == 0;
  if (guard && !is_guard(anon + kPage)) test_fail("setup: no guard in pagemap");

  char text[100];
  test_fill(text, sizeof text, 0, 82);
  int fd = open("short.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, text, sizeof text) != sizeof text) test_fail_errno("short.dat");
  char *priv = mmap(NULL, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  char *shared = mmap(NULL, 3 * kPage, PROT_READ, MAP_SHARED, fd, 0);
  if (priv == MAP_FAILED || shared == MAP_FAILED) test_fail_errno("mmap short.dat");
  close(fd);
  memcpy(priv, "changed", 7);
  test_ready();
  test_wait();
  for (int i = 0; i < 4; ++i) {
    if (guard && i == 1) continue;
    long bad = test_check(anon + i * kPage, kPage, (uint64_t)i * kPage, 81);
    if (bad >= 0) test_fail("anonymous page %d differs at %ld", i, bad);
  }
  if (guard) {
    if (!is_guard(anon + kPage)) test_fail("the guard region is gone");
    char buf[kPage];
    struct iovec local = {buf, kPage}, remote = {anon + kPage, kPage};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != -1 || errno != EFAULT)
      test_fail("the guard page can be read");
  }
  if (memcmp(priv, "changed", 7) != 0 || memcmp(priv + 7, text + 7, sizeof text - 7) != 0)
    test_fail("the private file mapping lost its bytes");
  if (memcmp(shared, text, sizeof text) != 0) test_fail("the shared file mapping differs");
  return test_pass();
}
