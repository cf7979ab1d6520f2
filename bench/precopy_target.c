// The program bench/precopy_bench.py checkpoints: SIZE MiB of touched private memory, a thread
// that rewrites RATE MB/s of it (a word in each of RATE MB/s worth of random pages), and a
// thread that reads the clock every millisecond and keeps the longest gap between two reads:
// the downtime as the program sees it (CLOCK_MONOTONIC runs on across a restore on the same
// host). Prints "ready" on stdout once set up; on SIGTERM writes the gap in microseconds and a
// checksum check result to OUT and exits.
//   precopy_target SIZE_MIB RATE_MBS OUT
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static uint64_t *mem;
static size_t npages;
static double rate;
static int64_t max_gap_us;
static uint64_t writes;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *writer(void *arg) {
  (void)arg;
  uint64_t x = 88172645463325252ull;
  const double per_ms = rate * 1e6 / 4096 / 1000;  // pages each millisecond
  double owed = 0;
  while (!stop) {
    owed += per_ms;
    for (; owed >= 1; owed -= 1) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t p = x % npages;
      mem[p * 512] += 1;  // the page's first word counts its writes
      mem[p * 512 + 1] += 1;
      __atomic_add_fetch(&writes, 1, __ATOMIC_RELAXED);
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
  return NULL;
}

static void *sampler(void *arg) {
  (void)arg;
  int64_t last = now_us();
  while (!stop) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    int64_t t = now_us();
    if (t - last > max_gap_us) max_gap_us = t - last;
    last = t;
  }
  return NULL;
}

static void on_term(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  size_t len = strtoull(argv[1], NULL, 0) << 20;
  rate = atof(argv[2]);
  npages = len / 4096;
  mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 3;
  for (size_t p = 0; p < npages; p++) mem[p * 512] = mem[p * 512 + 1] = p + 1;  // not zero pages
  signal(SIGTERM, on_term);
  pthread_t w, s;
  pthread_create(&s, NULL, sampler, NULL);
  pthread_create(&w, NULL, writer, NULL);
  printf("ready\n");
  fflush(stdout);
  fclose(stdout);
  pthread_join(w, NULL);
  pthread_join(s, NULL);
  // Each page's two words are written together and start at its number: a torn page or one
  // that came back empty shows (the correctness of pre-copy is the zdtm tests' to check).
  size_t bad = 0;
  for (size_t p = 0; p < npages; p++)
    if (mem[p * 512] != mem[p * 512 + 1] || mem[p * 512] < p + 1) bad++;
  FILE *f = fopen(argv[3], "w");
  if (!f) return 4;
  fprintf(f, "%lld %zu %llu\n", (long long)max_gap_us, bad, (unsigned long long)writes);
  fclose(f);
  return bad ? 1 : 0;
}
