// epoll: one epoll shared by the parent and a child watches a pipe with data (level-triggered),
// an eventfd (EPOLLET, already reported), a timerfd far from expiry, a pipe whose EPOLLONESHOT
// watch already fired, an eventfd whose watch was added under an fd number since closed (the
// file lives on at another fd), and an inner epoll; each with its own data. A thread waits in
// epoll_wait on a second epoll through the dump. After restore: the watches read back from
// fdinfo as they were, the fired one-shot stays quiet until re-armed, the level-triggered pipe
// reports, MOD and DEL by fd number work (the child's DEL is seen by the parent: one epoll),
// every target reports with its data, and the waiting thread wakes with its event, not EINTR.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

enum {
  kPipeData = 0x1111111111111111ull,
  kEventET = 0x2222,
  kTimer = 0x3333,
  kOneShot = 0x4444,
  kMoved = 0x5555,
  kThreadPipe = 0x6666,
  kInner = 0x7777,
  kExclusive = 0x8888,
  kWakeup = 0x9999,
  kOneShotET = 0xaaaa,
};

static int ep2;
static int thread_pipe[2];
static volatile int thread_result = -1000;  // events seen, or -errno
static volatile uint64_t thread_data;
static volatile pid_t thread_tid;

static void *waiter(void *arg) {
  (void)arg;
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, NULL);  // SIGTERM is the main thread's
  thread_tid = (pid_t)syscall(SYS_gettid);
  struct epoll_event ev;
  int n = epoll_wait(ep2, &ev, 1, -1);
  thread_data = ev.data.u64;
  thread_result = n < 0 ? -errno : n;
  return NULL;
}

// The "tfd: N events: X data: Y" part of every watch line of an epoll's fdinfo, sorted (the
// kernel lists them by file address, which a restore changes).
static void watches(int ep, char *out, size_t cap) {
  char path[64], text[8192];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
  long len = test_read_file(path, text, sizeof text - 1);
  if (len < 0) test_fail_errno("read %s", path);
  text[len] = 0;  // test_read_file does not terminate
  char lines[32][96];
  int n = 0;
  for (char *l = strtok(text, "\n"); l != NULL && n < 32; l = strtok(NULL, "\n")) {
    int tfd;
    unsigned events;
    unsigned long long data;
    if (sscanf(l, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3)
      snprintf(lines[n++], sizeof lines[0], "tfd %d events %x data %llx\n", tfd, events, data);
  }
  qsort(lines, (size_t)n, sizeof lines[0], (int (*)(const void *, const void *))strcmp);
  out[0] = 0;
  for (int i = 0; i < n; ++i) strncat(out, lines[i], cap - strlen(out) - 1);
}

// Waits (bounded, so a failure cannot hang) until `ep` reports `data`; returns its events.
static uint32_t expect(int ep, uint64_t data, const char *what) {
  for (int round = 0; round < 100; ++round) {
    struct epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) test_fail_errno("epoll_wait for %s", what);
    if (n == 0) break;
    for (int i = 0; i < n; ++i)
      if (evs[i].data.u64 == data) return evs[i].events;
  }
  test_fail("%s: no event with data %#llx", what, (unsigned long long)data);
}

static void add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) test_fail_errno("EPOLL_CTL_ADD fd %d", fd);
}

