// O_PATH fds: on a regular file, on a directory, on a symlink itself (O_PATH|O_NOFOLLOW, its
// target a file and a dangling one), and on a FIFO (no reader needed: O_PATH opens nothing).
// After restore each holds the same path with the same flags, a symlink fd is still the link
// (readlinkat(fd, "") gives its target), and the others are the files at their paths.
// With "deleted": an O_PATH fd on a file since removed, which crdump must refuse by name.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

struct held {
  const char *path;
  int flags;
  int fd;
  int getfl;
  char link[256];
  struct stat st;
};

static void describe(struct held *h) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", h->fd);
  ssize_t n = readlink(proc, h->link, sizeof h->link - 1);
  if (n < 0) test_fail_errno("readlink %s", proc);
  h->link[n] = 0;
  h->getfl = fcntl(h->fd, F_GETFL);
  if (fstatat(h->fd, "", &h->st, AT_EMPTY_PATH) != 0) test_fail_errno("fstat %s", h->path);
}

int main(int argc, char **argv) {
  test_init();
  const int deleted = argc > 1 && strcmp(argv[1], "deleted") == 0;
  int fd = open("file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, "data", 4) != 4) test_fail_errno("create file");
  close(fd);
  if (mkdir("dir", 0755) != 0 || symlink("file", "link") != 0 ||
      symlink("nowhere", "dangling") != 0 || mkfifo("fifo", 0644) != 0)
    test_fail_errno("make nodes");
  struct held h[] = {
      {"file", O_PATH},
      {"dir", O_PATH | O_DIRECTORY},
      {"link", O_PATH | O_NOFOLLOW},
      {"dangling", O_PATH | O_NOFOLLOW | O_CLOEXEC},
      {"fifo", O_PATH},
      {"link", O_PATH},  // follows: the file itself
  };
  const int n = sizeof h / sizeof h[0];
  for (int i = 0; i < n; ++i) {
    h[i].fd = open(h[i].path, h[i].flags);
    if (h[i].fd < 0) test_fail_errno("open %s", h[i].path);
    describe(&h[i]);
  }
  if (deleted) {
    int gone = open("gone", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    close(gone);
    if (open("gone", O_PATH) < 0 || unlink("gone") != 0) test_fail_errno("gone");
  }
  test_ready();
  test_wait();
  for (int i = 0; i < n; ++i) {
    struct held now = h[i];
    describe(&now);
    if (strcmp(now.link, h[i].link) != 0)
      test_fail("fd %d: %s now, was %s", h[i].fd, now.link, h[i].link);
    if (now.getfl != h[i].getfl)
      test_fail("fd %d (%s): flags %o, were %o", h[i].fd, h[i].path, now.getfl, h[i].getfl);
    if ((now.st.st_mode & S_IFMT) != (h[i].st.st_mode & S_IFMT))
      test_fail("fd %d (%s): type %o, was %o", h[i].fd, h[i].path, now.st.st_mode & S_IFMT,
                h[i].st.st_mode & S_IFMT);
    if (((fcntl(h[i].fd, F_GETFD) & FD_CLOEXEC) != 0) != ((h[i].flags & O_CLOEXEC) != 0))
      test_fail("fd %d: close-on-exec changed", h[i].fd);
  }
  // The symlink fds are the links: their targets read through them.
  char target[64];
  ssize_t len = readlinkat(h[2].fd, "", target, sizeof target - 1);
  if (len != 4 || memcmp(target, "file", 4) != 0) test_fail("link fd no longer the link");
  len = readlinkat(h[3].fd, "", target, sizeof target - 1);
  if (len != 7 || memcmp(target, "nowhere", 7) != 0) test_fail("dangling fd no longer the link");
  // The others are the files at their paths.
  struct stat st;
  if (stat("file", &st) != 0 || st.st_ino != h[0].st.st_ino || st.st_ino != h[5].st.st_ino)
    test_fail("file fd is not the file");
  if (fstatat(h[1].fd, "", &st, AT_EMPTY_PATH) != 0 || !S_ISDIR(st.st_mode))
    test_fail("dir fd is not a directory");
  // openat through the directory fd works as before.
  if (mkdirat(h[1].fd, "sub", 0755) != 0 || unlinkat(h[1].fd, "sub", AT_REMOVEDIR) != 0)
    test_fail_errno("mkdirat through the O_PATH dir fd");
  return test_pass();
}
