// Per-process attributes: personality, comm, umask, cwd and a lowered RLIMIT_NOFILE soft limit.
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int pers = personality(0xffffffff);
  if (personality((unsigned long)pers | ADDR_NO_RANDOMIZE) < 0) test_fail_errno("personality");
  if (prctl(PR_SET_NAME, "zdtm_attrs", 0, 0, 0)) test_fail_errno("PR_SET_NAME");
  umask(027);
  if (mkdir("sub dir", 0755) || chdir("sub dir")) test_fail_errno("mkdir/chdir 'sub dir'");
  char cwd0[PATH_MAX];
  if (!getcwd(cwd0, sizeof(cwd0))) test_fail_errno("getcwd");
  struct rlimit rl0;
  getrlimit(RLIMIT_NOFILE, &rl0);
  rl0.rlim_cur = 200;
  if (setrlimit(RLIMIT_NOFILE, &rl0)) test_fail_errno("setrlimit");

  test_ready();
  test_wait();

  int p = personality(0xffffffff);
  if (!(p & ADDR_NO_RANDOMIZE)) test_fail("personality %#x lost ADDR_NO_RANDOMIZE", p);
  if (p != (pers | ADDR_NO_RANDOMIZE)) test_fail("personality %#x, want %#x", p, pers | ADDR_NO_RANDOMIZE);
  char comm[17] = {0};
  prctl(PR_GET_NAME, comm, 0, 0, 0);
  if (strcmp(comm, "zdtm_attrs")) test_fail("comm '%s', want 'zdtm_attrs'", comm);
  mode_t m = umask(0);
  if (m != 027) test_fail("umask %03o, want 027", m);
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof(cwd))) test_fail_errno("getcwd");
  if (strcmp(cwd, cwd0)) test_fail("cwd '%s', want '%s'", cwd, cwd0);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != 200 || rl.rlim_max != rl0.rlim_max)
    test_fail("RLIMIT_NOFILE %lu/%lu, want 200/%lu", (unsigned long)rl.rlim_cur,
              (unsigned long)rl.rlim_max, (unsigned long)rl0.rlim_max);
  return test_pass();
}
