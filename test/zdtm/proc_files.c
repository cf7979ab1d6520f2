// Files under /proc/PID of processes in the tree: the parent holds its own /proc/PID/stat (read
// partway) and /proc/PID directory and its child's /proc/CHILD/status; the child holds its
// parent's /proc/PARENT/stat and has /proc/PARENT as its cwd. Restore opens each once its
// process exists. With "outside": an fd on /proc/1/stat, which crdump must refuse.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

// fd's link must be "/proc/<pid><rest>", and reading it from 0 must start with `start`.
static int check_fd(int fd, pid_t pid, const char* rest, const char* start) {
  char path[64], link[PATH_MAX], want[128];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof(link) - 1);
  if (n < 0) return 1;
  link[n] = 0;
  snprintf(want, sizeof(want), "/proc/%d%s", (int)pid, rest);
  if (strcmp(link, want)) {
    fprintf(stderr, "fd %d is '%s', want '%s'\n", fd, link, want);
    return 1;
  }
  if (start) {
    char buf[256];
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0) return 1;
    buf[n] = 0;
    if (strncmp(buf, start, strlen(start))) {
      fprintf(stderr, "fd %d reads '%.40s', want '%s...'\n", fd, buf, start);
      return 1;
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  test_init();
  if (argc > 1 && !strcmp(argv[1], "outside")) {
    if (open("/proc/1/stat", O_RDONLY) < 0) test_fail_errno("open /proc/1/stat");
    test_ready();
    test_wait();
    return test_pass();
  }
  const pid_t me = getpid();
  char path[64], stat_start[32];
  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);  // only the parent reports ready
    close(go[1]);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)me);
    int pstat = open(path, O_RDONLY);
    snprintf(path, sizeof(path), "/proc/%d", (int)me);
    if (pstat < 0 || chdir(path)) _exit(10);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(11);
    snprintf(stat_start, sizeof(stat_start), "%d (", (int)me);
    if (check_fd(pstat, me, "/stat", stat_start)) _exit(12);
    char cwd[PATH_MAX];
    ssize_t n = readlink("/proc/self/cwd", cwd, sizeof(cwd) - 1);
    if (n < 0) _exit(13);
    cwd[n] = 0;
    if (strcmp(cwd, path)) _exit(14);
    if (access("status", R_OK)) _exit(15);  // relative to the cwd in /proc/PARENT
    _exit(7);
  }
  close(go[0]);
  int self_stat = open("/proc/self/stat", O_RDONLY);
  int self_dir = open("/proc/self", O_RDONLY | O_DIRECTORY);
  snprintf(path, sizeof(path), "/proc/%d/status", (int)child);
  int child_status = open(path, O_RDONLY);
  if (self_stat < 0 || self_dir < 0 || child_status < 0) test_fail_errno("open /proc files");
  char head[8];
  if (read(self_stat, head, sizeof(head)) != sizeof(head)) test_fail_errno("read stat");

  test_ready();
  test_wait();

  snprintf(stat_start, sizeof(stat_start), "%d (", (int)me);
  if (check_fd(self_stat, me, "/stat", stat_start)) test_fail("own /proc/PID/stat");
  if (lseek(self_stat, 0, SEEK_CUR) != sizeof(head)) test_fail("stat offset %ld", (long)lseek(self_stat, 0, SEEK_CUR));
  if (check_fd(self_dir, me, "", NULL)) test_fail("own /proc/PID directory");
  int st_fd = openat(self_dir, "status", O_RDONLY);
  if (st_fd < 0) test_fail_errno("openat status in /proc/PID");
  if (check_fd(child_status, child, "/status", "Name:")) test_fail("child's /proc/PID/status");
  if (write(go[1], "g", 1) != 1) test_fail_errno("write to child");
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 7) test_fail("child status %#x", st);
  return test_pass();
}
