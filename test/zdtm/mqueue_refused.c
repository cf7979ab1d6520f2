// A POSIX message queue in the IPC namespace of the test's own (the harness clones it with
// CLONE_NEWIPC), with a message in it and no descriptor open: only the namespace holds it, and
// an mqueue mount would be the only way to see it. crdump must refuse it by name (it does not
// dump queues) and leave it as it was: after the refused dump the message is still there.
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <string.h>

#include "zdtmlib.h"

#define QUEUE "/crtools_q"

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  test_init();
  struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 16};
  mqd_t q = mq_open(QUEUE, O_CREAT | O_EXCL | O_WRONLY, 0600, &attr);
  if (q == (mqd_t)-1) test_fail_errno("mq_open");
  if (mq_send(q, "kept", 5, 1) != 0) test_fail_errno("mq_send");
  mq_close(q);
  test_ready();
  test_wait();
  q = mq_open(QUEUE, O_RDONLY | O_NONBLOCK);
  if (q == (mqd_t)-1) test_fail("the queue is gone");
  char buf[16];
  if (mq_receive(q, buf, sizeof buf, NULL) != 5 || strcmp(buf, "kept") != 0)
    test_fail("the message is gone");
  return test_pass();
}
