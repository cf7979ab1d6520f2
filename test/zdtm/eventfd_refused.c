// Holds an eventfd: crdump must refuse it naming the eventfd, and leave the program intact.
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "zdtmlib.h"

int main(void) {
  test_init();
  int efd = eventfd(5, 0);
  if (efd < 0) test_fail_errno("eventfd");
  test_ready();
  test_wait();
  uint64_t v = 0;
  if (read(efd, &v, sizeof(v)) != sizeof(v) || v != 5) test_fail("eventfd value %llu", (unsigned long long)v);
  return test_pass();
}
