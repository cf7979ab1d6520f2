// Three children blocked waiting for locks the parent holds (F_SETLKW on a POSIX lock, flock
// LOCK_EX, F_OFD_SETLKW): after restore they are blocked again (their waits show in /proc/locks
// and none got its lock), and each gets its lock once the parent lets go.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPosix, kFlock, kOfd, kN };
static const char *const names[kN] = {"posix", "flock", "ofd"};

static void lock(int fd, int cmd, short type) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (fcntl(fd, cmd, &fl) != 0) test_fail_errno("fcntl %d type %d", cmd, type);
}

// Whether /proc/locks shows a waiter ("->") on each of the inodes.
static int all_waiting(const unsigned long *ino) {
  static char buf[1 << 16];
  long n = test_read_file("/proc/locks", buf, sizeof(buf));
  if (n < 0) test_fail_errno("read /proc/locks");
  for (int i = 0; i < kN; ++i) {
    char want[64];
    snprintf(want, sizeof(want), ":%lu ", ino[i]);
    int found = 0;
    for (char *line = buf; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
      char *end = strchr(line, '\n');
      size_t len = end ? (size_t)(end - line) : strlen(line);
      char l[256];
      if (len >= sizeof(l)) continue;
      memcpy(l, line, len);
      l[len] = 0;
      if (strstr(l, "->") && strstr(l, want)) found = 1;
    }
    if (!found) return 0;
  }
  return 1;
}

// Until every child waits again (or one of them got its lock: then the lock was not restored).
static void wait_for_waiters(const unsigned long *ino, int done) {
  for (;;) {
    struct pollfd p = {.fd = done, .events = POLLIN};
    if (poll(&p, 1, 0) > 0) {
      char c = 0;
      if (read(done, &c, 1) != 1) c = '?';
      test_fail("a child got its lock (%c) while the parent held it", c);
    }
    if (all_waiting(ino)) return;
    sched_yield();
  }
}

int main(void) {
  test_init();
  int fds[kN];
  unsigned long ino[kN];
  for (int i = 0; i < kN; ++i) {
    fds[i] = open(names[i], O_RDWR | O_CREAT, 0644);
    struct stat st;
    if (fds[i] < 0 || fstat(fds[i], &st)) test_fail_errno("open %s", names[i]);
    ino[i] = (unsigned long)st.st_ino;
  }
  lock(fds[kPosix], F_SETLK, F_WRLCK);
  if (flock(fds[kFlock], LOCK_EX | LOCK_NB)) test_fail_errno("flock");
  lock(fds[kOfd], F_OFD_SETLK, F_WRLCK);

  int done[2];
  if (pipe(done)) test_fail_errno("pipe");
  pid_t kids[kN];
  for (int i = 0; i < kN; ++i) {
    kids[i] = fork();
    if (kids[i] < 0) test_fail_errno("fork");
    if (kids[i] == 0) {
      close(3);
      close(done[0]);
      int fd = open(names[i], O_RDWR);  // a description of its own
      if (fd < 0) _exit(3);
      struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
      int r = i == kPosix   ? fcntl(fd, F_SETLKW, &fl)
              : i == kFlock ? flock(fd, LOCK_EX)
                            : fcntl(fd, F_OFD_SETLKW, &fl);
      if (r != 0) _exit(4);
      const char c = names[i][0];
      _exit(write(done[1], &c, 1) == 1 ? 7 : 5);
    }
  }
  close(done[1]);
  wait_for_waiters(ino, done[0]);

  test_ready();
  test_wait();

  wait_for_waiters(ino, done[0]);
  // Each lock released in turn, and its waiter gets it.
  for (int i = 0; i < kN; ++i) {
    if (i == kFlock) {
      if (flock(fds[i], LOCK_UN)) test_fail_errno("flock LOCK_UN");
    } else {
      lock(fds[i], i == kPosix ? F_SETLK : F_OFD_SETLK, F_UNLCK);
    }
    char c;
    if (read(done[0], &c, 1) != 1) test_fail("no word from the %s waiter", names[i]);
    if (c != names[i][0]) test_fail("the %c waiter woke when %s was released", c, names[i]);
    int st;
    if (waitpid(kids[i], &st, 0) != kids[i]) test_fail_errno("waitpid");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("%s waiter status %#x", names[i], st);
  }
  return test_pass();
}
