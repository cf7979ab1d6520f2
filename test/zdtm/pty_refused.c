// pty pairs crdump must refuse, leaving them working:
//   outside      the slave is held by the root and by a process outside the tree (a grandchild
//                whose parent exited: it now belongs to the harness), which echoes what the
//                master sends;
//   master_only  the master is open, no slave is open anywhere (after a restore the master
//                could not tell "never opened" from "closed").
// After the refused dumps the pair still carries bytes both ways.
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmlib.h"

static int open_pair(char *pts, size_t cap) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, pts, cap) != 0)
    test_fail_errno("posix_openpt");
  return m;
}

static void raw(int fd) {
  struct termios t;
  if (tcgetattr(fd, &t) != 0) test_fail_errno("tcgetattr");
  cfmakeraw(&t);
  if (tcsetattr(fd, TCSANOW, &t) != 0) test_fail_errno("tcsetattr");
}

int main(int argc, char **argv) {
  test_init();
  if (argc != 2) test_fail("usage: pty_refused outside|master_only");
  char pts[64];
  int m = open_pair(pts, sizeof pts);
  if (strcmp(argv[1], "master_only") == 0) {
    test_ready();
    test_wait();
    // The slave can still be opened and reached.
    int s = open(pts, O_RDWR | O_NOCTTY);
    if (s < 0) test_fail_errno("open %s", pts);
    raw(s);
    char c = 0;
    if (write(m, "m", 1) != 1 || read(s, &c, 1) != 1 || c != 'm') test_fail("slave got '%c'", c);
    return test_pass();
  }
  int report[2];
  if (pipe(report) != 0) test_fail_errno("pipe");
  pid_t mid = fork();
  if (mid == 0) {
    pid_t g = fork();
    if (g != 0) {
      if (write(report[1], &g, sizeof g) != sizeof g) _exit(2);
      _exit(g > 0 ? 0 : 1);
    }
    // The grandchild: outside the tree once its parent has exited.
    close(3);
    int s = open(pts, O_RDWR | O_NOCTTY);
    if (s < 0) _exit(3);
    raw(s);
    if (write(s, "R", 1) != 1) _exit(4);
    char c;
    while (read(s, &c, 1) == 1)
      if (write(s, &c, 1) != 1) _exit(5);
    _exit(0);
  }
  // The tree holds the slave too, so only the holder outside is in the way.
  int s = open(pts, O_RDWR | O_NOCTTY);
  if (s < 0) test_fail_errno("open %s", pts);
  pid_t g = 0;
  int st;
  if (read(report[0], &g, sizeof g) != sizeof g || g <= 0) test_fail("no grandchild");
  if (waitpid(mid, &st, 0) != mid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("middle child exit %#x", st);
  char c = 0;
  if (read(m, &c, 1) != 1 || c != 'R') test_fail("grandchild said '%c'", c);
  test_ready();
  test_wait();
  if (write(m, "e", 1) != 1 || read(m, &c, 1) != 1 || c != 'e') test_fail("echo '%c'", c);
  kill(g, SIGKILL);
  return test_pass();
}
