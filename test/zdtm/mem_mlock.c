// Locked memory (issue 13): a range locked with mlock in the middle of a mapping (the kernel
// splits it), another locked with mlock2(MLOCK_ONFAULT) and partly touched; with "all" the
// whole address space by mlockall(MCL_CURRENT | MCL_FUTURE) ("all_onfault": | MCL_ONFAULT).
// "user": the ranges and mlockall(MCL_FUTURE) as uid 1001, restored by root, which locks as
// the user (under the user's RLIMIT_MEMLOCK). Each mode has a locked PROT_NONE mapping.
// After restore each mapping keeps its contents and
// its lock (smaps "lo", "lf", Locked:), and with MCL_FUTURE a mapping made after the restore
// is locked too (and faulted in, without MCL_ONFAULT).
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "zdtmlib.h"

enum { kPage = 4096, kPages = 8 };

struct Vma {
  char flags[512];  // VmFlags, with a space before each
  long locked_kb;   // Locked:
};

// The smaps entry of the mapping holding `addr`.
static struct Vma vma_of(const void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (f == NULL) test_fail_errno("open smaps");
  struct Vma v = {"", -1};
  char line[512];
  int in = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ':') > strchr(line, ' ')) {
      if (in) break;
      in = (unsigned long)addr >= s && (unsigned long)addr < e;
      continue;
    }
    if (!in) continue;
    if (strncmp(line, "Locked:", 7) == 0) v.locked_kb = strtol(line + 7, NULL, 10);
    if (strncmp(line, "VmFlags:", 8) == 0) snprintf(v.flags, sizeof v.flags, "%s", line + 8);
  }
  fclose(f);
  if (v.locked_kb < 0) test_fail("no smaps entry for %p", addr);
  return v;
}

static int has(const struct Vma *v, const char *flag) {
  char want[8];
  snprintf(want, sizeof want, " %s ", flag);
  return strstr(v->flags, want) != NULL;
}

static char *a, *b, *g;
static int all, onfault_all, user;

static void check(const char *when) {
  struct Vma head = vma_of(a), mid = vma_of(a + 2 * kPage), onf = vma_of(b);
  if (!all) {
    if (has(&head, "lo")) test_fail("%s: the unlocked start of a is locked", when);
    if (!has(&mid, "lo") || has(&mid, "lf") || mid.locked_kb != 4 * kPage / 1024)
      test_fail("%s: mlocked pages of a: flags%s Locked %ld kB", when, mid.flags, mid.locked_kb);
  } else if (!has(&head, "lo") || !has(&mid, "lo")) {
    test_fail("%s: mlockall(MCL_CURRENT) memory not locked:%s", when, head.flags);
  }
  struct Vma guard = vma_of(g);
  if (!has(&guard, "lo") || has(&guard, "lf") != onfault_all)
    test_fail("%s: locked PROT_NONE memory: flags%s", when, guard.flags);
  if (!has(&onf, "lo") || !has(&onf, "lf"))
    test_fail("%s: mlock2(MLOCK_ONFAULT) memory: flags%s", when, onf.flags);
  long bad = test_check(a, kPages * kPage, 0, 81);
  if (bad >= 0) test_fail("%s: a differs at offset %ld", when, bad);
  bad = test_check(b, 3 * kPage, 0, 82);
  if (bad >= 0) test_fail("%s: b differs at offset %ld", when, bad);
}

int main(int argc, char **argv) {
  test_init();
  const char *mode = argc > 1 ? argv[1] : "";
  all = !strcmp(mode, "all") || !strcmp(mode, "all_onfault");
  onfault_all = !strcmp(mode, "all_onfault");
  user = !strcmp(mode, "user");
  if (user) {
    if (chown(".", 1001, 1001) || fchown(1, 1001, 1001)) test_fail_errno("chown");
    if (setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
      test_fail_errno("drop to uid 1001");
  }
  a = mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  b = mmap(NULL, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED) test_fail_errno("mmap");
  test_fill(a, kPages * kPage, 0, 81);
  if (!all && mlock(a + 2 * kPage, 4 * kPage) != 0) test_fail_errno("mlock");
  int future = MCL_FUTURE | (onfault_all ? MCL_ONFAULT : 0);
  if (all && mlockall(MCL_CURRENT | future) != 0) test_fail_errno("mlockall");
  // After mlockall, which would make it a plain lock (and fault it all in).
  if (mlock2(b, kPages * kPage, MLOCK_ONFAULT) != 0) test_fail_errno("mlock2(MLOCK_ONFAULT)");
  test_fill(b, 3 * kPage, 0, 82);  // the rest of b never faulted in
  if (user && mlockall(MCL_FUTURE) != 0) test_fail_errno("mlockall(MCL_FUTURE)");
  // Locked and PROT_NONE (a thread stack's guard under MCL_FUTURE; the kernel locks it but
  // cannot fault it in): mapped so under MCL_FUTURE, else locked while readable and then
  // made PROT_NONE.
  g = mmap(NULL, 2 * kPage, all ? PROT_NONE : PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
           -1, 0);
  if (g == MAP_FAILED) test_fail_errno("mmap g");
  if (!all) {
    g[0] = 1;
    if (mlock(g, 2 * kPage) != 0 || mprotect(g, 2 * kPage, PROT_NONE) != 0)
      test_fail_errno("mlock, mprotect g");
  }
  check("setup");
  test_ready();
  test_wait();
  check("after restore");
  if (all || user) {
    char *c = mmap(NULL, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED) test_fail_errno("mmap after restore");
    struct Vma v = vma_of(c);
    if (!has(&v, "lo")) test_fail("MCL_FUTURE lost: a new mapping is not locked:%s", v.flags);
    if (onfault_all != has(&v, "lf"))
      test_fail("a new mapping's lock-on-fault is %d, want %d", has(&v, "lf"), onfault_all);
    if (!onfault_all && v.locked_kb < 2 * kPage / 1024)
      test_fail("a new locked mapping is not faulted in: Locked %ld kB", v.locked_kb);
  }
  return test_pass();
}