int main(void) {
  test_init();
  int ep = epoll_create1(0), inner = epoll_create1(EPOLL_CLOEXEC);
  ep2 = epoll_create1(0);
  if (ep < 0 || inner < 0 || ep2 < 0) test_fail_errno("epoll_create1");
  int data_pipe[2], oneshot_pipe[2];
  if (pipe(data_pipe) || pipe(oneshot_pipe) || pipe(thread_pipe)) test_fail_errno("pipe");
  if (write(data_pipe[1], "abc", 3) != 3 || write(oneshot_pipe[1], "x", 1) != 1)
    test_fail_errno("fill pipes");
  int efd = eventfd(0, EFD_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  int moved = eventfd(0, EFD_NONBLOCK), inner_efd = eventfd(0, EFD_NONBLOCK);
  if (efd < 0 || tfd < 0 || moved < 0 || inner_efd < 0) test_fail_errno("eventfd/timerfd");
  struct itimerspec far = {{0, 0}, {100000, 0}};
  if (timerfd_settime(tfd, 0, &far, NULL) != 0) test_fail_errno("timerfd_settime");

  add(ep, data_pipe[0], EPOLLIN, kPipeData);
  add(ep, efd, EPOLLIN | EPOLLET, kEventET);
  add(ep, tfd, EPOLLIN, kTimer);
  add(ep, oneshot_pipe[0], EPOLLIN | EPOLLONESHOT, kOneShot);
  // Added under `moved`'s number, which then goes: the watch stays, keyed by that number.
  int moved_tfd = moved;
  add(ep, moved, EPOLLIN, kMoved);
  moved = fcntl(moved, F_DUPFD, 100);
  if (moved < 0 || close(moved_tfd) != 0) test_fail_errno("move eventfd");
  add(inner, inner_efd, EPOLLIN, 0x77);
  add(ep, inner, EPOLLIN, kInner);
  add(ep2, thread_pipe[0], EPOLLIN, kThreadPipe);
  // The other flags come back as they were (fdinfo compares them); a fired one-shot
  // edge-triggered watch keeps both flags.
  int excl = eventfd(0, EFD_NONBLOCK), wake = eventfd(0, EFD_NONBLOCK);
  int oneshot_et = eventfd(0, EFD_NONBLOCK);
  if (excl < 0 || wake < 0 || oneshot_et < 0) test_fail_errno("eventfd");
  add(ep, excl, EPOLLIN | EPOLLEXCLUSIVE, kExclusive);
  add(ep, wake, EPOLLIN | EPOLLWAKEUP, kWakeup);  // kept for CAP_BLOCK_SUSPEND, else dropped
  add(ep, oneshot_et, EPOLLOUT | EPOLLET | EPOLLONESHOT, kOneShotET);  // writable: fires now

  // The edge of the eventfd is reported (and consumed), the one-shot fires and disarms.
  uint64_t one = 1;
  if (write(efd, &one, 8) != 8) test_fail_errno("write eventfd");
  struct epoll_event evs[16];
  int n = epoll_wait(ep, evs, 16, 0);
  int seen_oneshot = 0, seen_et = 0, seen_oneshot_et = 0;
  for (int i = 0; i < n; ++i) {
    seen_oneshot_et |= evs[i].data.u64 == kOneShotET;
    seen_oneshot |= evs[i].data.u64 == kOneShot;
    seen_et |= evs[i].data.u64 == kEventET;
  }
  if (!seen_oneshot || !seen_et || !seen_oneshot_et)
    test_fail("setup: one-shot %d, edge %d, one-shot edge %d not reported", seen_oneshot, seen_et,
              seen_oneshot_et);

  char before[4096], before2[512];
  watches(ep, before, sizeof before);
  watches(ep2, before2, sizeof before2);

  pthread_t th;
  if (pthread_create(&th, NULL, waiter, NULL) != 0) test_fail("pthread_create");
  // Ready once the thread sits in epoll_wait (its syscall file names the call).
  for (;;) {
    char path[64], sc[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)thread_tid);
    long len = thread_tid != 0 ? test_read_file(path, sc, sizeof sc - 1) : -1;
    if (len > 0) sc[len] = 0;
    if (len > 0 && (atoi(sc) == SYS_epoll_wait || atoi(sc) == SYS_epoll_pwait)) break;
    sched_yield();
  }

  // The child shares `ep`: after the restore it deletes the timerfd's watch by its number.
  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child == 0) {
    close(3);
    close(go[1]);  // EOF, not a hang, if the parent fails first
    char c;
    if (read(go[0], &c, 1) != 1) _exit(20);
    _exit(epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL) == 0 ? 7 : 21);
  }
  test_ready();
  test_wait();

  char after[4096], after2[512];
  watches(ep, after, sizeof after);
  watches(ep2, after2, sizeof after2);
  if (strcmp(before, after) != 0) test_fail("watches before:\n%safter:\n%s", before, after);
  if (strcmp(before2, after2) != 0)
    test_fail("thread's watches before:\n%safter:\n%s", before2, after2);

  if (thread_result != -1000) test_fail("the waiting thread returned %d early", thread_result);
  // Level-triggered data is still reported; the fired one-shot stays quiet.
  n = epoll_wait(ep, evs, 16, 0);
  int seen_data = 0;
  for (int i = 0; i < n; ++i) {
    if (evs[i].data.u64 == kOneShot || evs[i].data.u64 == kOneShotET)
      test_fail("a fired EPOLLONESHOT watch reported again (%#llx)",
                (unsigned long long)evs[i].data.u64);
    if (evs[i].data.u64 == kTimer) test_fail("the timerfd reported before it expired");
    seen_data |= evs[i].data.u64 == kPipeData && (evs[i].events & EPOLLIN);
  }
  if (!seen_data) test_fail("the pipe with data is not reported (%d events)", n);

  // MOD by fd number: re-arm the one-shot, change the pipe's data.
  struct epoll_event mod = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = kOneShot + 1};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, oneshot_pipe[0], &mod) != 0) test_fail_errno("MOD one-shot");
  expect(ep, kOneShot + 1, "re-armed one-shot");
  mod.events = EPOLLIN;
  mod.data.u64 = kPipeData + 1;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, data_pipe[0], &mod) != 0) test_fail_errno("MOD pipe");
  expect(ep, kPipeData + 1, "pipe after MOD");

  // Every other target reports with its data.
  one = 2;
  if (write(efd, &one, 8) != 8) test_fail_errno("write eventfd");
  expect(ep, kEventET, "edge-triggered eventfd");
  if (write(moved, &one, 8) != 8) test_fail_errno("write moved eventfd");
  expect(ep, kMoved, "eventfd watched under a closed fd number");
  if (write(inner_efd, &one, 8) != 8) test_fail_errno("write inner eventfd");
  expect(ep, kInner, "inner epoll");
  if (write(excl, &one, 8) != 8) test_fail_errno("write exclusive eventfd");
  expect(ep, kExclusive, "EPOLLEXCLUSIVE eventfd");
  if (write(wake, &one, 8) != 8) test_fail_errno("write wakeup eventfd");
  expect(ep, kWakeup, "EPOLLWAKEUP eventfd");

  // The child deletes the timerfd's watch on the shared epoll.
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child status %#x", st);
  mod.events = EPOLLIN;
  mod.data.u64 = kTimer;
  if (epoll_ctl(ep, EPOLL_CTL_MOD, tfd, &mod) == 0 || errno != ENOENT)
    test_fail("the child's EPOLL_CTL_DEL is not seen by the parent (MOD: %s)", strerror(errno));

  // The thread waited through the dump and wakes for its pipe.
  if (write(thread_pipe[1], "t", 1) != 1) test_fail_errno("write thread pipe");
  pthread_join(th, NULL);
  if (thread_result != 1 || thread_data != kThreadPipe)
    test_fail("the waiting thread got %d (%s) data %#llx", thread_result,
              thread_result < 0 ? strerror(-thread_result) : "events",
              (unsigned long long)thread_data);
  return test_pass();
}
