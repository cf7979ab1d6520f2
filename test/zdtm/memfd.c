// memfds: contents written through the fd and through a shared mapping, a size that is not a
// whole number of pages, seals (shrink and grow; write and no-more-seals on another; sealing
// never allowed on a third), the fd's offset shared with a child that inherited it, a private
// mapping with one copied page, a memfd that is only mapped (its fd closed), MFD_NOEXEC_SEAL,
// F_SEAL_FUTURE_WRITE over a writable shared mapping made before it, and a sparse 1 GiB one
// (restored sparse). After the
// restore every one must still be one object: a write through the fd shows in the mappings and
// the other way round, in the parent and in the child, and the seals still hold.
#define _GNU_SOURCE
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010  // Linux 5.1
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020  // Linux 6.3
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U  // Linux 6.3
#endif

#define PAGE 4096
#define SIZE_A (3 * PAGE + 123)  // not page aligned
#define SEED_A 11
#define SPARSE (1LL << 30)
#define SEED_B 22

static void expect_link(int fd, const char *want) {
  char path[64], got[256];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, got, sizeof got - 1);
  if (n < 0) test_fail_errno("readlink %s", path);
  got[n] = 0;
  if (strcmp(got, want) != 0) test_fail("fd %d links to '%s', not '%s'", fd, got, want);
}

static void expect_seals(int fd, int want, const char *name) {
  int s = fcntl(fd, F_GET_SEALS);
  if (s != want) test_fail("%s: seals %#x, want %#x", name, s, want);
}

