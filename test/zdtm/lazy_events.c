// What a program does to memory that is not in yet (crrestore --lazy, its background copy held
// back by the test): each SIGUSR1 runs one round on pages it has not touched since the restore
// and prints "round N ok" on stdout (the log). A round reads pages directly, through write(2)
// to a pipe (a fault in the kernel) and through process_vm_readv; zaps one with MADV_DONTNEED
// (it reads zeros, and must still once every page is in); unmaps one and maps a fresh page
// there (written 0xab: nothing of the image may land on it); moves a 1 MiB region with mremap
// (its pages must come in where it went); forks a child that checks pages neither has touched
// (the child's copy misses them too). On SIGTERM every page is checked.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zdtmlib.h"

#define PAGE 4096
#define NPAGES 4096  // 16 MiB
#define MOVE_PAGES 256
#define ROUNDS 8
// Apart by more than what a fault brings in (its page and the next ones of its run), so that
// each page a round takes is still missing when it does.
#define STRIDE 64

static char *data;
static char *slots;  // two places for the moving region
static int moved_to;  // which slot holds it
static int next_page = 1;  // pages handed out to rounds, lowest first, STRIDE apart
static int zapped[ROUNDS], remapped[ROUNDS];
static int rounds;
static volatile sig_atomic_t go;

static uint32_t seed_of(int page) { return 0x1a2b0000u + (uint32_t)page; }
static int take(void) {
  if (next_page >= NPAGES) test_fail("out of pages");
  int k = next_page;
  next_page += STRIDE;
  return k;
}
static char *page_at(int k) { return data + (size_t)k * PAGE; }
static char *moving(void) { return slots + (size_t)moved_to * MOVE_PAGES * PAGE; }

static void expect_page(const char *p, uint32_t seed, const char *how, int k) {
  long bad = test_check(p, PAGE, 0, seed);
  if (bad >= 0) test_fail("round %d: page %d (%s) differs at %ld", rounds, k, how, bad);
}

static void expect_zero(const char *p, const char *how, int k) {
  for (int i = 0; i < PAGE; i++)
    if (p[i] != 0) test_fail("round %d: page %d (%s) not zero at %d", rounds, k, how, i);
}

static void round_once(void) {
  char buf[PAGE];
  int k = take();
  expect_page(page_at(k), seed_of(k), "read", k);
  k = take();
  int p[2];
  if (pipe(p)) test_fail_errno("pipe");
  if (write(p[1], page_at(k), PAGE) != PAGE) test_fail_errno("write from page %d", k);
  if (read(p[0], buf, PAGE) != PAGE) test_fail_errno("read");
  close(p[0]);
  close(p[1]);
  expect_page(buf, seed_of(k), "written to a pipe", k);
  k = take();
  struct iovec local = {buf, PAGE}, remote = {page_at(k), PAGE};
  if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != PAGE)
    test_fail_errno("process_vm_readv page %d", k);
  expect_page(buf, seed_of(k), "process_vm_readv", k);
  k = take();
  if (madvise(page_at(k), PAGE, MADV_DONTNEED)) test_fail_errno("madvise");
  expect_zero(page_at(k), "zapped", k);
  zapped[rounds] = k;
  k = take();
  if (munmap(page_at(k), PAGE)) test_fail_errno("munmap");
  if (mmap(page_at(k), PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
           0) == MAP_FAILED)
    test_fail_errno("mmap");
  expect_zero(page_at(k), "mapped anew", k);
  memset(page_at(k), 0xab, PAGE);
  remapped[rounds] = k;
  // The region moves to the other slot, untouched; the slot it left is mapped again.
  char *from = moving();
  char *to = slots + (size_t)(1 - moved_to) * MOVE_PAGES * PAGE;
  if (mremap(from, MOVE_PAGES * PAGE, MOVE_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to)
    test_fail_errno("mremap");
  if (mmap(from, MOVE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
           -1, 0) == MAP_FAILED)
    test_fail_errno("mmap the slot left");
  moved_to = 1 - moved_to;
  expect_page(moving() + (size_t)(rounds + 1) * PAGE, 0x3c000000u + rounds + 1, "moved", rounds + 1);
  // The child reads pages neither it nor its parent has touched.
  int a = take(), b = take();
  pid_t c = fork();
  if (c < 0) test_fail_errno("fork");
  if (c == 0) {
    if (test_check(page_at(a), PAGE, 0, seed_of(a)) >= 0) _exit(1);
    if (test_check(moving() + (size_t)(MOVE_PAGES - 1 - rounds) * PAGE, PAGE, 0,
                   0x3c000000u + MOVE_PAGES - 1 - rounds) >= 0)
      _exit(2);
    _exit(0);
  }
  int st;
  if (waitpid(c, &st, 0) != c) test_fail_errno("waitpid");
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    test_fail("round %d: the forked child found a page wrong (status %d)", rounds, st);
  expect_page(page_at(b), seed_of(b), "read after the fork", b);
  rounds++;
  printf("round %d ok\n", rounds);
  fflush(stdout);
}

static void on_usr1(int s) {
  (void)s;
  go = 1;
}

int main(void) {
  test_init();
  data = mmap(NULL, (size_t)NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
              -1, 0);
  slots = mmap(NULL, 2 * MOVE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
  if (data == MAP_FAILED || slots == MAP_FAILED) test_fail_errno("mmap");
  for (int k = 0; k < NPAGES; k++) test_fill(page_at(k), PAGE, 0, seed_of(k));
  for (int k = 0; k < MOVE_PAGES; k++) test_fill(moving() + (size_t)k * PAGE, PAGE, 0, 0x3c000000u + k);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sigset_t both, old;
  sigemptyset(&both);
  sigaddset(&both, SIGUSR1);
  sigaddset(&both, SIGTERM);
  sigprocmask(SIG_BLOCK, &both, &old);
  test_ready();
  while (!test_stopped) {
    sigsuspend(&old);
    if (go && !test_stopped && rounds < ROUNDS) {
      go = 0;
      round_once();
    }
  }
  for (int k = 0; k < NPAGES; k++) {
    int special = 0;
    for (int r = 0; r < rounds; r++) {
      if (k == zapped[r]) {
        expect_zero(page_at(k), "zapped, at the end", k);
        special = 1;
      } else if (k == remapped[r]) {
        for (int i = 0; i < PAGE; i++)
          if ((unsigned char)page_at(k)[i] != 0xab) test_fail("page %d mapped anew was overwritten", k);
        special = 1;
      }
    }
    if (!special) expect_page(page_at(k), seed_of(k), "at the end", k);
  }
  for (int k = 0; k < MOVE_PAGES; k++)
    expect_page(moving() + (size_t)k * PAGE, 0x3c000000u + k, "moved, at the end", k);
  return test_pass();
}
