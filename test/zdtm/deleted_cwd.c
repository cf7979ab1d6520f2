// A process whose cwd was removed while it was in it (rmdir of its own cwd): after restore it is
// still in a removed directory of the same path, mode and owner, where nothing can be created.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

static void cwd_link(char* out, size_t len) {
  ssize_t n = readlink("/proc/self/cwd", out, len - 1);
  if (n < 0) test_fail_errno("readlink cwd");
  out[n] = 0;
}

int main(void) {
  test_init();
  char top[PATH_MAX], want[PATH_MAX + 32];
  if (!getcwd(top, sizeof(top))) test_fail_errno("getcwd");
  if (mkdir("gone_dir", 0751)) test_fail_errno("mkdir");
  if (chmod("gone_dir", 0751)) test_fail_errno("chmod");  // umask-proof
  if (chdir("gone_dir")) test_fail_errno("chdir");
  if (rmdir("../gone_dir")) test_fail_errno("rmdir");
  snprintf(want, sizeof(want), "%s/gone_dir (deleted)", top);
  char before[PATH_MAX];
  cwd_link(before, sizeof(before));
  if (strcmp(before, want)) test_fail("cwd '%s' before dump, want '%s'", before, want);

  test_ready();
  test_wait();

  char after[PATH_MAX];
  cwd_link(after, sizeof(after));
  if (strcmp(after, want)) test_fail("cwd '%s', want '%s'", after, want);
  struct stat st;
  if (stat(".", &st)) test_fail_errno("stat .");
  if (!S_ISDIR(st.st_mode) || st.st_nlink != 0)
    test_fail("cwd mode %o nlink %lu: not a removed directory", st.st_mode,
              (unsigned long)st.st_nlink);
  if ((st.st_mode & 07777) != 0751) test_fail("cwd mode %o, want 751", st.st_mode & 07777);
  if (open("new", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT)
    test_fail("a file could be made in the removed cwd");
  char again[PATH_MAX + 16];
  snprintf(again, sizeof(again), "%s/gone_dir", top);
  if (access(again, F_OK) == 0) test_fail("%s reappeared", again);
  return test_pass();
}
