// A program that keeps an executable in a memfd and runs it with fexecve (issue 11: after
// restore the exec failed with ETXTBSY: crrestore had given the memfd writable reopens, which
// count as writers, where the program had memfd_create's own description). The memfd holds a
// copy of /bin/true and is also mapped shared and writable. After restore a child fexecve()s
// it and must exit 0; the mapping still shows the ELF header.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

static void run(int fd, const char *when) {
  pid_t child = fork();
  if (child < 0) test_fail_errno("fork");
  if (child == 0) {
    char *argv[] = {"true", NULL}, *envp[] = {NULL};
    fexecve(fd, argv, envp);
    _exit(100 + errno);
  }
  int st;
  if (waitpid(child, &st, 0) != child) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("%s: fexecve of the memfd failed (status %#x: errno %d)", when, st,
              WIFEXITED(st) ? WEXITSTATUS(st) - 100 : 0);
}

int main(void) {
  test_init();
  int fd = memfd_create("prog", 0);
  if (fd < 0) test_fail_errno("memfd_create");
  int src = open("/bin/true", O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) != 0) test_fail_errno("/bin/true");
  for (off_t off = 0; off < st.st_size;)
    if (sendfile(fd, src, &off, (size_t)(st.st_size - off)) <= 0) test_fail_errno("sendfile");
  close(src);
  char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) test_fail_errno("mmap");
  run(fd, "before the dump");
  test_ready();
  test_wait();
  if (memcmp(map, "\177ELF", 4) != 0) test_fail("the shared mapping lost the ELF header");
  run(fd, "after restore");
  return test_pass();
}