int main(int argc, char **argv) {
  test_init();
  // "user": all of it as uid 1001, restored by root (README "Trust model"): the restored
  // processes open the shared memory crrestore made as themselves.
  if (argc > 1 && !strcmp(argv[1], "user")) {
    if (chown(".", 1001, 1001) || fchown(1, 1001, 1001)) test_fail_errno("chown");
    if (setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
      test_fail_errno("drop to uid 1001");
  }
  // a: first page through write(), the rest through a shared mapping.
  int a = memfd_create("crtools a", MFD_ALLOW_SEALING);
  if (a < 0) test_fail_errno("memfd_create a");
  char page[PAGE];
  test_fill(page, PAGE, 0, SEED_A);
  if (write(a, page, PAGE) != PAGE) test_fail_errno("write a");
  if (ftruncate(a, SIZE_A) != 0) test_fail_errno("ftruncate a");
  char *map = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
  if (map == MAP_FAILED) test_fail_errno("mmap a");
  test_fill(map + PAGE, SIZE_A - PAGE, PAGE, SEED_A);
  if (fcntl(a, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) test_fail_errno("seal a");
  if (fchmod(a, 0640) != 0) test_fail_errno("fchmod a");
  if (lseek(a, 100, SEEK_SET) != 100) test_fail_errno("lseek a");
  // A private mapping of pages 1-2 of a: page 1 copied on write, page 2 only read.
  char *priv = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, PAGE);
  if (priv == MAP_FAILED) test_fail_errno("mmap a private");
  priv[0] = 'P';
  if (priv[PAGE] != (char)test_pattern(2 * PAGE, SEED_A)) test_fail("private page 2 before dump");

  // b: only mapped, its fd closed.
  int b = memfd_create("only mapped", 0);
  if (b < 0 || ftruncate(b, 2 * PAGE) != 0) test_fail_errno("memfd b");
  char *mb = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
  if (mb == MAP_FAILED) test_fail_errno("mmap b");
  test_fill(mb, 2 * PAGE, 0, SEED_B);
  close(b);

  // c: sealed against writes and further seals, mapped shared read-only after sealing.
  int c = memfd_create("sealed", MFD_ALLOW_SEALING);
  static const char kHello[] = "hello sealed";
  if (c < 0 || write(c, kHello, sizeof kHello) != sizeof kHello) test_fail_errno("memfd c");
  if (fcntl(c, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL) != 0) test_fail_errno("seal c");
  char *mc = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, c, 0);
  if (mc == MAP_FAILED) test_fail_errno("mmap c");

  // d: empty, made without MFD_ALLOW_SEALING.
  int d = memfd_create("no sealing", 0);
  if (d < 0) test_fail_errno("memfd d");

  // e: MFD_NOEXEC_SEAL (no exec bits, F_SEAL_EXEC).
  int e = memfd_create("noexec", MFD_NOEXEC_SEAL);
  if (e < 0) test_fail_errno("memfd e");
  // f: a writable shared mapping made before F_SEAL_FUTURE_WRITE keeps working, new writes and
  // writable mappings are refused: the restore must map before it seals.
  int f = memfd_create("future write", MFD_ALLOW_SEALING);
  if (f < 0 || ftruncate(f, PAGE) != 0) test_fail_errno("memfd f");
  char *mf = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
  if (mf == MAP_FAILED) test_fail_errno("mmap f");
  mf[1] = 'f';
  if (fcntl(f, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) != 0) test_fail_errno("seal f");

  // g: 1 GiB, written in three places only.
  int g = memfd_create("sparse", 0);
  if (g < 0 || ftruncate(g, SPARSE) != 0) test_fail_errno("memfd g");
  if (pwrite(g, "head", 4, 0) != 4 || pwrite(g, "mid", 3, SPARSE / 2 + 10) != 3 ||
      pwrite(g, "tail", 4, SPARSE - 4) != 4)
    test_fail_errno("pwrite g");

  int go[2];
  if (pipe(go)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(go[1]);  // a parent that fails or dies closes the last write end: EOF, not a hang
    char x;
    if (read(go[0], &x, 1) != 1) _exit(20);
    // The parent wrote "XYZ" at 50 through the fd after the restore: seen in our mapping and
    // through our fd (the same open file description, so reading moves the parent's offset).
    if (memcmp(map + 50, "XYZ", 3) != 0) _exit(21);
    char got[10];
    if (read(a, got, 10) != 10 || got[0] != map[100]) _exit(22);
    map[SIZE_A - 1] = 'C';
    mb[0] = 'K';
    if (mc[0] != 'h') _exit(23);
    _exit(7);
  }
  test_ready();
  test_wait();

  expect_link(a, "/memfd:crtools a (deleted)");
  expect_link(c, "/memfd:sealed (deleted)");
  expect_link(d, "/memfd:no sealing (deleted)");
  struct stat st;
  if (fstat(a, &st) != 0) test_fail_errno("fstat a");
  if (st.st_size != SIZE_A) test_fail("a: size %lld, want %d", (long long)st.st_size, SIZE_A);
  if ((st.st_mode & 07777) != 0640) test_fail("a: mode %o, want 640", st.st_mode & 07777);
  expect_seals(a, F_SEAL_SHRINK | F_SEAL_GROW, "a");
  if (ftruncate(a, SIZE_A + 1) == 0 || errno != EPERM) test_fail("a: grew past its seal");
  if (ftruncate(a, 10) == 0 || errno != EPERM) test_fail("a: shrank past its seal");
  if (lseek(a, 0, SEEK_CUR) != 100) test_fail("a: offset %lld", (long long)lseek(a, 0, SEEK_CUR));
  char back[PAGE];
  if (pread(a, back, PAGE, 0) != PAGE) test_fail_errno("pread a");
  long bad = test_check(back, PAGE, 0, SEED_A);
  if (bad >= 0) test_fail("a: byte %ld written through the fd differs", bad);
  bad = test_check(map + PAGE, SIZE_A - PAGE, PAGE, SEED_A);
  if (bad >= 0) test_fail("a: byte %ld written through the mapping differs", bad + PAGE);
  for (int i = SIZE_A; i < 4 * PAGE; ++i)
    if (map[i] != 0) test_fail("a: byte %d past its end is not zero", i);
  // One object: fd -> mapping and mapping -> fd.
  if (pwrite(a, "XYZ", 3, 50) != 3) test_fail_errno("pwrite a");
  if (memcmp(map + 50, "XYZ", 3) != 0) test_fail("a: fd write not seen in the mapping");
  map[5000] = 'M';
  char m = 0;
  if (pread(a, &m, 1, 5000) != 1 || m != 'M') test_fail("a: mapping write not seen by the fd");
  // The private mapping kept its copy, and its untouched page is still the file's.
  if (priv[0] != 'P' || priv[1] != (char)test_pattern(PAGE + 1, SEED_A))
    test_fail("private copy of page 1 lost");
  if (map[PAGE] != (char)test_pattern(PAGE, SEED_A)) test_fail("private copy leaked into a");
  if (pwrite(a, "Q", 1, 2 * PAGE + 7) != 1) test_fail_errno("pwrite a page 2");
  if (priv[PAGE + 7] != 'Q') test_fail("untouched private page does not show the file");

  bad = test_check(mb, 2 * PAGE, 0, SEED_B);
  if (bad >= 0) test_fail("b: byte %ld differs", bad);
  char line[512];
  if (test_maps_line(mb, line, sizeof line) != 0 ||
      strstr(line, "/memfd:only mapped (deleted)") == NULL)
    test_fail("b: maps line '%s'", line);

  expect_seals(c, F_SEAL_WRITE | F_SEAL_SEAL, "c");
  if (memcmp(mc, kHello, sizeof kHello) != 0) test_fail("c: contents");
  if (write(c, "x", 1) >= 0 || errno != EPERM) test_fail("c: write past F_SEAL_WRITE");
  if (mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0) != MAP_FAILED)
    test_fail("c: writable shared mapping past F_SEAL_WRITE");
  if (fcntl(c, F_ADD_SEALS, F_SEAL_GROW) == 0) test_fail("c: sealed past F_SEAL_SEAL");

  expect_seals(d, F_SEAL_SEAL, "d");
  if (fcntl(d, F_ADD_SEALS, F_SEAL_GROW) == 0) test_fail("d: sealing allowed");
  if (fstat(d, &st) != 0 || st.st_size != 0) test_fail("d: not empty");

  expect_seals(e, F_SEAL_EXEC, "e");
  if (fstat(e, &st) != 0 || (st.st_mode & 0111) != 0) test_fail("e: exec bits");
  if (fchmod(e, 0755) == 0) test_fail("e: exec bits allowed past F_SEAL_EXEC");

  expect_seals(f, F_SEAL_FUTURE_WRITE, "f");
  mf[0] = 'W';
  char fw[2] = {0, 0};
  if (pread(f, fw, 2, 0) != 2 || fw[0] != 'W' || fw[1] != 'f') test_fail("f: mapping not shared");
  if (pwrite(f, "x", 1, 0) >= 0 || errno != EPERM) test_fail("f: write past F_SEAL_FUTURE_WRITE");
  if (mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0) != MAP_FAILED)
    test_fail("f: new writable mapping past F_SEAL_FUTURE_WRITE");

  char sp[5] = {0};
  if (fstat(g, &st) != 0 || st.st_size != SPARSE) test_fail("g: size");
  if (pread(g, sp, 4, 0) != 4 || memcmp(sp, "head", 4) != 0) test_fail("g: head '%s'", sp);
  if (pread(g, sp, 3, SPARSE / 2 + 10) != 3 || memcmp(sp, "mid", 3) != 0) test_fail("g: mid");
  if (pread(g, sp, 4, SPARSE - 4) != 4 || memcmp(sp, "tail", 4) != 0) test_fail("g: tail");
  if (pread(g, sp, 4, SPARSE / 4) != 4 || memcmp(sp, "\0\0\0\0", 4) != 0) test_fail("g: hole");
  // Still sparse: the holes were not filled in by the dump or the restore.
  if (st.st_blocks * 512 > (1 << 20))
    test_fail("g: %lld bytes allocated", (long long)st.st_blocks * 512);

  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  int status;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 7)
    test_fail("child status %#x", status);
  if (lseek(a, 0, SEEK_CUR) != 110) test_fail("a: offset not shared with the child");
  if (map[SIZE_A - 1] != 'C') test_fail("a: child's write not seen");
  if (mb[0] != 'K') test_fail("b: child's write not seen");
  return test_pass();
}
