// Two pseudo-terminal pairs used inside the tree.
//
// Pair 1: the parent holds the master; a child leads a session of its own with the slave as its
// controlling terminal and as stdin/stdout, in raw mode at 9600 baud with a window size set, and
// has made its own child (a process group of its own) the foreground one, which waits in read().
// After restore that grandchild checks its ttyname, session, foreground group, termios, window
// size and /proc/self/stat tty_nr against what it saw before, and answers the parent through
// the pty: bytes written to the master reach it and come back. The leader checks it still has
// the terminal.
//
// Pair 2: the parent holds master and slave; packet mode on the master, the slave exclusive,
// the pair locked. After restore all three hold and a byte written to the slave arrives at the
// master with its packet header.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "zdtmlib.h"

static const struct winsize kWinsize = {
    .ws_row = 37, .ws_col = 101, .ws_xpixel = 808, .ws_ypixel = 592};

static unsigned long tty_nr_of_self(void) {
  char buf[1024];
  long n = test_read_file("/proc/self/stat", buf, sizeof buf - 1);
  if (n <= 0) return ~0ul;
  buf[n] = 0;
  const char *p = strrchr(buf, ')');
  // After ')': state ppid pgrp session tty_nr
  char state;
  long ppid, pgrp, sid;
  unsigned long tty_nr;
  if (p == NULL || sscanf(p + 1, " %c %ld %ld %ld %lu", &state, &ppid, &pgrp, &sid, &tty_nr) != 5)
    return ~0ul;
  return tty_nr;
}

static void reply(const char *text) {
  size_t len = strlen(text);
  if (write(1, text, len) != (ssize_t)len || write(1, "\n", 1) != 1) _exit(50);
}

static int same_termios(const struct termios *a, const struct termios *b) {
  return a->c_iflag == b->c_iflag && a->c_oflag == b->c_oflag && a->c_cflag == b->c_cflag &&
         a->c_lflag == b->c_lflag && memcmp(a->c_cc, b->c_cc, sizeof a->c_cc) == 0 &&
         cfgetispeed(a) == cfgetispeed(b) && cfgetospeed(a) == cfgetospeed(b);
}

// The foreground process: checks the terminal after restore and echoes for the parent.
static void foreground(int go, const char *name, unsigned long tty_nr,
                       const struct termios *before) {
  char c;
  // Only once the leader has made our group the foreground one: a read from the background
  // would stop us with SIGTTIN.
  if (read(go, &c, 1) != 1 || c != 'g') _exit(51);
  close(go);
  // The dump happens while this read (or the one above) waits.
  if (read(0, &c, 1) != 1) _exit(47);
  char why[256] = "ok";
  char now[64] = "";
  struct termios after;
  struct winsize ws;
  if (ttyname_r(0, now, sizeof now) != 0 || strcmp(now, name) != 0)
    snprintf(why, sizeof why, "ttyname '%s', want '%s'", now, name);
  else if (tcgetsid(0) != getsid(0) || getsid(0) != getppid())
    snprintf(why, sizeof why, "tcgetsid %d, want the leader's session %d", tcgetsid(0), getppid());
  else if (tcgetpgrp(0) != getpid() || getpgrp() != getpid())
    snprintf(why, sizeof why, "tcgetpgrp %d, want own group %d", tcgetpgrp(0), getpid());
  else if (tcgetattr(0, &after) != 0 || !same_termios(before, &after))
    snprintf(why, sizeof why, "termios differ (lflag %o -> %o)", before->c_lflag, after.c_lflag);
  else if (ioctl(0, TIOCGWINSZ, &ws) != 0 || memcmp(&ws, &kWinsize, sizeof ws) != 0)
    snprintf(why, sizeof why, "window %ux%u, want %ux%u", ws.ws_col, ws.ws_row, kWinsize.ws_col,
             kWinsize.ws_row);
  else if (tty_nr_of_self() != tty_nr)
    snprintf(why, sizeof why, "tty_nr %lu, want %lu", tty_nr_of_self(), tty_nr);
  char line[300];
  snprintf(line, sizeof line, "%s %c", why, c);
  reply(line);
  // Echo until 'q'.
  for (;;) {
    if (read(0, &c, 1) != 1) _exit(48);
    if (c == 'q') _exit(0);
    if (write(1, &c, 1) != 1) _exit(49);
  }
}

