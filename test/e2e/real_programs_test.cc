// Unmodified Debian programs (bash, python3, sleep, a multi-threaded zstd, cat on a pty) dumped
// and restored, and the zstd pipelines around the tools (external zstd both ways, crdump -z, and
// a second dump of a restored task).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <string>

#include "e2e_common.h"
#include "test/common/devpts_lock.h"

namespace cr::e2e {
namespace {

const Mode kModes[] = {Mode::kKill, Mode::kLeaveRunning};  // kTwice: see zdtm_test.cc

// Threads of a process, from /proc (-1 if it is gone).
int task_count(pid_t pid) {
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!d) return -1;
  int n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

long long file_size(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

// python3 running `script` (the zdtm protocol: ready by closing fd 3, PASS on SIGTERM), dumped
// after `before_dump` has checked it, restored detached, then told to check itself.
void dump_restore_python(const std::string& script, Mode mode,
                         const std::function<void(pid_t)>& before_dump) {
  SCOPED_TRACE(mode_name(mode));
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  std::string fds = fd_listing(pid);
  if (before_dump) before_dump(pid);
  if (::testing::Test::HasFatalFailure()) return;
  if (!dump_target(dir, t, mode, dir.path("img"))) {
    ADD_FAILURE() << "python3 fds at dump time:\n" << fds;
    return;
  }
  if (!restore_detached(dir, dir.path("img"), pid)) return;
  expect_restored_passes(dir, pid);
  std::cout << "  [python3 " << mode_name(mode) << "] " << read_file(dir.work() + "/log");
}

// Waits until the file at `path` holds `text`: woken by inotify as it is written, never by a
// sleep; false after `limit` without it.
bool wait_for_text(const std::string& path, const std::string& text,
                   std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0) return false;
  // Watched first, read second: a write in between still wakes the poll.
  const bool watched = ::inotify_add_watch(in, path.c_str(), IN_MODIFY) > 0;
  const auto end = std::chrono::steady_clock::now() + limit;
  bool found = false;
  while (watched && !(found = read_file(path).find(text) != std::string::npos)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{in, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    char buf[4096];
    while (::read(in, buf, sizeof buf) > 0) {
    }
  }
  ::close(in);
  return found;
}

void append(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

// `tail -f` of a growing file follows it with an inotify watch (blocked in poll on it): dumped
// with the watch, restored, it prints the lines appended after the restore. Kill path only: a
// tail left running would print them too, and it ends on SIGTERM by dying of it.
TEST(RealPrograms, TailFollowsAfterRestore) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string input = dir.work() + "/input";
  const std::string log = dir.work() + "/log";
  write_file(input, "one\n");
  Target t = Target::start(dir, {"/usr/bin/tail", "-f", "input"}, Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(wait_for_text(log, "one\n")) << "log: " << read_file(log);
  // Printed through the watch: once it shows, tail has read the event (nothing left queued).
  append(input, "two\n");
  ASSERT_TRUE(wait_for_text(log, "one\ntwo\n")) << "log: " << read_file(log);
  const std::string fds = fd_listing(pid);
  ASSERT_NE(fds.find("inotify"), std::string::npos) << "tail does not use inotify:\n" << fds;
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) {
    ADD_FAILURE() << "tail fds at dump time:\n" << fds;
    return;
  }
  if (!restore_detached(dir, dir.path("img"), pid)) return;
  append(input, "three\n");
  EXPECT_TRUE(wait_for_text(log, "one\ntwo\nthree\n")) << "log: " << read_file(log);
  append(input, "four\n");
  EXPECT_TRUE(wait_for_text(log, "one\ntwo\nthree\nfour\n")) << "log: " << read_file(log);
  terminate_pid(pid);  // tail dies of SIGTERM: its status says nothing
  std::cout << "  [tail -f] " << read_file(log);
}

// bash counts with builtins only (no child) and writes the count when done. It is dumped
// mid-way; the restored bash, run in the foreground by crrestore, finishes with the right count.
TEST(RealPrograms, BashCountingLoop) {
  if (!tools_present()) return;
  const std::string want = "400000 1200000\n";
  const std::string script =
      "exec 3>&-; i=0; k=0; while [ $i -lt 400000 ]; do i=$((i+1)); k=$((k+3)); done; "
      "echo \"$i $k\" > count";
  for (Mode mode : kModes) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/bash", "-c", script});
    ASSERT_GT(t.pid(), 0) << t.error();
    std::string fds = fd_listing(t.pid());
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) {
      ADD_FAILURE() << "bash fds at dump time:\n" << fds;
      continue;
    }
    ASSERT_NE(access((dir.work() + "/count").c_str(), F_OK), 0)
        << "the loop finished before the dump did: make it longer";
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (bash's exit status): " << r.describe()
                               << "\nlog: " << read_file(dir.work() + "/log");
    EXPECT_EQ(read_file(dir.work() + "/count"), want);
  }
}

// python3 holds a dict and a file at an offset and waits for SIGTERM (sigwait: no window
// between a flag check and pause()); on SIGTERM it checks both and exits 0.
TEST(RealPrograms, PythonDictAndFile) {
  if (!tools_present()) return;
  const std::string script = R"(
import os, signal, sys
d = {i: str(i) * 3 for i in range(10000)}
f = open('pydata', 'w+')
f.write('0123456789' * 1000)
f.flush()
f.seek(1234)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.close(3)
signal.sigwait([signal.SIGTERM])
ok = len(d) == 10000 and all(d[i] == str(i) * 3 for i in range(10000))
pos = f.tell()
data = f.read(6)
if ok and pos == 1234 and data == '456789':
    print('PASS', file=sys.stderr)
    sys.exit(0)
print('FAIL: dict ok=%s offset=%d read=%r' % (ok, pos, data), file=sys.stderr)
sys.exit(1)
)";
  for (Mode mode : kModes) dump_restore_python(script, mode, nullptr);
}

// python3 keeps a sealed memfd (os.memfd_create) written through the fd and through mmap, and
// a forked child that shares both; after the restore a write through the fd shows in the
// mapping, the child's write through its mapping shows in the parent's, the seals still hold
// and the fd keeps its offset and its /memfd: name.
TEST(RealPrograms, PythonMemfdWithChild) {
  if (!tools_present()) return;
  const std::string script = R"(
import fcntl, mmap, os, signal, sys
fd = os.memfd_create('py buf', os.MFD_ALLOW_SEALING)
os.write(fd, b'abc' * 5000)
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
m = mmap.mmap(fd, 15000)
m[0:5] = b'HELLO'
os.lseek(fd, 7, os.SEEK_SET)
r, w = os.pipe()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
child = os.fork()
if child == 0:
    os.close(3)
    os.close(w)  # EOF if the parent fails or dies: no child left waiting
    if os.read(r, 1) != b'g':
        os._exit(8)
    m[200:205] = b'CHILD'
    os._exit(0 if m[100:102] == b'XY' else 9)
os.close(3)
signal.sigwait([signal.SIGTERM])
errs = []
if m[0:8] != b'HELLOcab' or os.pread(fd, 5, 0) != b'HELLO': errs.append('contents')
os.pwrite(fd, b'XY', 100)
if m[100:102] != b'XY': errs.append('fd write not in the mapping')
if fcntl.fcntl(fd, fcntl.F_GET_SEALS) != fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW: errs.append('seals')
try:
    os.ftruncate(fd, 10)
    errs.append('shrank')
except PermissionError:
    pass
if os.lseek(fd, 0, os.SEEK_CUR) != 7: errs.append('offset')
if os.readlink('/proc/self/fd/%d' % fd) != '/memfd:py buf (deleted)': errs.append('name')
os.write(w, b'g')
_, st = os.waitpid(child, 0)
if st != 0: errs.append('child status %d' % st)
if m[200:205] != b'CHILD': errs.append('child write not seen')
if not errs:
    print('PASS', file=sys.stderr)
    sys.exit(0)
print('FAIL: ' + ', '.join(errs), file=sys.stderr)
sys.exit(1)
)";
  for (Mode mode : kModes) dump_restore_python(script, mode, nullptr);
}

