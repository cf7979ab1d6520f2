// Blocked in read() on a pipe whose write end it also holds; the SIGTERM handler (SA_RESTART)
// writes to the pipe, so the restarted read gets the data.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "zdtmlib.h"

static int wfd;
static void on_term(int sig) {
  (void)sig;
  (void)!write(wfd, "wake-up", 7);
}

int main(void) {
  int p[2];
  if (pipe(p)) test_fail_errno("pipe");
  wfd = p[1];
  struct sigaction sa = {.sa_handler = on_term, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  test_ready();
  char buf[32] = {0};
  ssize_t n = read(p[0], buf, sizeof(buf));
  if (n < 0) test_fail_errno("read");
  if (n != 7 || memcmp(buf, "wake-up", 7)) test_fail("read %zd bytes '%.*s'", n, (int)n, buf);
  return test_pass();
}
