// Deleted regular files with holes: a small one with owner, mode and times set, and one of
// 100 MiB (over the old 64 MiB limit) with data at its start, middle and end. After restore each
// has its size, its SEEK_DATA/SEEK_HOLE layout, its contents, and the small one its owner, mode,
// atime and mtime. With "big" only the large file is made (for the --ghost-limit refusal).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kMaxExtents = 16 };
struct layout {
  int n;
  off_t start[kMaxExtents], end[kMaxExtents];
};

static void read_layout(int fd, off_t size, struct layout* l) {
  memset(l, 0, sizeof(*l));
  off_t pos = 0;
  while (pos < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) test_fail_errno("SEEK_HOLE");
    if (l->n == kMaxExtents) test_fail("too many extents");
    l->start[l->n] = d;
    l->end[l->n] = h;
    l->n++;
    pos = h;
  }
}

static void put(int fd, off_t off, size_t len, uint32_t seed) {
  static char buf[1 << 20];
  test_fill(buf, len, (uint64_t)off, seed);
  if (pwrite(fd, buf, len, off) != (ssize_t)len) test_fail_errno("pwrite");
}

static void check(int fd, off_t off, size_t len, uint32_t seed, const char* what) {
  static char buf[1 << 20];
  if (pread(fd, buf, len, off) != (ssize_t)len) test_fail_errno("pread %s", what);
  if (test_check(buf, len, (uint64_t)off, seed) >= 0) test_fail("%s: content differs", what);
}

static void check_zero(int fd, off_t off, size_t len, const char* what) {
  static char buf[1 << 16];
  if (pread(fd, buf, len, off) != (ssize_t)len) test_fail_errno("pread %s", what);
  for (size_t i = 0; i < len; i++)
    if (buf[i]) test_fail("%s: hole reads non-zero", what);
}

static int make_big(void) {
  int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) test_fail_errno("open big");
  put(fd, 0, 1 << 20, 0xb1);
  put(fd, 50 << 20, 1 << 20, 0xb2);
  put(fd, (100 << 20) - 4096, 4096, 0xb3);
  if (unlink("big")) test_fail_errno("unlink big");
  return fd;
}

int main(int argc, char** argv) {
  test_init();
  if (argc > 1 && !strcmp(argv[1], "big")) {
    make_big();
    test_ready();
    test_wait();
    return test_pass();
  }
  int small = open("small", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (small < 0) test_fail_errno("open small");
  put(small, 0, 4096, 0x51);
  put(small, 1 << 20, 8192, 0x52);
  put(small, 3 << 20, 100, 0x53);
  if (ftruncate(small, 6 << 20)) test_fail_errno("ftruncate");
  if (fchown(small, 1234, 5678)) test_fail_errno("fchown");
  if (fchmod(small, 02751)) test_fail_errno("fchmod");  // setgid kept: the image owner is root
  const struct timespec times[2] = {{1000000000, 111}, {1200000000, 222}};
  if (futimens(small, times)) test_fail_errno("futimens");
  if (unlink("small")) test_fail_errno("unlink small");
  int big = make_big();
  struct layout small_before, big_before;
  read_layout(small, 6 << 20, &small_before);
  read_layout(big, 100 << 20, &big_before);
  if (lseek(small, 4000, SEEK_SET) != 4000) test_fail_errno("lseek");  // after SEEK_DATA's

  test_ready();
  test_wait();

  struct stat st;
  if (fstat(small, &st)) test_fail_errno("fstat small");
  if (st.st_nlink != 0 || st.st_size != (6 << 20)) test_fail("small: nlink %lu size %ld",
                                                              (unsigned long)st.st_nlink, (long)st.st_size);
  if (st.st_uid != 1234 || st.st_gid != 5678) test_fail("small: owner %u:%u", st.st_uid, st.st_gid);
  if ((st.st_mode & 07777) != 02751) test_fail("small: mode %o, want 2751", st.st_mode & 07777);
  if (st.st_atim.tv_sec != 1000000000 || st.st_atim.tv_nsec != 111) test_fail("small: atime differs");
  if (st.st_mtim.tv_sec != 1200000000 || st.st_mtim.tv_nsec != 222) test_fail("small: mtime differs");
  if (lseek(small, 0, SEEK_CUR) != 4000) test_fail("small: offset differs");
  struct layout l;
  read_layout(small, 6 << 20, &l);
  if (memcmp(&l, &small_before, sizeof(l))) test_fail("small: data/hole layout differs (%d extents, was %d)", l.n, small_before.n);
  check(small, 0, 4096, 0x51, "small 0");
  check(small, 1 << 20, 8192, 0x52, "small 1M");
  check(small, 3 << 20, 100, 0x53, "small 3M");
  check_zero(small, 8192, 4096, "small hole");
  check_zero(small, (6 << 20) - 4096, 4096, "small tail");

  if (fstat(big, &st)) test_fail_errno("fstat big");
  if (st.st_nlink != 0 || st.st_size != (100 << 20)) test_fail("big: size %ld", (long)st.st_size);
  read_layout(big, 100 << 20, &l);
  if (memcmp(&l, &big_before, sizeof(l))) test_fail("big: data/hole layout differs (%d extents, was %d)", l.n, big_before.n);
  check(big, 0, 1 << 20, 0xb1, "big 0");
  check(big, 50 << 20, 1 << 20, 0xb2, "big 50M");
  check(big, (100 << 20) - 4096, 4096, 0xb3, "big end");
  check_zero(big, 20 << 20, 4096, "big hole");
  if (st.st_blocks * 512 > (8 << 20)) test_fail("big: %ld bytes allocated: holes filled", (long)st.st_blocks * 512);
  return test_pass();
}
