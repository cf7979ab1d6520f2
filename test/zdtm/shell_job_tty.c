// A job of a shell: stdin and stdout are a terminal whose master the harness holds (crdump
// --shell-job). Like vim or less it turns echo and canonical mode off, then answers each byte
// it reads with "[c]" on the terminal. On SIGTERM it checks the modes are still its own; with
// the argument "ctty" (started as a session leader holding the terminal as its controlling
// terminal) also that the terminal is its session's again. Without it, it leads a process
// group of its own, as a shell's job does.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmlib.h"

static int wake[2];

static void on_term(int sig) {
  (void)sig;
  test_stopped = 1;
  const char c = 1;
  if (write(wake[1], &c, 1) < 0) {
  }
}

int main(int argc, char **argv) {
  test_init();
  const int ctty = argc > 1 && strcmp(argv[1], "ctty") == 0;
  if (!ctty && setpgid(0, 0) != 0) test_fail_errno("setpgid");
  if (ctty && tcgetsid(0) != getpid()) test_fail("started without the terminal as its own");
  struct termios t;
  if (tcgetattr(0, &t) != 0) test_fail_errno("tcgetattr");
  t.c_lflag &= ~(tcflag_t)(ECHO | ICANON);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(0, TCSANOW, &t) != 0) test_fail_errno("tcsetattr");

  // SIGTERM also writes to a pipe polled with the terminal: one arriving between a write and
  // the next read would otherwise leave the read blocked for good (no EINTR comes then).
  if (pipe2(wake, O_NONBLOCK) != 0) test_fail_errno("pipe2");
  struct sigaction sa = {.sa_handler = on_term};  // no SA_RESTART
  if (sigaction(SIGTERM, &sa, NULL) != 0) test_fail_errno("sigaction");

  test_ready();
  for (;;) {
    struct pollfd p[2] = {{.fd = 0, .events = POLLIN}, {.fd = wake[0], .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      test_fail_errno("poll");
    }
    if (test_stopped || p[1].revents != 0) break;
    if (p[0].revents == 0) continue;
    char c;
    ssize_t n = read(0, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) test_fail_errno("read the terminal (%zd)", n);
    char out[3] = {'[', c, ']'};
    if (write(1, out, sizeof out) != (ssize_t)sizeof out) test_fail_errno("write the terminal");
  }
  if (tcgetattr(0, &t) != 0) test_fail_errno("tcgetattr after restore");
  if ((t.c_lflag & (ECHO | ICANON)) != 0 || t.c_cc[VMIN] != 1)
    test_fail("terminal modes lost: lflag %#x, VMIN %d", (unsigned)t.c_lflag, t.c_cc[VMIN]);
  if (ctty && tcgetsid(0) != getpid())
    test_fail("the terminal is not our session's (tcgetsid %d)", (int)tcgetsid(0));
  return test_pass();
}
