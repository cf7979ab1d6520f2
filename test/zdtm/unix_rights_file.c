// Fds in flight (SCM_RIGHTS) whose files only the queue holds: the sender opened a file and a
// directory, sent them and closed its own fds, as fd-passing servers do. On a stream
// socketpair, one message carries the file (opened read-write with O_APPEND, read up to an
// offset), the next the directory; a seqpacket pair carries the same file's description twice
// in one message. After restore each comes back as an open description of the same inode with
// its flags and offset, both copies in the seqpacket message being one description.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

// Receives one message of `want` bytes (checked against `data`); returns how many fds came.
static int recv_fds(int s, const char *data, int *fds) {
  char buf[64] = {0}, cbuf[CMSG_SPACE(sizeof(int) * 2)];
  struct iovec iov = {.iov_base = buf, .iov_len = strlen(data)};
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
  if (recvmsg(s, &m, MSG_DONTWAIT) != (ssize_t)strlen(data) || strcmp(buf, data) != 0)
    test_fail("message '%s' lost or changed", data);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS) return 0;
  int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
  memcpy(fds, CMSG_DATA(c), sizeof(int) * (size_t)n);
  return n;
}

int main(void) {
  test_init();
  if (mkdir("rights.dir", 0755) != 0) test_fail_errno("mkdir");
  int f = open("rights.txt", O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0640);
  if (f < 0 || write(f, "hello world", 11) != 11 || lseek(f, 6, SEEK_SET) != 6)
    test_fail_errno("file");
  int d = open("rights.dir", O_RDONLY | O_DIRECTORY);
  int g = open("rights.txt", O_RDONLY);
  if (d < 0 || g < 0 || lseek(g, 2, SEEK_SET) != 2) test_fail_errno("open");
  struct stat fst, dst;
  if (fstat(f, &fst) != 0 || fstat(d, &dst) != 0) test_fail_errno("fstat");
  int sv[2], sq[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq))
    test_fail_errno("socketpair");
  test_send_fds(sv[0], "file", &f, 1);
  test_send_fds(sv[0], "dir", &d, 1);
  int twice[2] = {g, g};
  test_send_fds(sq[0], "twice", twice, 2);
  close(f);
  close(d);
  close(g);
  test_ready();
  test_wait();

  int got[2];
  if (recv_fds(sv[1], "file", got) != 1) test_fail("the file's fd did not come");
  struct stat st;
  if (fstat(got[0], &st) != 0 || st.st_ino != fst.st_ino || st.st_dev != fst.st_dev)
    test_fail("the fd in flight is not rights.txt");
  int fl = fcntl(got[0], F_GETFL);
  if ((fl & O_ACCMODE) != O_RDWR || !(fl & O_APPEND)) test_fail("flags 0%o", fl);
  char b[8] = {0};
  if (read(got[0], b, 5) != 5 || strcmp(b, "world") != 0) test_fail("offset lost: read '%s'", b);
  if (write(got[0], "!", 1) != 1) test_fail_errno("append");
  if (recv_fds(sv[1], "dir", got) != 1) test_fail("the directory's fd did not come");
  if (fstat(got[0], &st) != 0 || st.st_ino != dst.st_ino || !S_ISDIR(st.st_mode))
    test_fail("the fd in flight is not rights.dir");
  if (recv_fds(sq[1], "twice", got) != 2) test_fail("the two fds did not come");
  if (lseek(got[0], 0, SEEK_CUR) != 2 || lseek(got[0], 4, SEEK_SET) != 4 ||
      lseek(got[1], 0, SEEK_CUR) != 4)
    test_fail("the two fds are not one description at offset 2");
  memset(b, 0, sizeof b);
  if (pread(got[1], b, 7, 6) != 6 || strcmp(b, "world!") != 0) test_fail("the file reads '%s'", b);
  return test_pass();
}
