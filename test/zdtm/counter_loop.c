// A tight counting loop: it counts a million before ready and keeps counting through the dump.
// After restore it goes on from where it was (the count is at least the pre-ready million and the
// two copies of the counter agree), not from a fresh start.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>

#include "zdtmlib.h"

static volatile uint64_t counter, shadow;

int main(void) {
  test_init();
  const uint64_t before_ready = 1000000;
  uint64_t c = 0;
  while (c < before_ready) {
    c++;
    counter = c;
    shadow = c * 3;
  }
  test_ready();
  while (!test_stopped) {
    c++;
    counter = c;
    shadow = c * 3;
  }
  if (counter != c || shadow != c * 3) test_fail("counter copies disagree: %llu %llu %llu",
                                                 (unsigned long long)c, (unsigned long long)counter,
                                                 (unsigned long long)shadow);
  if (c < before_ready) test_fail("count %llu below %llu: reset?", (unsigned long long)c,
                                   (unsigned long long)before_ready);
  fprintf(stderr, "count %llu\n", (unsigned long long)c);
  return test_pass();
}