// python3 with four threading.Thread workers, each summing x*x over its own range in chunks
// (about 2 s in all, the GIL passed between them). Main waits until every worker has finished
// a chunk, closes fd 3 and waits in sigwait; the dump catches the workers mid-computation (the
// test checks /proc shows all five threads just before it), mostly parked in the GIL's timed
// condition wait. After SIGTERM main joins them and checks each sum against the closed form.
TEST(RealPrograms, PythonThreads) {
  if (!tools_present()) return;
  const std::string script = R"(
import os, signal, sys, threading
N, CHUNKS, SIZE = 4, 150, 100000
results = [None] * N
done = [0] * N
started = [threading.Event() for _ in range(N)]
def work(i):
    total = 0
    base = i * CHUNKS * SIZE
    for c in range(CHUNKS):
        a = base + c * SIZE
        total += sum(x * x for x in range(a, a + SIZE))
        done[i] = c + 1
        started[i].set()
    results[i] = total
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])  # inherited by the workers
threads = [threading.Thread(target=work, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
for e in started:
    e.wait()
os.close(3)
signal.sigwait([signal.SIGTERM])
running = sum(t.is_alive() for t in threads)
for t in threads:
    t.join()
def squares_below(n):
    return (n - 1) * n * (2 * n - 1) // 6
want = [squares_below((i + 1) * CHUNKS * SIZE) - squares_below(i * CHUNKS * SIZE) for i in range(N)]
if results == want and done == [CHUNKS] * N:
    print('PASS (%d of %d workers still running at SIGTERM)' % (running, N), file=sys.stderr)
    sys.exit(0)
print('FAIL: results %r want %r, chunks done %r' % (results, want, done), file=sys.stderr)
sys.exit(1)
)";
  for (Mode mode : kModes) {
    dump_restore_python(script, mode, [](pid_t pid) {
      ASSERT_EQ(task_count(pid), 5) << "the workers finished before the dump: make them work longer";
    });
  }
}

