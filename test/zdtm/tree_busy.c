// `tree_busy N`: a tree of N processes (a binary tree: process i forks 2i+1 and 2i+2), every one
// counting in a tight loop that keeps two copies of its counter. The fault-injection tests kill
// crdump and crrestore at every step on it. On SIGTERM the root passes it down the tree; each
// process checks its copies agree, waits for its children and fails if any of them failed, so
// the root's PASS says the whole tree came through.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#define MAX_PROCS 64

static volatile uint64_t counter, shadow;
static pid_t kids[2];
static int nkids;

// Runs process `i` of `n`: forks its children, says it is set up (closes `ready`), counts.
static int run(int i, int n, int ready_rd, int ready_wr, int is_root) {
  for (int c = 2 * i + 1; c <= 2 * i + 2 && c < n; ++c) {
    pid_t pid = fork();
    if (pid < 0) test_fail_errno("fork");
    if (pid == 0) {
      nkids = 0;
      close(3);  // the harness's ready pipe is the root's to close
      _exit(run(c, n, ready_rd, ready_wr, 0));
    }
    kids[nkids++] = pid;
  }
  if (!is_root) {
    close(ready_rd);
    close(ready_wr);
  } else {
    close(ready_wr);
    char c;
    while (read(ready_rd, &c, 1) > 0) {  // EOF: every process has closed its copy
    }
    close(ready_rd);
    test_ready();
  }
  uint64_t k = counter;
  while (!test_stopped) {
    k++;
    counter = k;
    shadow = k * 3;
  }
  if (counter != k || shadow != k * 3) test_fail("process %d: counter copies disagree", i);
  int failed = 0;
  for (int j = 0; j < nkids; ++j) {
    kill(kids[j], SIGTERM);
    int st = 0;
    if (waitpid(kids[j], &st, 0) != kids[j]) test_fail_errno("process %d: waitpid", i);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "process %d: child %d ended with status %#x\n", i, (int)kids[j], st);
      failed = 1;
    }
  }
  if (failed) test_fail("process %d: a child failed", i);
  return 0;
}

int main(int argc, char **argv) {
  test_init();
  int n = argc > 1 ? atoi(argv[1]) : 12;
  if (n < 1 || n > MAX_PROCS) test_fail("bad process count %d", n);
  int p[2];
  if (pipe(p) != 0) test_fail_errno("pipe");
  run(0, n, p[0], p[1], 1);
  return test_pass();
}
