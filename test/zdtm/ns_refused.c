// A tree in namespaces of its own: argv[1] names the namespace the root unshares (uts, cgroup,
// mnt and net (lo down), which crdump supports; user; pid and time give a pid_for_children /
// time_for_children of its own, refused), or "child_uts", "child_time", "child_cgroup",
// "child_net": a
// child that unshared that namespace (one inside the tree's: refused). The original must carry
// on intact after a refusal.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const struct {
  const char *name;
  int flag;
} kinds[] = {{"uts", CLONE_NEWUTS},       {"net", CLONE_NEWNET},   {"mnt", CLONE_NEWNS},
             {"cgroup", CLONE_NEWCGROUP}, {"user", CLONE_NEWUSER}, {"pid", CLONE_NEWPID},
             {"time", CLONE_NEWTIME}};

int main(int argc, char **argv) {
  test_init();
  if (argc < 2) test_fail("which namespace?");
  pid_t kid = -1;
  int p[2];
  if (!strncmp(argv[1], "child_", 6)) {
    int flag = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      if (!strcmp(argv[1] + 6, kinds[i].name)) flag = kinds[i].flag;
    if (!flag) test_fail("unknown namespace %s", argv[1]);
    int up[2];  // EOF once the child has its namespace
    if (pipe(p) || pipe(up)) test_fail_errno("pipe");
    kid = fork();
    if (kid < 0) test_fail_errno("fork");
    if (kid == 0) {
      close(3);
      close(p[1]);
      close(up[0]);
      if (unshare(flag)) _exit(2);
      close(up[1]);
      char c;
      _exit(read(p[0], &c, 1) == 1 ? 0 : 3);
    }
    close(p[0]);
    close(up[1]);
    char c;
    if (read(up[0], &c, 1) != 0) test_fail("child");
    close(up[0]);
  } else {
    int flag = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
      if (!strcmp(argv[1], kinds[i].name)) flag = kinds[i].flag;
    if (!flag) test_fail("unknown namespace %s", argv[1]);
    if (unshare(flag)) test_fail_errno("unshare %s", argv[1]);
  }
  if (!strcmp(argv[1], "uts") && sethostname("crtools-ns", 10)) test_fail_errno("sethostname");

  test_ready();
  test_wait();

  if (!strcmp(argv[1], "uts")) {
    struct utsname u;
    uname(&u);
    if (strcmp(u.nodename, "crtools-ns")) test_fail("hostname '%s'", u.nodename);
  }
  if (kid > 0) {
    int st;
    if (write(p[1], "x", 1) != 1) test_fail_errno("write to child");
    if (waitpid(kid, &st, 0) != kid || st != 0) test_fail("child status %#x", st);
  }
  return test_pass();
}
