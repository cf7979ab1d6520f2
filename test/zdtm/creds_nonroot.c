// Drops to uid/gid 65534 with supplementary groups before ready; after restore the ids and
// groups match and the capability sets are empty (the bounding set unchanged).
#define _GNU_SOURCE
#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

static void caps(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  if (syscall(SYS_capget, &h, d)) test_fail_errno("capget");
}

static unsigned long long bounding(void) {
  unsigned long long set = 0;
  for (int c = 0; c < 64; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) set |= 1ull << c;
  return set;
}

int main(void) {
  test_init();
  // The log the harness opened as root becomes the user's: crrestore opens a non-root image's
  // files as the image's user, and a file it could not open would be refused.
  if (fchown(1, 65534, 65534)) test_fail_errno("fchown log");
  gid_t groups[3] = {65534, 100, 4242};
  if (setgroups(3, groups)) test_fail_errno("setgroups");
  if (setresgid(65534, 65534, 65534)) test_fail_errno("setresgid");
  if (setresuid(65534, 65534, 65534)) test_fail_errno("setresuid");
  unsigned long long bnd0 = bounding();

  test_ready();
  test_wait();

  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  if (r != 65534 || e != 65534 || s != 65534) test_fail("uids %d/%d/%d, want 65534", r, e, s);
  if (gr != 65534 || ge != 65534 || gs != 65534) test_fail("gids %d/%d/%d, want 65534", gr, ge, gs);
  gid_t got[16];
  int n = getgroups(16, got);
  if (n != 3) test_fail("%d supplementary groups, want 3", n);
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (int j = 0; j < n; j++) found |= got[j] == groups[i];
    if (!found) test_fail("group %d missing", groups[i]);
  }
  struct __user_cap_data_struct d[2];
  caps(d);
  for (int i = 0; i < 2; i++)
    if (d[i].effective || d[i].permitted || d[i].inheritable)
      test_fail("capabilities not empty: eff %#x prm %#x inh %#x (word %d)", d[i].effective,
                d[i].permitted, d[i].inheritable, i);
  if (bounding() != bnd0) test_fail("bounding set %#llx, want %#llx", bounding(), bnd0);
  return test_pass();
}
