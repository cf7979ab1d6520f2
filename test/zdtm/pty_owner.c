// A pty pair whose slave node was given to a user with a mode of its own (as a login program
// or grantpt does): after restore /dev/pts/N has the same owner, group and mode (issue 11: it
// came back root's, with devpts' default mode).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) test_fail_errno("posix_openpt");
  if (unlockpt(master) != 0) test_fail_errno("unlockpt");
  const char *name = ptsname(master);
  if (name == NULL) test_fail_errno("ptsname");
  int slave = open(name, O_RDWR | O_NOCTTY);
  if (slave < 0) test_fail_errno("open %s", name);
  if (fchown(slave, 4321, 4322) != 0) test_fail_errno("fchown");
  if (fchmod(slave, 0604) != 0) test_fail_errno("fchmod");
  test_ready();
  test_wait();
  struct stat st;
  if (fstat(slave, &st) != 0) test_fail_errno("fstat slave");
  if (st.st_uid != 4321 || st.st_gid != 4322)
    test_fail("%s owned by %u:%u, want 4321:4322", name, st.st_uid, st.st_gid);
  if ((st.st_mode & 07777) != 0604) test_fail("%s mode %o, want 604", name, st.st_mode & 07777);
  return test_pass();
}
