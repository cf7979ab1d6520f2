// Seccomp filters across a dump and restore. argv[1] picks the case:
//   errno   one filter: uname fails with EPERM
//   stack   two filters with different actions: uname EPERM then EACCES (the newest wins),
//           getpriority raises SIGSYS (SECCOMP_RET_TRAP)
//   kill    SECCOMP_RET_KILL_PROCESS for calls crdump and crrestore inject (prctl, munmap,
//           getitimer, sigaltstack, rt_sigaction): the task survives only if both suspend its
//           filters; a child forked after the restore is still killed by one
//   log     SECCOMP_FILTER_FLAG_LOG, kept by restore
//   thread  the main thread's filter in every thread, and one thread with one more of its own
//           (installed without TSYNC)
//   tsync   a filter put on both threads with TSYNC: after restore a new TSYNC filter must
//           still be accepted (the threads share their chain again)
//   fork    a child sharing its parent's filter plus one of its own
//   strict  a thread in strict mode (SECCOMP_MODE_STRICT) blocked in read
//   notif   a filter returning SECCOMP_RET_USER_NOTIF: crdump refuses it
// Every case also has each filtered thread's chain read back by a checker child (forked first,
// so it has no filter: PTRACE_SECCOMP_GET_FILTER refuses a tracer with seccomp) and compared
// instruction for instruction, flags too.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#define MAX_INSNS 64
struct prog {
  struct sock_filter insns[MAX_INSNS];
  unsigned short len;
  unsigned flags;
};
struct rule {
  int nr;
  unsigned action;
};

// arch check, then one JEQ per rule, then ALLOW.
static void build(struct prog *p, const struct rule *rules, int n, unsigned flags) {
  int i = 0;
  p->insns[i++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  p->insns[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
  p->insns[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  p->insns[i++] =
      (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
  for (int r = 0; r < n; ++r) {
    p->insns[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, rules[r].nr, 0, 1);
    p->insns[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, rules[r].action);
  }
  p->insns[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  p->len = (unsigned short)i;
  p->flags = flags;
}

static long install(const struct prog *p, unsigned extra) {
  struct sock_fprog fp = {p->len, (struct sock_filter *)p->insns};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags | extra, &fp);
}

static void must_install(const struct prog *p, unsigned extra) {
  if (install(p, extra) != 0) test_fail_errno("seccomp(SET_MODE_FILTER)");
}

// ---- the checker child ---------------------------------------------------------------------
struct request {
  pid_t tid;
};
struct reply {
  int count;  // filters in the chain (-errno on failure)
  unsigned flags[8];
  unsigned short len[8];
  struct sock_filter insns[8][MAX_INSNS];
};
static int req_w = -1, rep_r = -1;
static pid_t checker_pid = -1;

static void checker(int req_r, int rep_w) {
  struct request rq;
  while (read(req_r, &rq, sizeof rq) == (ssize_t)sizeof rq) {
    static struct reply rp;
    memset(&rp, 0, sizeof rp);
    int st;
    if (ptrace(PTRACE_SEIZE, rq.tid, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, rq.tid, 0, 0) != 0 ||
        waitpid(rq.tid, &st, __WALL) != rq.tid) {
      rp.count = -errno;
    } else {
      for (int i = 0; i < 8; ++i) {
        long n = ptrace(PTRACE_SECCOMP_GET_FILTER, rq.tid, (void *)(long)i, NULL);
        if (n < 0) {
          if (errno != ENOENT) rp.count = -errno;
          break;
        }
        if (n > MAX_INSNS) {
          rp.count = -E2BIG;
          break;
        }
        ptrace(PTRACE_SECCOMP_GET_FILTER, rq.tid, (void *)(long)i, rp.insns[i]);
        struct __ptrace_seccomp_metadata md = {.filter_off = (unsigned long)i};
        if (ptrace(PTRACE_SECCOMP_GET_METADATA, rq.tid, (void *)sizeof md, &md) < 0) {
          rp.count = -errno;
          break;
        }
        rp.len[i] = (unsigned short)n;
        rp.flags[i] = (unsigned)md.flags;
        rp.count = i + 1;
      }
      ptrace(PTRACE_DETACH, rq.tid, 0, 0);
    }
    if (write(rep_w, &rp, sizeof rp) != (ssize_t)sizeof rp) _exit(2);
  }
  _exit(0);
}

static void start_checker(void) {
  int a[2], b[2];
  if (pipe(a) || pipe(b)) test_fail_errno("pipe");
  pid_t pid = fork();
  if (pid < 0) test_fail_errno("fork");
  if (pid == 0) {
    close(3);  // the ready pipe is the parent's to close
    close(a[1]);
    close(b[0]);
    checker(a[0], b[1]);
  }
  close(a[0]);
  close(b[1]);
  req_w = a[1];
  rep_r = b[0];
  checker_pid = pid;
}

// The checker ends at the end of its requests; it is reaped here, so that no zombie of the tree
// outlives it (its pid would still be taken for the next restore).
static int finish(void) {
  close(req_w);
  int st = 0;
  if (waitpid(checker_pid, &st, 0) != checker_pid || st != 0)
    test_fail("checker ended with status %#x", st);
  return test_pass();
}

static ssize_t read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

// `chain` oldest first, as the kernel numbers them (index 0 is the root of the chain).
static void expect_chain(pid_t tid, const struct prog *const *chain, int n) {
  struct request rq = {tid};
  static struct reply rp;
  if (write(req_w, &rq, sizeof rq) != (ssize_t)sizeof rq) test_fail_errno("checker write");
  if (read_full(rep_r, &rp, sizeof rp) < 0) test_fail("checker: no reply");
  if (rp.count < 0) test_fail("checker on tid %d: %s", tid, strerror(-rp.count));
  if (rp.count != n) test_fail("tid %d has %d filters, want %d", tid, rp.count, n);
  for (int i = 0; i < n; ++i) {
    if (rp.len[i] != chain[i]->len ||
        memcmp(rp.insns[i], chain[i]->insns, chain[i]->len * sizeof(struct sock_filter)))
      test_fail("tid %d filter %d: another program (%u instructions, want %u)", tid, i, rp.len[i],
                chain[i]->len);
    if (rp.flags[i] != (chain[i]->flags & SECCOMP_FILTER_FLAG_LOG))
      test_fail("tid %d filter %d: flags %#x, want %#x", tid, i, rp.flags[i], chain[i]->flags);
  }
}

static void expect_status(pid_t tid, int mode, int filters) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
  FILE *f = fopen(path, "r");
  if (!f) test_fail_errno("%s", path);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char want[64];
  snprintf(want, sizeof want, "\nSeccomp:\t%d\nSeccomp_filters:\t%d\n", mode, filters);
  if (!strstr(buf, want)) test_fail("tid %d: status lacks '%s'", tid, want + 1);
}

static void expect_errno(long r, int err, const char *what) {
  if (r != -1 || errno != err)
    test_fail("%s returned %ld errno %d (%s), want errno %d", what, r, errno, strerror(errno), err);
}

static void expect_ok(long r, const char *what) {
  if (r == -1) test_fail_errno("%s", what);
}

// ---- cases -----------------------------------------------------------------------------------
static struct prog f_a, f_b;
static volatile sig_atomic_t sigsys_nr = -1;
static int go[2], done[2];  // main -> helper thread or child, and back

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  sigsys_nr = si->si_syscall;
}

static void set_nnp(void) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) test_fail_errno("PR_SET_NO_NEW_PRIVS");
}

