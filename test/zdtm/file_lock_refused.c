// State about locks and async I/O crdump must refuse, by argv[1]:
//   owner_outside   a pipe whose SIGIO goes to a process outside the tree (our parent)
//   lease_breaking  a read lease a child is breaking (its open for writing waits)
//   posix_unseen    a POSIX lock a thread holds through an fd table of its own
//                   (unshare(CLONE_FILES)): /proc/locks shows it, no fdinfo of the process does
//                   (the thread's own table is refused at freeze, before the locks are read)
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static atomic_int locked;

// Takes a write lock on "unseen" through an fd only its own table has, then waits for good.
static void *unseen_locker(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);  // SIGTERM is the main thread's
  if (unshare(CLONE_FILES) != 0) test_fail_errno("unshare(CLONE_FILES)");
  // Its copy of the ready pipe would keep the harness waiting for EOF.
  if (close_range(3, ~0u, 0) != 0) test_fail_errno("close_range");
  int fd = open("unseen", O_RDWR | O_CREAT, 0644);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0) test_fail_errno("lock in the thread");
  atomic_store(&locked, 1);
  for (;;) pause();
  return NULL;
}

// The lock is still the thread's: the main thread's table sees it as another owner's.
static void expect_unseen_lock_held(void) {
  int fd = open("unseen", O_RDWR);
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
  if (fd < 0 || fcntl(fd, F_GETLK, &fl) != 0) test_fail_errno("F_GETLK");
  if (fl.l_type != F_WRLCK || fl.l_pid != getpid())
    test_fail("the thread's lock is gone (type %d, pid %d)", fl.l_type, (int)fl.l_pid);
  close(fd);
}

int main(int argc, char **argv) {
  test_init();
  if (argc < 2) test_fail("which case?");
  if (strcmp(argv[1], "posix_unseen") == 0) {
    pthread_t th;
    if (pthread_create(&th, NULL, unseen_locker, NULL) != 0) test_fail("pthread_create");
    while (!atomic_load(&locked)) sched_yield();
    test_ready();
    test_wait();
    expect_unseen_lock_held();
    return test_pass();
  }
  if (strcmp(argv[1], "owner_outside") == 0) {
    int p[2];
    if (pipe(p)) test_fail_errno("pipe");
    if (fcntl(p[0], F_SETOWN, getppid()) != 0) test_fail_errno("F_SETOWN");
    test_ready();
    test_wait();
    if (fcntl(p[0], F_GETOWN) != getppid()) test_fail("owner changed");
    return test_pass();
  }
  int w = open("lease", O_RDWR | O_CREAT, 0644);
  if (w < 0) test_fail_errno("open");
  close(w);
  int fd = open("lease", O_RDONLY);
  if (fd < 0 || fcntl(fd, F_SETLEASE, F_RDLCK) != 0) test_fail_errno("F_SETLEASE");
  // The lease-break signal (SIGIO) would kill us: ignore it, the fdinfo shows the break.
  signal(SIGIO, SIG_IGN);
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    int o = open("lease", O_WRONLY);  // waits until the lease is given up
    _exit(o >= 0 ? 7 : 3);
  }
  char path[64], info[4096];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
  for (;;) {
    if (test_read_file(path, info, sizeof(info)) < 0) test_fail_errno("read fdinfo");
    if (strstr(info, "BREAKING")) break;
    sched_yield();
  }
  test_ready();
  test_wait();
  if (fcntl(fd, F_SETLEASE, F_UNLCK) != 0) test_fail_errno("F_SETLEASE F_UNLCK");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  return test_pass();
}
