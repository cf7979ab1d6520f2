// Anonymous memory with MADV_WIPEONFORK, and a MAP_DROPPABLE mapping (Linux 6.11+; skipped
// where the kernel refuses it), both filled with a pattern (issue 11: they came back with wrong
// data). After restore each keeps its contents and its kind: smaps shows "wf" on the first and
// "dp" on the second, and a child forked then sees the wipe-on-fork memory zeroed while the
// parent keeps its pattern.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08  // Linux 6.11
#endif

enum { kPages = 8, kPage = 4096 };

// Whether the smaps VmFlags of the mapping holding `addr` include `flag`.
static int has_vmflag(void *addr, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) test_fail_errno("open smaps");
  char line[512];
  int in = 0, found = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ':') > strchr(line, ' ')) {
      in = (unsigned long)addr >= s && (unsigned long)addr < e;
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      char want[8];
      snprintf(want, sizeof want, " %s", flag);
      found = strstr(line + 8, want) != NULL;
      break;
    }
  }
  fclose(f);
  return found;
}

int main(void) {
  test_init();
  char *wipe =
      mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (wipe == MAP_FAILED) test_fail_errno("mmap");
  if (madvise(wipe, kPages * kPage, MADV_WIPEONFORK) != 0) test_fail_errno("MADV_WIPEONFORK");
  test_fill(wipe, kPages * kPage, 0, 71);
  char *drop =
      mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
  if (drop == MAP_FAILED) drop = NULL;  // an older kernel
  if (drop != NULL) test_fill(drop, kPages * kPage, 0, 72);
  if (!has_vmflag(wipe, "wf")) test_fail("setup: no wf flag");
  test_ready();
  test_wait();
  if (!has_vmflag(wipe, "wf")) test_fail("wipe-on-fork memory lost its wf flag");
  long bad = test_check(wipe, kPages * kPage, 0, 71);
  if (bad >= 0) test_fail("wipe-on-fork memory differs at offset %ld", bad);
  if (drop != NULL) {
    if (!has_vmflag(drop, "dp")) test_fail("droppable memory lost its dp flag");
    // The kernel may drop its pages under memory pressure (they read as zeros then): each page
    // is either its pattern or zeros.
    static const char zero[kPage];
    for (int i = 0; i < kPages; ++i)
      if (test_check(drop + i * kPage, kPage, (uint64_t)i * kPage, 72) >= 0 &&
          memcmp(drop + i * kPage, zero, kPage) != 0)
        test_fail("droppable page %d differs", i);
  }
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    for (int i = 0; i < kPages * kPage; ++i)
      if (wipe[i] != 0) _exit(1);
    _exit(0);
  }
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("a child forked after restore did not see the wipe-on-fork memory zeroed");
  return test_pass();
}
