// The restored process has the same pid, tid, pgid and sid; /proc/self/cmdline and
// /proc/self/exe read as before. The harness runs it as `pid_ids arg1 arg2`.
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  if (argc != 3 || strcmp(argv[1], "arg1") || strcmp(argv[2], "arg2"))
    test_fail("expected argv: prog arg1 arg2");
  pid_t pid = getpid();
  static char cmdline0[4096], exe0[PATH_MAX];
  long cmdlen0 = test_read_file("/proc/self/cmdline", cmdline0, sizeof(cmdline0));
  ssize_t exelen0 = readlink("/proc/self/exe", exe0, sizeof(exe0));
  if (cmdlen0 <= 0 || exelen0 <= 0) test_fail_errno("read /proc/self");
  if (getsid(0) != pid || getpgrp() != pid) test_fail("harness did not make us a session leader");

  test_ready();
  test_wait();

  if (getpid() != pid) test_fail("getpid() %d, want %d", getpid(), pid);
  if (syscall(SYS_getpid) != pid) test_fail("SYS_getpid %ld, want %d", syscall(SYS_getpid), pid);
  if (syscall(SYS_gettid) != pid) test_fail("gettid %ld, want %d", syscall(SYS_gettid), pid);
  if (getpgrp() != pid) test_fail("pgid %d, want %d", getpgrp(), pid);
  if (getsid(0) != pid) test_fail("sid %d, want %d", getsid(0), pid);
  static char cmdline[4096], exe[PATH_MAX];
  long cmdlen = test_read_file("/proc/self/cmdline", cmdline, sizeof(cmdline));
  if (cmdlen != cmdlen0 || memcmp(cmdline, cmdline0, (size_t)cmdlen))
    test_fail("/proc/self/cmdline changed (%ld bytes, was %ld)", cmdlen, cmdlen0);
  ssize_t exelen = readlink("/proc/self/exe", exe, sizeof(exe));
  if (exelen != exelen0 || memcmp(exe, exe0, (size_t)exelen))
    test_fail("/proc/self/exe is '%.*s', was '%.*s'", (int)(exelen > 0 ? exelen : 0), exe,
              (int)exelen0, exe0);
  if (strcmp(argv[1], "arg1") || strcmp(argv[2], "arg2")) test_fail("argv changed");
  return test_pass();
}
