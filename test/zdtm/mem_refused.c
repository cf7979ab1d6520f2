// Memory crdump refuses, naming it (issue 13), with the program left running and intact:
// "aio": an AIO context (io_setup) and its /[aio] ring; "hugetlb": a MAP_HUGETLB mapping
// (MAP_NORESERVE, never touched: it needs no huge page reserved).
#define _GNU_SOURCE
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  const char *mode = argc > 1 ? argv[1] : "";
  aio_context_t aio = 0;
  char *huge = NULL;
  if (!strcmp(mode, "aio")) {
    if (syscall(SYS_io_setup, 16, &aio) != 0) test_fail_errno("io_setup");
  } else if (!strcmp(mode, "hugetlb")) {
    huge = mmap(NULL, 2 << 20, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);
    if (huge == MAP_FAILED) test_fail_errno("mmap MAP_HUGETLB");
  } else {
    test_fail("mode '%s': want aio or hugetlb", mode);
  }
  test_ready();
  test_wait();
  if (aio != 0 && syscall(SYS_io_destroy, aio) != 0)
    test_fail_errno("io_destroy after the refused dumps");
  if (huge != NULL && munmap(huge, 2 << 20) != 0) test_fail_errno("munmap after the refused dumps");
  return test_pass();
}
