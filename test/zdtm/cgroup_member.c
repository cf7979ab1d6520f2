// cgroups: the process moves into cgroups of its own, made below the ones it started in, in every
// hierarchy of these that is mounted: v1 cpu (cpu.shares 512), v1 memory (a 256 MiB limit,
// swappiness 30), v1 pids (pids.max 64) and cgroup2 (cgroup.max.descendants 7). Its second
// thread goes into a v1 cpu cgroup of its own (cpu.shares 256). After restore every task is in
// the same cgroups with the same settings: the kill path finds the cgroups still there, the
// leave-running path finds them gone (the original removed them when it passed) and restore
// makes them again from the image. At the end the program moves back and removes them.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zdtmlib.h"

struct hier {
  const char *controller;  // as /proc/self/cgroup names it: "cpu,cpuacct" matches "cpu"; "" = v2
  const char *setting, *value, *thread_value;
  char base[900], mine[1024], theirs[1024];  // directories: where it started, its own, the thread's
  int used;
};

static struct hier hiers[] = {
    {"cpu", "cpu.shares", "512", "256"},
    {"memory", "memory.limit_in_bytes", "268435456", NULL},
    {"pids", "pids.max", "64", NULL},
    {"", "cgroup.max.descendants", "7", NULL},
};
#define NHIER (sizeof hiers / sizeof hiers[0])

static int ready[2];
static pid_t thread_tid;

static void *idle(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  if (write(ready[1], "x", 1) != 1) abort();
  for (;;) pause();
  return NULL;
}

static void write_file(const char *dir, const char *name, const char *value) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "we");
  if (!f) test_fail_errno("open %s", path);
  if (fputs(value, f) < 0 || fclose(f) != 0) test_fail_errno("write '%s' to %s", value, path);
}

static void expect_file(const char *dir, const char *name, const char *value) {
  char path[1200], buf[256];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  if (test_read_file(path, buf, sizeof buf) < 0) test_fail_errno("read %s", path);
  buf[strcspn(buf, "\n")] = 0;
  if (strcmp(buf, value)) test_fail("%s is '%s', want '%s'", path, buf, value);
}

// Whether comma-separated `list` holds `name`.
static int has_name(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == 0 || p[n] == ':')) return 1;
  return 0;
}

// The mount point of the hierarchy whose /proc/self/cgroup name contains `controller` ("" for
// cgroup2), and that line's path; 0 when it is not mounted with its whole tree.
static int find_hier(struct hier *h) {
  char cg[4096], mi[65536];
  if (test_read_file("/proc/self/cgroup", cg, sizeof cg) < 0) test_fail_errno("read cgroup");
  if (test_read_file("/proc/self/mountinfo", mi, sizeof mi) < 0) test_fail_errno("read mountinfo");
  char path[400] = "";
  for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n")) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    *c2 = 0;
    const char *ctl = c1 + 1;
    if (*h->controller ? has_name(ctl, h->controller) : !*ctl) snprintf(path, sizeof path, "%s", c2 + 1);
  }
  if (!*path) return 0;
  for (char *line = strtok(mi, "\n"); line; line = strtok(NULL, "\n")) {
    char root[400], point[400], fstype[64], opts[400];
    char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %*s %399s %399s", root, point) != 2 ||
        sscanf(dash + 3, "%63s %*s %399s", fstype, opts) != 2)
      continue;
    int v2 = !strcmp(fstype, "cgroup2");
    if (*h->controller ? strcmp(fstype, "cgroup") || !has_name(opts, h->controller) : !v2)
      continue;
    if (strcmp(root, "/")) return 0;
    snprintf(h->base, sizeof h->base, "%s%s", point, strcmp(path, "/") ? path : "");
    return 1;
  }
  return 0;
}

// Whether task `tid`'s line for `h` names `dir`.
static void expect_in(struct hier *h, pid_t tid, const char *dir) {
  char file[64], cg[4096];
  snprintf(file, sizeof file, "/proc/self/task/%d/cgroup", tid);
  if (test_read_file(file, cg, sizeof cg) < 0) test_fail_errno("read %s", file);
  const char *name = strrchr(dir, '/');
  for (char *line = strtok(cg, "\n"); line; line = strtok(NULL, "\n")) {
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2) continue;
    int v2 = c2 == c1 + 1;
    if (v2 != !*h->controller || (!v2 && !has_name(c1 + 1, h->controller))) continue;
    const char *last = strrchr(c2 + 1, '/');
    if (!last || strcmp(last, name)) test_fail("task %d is in %s, want %s", tid, c2 + 1, dir);
    return;
  }
  test_fail("task %d has no %s line", tid, *h->controller ? h->controller : "cgroup2");
}

int main(void) {
  test_init();
  if (pipe(ready)) test_fail_errno("pipe");
  pthread_t t;
  if (pthread_create(&t, NULL, idle, NULL)) test_fail("pthread_create");
  char c;
  if (read(ready[0], &c, 1) != 1) test_fail_errno("read");
  close(ready[0]);
  close(ready[1]);
  int any = 0;
  for (size_t i = 0; i < NHIER; ++i) {
    struct hier *h = &hiers[i];
    if (!find_hier(h)) continue;
    snprintf(h->mine, sizeof h->mine, "%s/zdtm-cg-%d", h->base, getpid());
    if (mkdir(h->mine, 0755)) test_fail_errno("mkdir %s", h->mine);
    write_file(h->mine, h->setting, h->value);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", getpid());
    write_file(h->mine, "cgroup.procs", pid);
    if (h->thread_value) {
      snprintf(h->theirs, sizeof h->theirs, "%s/zdtm-cg-%d-t", h->base, getpid());
      if (mkdir(h->theirs, 0755)) test_fail_errno("mkdir %s", h->theirs);
      write_file(h->theirs, h->setting, h->thread_value);
      snprintf(pid, sizeof pid, "%d", thread_tid);
      write_file(h->theirs, "tasks", pid);
    }
    h->used = any = 1;
  }
  if (!any) test_fail("no cgroup hierarchy (v1 cpu, memory, pids or cgroup2) is mounted whole");

  test_ready();
  test_wait();

  for (size_t i = 0; i < NHIER; ++i) {
    struct hier *h = &hiers[i];
    if (!h->used) continue;
    expect_in(h, getpid(), h->mine);
    expect_file(h->mine, h->setting, h->value);
    if (h->thread_value) {
      expect_in(h, thread_tid, h->theirs);
      expect_file(h->theirs, h->setting, h->thread_value);
    } else {
      expect_in(h, thread_tid, h->mine);
    }
  }
  // Back where it started, and its cgroups gone (the thread first: v1 moves it on its own).
  for (size_t i = 0; i < NHIER; ++i) {
    struct hier *h = &hiers[i];
    if (!h->used) continue;
    char id[16];
    if (h->thread_value) {
      snprintf(id, sizeof id, "%d", thread_tid);
      write_file(h->base, "tasks", id);
      if (rmdir(h->theirs)) test_fail_errno("rmdir %s", h->theirs);
    }
    snprintf(id, sizeof id, "%d", getpid());
    write_file(h->base, "cgroup.procs", id);
    if (rmdir(h->mine)) test_fail_errno("rmdir %s", h->mine);
  }
  return test_pass();
}
