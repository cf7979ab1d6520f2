// fanotify groups kept across dump and restore (as root):
//   a  non-blocking, close-on-exec, fd-reporting; inode marks on f (FAN_MODIFY), on the
//      directory d (FAN_CLOSE_WRITE of its children), evictable on e (FAN_MODIFY); ignored
//      masks for FAN_CLOSE_WRITE on d/g (the older FAN_MARK_IGNORED_MASK, surviving
//      modification) and d/h (FAN_MARK_IGNORE); a mount mark on /sys and a filesystem mark on
//      /dev for FAN_OPEN_EXEC (events no one makes there: the work directory's own mount and
//      filesystem see other tests' writes, which would be events queued at dump, and a mount
//      the program made could not be undone before its restore on the leave-running path;
//      those two are checked by the /proc comparison of the fdinfo);
//   b  blocking, reporting file ids; inode marks on f (FAN_ATTRIB) and d (FAN_CREATE).
// "user": as uid 1001 in the work directory, a group reporting file ids with inode marks only
// (what an unprivileged user can make), restored by root.
// After restore each mark reports the changes it should, the ignored masks hold, and the
// flags are as they were.
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

static void put(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, "x", 1) != 1) test_fail_errno("write %s", path);
  close(fd);
}

static void mark(int fan, unsigned flags, uint64_t mask, const char *path) {
  if (fanotify_mark(fan, FAN_MARK_ADD | flags, mask, AT_FDCWD, path) != 0)
    test_fail_errno("fanotify_mark %x %llx %s", flags, (unsigned long long)mask, path);
}

// The events queued on fd-reporting group `fan`: the mask of each file (by its name's last
// component, in names[]) ORed together.
static void read_fd_events(int fan, const char *const *names, uint64_t *masks, int n) {
  char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
  ssize_t len;
  while ((len = read(fan, buf, sizeof buf)) > 0) {
    struct fanotify_event_metadata *e = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(e, len); e = FAN_EVENT_NEXT(e, len)) {
      char link[64], path[4096];
      snprintf(link, sizeof link, "/proc/self/fd/%d", e->fd);
      ssize_t l = readlink(link, path, sizeof path - 1);
      if (l < 0) test_fail_errno("event fd");
      path[l] = 0;
      const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
      int i = 0;
      while (i < n && strcmp(names[i], base) != 0) ++i;
      if (i == n) test_fail("event %llx on %s", (unsigned long long)e->mask, path);
      masks[i] |= e->mask;
      close(e->fd);
    }
  }
}

// The masks of the FID events of `fan` ORed, reading until `want` are all in (blocking
// groups: the events are queued already).
static uint64_t read_fid_events(int fan, uint64_t want) {
  char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
  uint64_t got = 0;
  while ((got & want) != want) {
    ssize_t len = read(fan, buf, sizeof buf);
    if (len <= 0) break;
    struct fanotify_event_metadata *e = (struct fanotify_event_metadata *)buf;
    for (; FAN_EVENT_OK(e, len); e = FAN_EVENT_NEXT(e, len)) got |= e->mask;
  }
  return got;
}

static int user_case(void) {
  if (chown(".", 1001, 1001) || fchown(1, 1001, 1001)) test_fail_errno("chown");
  if (setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
    test_fail_errno("become uid 1001");
  if (mkdir("d", 0755) != 0) test_fail_errno("mkdir d");
  put("f");
  put("g");
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_REPORT_FID, O_RDONLY);
  if (fan < 0) test_fail_errno("fanotify_init as uid 1001");
  mark(fan, 0, FAN_MODIFY, "f");
  mark(fan, 0, FAN_CREATE | FAN_ONDIR, "d");
  mark(fan, FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_MODIFY, "g");
  test_ready();
  test_wait();
  int q = 0;
  if (ioctl(fan, FIONREAD, &q) != 0 || q != 0) test_fail("events queued after restore");
  put("f");
  put("g");
  put("d/x");
  uint64_t got = read_fid_events(fan, FAN_MODIFY | FAN_CREATE);
  if (got != (FAN_MODIFY | FAN_CREATE)) test_fail("events %llx", (unsigned long long)got);
  return test_pass();
}

int main(int argc, char **argv) {
  test_init();
  if (argc > 1 && !strcmp(argv[1], "user")) return user_case();
  if (mkdir("d", 0755) != 0) test_fail_errno("mkdir d");
  put("f");
  put("e");
  put("d/g");
  put("d/h");
  int a = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY | O_LARGEFILE);
  int b = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
  if (a < 0 || b < 0) test_fail_errno("fanotify_init");
  mark(a, 0, FAN_MODIFY, "f");
  mark(a, FAN_MARK_ONLYDIR, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, "d");
  mark(a, FAN_MARK_EVICTABLE, FAN_MODIFY, "e");
  mark(a, FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_WRITE, "d/g");
  mark(a, FAN_MARK_IGNORE_SURV, FAN_CLOSE_WRITE, "d/h");
  mark(a, FAN_MARK_MOUNT, FAN_OPEN_EXEC, "/sys");
  mark(a, FAN_MARK_FILESYSTEM, FAN_OPEN_EXEC, "/dev");
  mark(b, 0, FAN_ATTRIB, "f");
  mark(b, 0, FAN_CREATE | FAN_ONDIR, "d");

  test_ready();
  test_wait();

  if ((fcntl(a, F_GETFL) & O_NONBLOCK) == 0) test_fail("a lost O_NONBLOCK");
  if ((fcntl(b, F_GETFL) & O_NONBLOCK) != 0) test_fail("b became non-blocking");
  if ((fcntl(a, F_GETFD) & FD_CLOEXEC) == 0) test_fail("a lost FD_CLOEXEC");
  int q = 0;
  if (ioctl(a, FIONREAD, &q) != 0 || q != 0) test_fail("events queued on a after restore");
  put("f");
  put("e");
  put("d/g");
  put("d/h");
  put("d/x");
  if (chmod("f", 0600) != 0) test_fail_errno("chmod f");
  const char *const names[] = {"f", "e", "g", "h", "x"};
  uint64_t masks[5] = {0};
  read_fd_events(a, names, masks, 5);
  if (masks[0] != FAN_MODIFY) test_fail("f: %llx", (unsigned long long)masks[0]);
  if (masks[1] != FAN_MODIFY) test_fail("e: %llx", (unsigned long long)masks[1]);
  if (masks[2] != 0) test_fail("d/g not ignored: %llx", (unsigned long long)masks[2]);
  if (masks[3] != 0) test_fail("d/h not ignored: %llx", (unsigned long long)masks[3]);
  if (masks[4] != FAN_CLOSE_WRITE) test_fail("d/x: %llx", (unsigned long long)masks[4]);
  uint64_t got = read_fid_events(b, FAN_CREATE | FAN_ATTRIB);
  if (got != (FAN_CREATE | FAN_ATTRIB)) test_fail("b: %llx", (unsigned long long)got);
  return test_pass();
}
