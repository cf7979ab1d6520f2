// inotify states crdump must refuse, naming the fd (and the watch), and leave running:
//   queued   an event not yet read (IN_CREATE of a file made in the watched cwd): the events
//            of a new inotify cannot be made again;
//   deleted  a watch on a file since deleted (held open, so the watch lives): its inode
//            cannot be found again.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(int argc, char **argv) {
  test_init();
  const int deleted = argc > 1 && strcmp(argv[1], "deleted") == 0;
  int in = inotify_init1(IN_CLOEXEC);
  if (in < 0) test_fail_errno("inotify_init1");
  int keep = -1;
  if (deleted) {
    keep = open("gone", O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (keep < 0) test_fail_errno("create gone");
    if (inotify_add_watch(in, "gone", IN_MODIFY) != 1) test_fail_errno("watch gone");
    if (unlink("gone") != 0) test_fail_errno("unlink gone");
  } else {
    if (inotify_add_watch(in, ".", IN_CREATE) != 1) test_fail_errno("watch .");
    int fd = open("made", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) test_fail_errno("create made");
    close(fd);
  }
  test_ready();
  test_wait();
  int queued = 0;
  if (ioctl(in, FIONREAD, &queued) != 0) test_fail_errno("FIONREAD");
  if (deleted) {
    if (queued != 0) test_fail("%d bytes of events queued", queued);
    if (write(keep, "x", 1) != 1) test_fail_errno("write gone");
    if (ioctl(in, FIONREAD, &queued) != 0 || queued == 0) test_fail("no IN_MODIFY for gone");
  } else if (queued == 0) {
    test_fail("the queued event was lost");
  }
  return test_pass();
}
