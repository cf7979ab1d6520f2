// The root of its own cgroup namespace, whose root is not where the root is now: it moves
// into a cgroup2 cgroup of its own (zdtm-cgns-PID, below where it started), unshares
// CLONE_NEWCGROUP there (that cgroup becomes the namespace's "/"), then moves into "/inner"
// and its child into "/inner/kid". After restore /proc/PID/cgroup, read inside, must show the
// same paths for both (and the namespace's root the same cgroup: "/inner" is
// zdtm-cgns-PID/inner). At the end the root joins its parent's cgroup namespace (the
// harness's), goes back where it started and removes the cgroups it made.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static void write_file(const char *path, const char *value) {
  FILE *f = fopen(path, "we");
  if (!f) test_fail_errno("open %s", path);
  if (fputs(value, f) < 0 || fclose(f) != 0) test_fail_errno("write '%s' to %s", value, path);
}

// The directory of our cgroup2 cgroup: the cgroup2 mount (whole tree) and our "0::" path.
static void find_v2(char *out, size_t cap) {
  char cg[4096], mi[65536], path[400] = "";
  if (test_read_file("/proc/self/cgroup", cg, sizeof cg) < 0) test_fail_errno("read cgroup");
  if (test_read_file("/proc/self/mountinfo", mi, sizeof mi) < 0) test_fail_errno("read mountinfo");
  for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n"))
    if (!strncmp(line, "0::", 3)) snprintf(path, sizeof path, "%s", line + 3);
  if (!*path) test_fail("no cgroup2 line in /proc/self/cgroup");
  for (char *line = strtok(mi, "\n"); line; line = strtok(NULL, "\n")) {
    char root[400], point[400], fstype[64];
    char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %*s %399s %399s", root, point) != 2 ||
        sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") || strcmp(root, "/"))
      continue;
    snprintf(out, cap, "%s%s", point, strcmp(path, "/") ? path : "");
    return;
  }
  test_fail("no cgroup2 mount of the whole hierarchy");
}

static void read_cgroup(pid_t pid, char *buf, size_t cap) {
  char file[64];
  snprintf(file, sizeof file, "/proc/%d/cgroup", pid);
  if (test_read_file(file, buf, cap) < 0) test_fail_errno("read %s", file);
}

static void expect_v2(const char *text, const char *want, const char *who) {
  char line[300];
  snprintf(line, sizeof line, "0::%s\n", want);
  if (!strstr(text, line)) test_fail("%s: /proc cgroup shows\n%swant %s", who, text, line);
}

int main(void) {
  test_init();
  char base[900], ns_root[1000], inner[1100], kid_dir[1200], procs[1300];
  find_v2(base, sizeof base);
  snprintf(ns_root, sizeof ns_root, "%s/zdtm-cgns-%d", base, getpid());
  snprintf(inner, sizeof inner, "%s/inner", ns_root);
  snprintf(kid_dir, sizeof kid_dir, "%s/kid", inner);
  if (mkdir(ns_root, 0755) && errno != EEXIST) test_fail_errno("mkdir %s", ns_root);
  snprintf(procs, sizeof procs, "%s/cgroup.procs", ns_root);
  write_file(procs, "0");
  if (unshare(CLONE_NEWCGROUP)) test_fail_errno("unshare(CLONE_NEWCGROUP)");
  if (mkdir(inner, 0755) || mkdir(kid_dir, 0755)) test_fail_errno("mkdir below %s", ns_root);
  snprintf(procs, sizeof procs, "%s/cgroup.procs", inner);
  write_file(procs, "0");

  int go[2], up[2];
  if (pipe(go) || pipe(up)) test_fail_errno("pipe");
  pid_t kid = fork();
  if (kid < 0) test_fail_errno("fork");
  if (kid == 0) {
    close(3);
    close(go[1]);
    close(up[0]);
    snprintf(procs, sizeof procs, "%s/cgroup.procs", kid_dir);
    write_file(procs, "0");
    close(up[1]);
    char c;
    _exit(read(go[0], &c, 1) == 1 ? 0 : 2);
  }
  close(go[0]);
  close(up[1]);
  char c;
  if (read(up[0], &c, 1) != 0) test_fail("child");
  close(up[0]);
  char mine[4096], theirs[4096], now[4096];
  read_cgroup(getpid(), mine, sizeof mine);
  read_cgroup(kid, theirs, sizeof theirs);
  expect_v2(mine, "/inner", "root before");
  expect_v2(theirs, "/inner/kid", "child before");

  test_ready();
  test_wait();

  read_cgroup(getpid(), now, sizeof now);
  if (strcmp(now, mine)) test_fail("root: /proc cgroup was\n%snow\n%s", mine, now);
  read_cgroup(kid, now, sizeof now);
  if (strcmp(now, theirs)) test_fail("child: /proc cgroup was\n%snow\n%s", theirs, now);
  // The namespace's root is the same cgroup: "/inner" here is ns_root/inner there.
  char have[64];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", inner);
  snprintf(have, sizeof have, "%d\n", getpid());
  if (test_read_file(procs, now, sizeof now) < 0 || !strstr(now, have))
    test_fail("%s lists\n%s without us", procs, now);
  if (write(go[1], "x", 1) != 1) test_fail_errno("write to child");
  int st;
  if (waitpid(kid, &st, 0) != kid || st != 0) test_fail("child status %#x", st);
  if (rmdir(kid_dir)) test_fail_errno("rmdir %s", kid_dir);
  // Out of the namespace (a task inside may not move above its root) into its parent's (the
  // harness's), then back where it started. A parent we may not join (an init outside our
  // reach, run by hand) leaves the two empty cgroups behind.
  char parent_ns[64];
  snprintf(parent_ns, sizeof parent_ns, "/proc/%d/ns/cgroup", getppid());
  int ns = open(parent_ns, O_RDONLY | O_CLOEXEC);
  if (ns >= 0 && setns(ns, CLONE_NEWCGROUP) == 0) {
    snprintf(procs, sizeof procs, "%s/cgroup.procs", base);
    write_file(procs, "0");
    if (rmdir(inner) || rmdir(ns_root)) test_fail_errno("rmdir %s and below", ns_root);
  }
  if (ns >= 0) close(ns);
  return test_pass();
}
