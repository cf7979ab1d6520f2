// Processes sharing an fd table and an fs context (clone with CLONE_FILES | CLONE_FS, as some
// job runners and old thread libraries do), and a grandchild the sharing child forked. After
// restore the sharing is real: an fd the child opens is open in the parent under the same
// number, one the parent closes is gone in the child, a chdir or umask in the parent is the
// child's too; the grandchild has a table of its own.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static int go[2], rep[2], ggo[2];  // ggo: to the grandchild alone
static int marker = -1;  // opened before the dump, shared by both

static void put(int fd, int v) {
  if (write(fd, &v, sizeof v) != sizeof v) _exit(40);
}
static int get(int fd) {
  int v = -1;
  if (read(fd, &v, sizeof v) != sizeof v) _exit(41);
  return v;
}

static int sharer(void *arg) {
  (void)arg;
  pid_t grand = fork();
  if (grand < 0) _exit(30);
  if (grand == 0) {
    // Its own table, copied when the fork ran: with the harness's ready pipe if that was
    // before test_ready() (a race under load that held the harness's EOF back), so it goes.
    close(3);
    // Its own table: the parent's later opens do not show up here.
    int v = get(ggo[0]);
    put(rep[1], fcntl(v, F_GETFD) < 0 ? 1 : 0);
    _exit(0);
  }
  int step = get(go[0]);  // after the restore
  if (step != 1) _exit(31);
  int fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // seen by the parent
  put(rep[1], fd);
  step = get(go[0]);  // the parent has closed the marker, moved to sub/ and set umask 027
  char cwd[4096];
  int ok = fcntl(marker, F_GETFD) < 0 && getcwd(cwd, sizeof cwd) && strstr(cwd, "/sub") &&
           umask(027) == 027;
  put(rep[1], ok);
  int st;
  if (waitpid(grand, &st, 0) != grand || !WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(32);
  _exit(7);
}

int main(void) {
  test_init();
  if (pipe(go) || pipe(rep) || pipe(ggo)) test_fail_errno("pipe");
  if (mkdir("sub", 0755) != 0) test_fail_errno("mkdir");
  marker = open("marker", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (marker < 0) test_fail_errno("open marker");
  static char stack[256 << 10];
  pid_t child = clone(sharer, stack + sizeof stack, CLONE_FILES | CLONE_FS | SIGCHLD, NULL);
  if (child < 0) test_fail_errno("clone");
  test_ready();  // fd 3 is the child's too: closed for both
  test_wait();

  put(go[1], 1);
  int fd = get(rep[0]);
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) test_fail("the child's new fd %d is not in our table", fd);
  close(marker);
  if (chdir("sub") != 0) test_fail_errno("chdir");
  umask(027);
  put(go[1], 2);
  if (get(rep[0]) != 1) test_fail("the child does not share our table and fs context");
  put(ggo[1], fd);  // the grandchild: not in its own table
  if (get(rep[0]) != 1) test_fail("the grandchild shares our fd table");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child status %#x", st);
  return test_pass();
}