// python3 pty.fork() running cat: python holds the master, cat (in a session of its own) the
// slave as its controlling terminal in cooked mode, with a window size set by python. A line
// goes through before the dump (echo and cat's copy, both read), another after restore; then
// ^D ends cat, whose exit status python checks.
TEST(RealPrograms, PythonPtyForkCat) {
  if (!tools_present()) return;
  const std::string script = R"(
import fcntl, os, pty, select, signal, struct, sys, termios
def fail(why):
    print('FAIL: ' + why, file=sys.stderr)
    sys.exit(1)
def expect(fd, want):
    got = b''
    while got != want:
        r, _, _ = select.select([fd], [], [], 60)
        if not r:
            fail('waited for %r, got %r' % (want, got))
        got += os.read(fd, 100)
        if not want.startswith(got):
            fail('want %r, got %r' % (want, got))
pid, fd = pty.fork()
if pid == 0:
    os.close(3)  # the harness's ready pipe: python's to close
    os.execv('/bin/cat', ['cat'])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 77, 0, 0))
os.write(fd, b'before\n')
expect(fd, b'before\r\nbefore\r\n')
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.close(3)
signal.sigwait([signal.SIGTERM])
rows, cols, _, _ = struct.unpack('HHHH', fcntl.ioctl(fd, termios.TIOCGWINSZ, b'\0' * 8))
if (rows, cols) != (33, 77):
    fail('window %dx%d' % (cols, rows))
TIOCGSID = 0x5429  # not in python's termios
sid = struct.unpack('i', fcntl.ioctl(fd, TIOCGSID, b'\0' * 4))[0]
fg = struct.unpack('i', fcntl.ioctl(fd, termios.TIOCGPGRP, b'\0' * 4))[0]
if sid != pid or fg != pid:
    fail('session %d, foreground group %d of the slave; cat is %d' % (sid, fg, pid))
os.write(fd, b'after\n')
expect(fd, b'after\r\nafter\r\n')
os.write(fd, b'\x04')
_, status = os.waitpid(pid, 0)
if status != 0:
    fail('cat exit status %#x' % status)
print('PASS', file=sys.stderr)
)";
  test::DevptsLock devpts;  // its pty comes back at its index
  for (Mode mode : kModes) dump_restore_python(script, mode, nullptr);
}

