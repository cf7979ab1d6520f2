// Drops to a uid/gid other than root with supplementary groups before ready; after restore the
// ids, groups, capability sets and securebits match (the bounding set unchanged).
// No argument: uid 65534, no capabilities, securebits 0 (restore must not leave
// SECBIT_KEEP_CAPS behind). "caps": uid 1001 keeping CAP_NET_BIND_SERVICE (permitted,
// effective, inheritable and ambient) through SECBIT_KEEP_CAPS, which stays set.
#define _GNU_SOURCE
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

static void caps(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  if (syscall(SYS_capget, &h, d)) test_fail_errno("capget");
}

static void set_caps(unsigned int set) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2] = {{set, set, set}, {0, 0, 0}};
  if (syscall(SYS_capset, &h, d)) test_fail_errno("capset");
}

static unsigned long long bounding(void) {
  unsigned long long set = 0;
  for (int c = 0; c < 64; c++)
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) set |= 1ull << c;
  return set;
}

// The "CapEff:" style line of /proc/self/status, as a number.
static unsigned long long status_hex(const char *key) {
  static char buf[8192];
  if (test_read_file("/proc/self/status", buf, sizeof buf) < 0) test_fail_errno("status");
  const char *p = strstr(buf, key);
  if (!p) test_fail("no %s in /proc/self/status", key);
  return strtoull(p + strlen(key), NULL, 16);
}

int main(int argc, char **argv) {
  test_init();
  const int keep = argc > 1 && !strcmp(argv[1], "caps");
  const uid_t uid = keep ? 1001 : 65534;
  const unsigned int want_caps = keep ? 1u << CAP_NET_BIND_SERVICE : 0;
  const int want_bits = keep ? SECBIT_KEEP_CAPS : 0;
  // The log the harness opened as root becomes the user's: crrestore opens a non-root image's
  // files as the image's user, and a file it could not open would be refused.
  if (fchown(1, uid, uid)) test_fail_errno("fchown log");
  // Only groups its user has (nobody: nogroup; 1001, without a passwd entry: its own number):
  // a user's image asking for others is refused (HostileImage.GroupsNotTheUsers).
  gid_t groups[1] = {uid};
  if (setgroups(1, groups)) test_fail_errno("setgroups");
  if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)) test_fail_errno("PR_SET_KEEPCAPS");
  if (setresgid(uid, uid, uid)) test_fail_errno("setresgid");
  if (setresuid(uid, uid, uid)) test_fail_errno("setresuid");
  if (keep) {
    set_caps(want_caps);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
      test_fail_errno("PR_CAP_AMBIENT_RAISE");
  }
  unsigned long long bnd0 = bounding();
  if (prctl(PR_GET_SECUREBITS) != want_bits)
    test_fail("securebits %#x before the dump", prctl(PR_GET_SECUREBITS));

  test_ready();
  test_wait();

  uid_t r, e, s;
  gid_t gr, ge, gs;
  getresuid(&r, &e, &s);
  getresgid(&gr, &ge, &gs);
  if (r != uid || e != uid || s != uid) test_fail("uids %d/%d/%d, want %d", r, e, s, uid);
  if (gr != uid || ge != uid || gs != uid) test_fail("gids %d/%d/%d, want %d", gr, ge, gs, uid);
  gid_t got[16];
  int n = getgroups(16, got);
  if (n != 1) test_fail("%d supplementary groups, want 1", n);
  for (int i = 0; i < 1; i++) {
    int found = 0;
    for (int j = 0; j < n; j++) found |= got[j] == groups[i];
    if (!found) test_fail("group %d missing", groups[i]);
  }
  struct __user_cap_data_struct d[2];
  caps(d);
  if (d[0].effective != want_caps || d[0].permitted != want_caps || d[0].inheritable != want_caps ||
      d[1].effective || d[1].permitted || d[1].inheritable)
    test_fail("capabilities eff %#x prm %#x inh %#x, want %#x", d[0].effective, d[0].permitted,
              d[0].inheritable, want_caps);
  if (status_hex("CapAmb:\t") != want_caps)
    test_fail("ambient %#llx, want %#x", status_hex("CapAmb:\t"), want_caps);
  if (bounding() != bnd0) test_fail("bounding set %#llx, want %#llx", bounding(), bnd0);
  int bits = prctl(PR_GET_SECUREBITS);
  if (bits != want_bits) test_fail("securebits %#x, want %#x", bits, want_bits);
  return test_pass();
}