static void wait_go(void) {
  char c;
  if (read_full(go[0], &c, 1) < 0) _exit(3);
}

static void report(char verdict) {
  if (write(done[1], &verdict, 1) != 1) _exit(4);
}

static char wait_done(void) {
  char c = 0;
  if (read_full(done[0], &c, 1) < 0) test_fail("helper gave no verdict");
  return c;
}

static void *thread_own(void *arg) {
  (void)arg;
  // One more filter in this thread only (no TSYNC): getpriority fails with ESRCH here.
  must_install(&f_b, 0);
  report('i');
  wait_go();
  errno = 0;
  long r = getpriority(PRIO_PROCESS, 0);
  report(r == -1 && errno == ESRCH ? 'y' : 'n');
  return NULL;
}

static void *thread_plain(void *arg) {
  (void)arg;
  report('i');
  wait_go();
  struct utsname u;
  errno = 0;
  long r = uname(&u);
  if (!(r == -1 && errno == EPERM)) {
    report('u');
    return NULL;
  }
  errno = 0;
  r = getpriority(PRIO_PROCESS, 0);
  // The tsync case adds f_b to every thread after the restore, before the go.
  report((r == -1) == (f_b.len != 0 && f_b.flags == 0xffff) ? 'y' : 'n');
  return NULL;
}

static void *thread_strict(void *arg) {
  (void)arg;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)) syscall(SYS_exit, 5);
  char c = 'i';
  syscall(SYS_write, done[1], &c, 1);
  // Only read, write, exit and rt_sigreturn from here on.
  syscall(SYS_read, go[0], &c, 1);
  c = 'y';
  syscall(SYS_write, done[1], &c, 1);
  syscall(SYS_exit, 0);
  return NULL;
}