// python3 and a multiprocessing.Process child talking over multiprocessing.Pipe() (a unix
// stream socketpair), each with a pickled message queued for the other at dump time; the child
// waits on a plain pipe. After restore each side receives what was queued, and the child's
// answer to a message sent after restore crosses the restored pair.
TEST(RealPrograms, PythonMultiprocessingPipe) {
  if (!tools_present()) return;
  const std::string script = R"py(
import multiprocessing as mp, os, signal, sys
def child(conn, go):
    os.close(3)  # only the parent reports ready
    conn.send(('from-child', list(range(2000))))
    os.read(go, 1)
    m = conn.recv()
    conn.send('child-ok' if m == ('from-parent', 'x' * 5000) else 'child-bad %r' % (m,))
    sys.exit(0)
if __name__ == '__main__':
    mp.set_start_method('fork')
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    a, b = mp.Pipe()
    r, w = os.pipe()
    p = mp.Process(target=child, args=(b, r))
    p.start()
    a.send(('from-parent', 'x' * 5000))
    if not a.poll(30):
        sys.exit(2)
    os.close(3)
    signal.sigwait([signal.SIGTERM])
    got = a.recv()
    os.write(w, b'g')
    answer = a.recv()
    p.join()
    if got == ('from-child', list(range(2000))) and answer == 'child-ok' and p.exitcode == 0:
        print('PASS', file=sys.stderr)
        sys.exit(0)
    print('FAIL: got %r answer %r exit %r' % (str(got)[:80], answer, p.exitcode), file=sys.stderr)
    sys.exit(1)
)py";
  for (Mode mode : kModes) dump_restore_python(script, mode, nullptr);
}

// python3 serving on a unix stream socket in its cwd, a forked client connected and accepted,
// the client's greeting queued unread at dump time (the server only peeked at it). After
// restore the server reads it, answers, the client's reply arrives, and a new client connects.
TEST(RealPrograms, PythonUnixServerAndClient) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind('py.sock')
srv.listen()
pid = os.fork()
if pid == 0:
    os.close(3)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect('py.sock')
    c.sendall(b'hello from child')
    data = c.recv(100)
    c.sendall(b'child got ' + data)
    os._exit(0)
conn, _ = srv.accept()
conn.recv(100, socket.MSG_PEEK)  # the greeting is there, left unread
os.close(3)
signal.sigwait([signal.SIGTERM])
greeting = conn.recv(100)
conn.sendall(b'answer')
reply = conn.recv(100)
_, status = os.waitpid(pid, 0)
n = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
n.connect('py.sock')
n2, _ = srv.accept()
n.sendall(b'new')
fresh = n2.recv(10)
ok = (greeting, reply, status, fresh, srv.getsockname()) ==     (b'hello from child', b'child got answer', 0, b'new', 'py.sock')
print('PASS' if ok else 'FAIL: %r' % ((greeting, reply, status, fresh, srv.getsockname()),),
      file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  for (Mode mode : kModes) dump_restore_python(script, mode, nullptr);
}

// 64 MiB of deterministic, semi-compressible data (words from a small list and random bytes,
// from a fixed-seed LCG): zstd -12 compresses it to about 40 % in a few seconds.
std::string zstd_input() {
  static const char* const words[] = {"alpha ",   "beta ",   "gamma ", "delta ", "checkpoint ",
                                      "restore ", "thread ", "zstd\n", "0123 ",  "xyz "};
  std::string out;
  const size_t size = 64u << 20;
  out.reserve(size + 16);
  uint64_t x = 12345;
  while (out.size() < size) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t r = static_cast<uint32_t>(x >> 33);
    if ((r & 3) == 0) {
      out.push_back(static_cast<char>(r >> 2));
      out.push_back(static_cast<char>(r >> 10));
      out.push_back(static_cast<char>(r >> 18));
    } else {
      out += words[(r >> 2) % 10];
    }
  }
  out.resize(size);
  return out;
}

// Runs /usr/bin/zstd with argv (after the program) and stdout to `out_path` (or /dev/null).
ExitStatus run_zstd(const std::vector<std::string>& args, const std::string& out_path = "") {
  SpawnSpec z;
  z.argv = {"/usr/bin/zstd"};
  z.argv.insert(z.argv.end(), args.begin(), args.end());
  int out = out_path.empty()
                ? -1
                : open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  z.stdout_fd = out;
  pid_t pid = spawn(z);
  if (out >= 0) close(out);
  if (pid < 0) return {};
  auto st = wait_exit(pid, std::chrono::seconds(120));
  if (!st) kill_child(pid);
  return st ? *st : ExitStatus{};
}

