// A memfd made with MFD_HUGETLB lives on hugetlbfs, which a restore does not rebuild yet:
// crdump must refuse it, naming it, and leave the program running with the memfd intact.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int fd = memfd_create("huge", MFD_HUGETLB);
  if (fd < 0) test_fail_errno("memfd_create MFD_HUGETLB");
  // Sized, not mapped: creating it needs no huge page reserved.
  if (ftruncate(fd, 2 << 20) != 0) test_fail_errno("ftruncate");
  test_ready();
  test_wait();
  struct stat st;
  if (fstat(fd, &st) != 0) test_fail_errno("fstat after the refused dump");
  if (st.st_size != 2 << 20) test_fail("size %lld", (long long)st.st_size);
  return test_pass();
}
