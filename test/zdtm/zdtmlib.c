// See zdtmlib.h for the protocol with the harness.
#define _GNU_SOURCE
#include "zdtmlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

volatile sig_atomic_t test_stopped;

static void on_sigterm(int sig) {
  (void)sig;
  test_stopped = 1;
}

void test_init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigterm;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) != 0) test_fail_errno("sigaction(SIGTERM)");
}

void test_ready(void) {
  if (close(3) != 0) test_fail_errno("close(ready fd 3)");
}

void test_wait(void) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  // Block first so a SIGTERM between the check and sigsuspend is not lost.
  sigprocmask(SIG_BLOCK, &block, &old);
  sigset_t wait_mask = old;
  sigdelset(&wait_mask, SIGTERM);
  while (!test_stopped) sigsuspend(&wait_mask);
  sigprocmask(SIG_SETMASK, &old, NULL);
}

int test_pass(void) {
  fputs("PASS\n", stderr);
  return 0;
}

static _Noreturn void vfail(int err, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (err)
    fprintf(stderr, "FAIL: %s: %s\n", msg, strerror(err));
  else
    fprintf(stderr, "FAIL: %s\n", msg);
  exit(1);
}

void test_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(0, fmt, ap);
}

void test_fail_errno(const char *fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  vfail(err, fmt, ap);
}

void test_fill(void *buf, size_t len, uint64_t off, uint32_t seed) {
  uint8_t *p = buf;
  for (size_t i = 0; i < len; i++) p[i] = test_pattern(off + i, seed);
}

long test_check(const void *buf, size_t len, uint64_t off, uint32_t seed) {
  const uint8_t *p = buf;
  for (size_t i = 0; i < len; i++)
    if (p[i] != test_pattern(off + i, seed)) return (long)i;
  return -1;
}

long test_read_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  if (cap == 0) return -1;
  size_t len = 0;
  while (len < cap - 1) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return (long)len;
}

int test_maps_line(const void *addr, char *line, size_t cap) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return -1;
  int found = -1;
  char buf[4096];
  while (fgets(buf, sizeof(buf), f)) {
    unsigned long lo, hi;
    if (sscanf(buf, "%lx-%lx", &lo, &hi) != 2) continue;
    if ((unsigned long)addr >= lo && (unsigned long)addr < hi) {
      snprintf(line, cap, "%s", buf);
      size_t l = strlen(line);
      if (l && line[l - 1] == '\n') line[l - 1] = 0;
      found = 0;
      break;
    }
  }
  fclose(f);
  return found;
}

void test_send_fds(int s, const char *data, const int *fds, int n) {
  char cbuf[CMSG_SPACE(sizeof(int) * 4)];
  memset(cbuf, 0, sizeof cbuf);
  struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (n < 0 || n > 4) test_fail("test_send_fds: %d fds", n);
  if (n > 0) {
    m.msg_control = cbuf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n);
  }
  if (sendmsg(s, &m, 0) != (ssize_t)strlen(data)) test_fail_errno("sendmsg");
}