// `zstd -T2 -12` (a main thread, two compression workers and its I/O threads) compresses a
// 64 MiB file in the work dir and is dumped mid-way: the test waits until it has its worker
// threads and has written some output. kTwice: the restored zstd must make progress again
// (its output grows) before it is dumped a second time. The last restore runs in the
// foreground: zstd must exit 0 and its output decompress to the input.
// No leave-running path: the original goes on writing the output after crdump returns, so the
// work-dir snapshot the harness takes then is not the dump-time file crrestore checks against.
TEST(RealPrograms, ZstdTwoThreads) {
  if (!tools_present()) return;
  const std::string input = zstd_input();
  for (Mode mode : {Mode::kKill, Mode::kTwice}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    write_file(dir.work() + "/input", input);
    const std::string output = dir.work() + "/input.zst";
    Target t = Target::start(
        dir, {"/usr/bin/zstd", "-T2", "-q", "-12", "--no-progress", "input", "-o", "input.zst"},
        Target::Ready::kOnExec);
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    ASSERT_TRUE(poll_until([&] { return task_count(pid) >= 3 && file_size(output) > 0; },
                           std::chrono::seconds(30)))
        << "zstd never got going: " << task_count(pid) << " threads, output size "
        << file_size(output) << "\nlog: " << t.log();
    const int threads = task_count(pid);
    if (!dump_target(dir, t, Mode::kKill, dir.path("img"), {}, /*self_exiting=*/true)) continue;
    ASSERT_FALSE(run_zstd({"-q", "-t", output}).ok())
        << "compression finished before the dump did: make the input bigger";
    std::cout << "  [zstd] dumped with " << threads << " threads, " << file_size(output)
              << " bytes of output\n";
    std::string img = dir.path("img");
    if (mode == Mode::kTwice) {
      if (!restore_detached(dir, img, pid)) continue;
      const long long at_dump = file_size(output);
      if (!poll_until([&] { return file_size(output) > at_dump; }, std::chrono::seconds(30))) {
        kill_child(pid);
        FAIL() << "the restored zstd wrote nothing in 30 s (output stuck at " << at_dump << ")";
      }
      img = dir.path("img2");
      if (!redump_restored(dir, pid, img)) continue;
    }
    ToolRun r = run_tool(dir, "crrestore", {"-i", img}, -1, -1, std::chrono::seconds(120));
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (zstd's exit status): " << r.describe()
                               << "\nlog: " << read_file(dir.work() + "/log");
    ExitStatus d = run_zstd({"-q", "-d", "-c", output}, dir.path("roundtrip"));
    EXPECT_TRUE(d.ok()) << "zstd -d of the restored zstd's output: " << d.describe();
    std::string back = read_file(dir.path("roundtrip"));
    EXPECT_TRUE(back == input) << "decompressed output differs from the input: " << back.size()
                               << " bytes, want " << input.size();
  }
}

// `sleep 2` (ready = exec done): dumped, restored in the foreground, exits 0.
// Whether some thread of `pid` is inside system call `nr` (/proc/PID/task/TID/syscall).
bool thread_in_syscall(pid_t pid, long nr) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(task.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.' &&
        std::atol(read_file(task + "/" + e->d_name + "/syscall").c_str()) == nr)
      found = true;
  closedir(d);
  return found;
}

// python3 with a selectors.EpollSelector (epoll) holding a pipe and an empty eventfd: a worker
// thread waits in select() (epoll_wait) through the dump. After the restore main writes to the
// pipe: the worker must wake with the pipe's key and read it; then main adds to the eventfd and
// its registration reports, alone.
TEST(RealPrograms, PythonEpollSelector) {
  if (!tools_present()) return;
  const std::string script = R"(
import os, selectors, signal, sys, threading
sel = selectors.EpollSelector()
r, w = os.pipe()
efd = os.eventfd(0, os.EFD_NONBLOCK)
sel.register(r, selectors.EVENT_READ, data='pipe')
sel.register(efd, selectors.EVENT_READ, data='efd')
got = []
def work():
    for key, ev in sel.select():
        if key.data == 'pipe':
            got.append(os.read(r, 16))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])  # inherited by the worker
