// Process attributes that prctl, membarrier and /proc set, each to a value other than the
// default: oom_score_adj, the audit loginuid, dumpable 0, THP disabled, membarrier
// registrations, no_new_privs, SECBIT_NOROOT, and per thread the timer slack; a child (the root
// may not have one: its parent is outside the tree) with a parent-death signal in each of its
// two threads. After restore each must read back the same. With "root_pdeathsig" the root
// has one too, and crdump must refuse it.
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <linux/securebits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

#define MAIN_SLACK 777777ul
#define THREAD_SLACK 123457ul

static int membarrier(int cmd) { return (int)syscall(SYS_membarrier, cmd, 0, 0); }

static void write_proc(const char *name, const char *value) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  FILE *f = fopen(path, "w");
  if (!f || fputs(value, f) < 0 || fclose(f)) test_fail_errno("write %s", path);
}

static long read_proc(const char *name) {
  char path[64], buf[64];
  snprintf(path, sizeof path, "/proc/self/%s", name);
  if (test_read_file(path, buf, sizeof buf) < 0) test_fail_errno("read %s", path);
  return strtol(buf, NULL, 10);
}

// A thread that waits for a byte on `in`, then answers on `out` with a word describing itself.
struct waiter {
  int in, out;
  unsigned long slack;
  int pdeathsig;
};

static void *waiter_main(void *arg) {
  struct waiter *w = arg;
  if (w->slack && prctl(PR_SET_TIMERSLACK, w->slack, 0, 0, 0)) test_fail_errno("PR_SET_TIMERSLACK");
  if (w->pdeathsig && prctl(PR_SET_PDEATHSIG, w->pdeathsig, 0, 0, 0))
    test_fail_errno("PR_SET_PDEATHSIG");
  char c = 1;
  if (write(w->out, &c, 1) != 1) test_fail_errno("thread started");
  while (read(w->in, &c, 1) != 1) {
  }
  int sig = 0;
  prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
  long v[2] = {prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), sig};
  if (write(w->out, v, sizeof v) != sizeof v) test_fail_errno("thread answer");
  return NULL;
}

// The child: its main thread and a second one each with a parent-death signal of their own.
// It answers the parent on `ans` with both once it gets a byte on `ask`.
static void child(int ask, int ans) {
  if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0)) test_fail_errno("PR_SET_PDEATHSIG");
  int q[2], a[2];
  if (pipe(q) || pipe(a)) test_fail_errno("pipe");
  struct waiter w = {q[0], a[1], 0, SIGWINCH};
  pthread_t t;
  if (pthread_create(&t, NULL, waiter_main, &w)) test_fail("pthread_create");
  char c;
  if (read(a[0], &c, 1) != 1) test_fail_errno("child thread start");
  if (write(ans, &c, 1) != 1) test_fail_errno("child ready");
  while (read(ask, &c, 1) != 1) {
  }
  if (write(q[1], &c, 1) != 1) test_fail_errno("ask child thread");
  long v[2];
  if (read(a[0], v, sizeof v) != sizeof v) test_fail_errno("child thread answer");
  int sig = 0;
  prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0);
  long out[2] = {sig, v[1]};
  if (write(ans, out, sizeof out) != sizeof out) test_fail_errno("child answer");
  _exit(0);
}

int main(int argc, char **argv) {
  test_init();
  int ask[2], ans[2];
  if (pipe(ask) || pipe(ans)) test_fail_errno("pipe");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(3);
    child(ask[0], ans[1]);
  }
  char c;
  if (read(ans[0], &c, 1) != 1) test_fail_errno("child start");

  write_proc("oom_score_adj", "345");
  write_proc("loginuid", "4242");
  if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)) test_fail_errno("PR_SET_THP_DISABLE");
  int supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0) test_fail_errno("membarrier query");
  int want_mb =
      (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &
      supported;
  if ((want_mb & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) &&
      membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED))
    test_fail_errno("membarrier register private");
  if ((want_mb & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
      membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
    test_fail_errno("membarrier register global");
  if (membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS) != want_mb)
    test_fail("membarrier registrations %#x before the dump, want %#x",
              membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS), want_mb);
  // Per thread in the kernel: set before the thread is made, so both hold them.
  if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0)) test_fail_errno("PR_SET_SECUREBITS");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) test_fail_errno("PR_SET_NO_NEW_PRIVS");
  if (prctl(PR_SET_TIMERSLACK, MAIN_SLACK, 0, 0, 0)) test_fail_errno("PR_SET_TIMERSLACK");
  int q[2], a[2];
  if (pipe(q) || pipe(a)) test_fail_errno("pipe");
  struct waiter w = {q[0], a[1], THREAD_SLACK, 0};
  pthread_t t;
  if (pthread_create(&t, NULL, waiter_main, &w)) test_fail("pthread_create");
  if (read(a[0], &c, 1) != 1) test_fail_errno("thread start");
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) test_fail_errno("PR_SET_DUMPABLE");
  // "root_pdeathsig": the root has a parent-death signal, which crdump must refuse.
  if (argc > 1 && !strcmp(argv[1], "root_pdeathsig") && prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0))
    test_fail_errno("PR_SET_PDEATHSIG");

  test_ready();
  test_wait();

  if (read_proc("oom_score_adj") != 345)
    test_fail("oom_score_adj %ld, want 345", read_proc("oom_score_adj"));
  if (read_proc("loginuid") != 4242) test_fail("loginuid %ld, want 4242", read_proc("loginuid"));
  if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
    test_fail("dumpable %d, want 0", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
  if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1)
    test_fail("THP disable %d, want 1", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) test_fail("no_new_privs lost");
  if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != SECBIT_NOROOT)
    test_fail("securebits %#x, want %#x", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), SECBIT_NOROOT);
  if (membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS) != want_mb)
    test_fail("membarrier registrations %#x, want %#x",
              membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS), want_mb);
  if ((unsigned long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) != MAIN_SLACK)
    test_fail("timer slack %d, want %lu", prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0), MAIN_SLACK);
  if (write(q[1], "x", 1) != 1) test_fail_errno("ask thread");
  long v[2];
  if (read(a[0], v, sizeof v) != sizeof v) test_fail_errno("thread answer");
  if ((unsigned long)v[0] != THREAD_SLACK)
    test_fail("thread timer slack %ld, want %lu", v[0], THREAD_SLACK);
  if (write(ask[1], "x", 1) != 1) test_fail_errno("ask child");
  if (read(ans[0], v, sizeof v) != sizeof v) test_fail_errno("child answer");
  if (v[0] != SIGUSR2) test_fail("child parent-death signal %ld, want %d", v[0], SIGUSR2);
  if (v[1] != SIGWINCH) test_fail("child thread parent-death signal %ld, want %d", v[1], SIGWINCH);
  int st;
  if (waitpid(kid, &st, 0) != kid || st != 0) test_fail("child status %#x", st);
  return test_pass();
}
