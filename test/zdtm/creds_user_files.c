// A process of uid 1001 (started by root, which gives it its temp dir and log, then drops every
// privilege) holding what a user's image holds: a file of its own open read-write, a deleted
// file, a unix socket bound in its directory. Restored by root, everything must come back as
// the user's: the socket file and the recreated deleted file owned by uid 1001, the socket file
// with its mode. test/e2e/hostile_image_test.cc edits images of this program.
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zdtmlib.h"

#define UID 1001

int main(void) {
  test_init();
  // The harness made the dir and the log as root: they become the user's.
  if (chown(".", UID, UID) || fchown(1, UID, UID)) test_fail_errno("chown");
  if (setgroups(0, NULL)) test_fail_errno("setgroups");
  if (setresgid(UID, UID, UID)) test_fail_errno("setresgid");
  if (setresuid(UID, UID, UID)) test_fail_errno("setresuid");
  umask(022);

  int data = open("data", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (data < 0) test_fail_errno("open data");
  if (write(data, "user", 4) != 4) test_fail_errno("write data");
  int gone = open("gone", O_RDWR | O_CREAT | O_TRUNC, 0640);
  if (gone < 0) test_fail_errno("open gone");
  if (write(gone, "ghost", 5) != 5) test_fail_errno("write gone");
  if (unlink("gone")) test_fail_errno("unlink");
  int sock = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (sock < 0) test_fail_errno("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "sock"};
  if (bind(sock, (struct sockaddr*)&a, sizeof a)) test_fail_errno("bind");

  test_ready();
  test_wait();

  struct stat st;
  if (fstat(gone, &st)) test_fail_errno("fstat gone");
  if (st.st_uid != UID || (st.st_mode & 07777) != 0640)
    test_fail("deleted file uid %d mode %o, want %d 0640", st.st_uid, st.st_mode & 07777, UID);
  char buf[8] = {0};
  if (pread(gone, buf, sizeof buf, 0) != 5 || memcmp(buf, "ghost", 5)) test_fail("ghost content");
  if (pread(data, buf, sizeof buf, 0) != 4 || memcmp(buf, "user", 4)) test_fail("data content");
  if (lstat("sock", &st)) test_fail_errno("lstat sock");
  if (!S_ISSOCK(st.st_mode) || st.st_uid != UID || st.st_gid != UID || (st.st_mode & 0777) != 0755)
    test_fail("socket file uid %d gid %d mode %o, want a socket of %d:%d 0755", st.st_uid,
              st.st_gid, st.st_mode & 07777, UID, UID);
  // The restored socket is the one bound there: a datagram to the name reaches it.
  int c = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (c < 0 || sendto(c, "x", 1, 0, (struct sockaddr*)&a, sizeof a) != 1) test_fail_errno("sendto");
  if (recv(sock, buf, 1, MSG_DONTWAIT) != 1) test_fail_errno("recv");
  return test_pass();
}
