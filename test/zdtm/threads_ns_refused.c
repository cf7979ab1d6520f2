// A thread in a namespace of its own, which crdump must refuse (restore would put it in its
// process's), by argv[1]: the second thread unshare()s "net" or "uts" (and sets a hostname of
// its own there). After the refused dump the thread must still be in its own namespace, and
// the main thread in the one it started in: checked from the main thread through
// /proc/self/task/TID/ns, so the thread itself only waits.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "zdtmlib.h"

static atomic_int tid;  // the thread's
static int flag;
static int set_up[2];  // the thread writes its byte once it is in its namespace

static void *own_ns(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);  // SIGTERM is the main thread's
  if (unshare(flag) != 0) test_fail_errno("unshare");
  if (flag == CLONE_NEWUTS && sethostname("crtools-thread", 14) != 0)
    test_fail_errno("sethostname");
  atomic_store(&tid, (int)syscall(SYS_gettid));
  if (write(set_up[1], "t", 1) != 1) test_fail_errno("write");
  for (;;) pause();
  return NULL;
}

// The link of namespace `ns` of thread `t` (0: the calling thread).
static void ns_link(int t, const char *ns, char *out, size_t cap) {
  char path[96];
  if (t)
    snprintf(path, sizeof(path), "/proc/self/task/%d/ns/%s", t, ns);
  else
    snprintf(path, sizeof(path), "/proc/thread-self/ns/%s", ns);
  ssize_t n = readlink(path, out, cap - 1);
  if (n < 0) test_fail_errno("readlink %s", path);
  out[n] = '\0';
}

int main(int argc, char **argv) {
  test_init();
  if (argc < 2) test_fail("which namespace?");
  const char *ns = argv[1];
  if (!strcmp(ns, "net"))
    flag = CLONE_NEWNET;
  else if (!strcmp(ns, "uts"))
    flag = CLONE_NEWUTS;
  else
    test_fail("unknown namespace %s", ns);
  char before[64];
  ns_link(0, ns, before, sizeof(before));
  if (pipe(set_up)) test_fail_errno("pipe");
  pthread_t th;
  if (pthread_create(&th, NULL, own_ns, NULL) != 0) test_fail("pthread_create");
  char c;
  if (read(set_up[0], &c, 1) != 1) test_fail_errno("read");
  close(set_up[0]);
  close(set_up[1]);
  test_ready();
  test_wait();
  char main_ns[64], thread_ns[64];
  ns_link(0, ns, main_ns, sizeof(main_ns));
  ns_link(atomic_load(&tid), ns, thread_ns, sizeof(thread_ns));
  if (strcmp(main_ns, before)) test_fail("main thread: %s, was %s", main_ns, before);
  if (!strcmp(thread_ns, main_ns)) test_fail("the thread is back in its process's %s", main_ns);
  if (flag == CLONE_NEWUTS) {
    struct utsname u;
    uname(&u);
    if (!strcmp(u.nodename, "crtools-thread"))
      test_fail("the main thread has the thread's hostname");
  }
  return test_pass();
}
