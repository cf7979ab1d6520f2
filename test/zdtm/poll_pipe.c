// Blocked in poll(-1) on a pipe whose write end it also holds; the SIGTERM handler writes to the
// pipe. poll returns EINTR for the handler, is called again and reports the data.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "zdtmlib.h"

static int wfd;
static volatile int termed;
static void on_term(int sig) {
  (void)sig;
  termed = 1;
  (void)!write(wfd, "poll-me", 7);
}

int main(void) {
  int p[2];
  if (pipe(p)) test_fail_errno("pipe");
  wfd = p[1];
  struct sigaction sa = {.sa_handler = on_term};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  test_ready();
  struct pollfd pfd = {.fd = p[0], .events = POLLIN};
  int r;
  for (;;) {
    r = poll(&pfd, 1, -1);
    if (r >= 0 || errno != EINTR) break;
    if (!termed) test_fail("poll interrupted by something other than SIGTERM");
  }
  if (r != 1 || !(pfd.revents & POLLIN)) test_fail_errno("poll returned %d revents %#x", r, pfd.revents);
  if (!termed) test_fail("poll returned before SIGTERM");
  char buf[16];
  if (read(p[0], buf, sizeof(buf)) != 7 || memcmp(buf, "poll-me", 7)) test_fail("wrong data");
  return test_pass();
}
