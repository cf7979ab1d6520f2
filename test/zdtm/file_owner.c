// Signal-driven I/O (O_ASYNC) with every kind of owner: pipe a owned by this process (F_SETOWN,
// SIGUSR1), pipe b by its process group (F_SETOWN_EX F_OWNER_PGRP, SIGRTMIN+2), pipe c by a
// child (SIGUSR2), pipe d by a second thread (F_OWNER_TID, SIGRTMIN+3). After restore the owners
// and signals read back the same, and a write to each pipe queues its signal, with the read
// end's fd as si_fd, to its owner.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static int a[2], b[2], c[2], d[2], tcmd[2], ccmd[2];
static volatile pid_t thread_tid;

static void async(int fd, int sig) {
  if (fcntl(fd, F_SETSIG, sig) != 0) test_fail_errno("F_SETSIG");
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC | O_NONBLOCK) != 0)
    test_fail_errno("O_ASYNC");
}

static void set_owner(int fd, int type, pid_t who) {
  struct f_owner_ex ex = {.type = type, .pid = who};
  if (fcntl(fd, F_SETOWN_EX, &ex) != 0) test_fail_errno("F_SETOWN_EX");
}

static void check_owner(int fd, int type, pid_t who, int sig, const char *what) {
  struct f_owner_ex ex;
  if (fcntl(fd, F_GETOWN_EX, &ex) != 0) test_fail_errno("F_GETOWN_EX");
  if ((int)ex.type != type || ex.pid != who)
    test_fail("%s: owner type %d pid %d, want %d %d", what, ex.type, ex.pid, type, who);
  if (fcntl(fd, F_GETSIG) != sig)
    test_fail("%s: signal %d, want %d", what, fcntl(fd, F_GETSIG), sig);
  if (!(fcntl(fd, F_GETFL) & O_ASYNC)) test_fail("%s: O_ASYNC lost", what);
}

// Takes the pending `sig` without waiting; returns its si_fd, or -1 if none is pending.
static int take(int sig) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, sig);
  siginfo_t si;
  struct timespec zero = {0, 0};
  if (sigtimedwait(&s, &si, &zero) != sig) return -1;
  if (si.si_code != POLL_IN) return -2;
  return si.si_fd;
}

static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  char ch;
  if (write(tcmd[1], "r", 1) != 1) return (void *)(intptr_t)-3;
  // Until main says the write to d is done (read restarts across the restore).
  if (read(ccmd[0], &ch, 1) != 1) return (void *)(intptr_t)-4;
  return (void *)(intptr_t)take(SIGRTMIN + 3);
}

int main(void) {
  test_init();
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  sigaddset(&block, SIGRTMIN + 2);
  sigaddset(&block, SIGRTMIN + 3);
  if (sigprocmask(SIG_BLOCK, &block, NULL)) test_fail_errno("sigprocmask");
  if (pipe(a) || pipe(b) || pipe(c) || pipe(d) || pipe(tcmd) || pipe(ccmd)) test_fail_errno("pipe");

  int kid[2];
  if (pipe(kid)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(kid[1]);
    char ch;
    if (read(kid[0], &ch, 1) != 1) _exit(3);
    int fd = take(SIGUSR2);
    _exit(fd == c[0] ? 7 : fd == -1 ? 4 : 5);
  }
  close(kid[0]);

  // The thread must not take SIGTERM: the main thread waits for it.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, NULL);
  pthread_t th;
  if (pthread_create(&th, NULL, thread_main, NULL)) test_fail("pthread_create");
  pthread_sigmask(SIG_UNBLOCK, &term, NULL);
  char ch;
  if (read(tcmd[0], &ch, 1) != 1) test_fail("thread did not start");

  set_owner(a[0], F_OWNER_PID, getpid());
  async(a[0], SIGUSR1);
  set_owner(b[0], F_OWNER_PGRP, getpgrp());
  async(b[0], SIGRTMIN + 2);
  set_owner(c[0], F_OWNER_PID, child);
  async(c[0], SIGUSR2);
  set_owner(d[0], F_OWNER_TID, thread_tid);
  async(d[0], SIGRTMIN + 3);

  test_ready();
  test_wait();

  check_owner(a[0], F_OWNER_PID, getpid(), SIGUSR1, "pipe a");
  check_owner(b[0], F_OWNER_PGRP, getpgrp(), SIGRTMIN + 2, "pipe b");
  check_owner(c[0], F_OWNER_PID, child, SIGUSR2, "pipe c");
  check_owner(d[0], F_OWNER_TID, thread_tid, SIGRTMIN + 3, "pipe d");
  if (take(SIGUSR1) != -1 || take(SIGRTMIN + 2) != -1) test_fail("a signal before any write");
  if (write(a[1], "x", 1) != 1) test_fail_errno("write a");
  int fd = take(SIGUSR1);
  if (fd != a[0]) test_fail("pipe a: SIGUSR1 si_fd %d, want %d", fd, a[0]);
  if (write(b[1], "x", 1) != 1) test_fail_errno("write b");
  fd = take(SIGRTMIN + 2);
  if (fd != b[0]) test_fail("pipe b: group signal si_fd %d, want %d", fd, b[0]);
  if (write(c[1], "x", 1) != 1) test_fail_errno("write c");
  if (take(SIGUSR2) != -1) test_fail("pipe c: the child's signal came to the parent");
  if (write(kid[1], "q", 1) != 1) test_fail_errno("write kid");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child: status %#x (4: no signal, 5: wrong si_fd)", st);
  if (write(d[1], "x", 1) != 1) test_fail_errno("write d");
  if (take(SIGRTMIN + 3) != -1) test_fail("pipe d: the thread's signal came to the main thread");
  if (write(ccmd[1], "g", 1) != 1) test_fail_errno("write ccmd");
  void *ret;
  if (pthread_join(th, &ret)) test_fail("pthread_join");
  if ((intptr_t)ret != d[0])
    test_fail("pipe d: thread got si_fd %d, want %d", (int)(intptr_t)ret, d[0]);
  return test_pass();
}
