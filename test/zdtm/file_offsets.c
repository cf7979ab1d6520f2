// Regular file fds keep their numbers, offsets and flags: a file at offset 123, an O_APPEND
// file, a directory fd, an O_CLOEXEC fd and an O_RDWR one.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

static int open_at(const char *path, int flags, int want_fd) {
  int fd = open(path, flags, 0644);
  if (fd < 0) test_fail_errno("open %s", path);
  if (dup3(fd, want_fd, flags & O_CLOEXEC) < 0) test_fail_errno("dup3");
  close(fd);
  return want_fd;
}

int main(void) {
  test_init();
  static char data[8192];
  test_fill(data, sizeof(data), 0, 0x0f);
  int w = open("data", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (w < 0 || write(w, data, sizeof(data)) != (ssize_t)sizeof(data)) test_fail_errno("write data");
  close(w);
  int rd = open_at("data", O_RDONLY, 10);
  if (lseek(rd, 123, SEEK_SET) != 123) test_fail_errno("lseek");
  int app = open_at("log2", O_WRONLY | O_CREAT | O_APPEND, 11);
  if (write(app, "first\n", 6) != 6) test_fail_errno("write append");
  lseek(app, 0, SEEK_SET);  // O_APPEND ignores the offset for writes
  int dir = open_at(".", O_RDONLY | O_DIRECTORY, 12);
  int cx = open_at("data", O_RDONLY | O_CLOEXEC, 13);
  if (lseek(cx, 4000, SEEK_SET) != 4000) test_fail_errno("lseek cx");
  int rw = open_at("data", O_RDWR, 20);
  if (lseek(rw, 5000, SEEK_SET) != 5000) test_fail_errno("lseek rw");
  struct stat dir_st0;
  fstat(dir, &dir_st0);

  test_ready();
  test_wait();

  if (lseek(rd, 0, SEEK_CUR) != 123) test_fail("fd 10 offset %ld, want 123", (long)lseek(rd, 0, SEEK_CUR));
  char buf[100];
  if (read(rd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || memcmp(buf, data + 123, sizeof(buf)))
    test_fail("fd 10 read after restore is not data[123..]");
  if ((fcntl(rd, F_GETFL) & O_ACCMODE) != O_RDONLY) test_fail("fd 10 access mode");
  if (!(fcntl(app, F_GETFL) & O_APPEND)) test_fail("fd 11 lost O_APPEND");
  if (write(app, "second\n", 7) != 7) test_fail_errno("append write");
  char all[32] = {0};
  int chk = open("log2", O_RDONLY);
  ssize_t n = read(chk, all, sizeof(all) - 1);
  close(chk);
  if (n != 13 || strcmp(all, "first\nsecond\n")) test_fail("append file is '%s'", all);
  struct stat st;
  if (fstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_ino != dir_st0.st_ino)
    test_fail("fd 12 is not the temp dir");
  int via_dir = openat(dir, "data", O_RDONLY);
  if (via_dir < 0) test_fail_errno("openat(fd 12, data)");
  close(via_dir);
  if (!(fcntl(cx, F_GETFD) & FD_CLOEXEC)) test_fail("fd 13 lost FD_CLOEXEC");
  if (fcntl(rd, F_GETFD) & FD_CLOEXEC) test_fail("fd 10 gained FD_CLOEXEC");
  if (lseek(cx, 0, SEEK_CUR) != 4000) test_fail("fd 13 offset");
  if ((fcntl(rw, F_GETFL) & O_ACCMODE) != O_RDWR) test_fail("fd 20 not O_RDWR");
  if (lseek(rw, 0, SEEK_CUR) != 5000) test_fail("fd 20 offset");
  if (write(rw, "X", 1) != 1) test_fail_errno("write fd 20");
  if (pread(rd, buf, 1, 5000) != 1 || buf[0] != 'X') test_fail("fd 20 write not in the file");
  return test_pass();
}