int main(int argc, char **argv) {
  test_init();
  const char *mode = argc > 1 ? argv[1] : "errno";
  start_checker();
  if (pipe(go) || pipe(done)) test_fail_errno("pipe");
  struct utsname u;
  pid_t self = getpid();

  if (!strcmp(mode, "errno")) {
    set_nnp();
    struct rule r[] = {{SYS_uname, SECCOMP_RET_ERRNO | EPERM}};
    build(&f_a, r, 1, 0);
    must_install(&f_a, 0);
    test_ready();
    test_wait();
    expect_errno(uname(&u), EPERM, "uname");
    expect_ok(getpid() == self ? 0 : -1, "getpid");
    expect_status(self, 2, 1);
    const struct prog *chain[] = {&f_a};
    expect_chain(self, chain, 1);
    return finish();
  }
  if (!strcmp(mode, "stack")) {
    struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
    sigaction(SIGSYS, &sa, NULL);
    set_nnp();
    struct rule ra[] = {{SYS_uname, SECCOMP_RET_ERRNO | EPERM}};
    struct rule rb[] = {{SYS_uname, SECCOMP_RET_ERRNO | EACCES},
                        {SYS_getpriority, SECCOMP_RET_TRAP}};
    build(&f_a, ra, 1, 0);
    build(&f_b, rb, 2, 0);
    must_install(&f_a, 0);
    must_install(&f_b, 0);
    test_ready();
    test_wait();
    expect_errno(uname(&u), EACCES, "uname");
    syscall(SYS_getpriority, PRIO_PROCESS, 0);
    if (sigsys_nr != SYS_getpriority) test_fail("no SIGSYS for getpriority (got %d)", sigsys_nr);
    expect_status(self, 2, 2);
    const struct prog *chain[] = {&f_a, &f_b};
    expect_chain(self, chain, 2);
    return finish();
  }
  if (!strcmp(mode, "kill") || !strcmp(mode, "log")) {
    const int kill = !strcmp(mode, "kill");
    struct rule rk[] = {{SYS_prctl, SECCOMP_RET_KILL_PROCESS},
                        {SYS_munmap, SECCOMP_RET_KILL_PROCESS},
                        {SYS_getitimer, SECCOMP_RET_KILL_PROCESS},
                        {SYS_sigaltstack, SECCOMP_RET_KILL_PROCESS},
                        {SYS_rt_sigaction, SECCOMP_RET_KILL_PROCESS}};
    struct rule rl[] = {{SYS_uname, SECCOMP_RET_LOG},
                        {SYS_getpriority, SECCOMP_RET_ERRNO | ENOTTY}};
    if (kill)
      build(&f_a, rk, 5, 0);
    else
      build(&f_a, rl, 2, SECCOMP_FILTER_FLAG_LOG);
    set_nnp();
    must_install(&f_a, 0);
    test_ready();
    test_wait();
    expect_status(self, 2, 1);
    const struct prog *chain[] = {&f_a};
    expect_chain(self, chain, 1);
    if (kill) {
      pid_t pid = fork();
      if (pid == 0) {
        struct itimerval it;
        getitimer(ITIMER_REAL, &it);
        _exit(0);
      }
      int st = 0;
      if (pid < 0 || waitpid(pid, &st, 0) != pid) test_fail_errno("fork/waitpid");
      if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
        test_fail("a child calling getitimer was not killed by SIGSYS (status %#x)", st);
    } else {
      expect_ok(uname(&u), "uname (logged)");
      expect_errno(getpriority(PRIO_PROCESS, 0), ENOTTY, "getpriority");
    }
    return finish();
  }
  if (!strcmp(mode, "thread") || !strcmp(mode, "tsync")) {
    const int tsync = !strcmp(mode, "tsync");
    struct rule ra[] = {{SYS_uname, SECCOMP_RET_ERRNO | EPERM}};
    struct rule rb[] = {{SYS_getpriority, SECCOMP_RET_ERRNO | ESRCH}};
    build(&f_a, ra, 1, 0);
    set_nnp();
    pthread_t t1, t2 = 0;
    if (tsync) {
      // The thread exists first: TSYNC puts the filter on it.
      if (pthread_create(&t1, NULL, thread_plain, NULL)) test_fail("pthread_create");
      if (wait_done() != 'i') test_fail("thread did not start");
      must_install(&f_a, SECCOMP_FILTER_FLAG_TSYNC);
    } else {
      must_install(&f_a, 0);
      build(&f_b, rb, 1, 0);
      if (pthread_create(&t1, NULL, thread_own, NULL)) test_fail("pthread_create");
      if (wait_done() != 'i') test_fail("thread did not install its filter");
      if (pthread_create(&t2, NULL, thread_plain, NULL)) test_fail("pthread_create");
      if (wait_done() != 'i') test_fail("thread did not start");
    }
    test_ready();
    test_wait();
    char path[64];
    pid_t tids[3] = {self, 0, 0};
    int nt = 1;
    snprintf(path, sizeof path, "/proc/self/task");
    // The threads' tids, in the order /proc lists them (ascending: created in order).
    for (pid_t t = self + 1; t < self + 64 && nt < (tsync ? 2 : 3); ++t) {
      snprintf(path, sizeof path, "/proc/self/task/%d", t);
      if (access(path, F_OK) == 0) tids[nt++] = t;
    }
    if (nt != (tsync ? 2 : 3)) test_fail("found %d threads", nt);
    const struct prog *one[] = {&f_a};
    const struct prog *two[] = {&f_a, &f_b};
    expect_errno(uname(&u), EPERM, "uname");
    expect_ok(getpriority(PRIO_PROCESS, 0), "getpriority");
    expect_status(self, 2, 1);
    expect_chain(self, one, 1);
    if (tsync) {
      // Shared again: a TSYNC filter is accepted (else the kernel names the other thread).
      build(&f_b, rb, 1, 0);
      long r = install(&f_b, SECCOMP_FILTER_FLAG_TSYNC);
      if (r != 0) test_fail("TSYNC after restore returned %ld (errno %d)", r, errno);
      f_b.flags = 0xffff;  // tells thread_plain getpriority now fails
      expect_status(tids[1], 2, 2);
    } else {
      expect_status(tids[1], 2, 2);
      expect_chain(tids[1], two, 2);
      expect_status(tids[2], 2, 1);
      expect_chain(tids[2], one, 1);
    }
    if (write(go[1], "gg", 2) != 2) test_fail_errno("write");
    for (int i = 1; i < nt; ++i)
      if (wait_done() != 'y') test_fail("a thread saw the wrong filters");
    pthread_join(t1, NULL);
    if (t2) pthread_join(t2, NULL);
    return finish();
  }
  if (!strcmp(mode, "fork")) {
    struct rule ra[] = {{SYS_uname, SECCOMP_RET_ERRNO | EPERM}};
    struct rule rb[] = {{SYS_getpriority, SECCOMP_RET_ERRNO | ESRCH}};
    build(&f_a, ra, 1, 0);
    build(&f_b, rb, 1, 0);
    set_nnp();
    must_install(&f_a, 0);
    pid_t kid = fork();
    if (kid < 0) test_fail_errno("fork");
    if (kid == 0) {
      close(3);
      must_install(&f_b, 0);
      report('i');
      wait_go();
      struct utsname k;
      errno = 0;
      long r1 = uname(&k);
      int e1 = errno;
      errno = 0;
      long r2 = getpriority(PRIO_PROCESS, 0);
      report(r1 == -1 && e1 == EPERM && r2 == -1 && errno == ESRCH ? 'y' : 'n');
      _exit(0);
    }
    if (wait_done() != 'i') test_fail("child did not install its filter");
    test_ready();
    test_wait();
    expect_errno(uname(&u), EPERM, "uname");
    expect_ok(getpriority(PRIO_PROCESS, 0), "getpriority");
    const struct prog *one[] = {&f_a};
    const struct prog *two[] = {&f_a, &f_b};
    expect_chain(self, one, 1);
    expect_chain(kid, two, 2);
    if (write(go[1], "g", 1) != 1) test_fail_errno("write");
    if (wait_done() != 'y') test_fail("the child saw the wrong filters");
    int st;
    if (waitpid(kid, &st, 0) != kid || st != 0) test_fail("child status %#x", st);
    return finish();
  }
  if (!strcmp(mode, "strict")) {
    pthread_t t;
    if (pthread_create(&t, NULL, thread_strict, NULL)) test_fail("pthread_create");
    if (wait_done() != 'i') test_fail("thread did not enter strict mode");
    test_ready();
    test_wait();
    pid_t tid = 0;
    for (pid_t c = self + 1; c < self + 64 && !tid; ++c) {
      char path[64];
      snprintf(path, sizeof path, "/proc/self/task/%d", c);
      if (access(path, F_OK) == 0) tid = c;
    }
    if (!tid) test_fail("strict thread not found");
    expect_status(tid, 1, 0);
    expect_status(self, 0, 0);
    if (write(go[1], "g", 1) != 1) test_fail_errno("write");
    if (wait_done() != 'y') test_fail("strict thread gave no answer");
    pthread_join(t, NULL);
    return finish();
  }
  if (!strcmp(mode, "notif")) {
    // Refused: the calls it hands to a supervisor would fail with ENOSYS after a restore.
    struct rule rn[] = {{SYS_getpriority, SECCOMP_RET_USER_NOTIF}};
    build(&f_a, rn, 1, 0);
    set_nnp();
    long fd = install(&f_a, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    if (fd < 0) test_fail_errno("seccomp(NEW_LISTENER)");
    close((int)fd);
    test_ready();
    test_wait();
    expect_status(self, 2, 1);
    return finish();
  }
  test_fail("unknown case %s", mode);
}
