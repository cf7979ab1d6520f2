// zdtmlib: the tiny runtime every test/zdtm program links with.
//
// The protocol between a zdtm program and the e2e harness (test/e2e):
//
//   start    The harness forks, calls setsid(), chdir()s into a fresh temp dir and execs the
//            program with:
//              fd 0  /dev/null
//              fd 1  the log file <tmp>/log, O_WRONLY|O_APPEND
//              fd 2  the same log file
//              fd 3  the write end of the "ready" pipe
//            and no other fd. argv is what the harness table says (argv[0] = the program path).
//   setup    The program builds the state it tests. It must not write to the log before SIGTERM
//            (the file must not change between dump and restore) and must not keep any fd that
//            points outside itself other than 0-2 and files in its temp dir (its cwd).
//   ready    test_ready() closes fd 3. The harness reads the pipe until EOF; EOF means "ready".
//            Nothing sleeps: the harness dumps as soon as it sees EOF.
//   wait     test_wait() blocks in sigsuspend() until SIGTERM arrives; a program that keeps
//            working (a counting loop, a blocking syscall) instead polls test_stopped, which the
//            SIGTERM handler sets.
//   dump     The harness runs `crdump -o IMG PID` (kill path: the target dies, the harness reaps
//            it) or `crdump --leave-running -o IMG PID` (the original then gets SIGTERM and must
//            pass), then `crrestore -d -i IMG` restores the same PID as a child of the harness
//            (a child subreaper).
//   verify   The harness sends SIGTERM. The program checks its state and exits 0 after printing
//            "PASS" on stderr (test_pass()), or exits 1 after printing "FAIL: why"
//            (test_fail()). The harness prints the log when a case fails.
//
// Refusal programs (socket_inet_refused, ...) follow the same protocol; crdump must refuse them
// and leave them intact, so the harness SIGTERMs the original and expects 0.
#ifndef CR_TEST_ZDTM_ZDTMLIB_H
#define CR_TEST_ZDTM_ZDTMLIB_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/// Set by the SIGTERM handler installed by test_init().
extern volatile sig_atomic_t test_stopped;

/// Installs the SIGTERM handler (no SA_RESTART: blocking calls return EINTR). Call first.
void test_init(void);
/// Tells the harness the state is set up: closes fd 3.
void test_ready(void);
/// Blocks until SIGTERM arrives, keeping every other bit of the signal mask as it is.
void test_wait(void);
/// Prints "PASS" on stderr and returns 0 (use as `return test_pass();`).
int test_pass(void);
/// Prints "FAIL: <message>" on stderr and exits 1.
_Noreturn void test_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/// test_fail() with ": strerror(errno)" appended.
_Noreturn void test_fail_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/// Sends the text `data` on unix socket `s` with `n` (0 to 4) fds in flight (SCM_RIGHTS), in
/// one sendmsg; fails the test if it is not sent whole.
void test_send_fds(int s, const char *data, const int *fds, int n);

/// A byte pattern that depends on the offset and a seed, so misplaced pages are caught.
static inline uint8_t test_pattern(uint64_t off, uint32_t seed) {
  uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ull ^ seed;
  x ^= x >> 29;
  return (uint8_t)(x ^ (x >> 8));
}
void test_fill(void *buf, size_t len, uint64_t off, uint32_t seed);
/// Returns the offset of the first byte that differs from the pattern, or -1 if none does.
long test_check(const void *buf, size_t len, uint64_t off, uint32_t seed);

/// Reads a whole small file (e.g. /proc/self/cmdline) into buf, at most cap - 1 bytes, and
/// NUL-terminates it; returns its length or -1.
long test_read_file(const char *path, char *buf, size_t cap);
/// Finds the /proc/self/maps line that contains addr; copies it into line. Returns 0 if found.
int test_maps_line(const void *addr, char *line, size_t cap);

#endif