t = threading.Thread(target=work)
t.start()
os.close(3)
signal.sigwait([signal.SIGTERM])
os.write(w, b'wake')
t.join(10)
os.eventfd_write(efd, 5)
ready = [(key.data, ev) for key, ev in sel.select(timeout=0)]
if got == [b'wake'] and ready == [('efd', selectors.EVENT_READ)] and not t.is_alive():
    print('PASS', file=sys.stderr)
    sys.exit(0)
print('FAIL: worker got %r alive=%s, then ready %r' % (got, t.is_alive(), ready), file=sys.stderr)
sys.exit(1)
)";
  for (Mode mode : kModes) {
    dump_restore_python(script, mode, [](pid_t pid) {
      ASSERT_TRUE(poll_until([&] { return thread_in_syscall(pid, SYS_epoll_wait); },
                             std::chrono::seconds(10)))
          << "the worker never waited in epoll_wait";
    });
  }
}

// Debian's sqlite3 shell run on `db` with `sql`: its exit status and what it printed.
std::pair<ExitStatus, std::string> run_sqlite3(TempDir& dir, const std::string& db,
                                               const std::string& sql) {
  const std::string out = dir.path("sqlite3.out");
  const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (o < 0) return {ExitStatus{}, "cannot create " + out};
  SpawnSpec spec;
  spec.argv = {"/usr/bin/sqlite3", db, sql};
  spec.stdout_fd = o;
  spec.stderr_fd = o;
  pid_t pid = spawn(spec);
  ::close(o);
  if (pid < 0) return {ExitStatus{}, "spawn sqlite3 failed"};
  auto st = wait_exit(pid, std::chrono::seconds(30));
  if (!st) {
    kill_child(pid);
    return {ExitStatus{}, "sqlite3 timed out"};
  }
  return {*st, read_file(out)};
}

// python3's sqlite3 module in an open write transaction (BEGIN IMMEDIATE, 100 rows inserted,
// not committed) is dumped and restored: its POSIX locks on the database come back, so the
// sqlite3 shell can read only the committed row and cannot write ("database is locked"); then
// the restored transaction commits and all the rows are there. Kill path only: on the
// leave-running path the original commits, and the database is no longer the dumped one.
TEST(RealPrograms, PythonSqliteTransaction) {
  if (!tools_present()) return;
  if (::access("/usr/bin/sqlite3", X_OK) != 0) GTEST_SKIP() << "sqlite3 not installed (scripts/deps.sh)";
  const std::string script = R"(
import os, signal, sqlite3, sys
db = sqlite3.connect('t.db', isolation_level=None, timeout=0)
db.execute('create table t(x)')
db.execute('insert into t values (0)')
db.execute('begin immediate')
for i in range(1, 101):
    db.execute('insert into t values (?)', (i,))
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
os.close(3)
signal.sigwait([signal.SIGTERM])
db.execute('commit')
n = db.execute('select count(*), sum(x) from t').fetchone()
if n == (101, 5050):
    print('PASS', file=sys.stderr)
    sys.exit(0)
print('FAIL: rows %r' % (n,), file=sys.stderr)
sys.exit(1)
)";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string db = dir.work() + "/t.db";
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return;
  // Between the dump and the restore nobody holds the database: a writer would get in now.
  if (!restore_detached(dir, dir.path("img"), pid)) return;
  auto [wst, wout] = run_sqlite3(dir, db, "insert into t values (999);");
  EXPECT_FALSE(wst.ok()) << "a second writer got in while the restored transaction is open";
  EXPECT_NE(wout.find("database is locked"), std::string::npos) << wout;
  auto [rst, rout] = run_sqlite3(dir, db, "select count(*) from t;");
  EXPECT_TRUE(rst.ok()) << rout;
  EXPECT_EQ(rout, "1\n") << "a reader sees only the committed row";
  expect_restored_passes(dir, pid);
  auto [ast, aout] = run_sqlite3(dir, db, "select count(*), sum(x) from t;");
  EXPECT_TRUE(ast.ok()) << aout;
  EXPECT_EQ(aout, "101|5050\n") << "rows after the restored process committed";
  std::cout << "  [sqlite3] second writer: " << wout;
}

