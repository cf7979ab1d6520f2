// SysV IPC in an IPC namespace of the test's own (unshare at start): a segment attached by the
// parent and a child (with part of it made read-only), a segment nobody attaches, a segment
// removed while attached, a message queue with messages of several types, a semaphore set.
// After restore every id, key, mode, size and content is the same, a message queued before the
// dump is received after it in order, the semaphore values hold, and the attach is shared: what
// the child writes the parent reads.
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#define SEG (3 * 4096 + 100)  // not a whole number of pages
#define KEY_A 0x5a5a0001
#define KEY_B 0x5a5a0002
#define KEY_Q 0x5a5a0003
#define KEY_S 0x5a5a0004

struct msg {
  long mtype;
  char text[64];
};

union semun {
  int val;
  struct semid_ds *buf;
  unsigned short *array;
};

static void check_perm(const struct ipc_perm *p, key_t key, unsigned mode, const char *what) {
  if (p->__key != key) test_fail("%s: key %#x, want %#x", what, p->__key, key);
  if ((p->mode & 0777) != mode) test_fail("%s: mode %o, want %o", what, p->mode & 0777, mode);
}

int main(void) {
  test_init();
  if (unshare(CLONE_NEWIPC) != 0) test_fail_errno("unshare(CLONE_NEWIPC)");
  int a = shmget(KEY_A, SEG, IPC_CREAT | 0640);
  int b = shmget(KEY_B, 8192, IPC_CREAT | 0600);
  int gone = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  int q = msgget(KEY_Q, IPC_CREAT | 0620);
  int s = semget(KEY_S, 3, IPC_CREAT | 0660);
  if (a < 0 || b < 0 || gone < 0 || q < 0 || s < 0) test_fail_errno("get");
  uint8_t *pa = shmat(a, NULL, 0);
  uint8_t *pb = shmat(b, NULL, 0);
  uint8_t *pg = shmat(gone, NULL, 0);
  if (pa == (void *)-1 || pb == (void *)-1 || pg == (void *)-1) test_fail_errno("shmat");
  test_fill(pa, SEG, 0, 31);
  test_fill(pb, 4096, 0, 32);  // the second page stays zero
  memcpy(pg, "removed-but-attached", 20);
  if (shmctl(gone, IPC_RMID, NULL) != 0) test_fail_errno("IPC_RMID");
  if (mprotect(pa + 4096, 4096, PROT_READ) != 0) test_fail_errno("mprotect");
  if (shmdt(pb) != 0) test_fail_errno("shmdt");  // b: no attach left, contents kept
  struct msg m1 = {7, "first"}, m2 = {3, "second, longer message"}, m3 = {7, ""};
  if (msgsnd(q, &m1, 6, 0) || msgsnd(q, &m2, 23, 0) || msgsnd(q, &m3, 0, 0))
    test_fail_errno("msgsnd");
  unsigned short vals[3] = {1, 5, 0};
  union semun arg = {.array = vals};
  if (semctl(s, 0, SETALL, arg) != 0) test_fail_errno("SETALL");

  int go[2], done[2];
  if (pipe(go) || pipe(done)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(go[1]);  // only the parent writes: EOF, not a hang, if it fails first
    uint8_t *mine = pa;  // the attach, inherited across fork
    char c;
    if (read(go[0], &c, 1) != 1) _exit(20);
    if (test_check(mine + 4096, SEG - 4096, 4096, 31) >= 0) _exit(21);
    memcpy(mine, "child-was-here", 14);
    if (write(done[1], "d", 1) != 1) _exit(22);
    _exit(7);
  }
  // Attaches count mappings: the parent's two pieces of the attach and the child's two.
  struct shmid_ds ds;
  if (shmctl(a, IPC_STAT, &ds) != 0) test_fail_errno("IPC_STAT");
  const unsigned long nattch = ds.shm_nattch;
  test_ready();
  test_wait();

  // Same ids, keys, modes and sizes: found again by key.
  if (shmget(KEY_A, 0, 0) != a || shmget(KEY_B, 0, 0) != b) test_fail("segment ids changed");
  if (msgget(KEY_Q, 0) != q || semget(KEY_S, 0, 0) != s) test_fail("queue or semaphore id changed");
  if (shmctl(a, IPC_STAT, &ds) != 0) test_fail_errno("IPC_STAT a");
  check_perm(&ds.shm_perm, KEY_A, 0640, "segment a");
  if (ds.shm_segsz != SEG) test_fail("segment a size %zu", (size_t)ds.shm_segsz);
  if (ds.shm_nattch != nattch)
    test_fail("segment a has %lu attaches, want %lu", (unsigned long)ds.shm_nattch, nattch);
  if (test_check(pa + 14, SEG - 14, 14, 31) >= 0) test_fail("segment a contents differ");
  char line[256];
  if (test_maps_line(pa + 4096, line, sizeof line) != 0 || !strstr(line, "r--s"))
    test_fail("the read-only part of the attach is not: %s", line);
  if (shmctl(b, IPC_STAT, &ds) != 0) test_fail_errno("IPC_STAT b");
  check_perm(&ds.shm_perm, KEY_B, 0600, "segment b");
  if (ds.shm_nattch != 0) test_fail("segment b attached %lu times", (unsigned long)ds.shm_nattch);
  pb = shmat(b, NULL, SHM_RDONLY);
  if (pb == (void *)-1) test_fail_errno("shmat b");
  if (test_check(pb, 4096, 0, 32) >= 0) test_fail("segment b contents differ");
  for (int i = 4096; i < 8192; ++i)
    if (pb[i] != 0) test_fail("segment b's zero page is not zero");
  if (memcmp(pg, "removed-but-attached", 20) != 0) test_fail("removed segment contents differ");
  if (shmctl(gone, IPC_STAT, &ds) != 0) test_fail_errno("IPC_STAT removed");
  if (!(ds.shm_perm.mode & SHM_DEST)) test_fail("the removed segment is no longer marked removed");

  struct msqid_ds qds;
  if (msgctl(q, IPC_STAT, &qds) != 0) test_fail_errno("msgctl");
  check_perm(&qds.msg_perm, KEY_Q, 0620, "queue");
  if (qds.msg_qnum != 3) test_fail("queue holds %lu messages", (unsigned long)qds.msg_qnum);
  struct msg r;
  ssize_t n = msgrcv(q, &r, sizeof r.text, 3, IPC_NOWAIT);  // by type first
  if (n != 23 || r.mtype != 3 || strcmp(r.text, "second, longer message") != 0)
    test_fail("type 3 message: %zd", n);
  n = msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT);
  if (n != 6 || r.mtype != 7 || strcmp(r.text, "first") != 0) test_fail("first message: %zd", n);
  n = msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT);
  if (n != 0 || r.mtype != 7) test_fail("empty message: %zd", n);

  struct semid_ds sds;
  union semun sarg = {.buf = &sds};
  if (semctl(s, 0, IPC_STAT, sarg) != 0) test_fail_errno("semctl");
  check_perm(&sds.sem_perm, KEY_S, 0660, "semaphores");
  if (semctl(s, 0, GETVAL) != 1 || semctl(s, 1, GETVAL) != 5 || semctl(s, 2, GETVAL) != 0)
    test_fail("semaphore values differ");
  struct sembuf down = {1, -5, IPC_NOWAIT};
  if (semop(s, &down, 1) != 0) test_fail_errno("semop");

  // The attach is shared with the child again.
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  char c;
  if (read(done[0], &c, 1) != 1) test_fail("child gone");
  if (memcmp(pa, "child-was-here", 14) != 0) test_fail("the child's write is not seen: not shared");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child status %#x", st);
  return test_pass();
}
