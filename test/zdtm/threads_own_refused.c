// A thread with kernel state of its own that the image keeps once per process, which crdump
// must refuse (restore would make the thread share its process's), by argv[1]:
//   files  the thread unshare(CLONE_FILES)s and holds an fd on "own" only its table has
//   fs     the thread unshare(CLONE_FS)s, chdir()s into "sub" and sets umask 077
// After the refused dump the thread's state must be as it was: checked from the main thread
// through /proc/self/task/TID, so the thread itself only waits.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kOwnFd = 40 };  // a number the main thread's table leaves unused

static atomic_int tid;  // the thread's, once its state is set up
static int want_files;

static void *own_state(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);  // SIGTERM is the main thread's
  if (want_files) {
    if (unshare(CLONE_FILES) != 0) test_fail_errno("unshare(CLONE_FILES)");
    // Its copy of the ready pipe would keep the harness waiting for EOF.
    if (close_range(3, ~0u, 0) != 0) test_fail_errno("close_range");
    int fd = open("own", O_RDWR | O_CREAT, 0644);
    if (fd < 0 || dup2(fd, kOwnFd) != kOwnFd) test_fail_errno("open own");
    close(fd);
  } else {
    if (unshare(CLONE_FS) != 0) test_fail_errno("unshare(CLONE_FS)");
    if (chdir("sub") != 0) test_fail_errno("chdir sub");
    umask(077);
  }
  atomic_store(&tid, (int)syscall(SYS_gettid));
  for (;;) pause();
  return NULL;
}

// The link /proc/self/task/TID/NAME must end with `suffix`.
static void expect_link(const char *name, const char *suffix) {
  char path[96], target[4096];
  snprintf(path, sizeof(path), "/proc/self/task/%d/%s", atomic_load(&tid), name);
  ssize_t n = readlink(path, target, sizeof(target) - 1);
  if (n < 0) test_fail_errno("readlink %s", path);
  target[n] = '\0';
  size_t len = strlen(suffix);
  if ((size_t)n < len || strcmp(target + n - len, suffix) != 0)
    test_fail("%s -> %s, not ...%s", path, target, suffix);
}

int main(int argc, char **argv) {
  test_init();
  if (argc < 2) test_fail("which case?");
  want_files = strcmp(argv[1], "files") == 0;
  if (!want_files && strcmp(argv[1], "fs") != 0) test_fail("unknown case %s", argv[1]);
  if (!want_files && mkdir("sub", 0755) != 0) test_fail_errno("mkdir sub");
  pthread_t th;
  if (pthread_create(&th, NULL, own_state, NULL) != 0) test_fail("pthread_create");
  while (atomic_load(&tid) == 0) sched_yield();
  test_ready();
  test_wait();
  char fd_name[32];
  snprintf(fd_name, sizeof(fd_name), "fd/%d", kOwnFd);
  if (want_files) {
    expect_link(fd_name, "/own");
    if (fcntl(kOwnFd, F_GETFD) != -1) test_fail("fd %d is in the main thread's table", kOwnFd);
  } else {
    expect_link("cwd", "/sub");
    char status[4096], path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/status", atomic_load(&tid));
    if (test_read_file(path, status, sizeof(status)) < 0) test_fail_errno("read %s", path);
    if (!strstr(status, "Umask:\t0077\n")) test_fail("the thread's umask changed");
    if (access("sub", F_OK) != 0) test_fail("the main thread's cwd changed");
  }
  return test_pass();
}
