// Threads parked in blocking calls at dump time, one call each:
//   mutex    pthread_mutex_lock() on a mutex main holds            (futex)
//   cond     pthread_cond_wait() until main sets a predicate        (futex)
//   barrier  pthread_barrier_wait() on a barrier of 2 with main     (futex)
//   sleep    nanosleep(2 s)                                          (clock_nanosleep)
//   read     read() on an empty pipe                                 (read)
//   poll     poll(-1) on an empty pipe                               (poll)
//   join     pthread_join() of the read thread                       (futex on its tid word)
// Before test_ready() main waits until /proc/self/task/TID/syscall shows each thread inside
// its expected syscall, so the dump catches all of them blocked. After SIGTERM main releases
// each one (unlock, signal, arrive, write the pipes; the sleep ends by itself) and joins them
// with a deadline: every call must return success with the right data. EINTR or any other
// error surfacing is a FAIL (the restorer must restart interrupted calls the way the kernel
// does), and a thread that never finishes (a lost wake-up, a join that never sees the joined
// thread's tid cleared) is a FAIL. Each thread also checks its tid is unchanged.
// Workers block SIGTERM, so the harness's SIGTERM goes to main.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { T_MUTEX, T_COND, T_BARRIER, T_SLEEP, T_READ, T_POLL, T_JOIN, NT };
static const char *const names[NT] = {"mutex", "cond", "barrier", "sleep", "read", "poll", "join"};
// The syscalls each thread must be parked in (glibc may use either of two for sleep and poll).
static const long want_nr[NT][2] = {
    [T_MUTEX] = {SYS_futex, -1},   [T_COND] = {SYS_futex, -1},
    [T_BARRIER] = {SYS_futex, -1}, [T_SLEEP] = {SYS_clock_nanosleep, SYS_nanosleep},
    [T_READ] = {SYS_read, -1},     [T_POLL] = {SYS_poll, SYS_ppoll},
    [T_JOIN] = {SYS_futex, -1},
};

static pthread_t th[NT];
static volatile pid_t tids[NT];
static char msg[NT][256];          // a thread's failure message; it returns msg[i] on failure
static char ok_token[NT];          // and &ok_token[i] on success
static volatile int finished[NT];  // set just before the thread function returns

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static volatile int mutex_released;
static pthread_mutex_t cond_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int cond_go;
static pthread_barrier_t barrier;
static volatile int barrier_arrived;
static int read_pipe[2], poll_pipe[2];

#define FAIL_RET(i, ...)                           \
  do {                                             \
    snprintf(msg[i], sizeof(msg[i]), __VA_ARGS__); \
    return msg[i];                                 \
  } while (0)

static void *parked_call(int i);

static void *parked(void *arg) {
  int i = (int)(long)arg;
  void *ret = parked_call(i);
  finished[i] = 1;
  return ret;
}

static void *parked_call(int i) {
  pid_t tid = gettid();
  tids[i] = tid;
  int e = 0;
  switch (i) {
    case T_MUTEX:
      if ((e = pthread_mutex_lock(&mtx))) FAIL_RET(i, "pthread_mutex_lock: %s", strerror(e));
      if (!mutex_released) FAIL_RET(i, "got the mutex main still holds");
      pthread_mutex_unlock(&mtx);
      break;
    case T_COND:
      pthread_mutex_lock(&cond_mtx);
      while (!cond_go)
        if ((e = pthread_cond_wait(&cond, &cond_mtx))) {
          pthread_mutex_unlock(&cond_mtx);
          FAIL_RET(i, "pthread_cond_wait: %s", strerror(e));
        }
      pthread_mutex_unlock(&cond_mtx);
      break;
    case T_BARRIER:
      e = pthread_barrier_wait(&barrier);
      if (e != 0 && e != PTHREAD_BARRIER_SERIAL_THREAD)
        FAIL_RET(i, "pthread_barrier_wait: %s", strerror(e));
      if (!barrier_arrived) FAIL_RET(i, "left the barrier before main arrived");
      break;
    case T_SLEEP: {
      struct timespec req = {2, 0}, rem = {0, 0};
      if (nanosleep(&req, &rem) != 0)
        FAIL_RET(i, "nanosleep(2 s): %s (rem %ld.%09ld)", strerror(errno), (long)rem.tv_sec,
                 rem.tv_nsec);
      break;
    }
    case T_READ: {
      char buf[16] = {0};
      ssize_t n = read(read_pipe[0], buf, sizeof(buf));
      if (n < 0) FAIL_RET(i, "read: %s", strerror(errno));
      if (n != 5 || memcmp(buf, "read!", 5)) FAIL_RET(i, "read %zd bytes '%.*s'", n, (int)n, buf);
      break;
    }
    case T_POLL: {
      struct pollfd pfd = {.fd = poll_pipe[0], .events = POLLIN};
      int r = poll(&pfd, 1, -1);
      if (r < 0) FAIL_RET(i, "poll: %s", strerror(errno));
      if (r != 1 || pfd.revents != POLLIN)
        FAIL_RET(i, "poll returned %d revents %#x", r, pfd.revents);
      char buf[16];
      if (read(poll_pipe[0], buf, sizeof(buf)) != 5 || memcmp(buf, "poll!", 5))
        FAIL_RET(i, "wrong data after poll");
      break;
    }
    case T_JOIN: {
      void *ret = NULL;
      if ((e = pthread_join(th[T_READ], &ret))) FAIL_RET(i, "pthread_join(read): %s", strerror(e));
      if (ret == msg[T_READ]) return ret;  // the read thread's own failure
      if (ret != &ok_token[T_READ]) FAIL_RET(i, "joined read thread returned %p", ret);
      break;
    }
  }
  if (gettid() != tid) FAIL_RET(i, "gettid() %d, was %d", gettid(), tid);
  return &ok_token[i];
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

// The syscall number /proc/self/task/TID/syscall shows, or -2 while the thread is running.
static long current_syscall(pid_t tid, char *raw, size_t cap) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
  long n = test_read_file(path, raw, cap - 1);
  raw[n > 0 ? n : 0] = 0;
  char *end;
  long nr = strtol(raw, &end, 10);
  return end == raw ? -2 : nr;
}

