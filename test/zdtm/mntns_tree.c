// A container's mount namespace: the harness starts this program in a mount namespace of its
// own (a copy of the harness's), with a pid namespace of its own too in some rows. It does what
// `unshare --mount --mount-proc` and a container's set-up do: every mount private, a new proc
// on /proc, a tmpfs "box" (in its temp dir) with a file, an empty file, a directory, a symlink
// and a read-only bind of "src" inside it, a bind of "src" on "bound", and the top /dev/shm
// unmounted. After restore the mount list is the same (but for the ids and new filesystems'
// devices), and so are the tmpfs's files with their modes, owners and times.
// argv[1] "open_tmpfs": it keeps box/data open (refused: a file of the tree's own tmpfs);
// "overlay": an overlayfs mount (refused by name).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zdtmlib.h"

#define DATA_LEN 10000
static char before[65536], after[65536];

// mountinfo without what a restore cannot keep: mount ids, parent ids and devices. Each line
// is its parent's mount point instead, the rest as it is; lines sorted.
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }
static void mounts(char *out, size_t cap) {
  static char text[65536];
  if (test_read_file("/proc/self/mountinfo", text, sizeof text) < 0) test_fail_errno("mountinfo");
  char *lines[512];
  unsigned ids[512];
  char *points[512];
  size_t n = 0;
  for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < 512; l = strtok_r(NULL, "\n", &save)) {
    lines[n] = l;
    ids[n] = (unsigned)strtoul(l, NULL, 10);
    char point[4096];
    if (sscanf(l, "%*u %*u %*s %*s %4095s", point) != 1) test_fail("bad mountinfo line %s", l);
    points[n] = strdup(point);
    n++;
  }
  char *canon[512];
  for (size_t i = 0; i < n; i++) {
    unsigned parent = 0;
    int skip = 0;
    sscanf(lines[i], "%*u %u %*s %n", &parent, &skip);
    const char *pp = "-";
    for (size_t j = 0; j < n; j++)
      if (ids[j] == parent) pp = points[j];
    canon[i] = malloc(strlen(lines[i]) + strlen(pp) + 2);
    sprintf(canon[i], "%s %s", pp, lines[i] + skip);
  }
  qsort(canon, n, sizeof canon[0], cmp);
  out[0] = 0;
  for (size_t i = 0; i < n; i++) {
    if (strlen(out) + strlen(canon[i]) + 2 > cap) test_fail("mountinfo too long");
    strcat(out, canon[i]);
    strcat(out, "\n");
    free(canon[i]);
    free(points[i]);
  }
}

static void write_file(const char *path, const void *buf, size_t len, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd)) test_fail_errno("write %s", path);
}

int main(int argc, char **argv) {
  test_init();
  const char *mode = argc > 1 ? argv[1] : "";
  static char data[DATA_LEN], back[DATA_LEN + 1];
  test_fill(data, sizeof data, 0, 77);
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) test_fail_errno("make / private");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
    test_fail_errno("mount proc");
  if (mkdir("box", 0755) || mkdir("src", 0755) || mkdir("bound", 0755)) test_fail_errno("mkdir");
  write_file("src/hello", "hello", 5, 0644);
  if (mount("boxfs", "box", "tmpfs", MS_NODEV, "size=1m,mode=750")) test_fail_errno("mount tmpfs");
  write_file("box/data", data, sizeof data, 0640);
  write_file("box/empty", "", 0, 0600);
  if (chown("box/data", 1001, 1002)) test_fail_errno("chown");
  if (mkdir("box/sub", 0711) || symlink("../data", "box/sub/link") || mkdir("box/ro", 0755))
    test_fail_errno("mkdir/symlink");
  const struct timespec t[2] = {{1000000, 5}, {2000000, 7}};
  if (utimensat(AT_FDCWD, "box/data", t, 0) || utimensat(AT_FDCWD, "box/sub", t, 0))
    test_fail_errno("utimensat");
  if (mount("src", "box/ro", NULL, MS_BIND, NULL) ||
      mount(NULL, "box/ro", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
    test_fail_errno("read-only bind");
  if (mount("src", "bound", NULL, MS_BIND, NULL)) test_fail_errno("bind");
  if (umount2("/dev/shm", MNT_DETACH)) test_fail_errno("umount /dev/shm");
  int keep = -1;
  if (!strcmp(mode, "open_tmpfs") && (keep = open("box/data", O_RDONLY)) < 0)
    test_fail_errno("open box/data");
  if (!strcmp(mode, "overlay")) {
    if (mkdir("box/l", 0755) || mkdir("box/u", 0755) || mkdir("box/w", 0755) ||
        mkdir("box/m", 0755) ||
        mount("overlay", "box/m", "overlay", 0, "lowerdir=box/l,upperdir=box/u,workdir=box/w"))
      test_fail_errno("overlay");
  }
  mounts(before, sizeof before);
  test_ready();
  test_wait();
  (void)keep;

  mounts(after, sizeof after);
  if (strcmp(before, after)) test_fail("mounts differ:\n%s---\n%s", before, after);
  if (getpid() == 1) {
    char self[32] = {0};
    if (readlink("/proc/self", self, sizeof self - 1) < 0 || strcmp(self, "1"))
      test_fail("/proc is not the namespace's: self is %s", self);
  }
  struct stat st;
  if (stat("box/data", &st) || st.st_size != DATA_LEN || (st.st_mode & 07777) != 0640 ||
      st.st_uid != 1001 || st.st_gid != 1002 || st.st_mtim.tv_sec != 2000000 ||
      st.st_mtim.tv_nsec != 7 || st.st_atim.tv_sec != 1000000)
    test_fail("box/data: size %ld mode %o owner %u:%u mtime %ld", (long)st.st_size,
              st.st_mode & 07777, st.st_uid, st.st_gid, (long)st.st_mtim.tv_sec);
  if (test_read_file("box/data", back, sizeof back) != DATA_LEN ||
      test_check(back, DATA_LEN, 0, 77) != -1)
    test_fail("box/data contents");
  if (stat("box/empty", &st) || st.st_size != 0 || (st.st_mode & 07777) != 0600)
    test_fail("box/empty");
  if (stat("box/sub", &st) || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0711 ||
      st.st_mtim.tv_sec != 2000000)
    test_fail("box/sub");
  if (stat("box", &st) || (st.st_mode & 07777) != 0750) test_fail("box's mode");
  char link[64] = {0};
  if (readlink("box/sub/link", link, sizeof link - 1) != 7 || strcmp(link, "../data"))
    test_fail("box/sub/link: %s", link);
  if (test_read_file("bound/hello", back, sizeof back) != 5 || memcmp(back, "hello", 5))
    test_fail("bound/hello");
  if (test_read_file("box/ro/hello", back, sizeof back) != 5) test_fail("box/ro/hello");
  if (open("box/ro/new", O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
    test_fail("box/ro is not read-only");
  return test_pass();
}
