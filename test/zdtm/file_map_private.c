// A MAP_PRIVATE mapping of a file in the temp dir with some pages modified: modified pages keep
// the new content, the others still show the file's content and the mapping stays file-backed.
// A page cleared to zeros is a copy too: it must not come back as the file's content.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPages = 16, kPage = 4096 };

static int modified(int page) { return page == 3 || page == 7 || page == 8 || page == 15; }
static int cleared(int page) { return page == 11 || page == 12; }

int main(void) {
  test_init();
  int fd = open("mapped", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) test_fail_errno("create mapped");
  static char buf[kPages * kPage];
  test_fill(buf, sizeof(buf), 0, 0xf1);
  if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) test_fail_errno("write mapped");
  char *map = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) test_fail_errno("mmap");
  close(fd);  // the mapping alone keeps the file
  // A read-only private mapping of the same file at an offset, never written.
  int fd2 = open("mapped", O_RDONLY | O_CLOEXEC);
  char *ro = mmap(NULL, 4 * kPage, PROT_READ, MAP_PRIVATE, fd2, 4 * kPage);
  if (ro == MAP_FAILED) test_fail_errno("mmap ro");
  close(fd2);
  volatile char sink = 0;
  for (int p = 0; p < kPages; p++) {
    if (modified(p))
      test_fill(map + p * kPage, kPage, (uint64_t)p * kPage, 0xf2);
    else if (cleared(p))
      memset(map + p * kPage, 0, kPage);
    else if (p % 2)
      sink += map[p * kPage];  // read-faulted but clean
  }
  (void)sink;

  test_ready();
  test_wait();

  for (int p = 0; p < kPages; p++) {
    if (cleared(p)) {
      for (int i = 0; i < kPage; i++)
        if (map[p * kPage + i] != 0) test_fail("page %d: cleared, now holds the file's content", p);
      continue;
    }
    uint32_t seed = modified(p) ? 0xf2 : 0xf1;
    if (test_check(map + p * kPage, kPage, (uint64_t)p * kPage, seed) >= 0)
      test_fail("page %d: %s content lost", p, modified(p) ? "modified" : "file");
  }
  if (test_check(ro, 4 * kPage, 4 * kPage, 0xf1) >= 0) test_fail("read-only file mapping differs");
  char line[512];
  if (test_maps_line(map, line, sizeof(line)) != 0) test_fail("mapping gone from maps");
  if (!strstr(line, "/mapped") || !strstr(line, "rw-p")) test_fail("mapping not file-backed rw-p: %s", line);
  if (test_maps_line(ro, line, sizeof(line)) != 0) test_fail("ro mapping gone from maps");
  if (!strstr(line, "/mapped") || !strstr(line, "r--p") || !strstr(line, " 00004000 "))
    test_fail("ro mapping wrong: %s", line);
  return test_pass();
}
