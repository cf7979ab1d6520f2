// Deep recursion with data in every frame; the program waits at the bottom and checks every
// frame on the way back up.
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "zdtmlib.h"

enum { kDepth = 3000 };
static int bad_frames;

static __attribute__((noinline)) int descend(int depth) {
  volatile uint8_t frame[200];
  for (unsigned i = 0; i < sizeof(frame); i++) frame[i] = test_pattern(i, (uint32_t)depth);
  int r;
  if (depth == kDepth) {
    test_ready();
    test_wait();
    r = 0;
  } else {
    r = descend(depth + 1) + 1;
  }
  for (unsigned i = 0; i < sizeof(frame); i++)
    if (frame[i] != test_pattern(i, (uint32_t)depth)) {
      bad_frames++;
      break;
    }
  return r;
}

int main(void) {
  test_init();
  int r = descend(0);
  if (r != kDepth) test_fail("recursion returned %d, want %d", r, kDepth);
  if (bad_frames) test_fail("%d frames differ", bad_frames);
  return test_pass();
}
