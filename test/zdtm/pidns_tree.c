// A container's tree: the harness starts this program as pid 1 of a pid namespace of its own
// (and with argv[1] "uts" of a UTS namespace of its own too, whose hostname and domainname it
// sets), the harness staying in its own namespaces. It makes a thread, a child A leading its
// own process group, a child B whose child C joins A's group, and a child Z left a zombie.
// After restore every task has its pids again inside the namespace (getpid, gettid, getppid,
// getpgrp as they see them), the names are the same, C is still in A's group and Z's status
// is the one it exited with.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static int go[2];   // the children wait for a byte each, after the restore
static int tgo[2];  // and the thread for one of its own
static volatile pid_t thread_tid;
static volatile int thread_ok = -1;

static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  char c;
  if (read(tgo[0], &c, 1) != 1) return NULL;
  thread_ok = (pid_t)syscall(SYS_gettid) == thread_tid && getpid() == 1;
  return NULL;
}

// A child: waits for its byte, then checks that it is still itself.
static _Noreturn void child_wait(pid_t me, pid_t parent, pid_t group) {
  close(3);
  close(go[1]);
  char c;
  if (read(go[0], &c, 1) != 1) _exit(20);
  if (getpid() != me) _exit(21);
  if (getppid() != parent) _exit(22);
  if (getpgrp() != group) _exit(23);
  _exit(0);
}

int main(int argc, char **argv) {
  test_init();
  const int uts = argc > 1 && !strcmp(argv[1], "uts");
  if (getpid() != 1) test_fail("not pid 1 of a pid namespace (pid %d)", getpid());
  if (uts && (sethostname("crtools-pidns", 13) || setdomainname("crtools.test", 12)))
    test_fail_errno("sethostname");
  if (pipe(go) || pipe(tgo)) test_fail_errno("pipe");
  pthread_t th;
  if (pthread_create(&th, NULL, thread_main, NULL)) test_fail("pthread_create");

  pid_t a = fork();
  if (a < 0) test_fail_errno("fork");
  if (a == 0) {
    if (setpgid(0, 0)) _exit(10);
    child_wait(getpid(), 1, getpid());
  }
  setpgid(a, a);  // whoever runs first: A's group exists before C joins it
  int ready[2];
  if (pipe(ready)) test_fail_errno("pipe");
  pid_t b = fork();
  if (b < 0) test_fail_errno("fork");
  if (b == 0) {
    close(ready[0]);
    pid_t c = fork();
    if (c < 0) _exit(11);
    if (c == 0) {
      if (setpgid(0, a)) _exit(12);
      close(ready[1]);
      child_wait(getpid(), getppid(), a);
    }
    close(ready[1]);
    close(3);
    close(go[1]);
    char x;
    if (read(go[0], &x, 1) != 1) _exit(20);
    int st;
    if (waitpid(c, &st, 0) != c) _exit(24);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(30 + (WIFEXITED(st) ? WEXITSTATUS(st) : 9));
    if (getppid() != 1) _exit(25);
    _exit(0);
  }
  close(ready[1]);
  char x;
  if (read(ready[0], &x, 1) != 0) test_fail("C did not get to its group");
  close(ready[0]);
  pid_t z = fork();
  if (z < 0) test_fail_errno("fork");
  if (z == 0) _exit(7);
  siginfo_t si;
  if (waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT) != 0) test_fail_errno("waitid");
  while (thread_tid == 0) sched_yield();  // the thread has its tid (it blocks in read next)

  test_ready();
  test_wait();

  if (getpid() != 1) test_fail("pid %d after restore, not 1", getpid());
  if (uts) {
    struct utsname u;
    if (uname(&u)) test_fail_errno("uname");
    if (strcmp(u.nodename, "crtools-pidns") || strcmp(u.domainname, "crtools.test"))
      test_fail("hostname '%s' domainname '%s'", u.nodename, u.domainname);
  }
  // One byte per waiting child (A, B, C), one for the thread.
  if (write(go[1], "abc", 3) != 3) test_fail_errno("write");
  int st;
  if (waitpid(a, &st, 0) != a || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("child A status %#x", st);
  if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("child B status %#x", st);
  if (waitpid(z, &st, 0) != z || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("zombie Z status %#x", st);
  if (write(tgo[1], "t", 1) != 1) test_fail_errno("write");
  pthread_join(th, NULL);
  if (thread_ok != 1) test_fail("the thread is not itself after restore");
  return test_pass();
}
