// A tree in a user namespace of its own: the harness starts this program as root of a new user
// namespace ("0 <id> 1" maps, setgroups denied), with whatever other namespaces the case asks
// for, all made with the user namespace (so it owns them). It notes its maps, its ids and
// capabilities, and which of its namespaces its user namespace owns; sets its hostname when
// its UTS namespace is its own; makes a SysV segment when its IPC namespace is; and has a child
// waiting on a pipe. After restore all of it must be the same: the maps, root inside with every
// capability, the same namespaces owned by the user namespace (the restore made them inside
// it), and what ownership gives: the hostname can be set again, lo brought up, a tmpfs mounted.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static const char *const kKinds[] = {"uts", "ipc", "net", "mnt", "pid", "cgroup"};
enum { kNKinds = sizeof kKinds / sizeof kKinds[0] };

static void read_text(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) test_fail_errno("open %s", path);
  ssize_t n = read(fd, buf, cap - 1);
  if (n < 0) test_fail_errno("read %s", path);
  buf[n] = 0;
  close(fd);
}

// The CapEff line of /proc/self/status.
static void cap_eff(char *buf, size_t cap) {
  char status[4096];
  read_text("/proc/self/status", status, sizeof status);
  const char *l = strstr(status, "CapEff:");
  if (!l) test_fail("no CapEff");
  size_t n = strcspn(l, "\n");
  if (n >= cap) n = cap - 1;
  memcpy(buf, l, n);
  buf[n] = 0;
}

// Whether our user namespace owns our namespace of `kind`.
static int owned(const char *kind) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
  int ns = open(path, O_RDONLY | O_CLOEXEC);
  if (ns < 0) test_fail_errno("open %s", path);
  int owner = ioctl(ns, NS_GET_USERNS);
  // EPERM: its owner is outside ours (an ancestor: the host's).
  if (owner < 0 && errno == EPERM) {
    close(ns);
    return 0;
  }
  if (owner < 0) test_fail_errno("NS_GET_USERNS %s", kind);
  struct stat a, b;
  if (fstat(owner, &a) || stat("/proc/self/ns/user", &b)) test_fail_errno("stat");
  close(owner);
  close(ns);
  return a.st_ino == b.st_ino;
}

struct State {
  char uid_map[256], gid_map[256], setgroups[16], caps[64];
  int owned[kNKinds];
};

static void take(struct State *s) {
  read_text("/proc/self/uid_map", s->uid_map, sizeof s->uid_map);
  read_text("/proc/self/gid_map", s->gid_map, sizeof s->gid_map);
  read_text("/proc/self/setgroups", s->setgroups, sizeof s->setgroups);
  cap_eff(s->caps, sizeof s->caps);
  for (int i = 0; i < kNKinds; i++) s->owned[i] = owned(kKinds[i]);
}

int main(int argc, char **argv) {
  test_init();
  // "pid", "mnt": a namespace the tree shared with the host, restored with --pidns into the
  // launcher's (made inside the new user namespace): owned by it after restore.
  int moved[kNKinds] = {0};
  for (int a = 1; a < argc; a++)
    for (int i = 0; i < kNKinds; i++)
      if (!strcmp(argv[a], kKinds[i])) moved[i] = 1;
  if (getuid() != 0 || geteuid() != 0 || getgid() != 0) test_fail("not root in the namespace");
  struct State before, after;
  take(&before);
  if (strstr(before.uid_map, "4294967295")) test_fail("in the host's user namespace");
  const int own_uts = before.owned[0], own_ipc = before.owned[1], own_net = before.owned[2],
            own_mnt = before.owned[3];
  if (own_uts && sethostname("crtools-userns", 14)) test_fail_errno("sethostname");
  int shmid = -1;
  if (own_ipc) {
    shmid = shmget(0x7573, 4096, IPC_CREAT | 0600);
    if (shmid < 0) test_fail_errno("shmget");
  }
  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(20);
    _exit(getuid() == 0 && geteuid() == 0 ? 0 : 21);
  }
  close(go[0]);

  test_ready();
  test_wait();

  take(&after);
  if (strcmp(before.uid_map, after.uid_map) || strcmp(before.gid_map, after.gid_map) ||
      strcmp(before.setgroups, after.setgroups))
    test_fail("maps '%s' '%s' '%s' after restore, were '%s' '%s' '%s'", after.uid_map,
              after.gid_map, after.setgroups, before.uid_map, before.gid_map, before.setgroups);
  if (strcmp(before.caps, after.caps))
    test_fail("'%s' after restore, was '%s'", after.caps, before.caps);
  if (getuid() != 0 || geteuid() != 0 || getgid() != 0) test_fail("not root after restore");
  for (int i = 0; i < kNKinds; i++)
    if (before.owned[i] != after.owned[i] && !(moved[i] && !before.owned[i] && after.owned[i]))
      test_fail("%s namespace %s by the user namespace after restore, %s before", kKinds[i],
                after.owned[i] ? "owned" : "not owned", before.owned[i] ? "owned" : "not owned");
  // What owning them gives, used again.
  if (own_uts) {
    struct utsname u;
    if (uname(&u) || strcmp(u.nodename, "crtools-userns")) test_fail("hostname '%s'", u.nodename);
    if (sethostname("crtools-again", 13)) test_fail_errno("sethostname after restore");
  }
  if (own_ipc) {
    struct shmid_ds ds;
    if (shmctl(shmid, IPC_STAT, &ds)) test_fail_errno("shmctl");
    if (ds.shm_perm.uid != 0 || ds.shm_perm.gid != 0)
      test_fail("segment owner %u:%u", ds.shm_perm.uid, ds.shm_perm.gid);
    if (shmctl(shmid, IPC_RMID, NULL)) test_fail_errno("IPC_RMID");
  }
  if (own_net) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr)) test_fail_errno("SIOCGIFFLAGS");
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr)) test_fail_errno("bringing lo up after restore");
    close(s);
  }
  if (own_mnt) {
    if (mount("none", "/tmp", "tmpfs", 0, "size=64k")) test_fail_errno("mount tmpfs after restore");
    if (umount("/tmp")) test_fail_errno("umount");
  }
  if (write(go[1], "g", 1) != 1) test_fail_errno("write");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("child status %#x", st);
  return test_pass();
}
