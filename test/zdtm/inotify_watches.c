// inotify watches kept across dump and restore:
//   in   non-blocking, watch descriptors with gaps: 1 on the directory d (IN_CREATE|IN_DELETE),
//        2 on f removed again, 3 on g (IN_ATTRIB|IN_EXCL_UNLINK), 4 on f (IN_MODIFY|
//        IN_CLOSE_WRITE), 5 on o (IN_ATTRIB|IN_ONESHOT);
//   in2  blocking, 1 on d (every change: IN_CREATE, IN_DELETE, IN_MOVE, IN_MODIFY, IN_ATTRIB).
// No watch reports opens or reads: on the leave-running path the harness reads the work
// directory while the original runs.
// After restore each watch reports the events made on its file with its own wd and mask, the
// one-shot fires once and is gone (IN_IGNORED), and the flags are as they were.
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

struct ev {
  int wd;
  uint32_t mask;
  char name[32];
};

// Every event queued on `fd` (non-blocking reads), at most `max`.
static int read_events(int fd, struct ev *out, int max) {
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  int n = 0;
  for (;;) {
    ssize_t len = read(fd, buf, sizeof buf);
    if (len <= 0) break;
    for (char *p = buf; p < buf + len;) {
      struct inotify_event *e = (struct inotify_event *)p;
      if (n < max) {
        out[n].wd = e->wd;
        out[n].mask = e->mask;
        snprintf(out[n].name, sizeof out[n].name, "%s", e->len ? e->name : "");
        ++n;
      }
      p += sizeof *e + e->len;
    }
  }
  return n;
}

static void expect(const struct ev *e, int n, int i, int wd, uint32_t mask, const char *name) {
  if (i >= n) test_fail("event %d (wd %d mask %x %s) missing, %d events", i, wd, mask, name, n);
  if (e[i].wd != wd || e[i].mask != mask || strcmp(e[i].name, name) != 0)
    test_fail("event %d: wd %d mask %x \"%s\", want wd %d mask %x \"%s\"", i, e[i].wd, e[i].mask,
              e[i].name, wd, mask, name);
}

static void touch(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) test_fail_errno("create %s", path);
  close(fd);
}

int main(int argc, char **argv) {
  test_init();
  // "user": all of it as uid 1001, restored by root (README "Trust model"): each watched inode
  // is found by its path as the user and the watch added as the user.
  if (argc > 1 && !strcmp(argv[1], "user")) {
    if (chown(".", 1001, 1001) || fchown(1, 1001, 1001)) test_fail_errno("chown");
    if (setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
      test_fail_errno("become uid 1001");
  }
  if (mkdir("d", 0755) != 0) test_fail_errno("mkdir d");
  touch("f");
  touch("g");
  touch("o");
  int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  int in2 = inotify_init1(0);
  if (in < 0 || in2 < 0) test_fail_errno("inotify_init1");
  struct ev evs[32];
  int wd[6];
  wd[1] = inotify_add_watch(in, "d", IN_CREATE | IN_DELETE);
  wd[2] = inotify_add_watch(in, "f", IN_MODIFY);
  wd[3] = inotify_add_watch(in, "g", IN_ATTRIB | IN_EXCL_UNLINK);
  if (inotify_rm_watch(in, wd[2]) != 0) test_fail_errno("inotify_rm_watch");
  wd[4] = inotify_add_watch(in, "f", IN_MODIFY | IN_CLOSE_WRITE);
  wd[5] = inotify_add_watch(in, "o", IN_ATTRIB | IN_ONESHOT);
  for (int i = 1; i <= 5; ++i)
    if (wd[i] != i) test_fail("watch %d got wd %d", i, wd[i]);
  if (inotify_add_watch(in2, "d", IN_CREATE | IN_DELETE | IN_MOVE | IN_MODIFY | IN_ATTRIB) != 1)
    test_fail_errno("in2 watch");
  // The IN_IGNORED of the removed watch: nothing queued when dumped.
  int n = read_events(in, evs, 32);
  if (n != 1 || evs[0].wd != 2 || evs[0].mask != IN_IGNORED) test_fail("no IN_IGNORED for wd 2");

  test_ready();
  test_wait();

  if ((fcntl(in, F_GETFL) & O_NONBLOCK) == 0) test_fail("in lost O_NONBLOCK");
  if ((fcntl(in2, F_GETFL) & O_NONBLOCK) != 0) test_fail("in2 became non-blocking");
  if ((fcntl(in, F_GETFD) & FD_CLOEXEC) == 0) test_fail("in lost FD_CLOEXEC");
  if (read_events(in, evs, 32) != 0) test_fail("events queued after restore");
  touch("d/new");
  int fd = open("f", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "x", 1) != 1) test_fail_errno("write f");
  close(fd);
  if (chmod("g", 0600) != 0) test_fail_errno("chmod g");
  if (chmod("o", 0600) != 0) test_fail_errno("chmod o");  // the one-shot fires, and is removed
  if (chmod("o", 0644) != 0) test_fail_errno("chmod o");  // nothing more
  n = read_events(in, evs, 32);
  expect(evs, n, 0, 1, IN_CREATE, "new");
  expect(evs, n, 1, 4, IN_MODIFY, "");
  expect(evs, n, 2, 4, IN_CLOSE_WRITE, "");
  expect(evs, n, 3, 3, IN_ATTRIB, "");
  expect(evs, n, 4, 5, IN_ATTRIB, "");
  expect(evs, n, 5, 5, IN_IGNORED, "");
  if (n != 6) test_fail("%d events, want 6", n);
  // The blocking one: the directory's event (its file made).
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  ssize_t len = read(in2, buf, sizeof buf);
  if (len < (ssize_t)sizeof(struct inotify_event)) test_fail_errno("read in2");
  struct inotify_event *e = (struct inotify_event *)buf;
  if (e->wd != 1 || e->mask != IN_CREATE || strcmp(e->name, "new") != 0)
    test_fail("in2: wd %d mask %x, want 1 IN_CREATE new", e->wd, e->mask);
  // A new watch still works.
  touch("h");
  int w = inotify_add_watch(in, "h", IN_DELETE_SELF);
  if (w <= 0 || unlink("h") != 0) test_fail_errno("watch h");
  n = read_events(in, evs, 32);
  if (n < 1 || evs[0].wd != w || evs[0].mask != IN_DELETE_SELF)
    test_fail("no IN_DELETE_SELF for h");
  return test_pass();
}
