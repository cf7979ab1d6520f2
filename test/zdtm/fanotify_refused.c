// fanotify states crdump must refuse, naming the fd, and leave running:
//   queued   an event not yet read (FAN_MODIFY of a file in the work directory): the events
//            of a new group cannot be made again;
//   perm     a permission class group (FAN_CLASS_CONTENT): a process waiting on its answer
//            could hang or be let through;
//   deleted  an inode mark on a file since deleted (held open): it cannot be found again.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  const char *what = argc > 1 ? argv[1] : "queued";
  const int perm = !strcmp(what, "perm"), deleted = !strcmp(what, "deleted");
  int fan = fanotify_init(perm ? FAN_CLASS_CONTENT : FAN_CLASS_NOTIF, O_RDONLY);
  if (fan < 0) test_fail_errno("fanotify_init");
  int fd = open("f", O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) test_fail_errno("create f");
  if (!perm && fanotify_mark(fan, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, "f") != 0)
    test_fail_errno("fanotify_mark");
  if (deleted && unlink("f") != 0) test_fail_errno("unlink f");
  if (!strcmp(what, "queued") && write(fd, "x", 1) != 1) test_fail_errno("write f");
  test_ready();
  test_wait();
  int queued = 0;
  if (ioctl(fan, FIONREAD, &queued) != 0) test_fail_errno("FIONREAD");
  if (!strcmp(what, "queued") && queued == 0) test_fail("the queued event was lost");
  if (deleted) {
    if (queued != 0) test_fail("%d bytes of events queued", queued);
    if (write(fd, "x", 1) != 1) test_fail_errno("write f");
    if (ioctl(fan, FIONREAD, &queued) != 0 || queued == 0) test_fail("no FAN_MODIFY for f");
  }
  return test_pass();
}