// The session leader: takes the slave as its controlling terminal, sets raw mode and a window
// size, and hands the foreground to a child in a process group of its own.
static void leader(const char *pts) {
  close(3);
  if (setsid() < 0) _exit(40);
  // A session leader without a terminal opening one (no O_NOCTTY) makes it its own.
  int s = open(pts, O_RDWR);
  if (s < 0 || dup2(s, 0) != 0 || dup2(s, 1) != 1) _exit(41);
  close(s);
  struct termios t;
  if (tcgetattr(0, &t) != 0) _exit(42);
  cfmakeraw(&t);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  cfsetspeed(&t, B9600);
  if (tcsetattr(0, TCSANOW, &t) != 0 || ioctl(0, TIOCSWINSZ, &kWinsize) != 0) _exit(43);
  char name[64];
  if (ttyname_r(0, name, sizeof name) != 0) _exit(44);
  const unsigned long tty_nr = tty_nr_of_self();
  struct termios before;
  if (tcgetattr(0, &before) != 0) _exit(45);
  int go[2];
  if (pipe(go) != 0) _exit(52);
  pid_t fg = fork();
  if (fg < 0) _exit(53);
  if (fg == 0) {
    close(go[1]);
    setpgid(0, 0);
    foreground(go[0], name, tty_nr, &before);
  }
  close(go[0]);
  if (setpgid(fg, fg) != 0 && errno != EACCES) _exit(54);
  if (tcsetpgrp(0, fg) != 0 || write(go[1], "g", 1) != 1) _exit(55);
  close(go[1]);
  if (write(1, "R", 1) != 1) _exit(46);
  // Waits for the foreground child across the dump, then checks it still leads the session.
  int st;
  if (waitpid(fg, &st, 0) != fg || !WIFEXITED(st)) _exit(56);
  if (WEXITSTATUS(st) != 0) _exit(WEXITSTATUS(st));
  if (tcgetsid(0) != getpid() || tty_nr_of_self() != tty_nr) _exit(57);
  _exit(0);
}

static int open_pair(char *pts, size_t cap) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, pts, cap) != 0)
    test_fail_errno("posix_openpt");
  return m;
}

static void read_exact(int fd, char *buf, size_t len, const char *what) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n <= 0) test_fail_errno("read %s (%zu of %zu bytes)", what, got, len);
    got += (size_t)n;
  }
}

static int get_int(int fd, unsigned long req, const char *name) {
  int v = -1;
  if (ioctl(fd, req, &v) != 0) test_fail_errno("%s", name);
  return v;
}

int main(void) {
  test_init();
  char pts[64], pts2[64];
  int m = open_pair(pts, sizeof pts);
  const int index = get_int(m, TIOCGPTN, "TIOCGPTN");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(m);
    leader(pts);
  }
  char c = 0;
  read_exact(m, &c, 1, "child ready");
  if (c != 'R') test_fail("child said '%c'", c);

  int m2 = open_pair(pts2, sizeof pts2);
  const int index2 = get_int(m2, TIOCGPTN, "TIOCGPTN 2");
  int s2 = open(pts2, O_RDWR | O_NOCTTY);
  if (s2 < 0) test_fail_errno("open %s", pts2);
  int one = 1;
  if (ioctl(s2, TIOCEXCL) != 0 || ioctl(m2, TIOCSPTLCK, &one) != 0 || ioctl(m2, TIOCPKT, &one) != 0)
    test_fail_errno("pair 2 modes");

  test_ready();
  test_wait();

  if (get_int(m, TIOCGPTN, "TIOCGPTN") != index) test_fail("pair 1 index changed from %d", index);
  if (get_int(m2, TIOCGPTN, "TIOCGPTN 2") != index2) test_fail("pair 2 index changed");
  // Through the master: the slave's session is the child's, its foreground group another.
  if (get_int(m, TIOCGSID, "TIOCGSID") != kid) test_fail("pair 1 session is not the child's");
  const int fg = get_int(m, TIOCGPGRP, "TIOCGPGRP");
  if (fg == kid || fg <= 0 || getpgid(fg) != fg) test_fail("pair 1 foreground group %d", fg);
  struct winsize ws;
  if (ioctl(m, TIOCGWINSZ, &ws) != 0 || memcmp(&ws, &kWinsize, sizeof ws) != 0)
    test_fail("pair 1 window size seen from the master");

  if (write(m, "x", 1) != 1) test_fail_errno("write master");
  char line[300];
  size_t n = 0;
  while (n + 1 < sizeof line) {
    read_exact(m, &line[n], 1, "child's answer");
    if (line[n] == '\n') break;
    ++n;
  }
  line[n] = 0;
  if (strcmp(line, "ok x") != 0) test_fail("child: %s", line);
  char echo[6] = {0};
  if (write(m, "hello", 5) != 5) test_fail_errno("write master");
  read_exact(m, echo, 5, "echo");
  if (strcmp(echo, "hello") != 0) test_fail("echo '%s'", echo);
  if (write(m, "q", 1) != 1) test_fail_errno("write q");
  int st;
  if (waitpid(kid, &st, 0) != kid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("child exit status %#x", st);

  if (get_int(m2, TIOCGPKT, "TIOCGPKT") != 1) test_fail("pair 2 lost packet mode");
  if (get_int(m2, TIOCGPTLCK, "TIOCGPTLCK") != 1) test_fail("pair 2 is not locked");
  if (get_int(s2, TIOCGEXCL, "TIOCGEXCL") != 1) test_fail("pair 2 slave is not exclusive");
  if (write(s2, "z", 1) != 1) test_fail_errno("write slave 2");
  char pkt[2];
  read_exact(m2, pkt, 2, "packet");
  if (pkt[0] != TIOCPKT_DATA || pkt[1] != 'z') test_fail("packet %d '%c'", pkt[0], pkt[1]);
  return test_pass();
}
