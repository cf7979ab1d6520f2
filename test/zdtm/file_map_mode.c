// Private mappings keep the open mode of their file: one of a file opened O_RDWR, one of the
// same file opened O_RDONLY. /proc/PID/map_files shows the mapped file's open mode as the link's
// mode (rw------- / r--------), and so does it after restore.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPage = 4096 };

static mode_t link_mode(void* start, size_t len) {
  char path[128];
  snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)start,
           (unsigned long)start + len);
  struct stat st;
  if (lstat(path, &st)) test_fail_errno("lstat %s", path);
  return st.st_mode & 0777;
}

int main(void) {
  test_init();
  int fd = open("mapped", O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) test_fail_errno("create");
  static char buf[4 * kPage];
  test_fill(buf, sizeof(buf), 0, 0x3a);
  if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) test_fail_errno("write");
  char* rw = mmap(NULL, 2 * kPage, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  int ro_fd = open("mapped", O_RDONLY);
  char* ro = mmap(NULL, 2 * kPage, PROT_READ, MAP_PRIVATE, ro_fd, 2 * kPage);
  close(ro_fd);
  if (rw == MAP_FAILED || ro == MAP_FAILED) test_fail_errno("mmap");
  if (link_mode(rw, 2 * kPage) != 0600 || link_mode(ro, 2 * kPage) != 0400)
    test_fail("before dump: map_files modes %o %o", link_mode(rw, 2 * kPage),
              link_mode(ro, 2 * kPage));

  test_ready();
  test_wait();

  if (link_mode(rw, 2 * kPage) != 0600)
    test_fail("private mapping of an O_RDWR file: map_files mode %o, want 600",
              link_mode(rw, 2 * kPage));
  if (link_mode(ro, 2 * kPage) != 0400)
    test_fail("private mapping of an O_RDONLY file: map_files mode %o, want 400",
              link_mode(ro, 2 * kPage));
  if (test_check(rw, 2 * kPage, 0, 0x3a) >= 0 || test_check(ro, 2 * kPage, 2 * kPage, 0x3a) >= 0)
    test_fail("mapped content differs");
  // Still private: a write stays out of the file.
  if (mprotect(rw, kPage, PROT_READ | PROT_WRITE)) test_fail_errno("mprotect");
  rw[0] ^= 1;
  int chk = open("mapped", O_RDONLY);
  char c;
  if (pread(chk, &c, 1, 0) != 1 || c != buf[0]) test_fail("private write reached the file");
  return test_pass();
}
