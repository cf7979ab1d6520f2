// Several things crdump refuses, in two processes and two passes, for crdump --dry-run to list
// all at once (test/e2e/dry_run_test.cc):
//   the root   an io_uring instance (fd)
//   its child  an inotify instance watching the cwd with an event queued (fd) and an AIO
//              context (its /[aio] ring mapping)
// Nothing else of the tree is refused. After the dry run both must carry on untouched: on
// SIGTERM the root checks its ring, passes SIGTERM on to the child, which checks its own state,
// and the root fails unless the child passed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

// The AIO context must still work: io_getevents on it answers (no events, none submitted).
static void check_aio(aio_context_t aio) {
  struct io_event ev;
  struct timespec zero = {0, 0};
  if (syscall(SYS_io_getevents, aio, 0, 1, &ev, &zero) != 0) test_fail_errno("io_getevents");
}

static int child_main(int ready) {
  int in = inotify_init1(IN_CLOEXEC);
  if (in < 0) test_fail_errno("inotify_init1");
  if (inotify_add_watch(in, ".", IN_CREATE) < 0) test_fail_errno("inotify_add_watch");
  int queued = open("queued", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);  // its IN_CREATE stays
  if (queued < 0) test_fail_errno("create queued");
  close(queued);
  aio_context_t aio = 0;
  if (syscall(SYS_io_setup, 4, &aio) != 0) test_fail_errno("io_setup");
  close(ready);  // the root reads EOF: our state is set up
  test_wait();
  // The watch still works: a file made in the cwd is reported.
  int fd = open("made", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) test_fail_errno("create made");
  close(fd);
  char ev[256];
  if (read(in, ev, sizeof(ev)) <= 0) test_fail_errno("read inotify");
  check_aio(aio);
  return test_pass();
}

int main(void) {
  test_init();
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (ring < 0) test_fail_errno("io_uring_setup");
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) test_fail_errno("pipe2");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(ready[0]);
    close(3);     // the harness's ready pipe is the root's to close
    close(ring);  // the ring is the root's only (a dry run lists each fd holding it)
    _exit(child_main(ready[1]));
  }
  close(ready[1]);
  char b;
  while (read(ready[0], &b, 1) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  test_ready();
  test_wait();
  if (fcntl(ring, F_GETFD) < 0) test_fail_errno("the io_uring fd");
  if (kill(kid, SIGTERM) != 0) test_fail_errno("kill child");
  int st = 0;
  if (waitpid(kid, &st, 0) != kid) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) test_fail("the child failed (status 0x%x)", st);
  return test_pass();
}