static void start(int i) {
  int e = pthread_create(&th[i], NULL, parked, (void *)(long)i);
  if (e) test_fail("pthread_create(%s): %s", names[i], strerror(e));
}

int main(void) {
  test_init();
  if (pipe(read_pipe) || pipe(poll_pipe)) test_fail_errno("pipe");
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_mutex_lock(&mtx);

  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  for (int i = 0; i < NT; i++) start(i);  // T_JOIN last: it joins th[T_READ]
  pthread_sigmask(SIG_SETMASK, &old, NULL);

  // Parked = inside the expected syscall (polling /proc, not sleeping).
  double deadline = now() + 20;
  for (int i = 0; i < NT; i++) {
    char raw[256];
    for (;;) {
      pid_t tid = tids[i];
      long nr = tid ? current_syscall(tid, raw, sizeof(raw)) : -2;
      if (nr == want_nr[i][0] || nr == want_nr[i][1]) break;
      if (now() > deadline)
        test_fail("%s thread never parked in syscall %ld: /proc syscall says '%s'", names[i],
                  want_nr[i][0], tid ? raw : "(not started)");
      sched_yield();
    }
  }

  test_ready();
  test_wait();

  mutex_released = 1;
  pthread_mutex_unlock(&mtx);
  pthread_mutex_lock(&cond_mtx);
  cond_go = 1;
  pthread_cond_signal(&cond);
  pthread_mutex_unlock(&cond_mtx);
  barrier_arrived = 1;
  int e = pthread_barrier_wait(&barrier);
  if (e != 0 && e != PTHREAD_BARRIER_SERIAL_THREAD)
    test_fail("main: pthread_barrier_wait: %s", strerror(e));
  if (write(read_pipe[1], "read!", 5) != 5) test_fail_errno("write(read pipe)");
  if (write(poll_pipe[1], "poll!", 5) != 5) test_fail_errno("write(poll pipe)");

  // Everything must end within 20 s of the release (the sleep needs at most 2 of them).
  struct timespec limit;
  clock_gettime(CLOCK_REALTIME, &limit);
  limit.tv_sec += 20;
  for (int i = 0; i < NT; i++) {
    if (i == T_READ) continue;  // joined by the join thread
    void *ret = NULL;
    e = pthread_timedjoin_np(th[i], &ret, &limit);
    if (e == ETIMEDOUT && finished[i])
      test_fail(
          "%s thread returned, but pthread_join() never saw it exit (tid word not "
          "cleared: clear_child_tid lost?)",
          names[i]);
    if (e == ETIMEDOUT) test_fail("%s thread still blocked 20 s after its release", names[i]);
    if (e) test_fail("pthread_join(%s): %s", names[i], strerror(e));
    if (i == T_JOIN && ret == msg[T_READ]) test_fail("read thread: %s", msg[T_READ]);
    if (ret == msg[i]) test_fail("%s thread: %s", names[i], msg[i]);
    if (ret != &ok_token[i]) test_fail("%s thread returned %p", names[i], ret);
  }
  return test_pass();
}
