// MAP_SHARED anonymous memory shared across fork, and one only the parent maps. After restore
// the contents are back and the sharing is real: what the child writes the parent reads, and
// the other way round; the mappings are still shared anonymous memory.
#define _GNU_SOURCE
#include <grp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#define SIZE (2u << 20)

int main(int argc, char **argv) {
  test_init();
  // "user": all of it as uid 1001, restored by root (README "Trust model"): the restored
  // processes open the shared memory crrestore made as themselves.
  if (argc > 1 && !strcmp(argv[1], "user")) {
    if (chown(".", 1001, 1001) || fchown(1, 1001, 1001)) test_fail_errno("chown");
    if (setgroups(0, NULL) || setresgid(1001, 1001, 1001) || setresuid(1001, 1001, 1001))
      test_fail_errno("drop to uid 1001");
  }
  uint8_t *shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  uint8_t *own = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED || own == MAP_FAILED) test_fail_errno("mmap");
  test_fill(shared, 1u << 20, 0, 11);  // the first MiB; the second stays zero
  test_fill(own, 64 << 10, 0, 12);
  int go[2], done[2];
  if (pipe(go) || pipe(done)) test_fail_errno("pipe");
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    close(3);
    close(go[1]);  // only the parent writes: EOF, not a hang, if it fails first
    char c;
    if (read(go[0], &c, 1) != 1) _exit(20);
    // After the restore: the parent's contents, then our mark for the parent to read.
    if (test_check(shared, 1u << 20, 0, 11) >= 0) _exit(21);
    memcpy(shared + (1u << 20) + 4096, "child-was-here", 14);
    if (write(done[1], "d", 1) != 1) _exit(22);
    if (read(go[0], &c, 1) != 1) _exit(23);
    _exit(memcmp(shared + 8, "parent-too", 10) == 0 ? 7 : 24);
  }
  test_ready();
  test_wait();
  if (test_check(shared, 1u << 20, 0, 11) >= 0) test_fail("shared contents differ");
  if (test_check(own, 64 << 10, 0, 12) >= 0) test_fail("parent-only shared contents differ");
  char line[256];
  if (test_maps_line(shared, line, sizeof line) != 0 || !strstr(line, "rw-s") ||
      !strstr(line, "/dev/zero (deleted)"))
    test_fail("not shared anonymous memory any more: %s", line);
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  char c;
  if (read(done[0], &c, 1) != 1) test_fail("child gone");
  if (memcmp(shared + (1u << 20) + 4096, "child-was-here", 14) != 0)
    test_fail("the child's write is not seen: not shared");
  memcpy(shared + 8, "parent-too", 10);
  if (write(go[1], "g", 1) != 1) test_fail_errno("go");
  int st;
  if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
    test_fail("child status %#x", st);
  return test_pass();
}