TEST(RealPrograms, Sleep2) {
  if (!tools_present()) return;
  for (Mode mode : kModes) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/sleep", "2"}, Target::Ready::kOnExec);
    ASSERT_GT(t.pid(), 0) << t.error();
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) continue;
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (sleep's exit status): " << r.describe();
  }
}

// Foreground crrestore exits with the restored process's own exit status, not just 0/1.
TEST(RealPrograms, ForegroundRestorePassesExitStatusOn) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(
      dir, {"/usr/bin/bash", "-c", "exec 3>&-; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; exit 42"});
  ASSERT_GT(t.pid(), 0) << t.error();
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img")));
  ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
  EXPECT_TRUE(r.status.exited && r.status.code == 42) << "want bash's exit 42: " << r.describe();
}

// crdump | zstd > a.zst; crrestore -d -i a.zst (crrestore reads zstd itself); then the restored
// task is dumped again with crdump -z and restored through zstd -dc | crrestore -d.
TEST(Pipelines, ZstdBothWaysAndRedump) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("mem_anon"), "8"});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  int zst = open(dir.path("a.zst").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t dumper = start_tool(dir, "crdump", {"--leave-running", std::to_string(pid)}, -1, p[1], "crdump.err");
  SpawnSpec z;
  z.argv = {"/usr/bin/zstd", "-q", "-c"};
  z.stdin_fd = p[0];
  z.stdout_fd = zst;
  pid_t zstd = spawn(z);
  close(p[0]);
  close(p[1]);
  close(zst);
  auto ds = wait_exit(dumper, std::chrono::seconds(60));
  auto zs = wait_exit(zstd, std::chrono::seconds(60));
  ASSERT_TRUE(ds && ds->ok()) << "crdump | zstd: crdump " << (ds ? ds->describe() : "hung") << ", "
                              << read_file(dir.path("crdump.err"));
  ASSERT_TRUE(zs && zs->ok()) << "zstd " << (zs ? zs->describe() : "hung");
  dir.snapshot_work();
  ExitStatus orig = t.terminate();
  ASSERT_TRUE(orig.ok()) << "original: " << orig.describe() << "\nlog: " << t.log();
  dir.restore_work();

  ASSERT_TRUE(restore_detached(dir, dir.path("a.zst"), pid)) << "crrestore reading a .zst file";
  // Second generation: dump the restored task itself, compressed by crdump.
  ToolRun d2 = run_tool(dir, "crdump", {"-z", "-o", dir.path("b.zst"), std::to_string(pid)});
  if (!d2.status.ok()) {
    kill_child(pid);
    FAIL() << "crdump -z of the restored task: " << d2.describe();
  }
  auto killed = wait_exit(pid, std::chrono::seconds(10));
  ASSERT_TRUE(killed && !killed->exited && killed->code == SIGKILL)
      << "restored task after crdump: " << (killed ? killed->describe() : "still running");
  int q[2];
  ASSERT_EQ(pipe2(q, O_CLOEXEC), 0);
  int in = open(dir.path("b.zst").c_str(), O_RDONLY | O_CLOEXEC);
  SpawnSpec unz;
  unz.argv = {"/usr/bin/zstd", "-q", "-d", "-c"};
  unz.stdin_fd = in;
  unz.stdout_fd = q[1];
  pid_t unzstd = spawn(unz);
  close(q[1]);
  close(in);
  pid_t restorer = start_tool(dir, "crrestore", {"-d"}, q[0], -1, "crrestore.err");
  close(q[0]);
  auto us = wait_exit(unzstd, std::chrono::seconds(60));
  auto rs = wait_exit(restorer, std::chrono::seconds(60));
  EXPECT_TRUE(us && us->ok()) << "zstd -dc: " << (us ? us->describe() : "hung");
  ASSERT_TRUE(rs && rs->ok()) << "zstd -dc | crrestore -d: " << (rs ? rs->describe() : "hung")
                              << ", " << read_file(dir.path("crrestore.err"));
  expect_restored_passes(dir, pid);
}

}  // namespace
}  // namespace cr::e2e
