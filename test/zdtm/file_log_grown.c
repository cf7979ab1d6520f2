// A program that logs to files in its directory: "app.log" written at its offset, "append.log"
// opened O_APPEND. The harness appends to both between dump and restore (the log grew) and
// restores with crrestore --allow-changed-files; on SIGTERM each gets "after\n", and the harness
// reads the files: app.log's line lands at the recorded offset, append.log's at the end.
// Nothing else is checked here: the contents are the harness's to judge.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "zdtmlib.h"

static int open_log(const char *path, int flags) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | flags, 0644);
  if (fd < 0) test_fail_errno("open %s", path);
  if (write(fd, "before\n", 7) != 7) test_fail_errno("write %s", path);
  return fd;
}

int main(void) {
  test_init();
  int app = open_log("app.log", 0);
  int append = open_log("append.log", O_APPEND);

  test_ready();
  test_wait();

  if (lseek(app, 0, SEEK_CUR) != 7)
    test_fail("app.log offset %ld, want 7", (long)lseek(app, 0, SEEK_CUR));
  if (write(app, "after\n", 6) != 6) test_fail_errno("write app.log");
  if (write(append, "after\n", 6) != 6) test_fail_errno("write append.log");
  return test_pass();
}
