// Unmodified Debian programs that are process trees: a bash pipeline dumped mid-stream, and
// make -j2 dumped while two compilers run. Each restored tree must finish with the result an
// undisturbed run gives.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>
#include <set>
#include <string>

#include "e2e_common.h"

namespace cr::e2e {
namespace {

// How many processes of the tree run `comm`.
int running(pid_t root, const std::string& comm) {
  int n = 0;
  for (pid_t p : tree_of(root)) {
    std::ifstream f("/proc/" + std::to_string(p) + "/comm");
    std::string c;
    if (std::getline(f, c) && c == comm) ++n;
  }
  return n;
}

// bash runs `seq | grep | wc -l` in a command substitution (bash, a subshell, three programs,
// two pipes with data in flight) and writes the count when done. Dumped once the pipeline runs;
// the foreground restore finishes with the count an undisturbed run gives.
TEST(RealTrees, BashPipelineMidStream) {
  if (!tools_present()) return;
  const std::string script =
      "n=$(seq 1 60000000 | grep 7 | wc -l); echo $n > count";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/bash", "-c", script}, Target::Ready::kOnExec);
    ASSERT_GT(t.pid(), 0) << t.error();
    ASSERT_TRUE(poll_until([&] { return running(t.pid(), "wc") == 1; }, std::chrono::seconds(20)))
        << "the pipeline did not start";
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) continue;
    ASSERT_NE(access((dir.work() + "/count").c_str(), F_OK), 0)
        << "the pipeline finished before the dump did: make it longer";
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (bash's exit status): " << r.describe();
    EXPECT_EQ(read_file(dir.work() + "/count"), "31302186\n");
  }
}

// python3's multiprocessing.Pool: two worker processes fed through pipes, locked by POSIX
// semaphores in shared memory (sem_open'd then unlinked: deleted /dev/shm files, restored as
// shared anonymous memory). Dumped with the work in flight; the restored pool finishes it.
TEST(RealTrees, PythonMultiprocessingPool) {
  if (!tools_present()) return;
  const std::string script = R"py(
import multiprocessing as mp
def work(x):
    s = 0
    for i in range(x * 200000, (x + 1) * 200000):
        s += i % 7
    return s
if __name__ == '__main__':
    with mp.Pool(2) as pool:
        r = pool.map(work, range(400), chunksize=1)
    open('mpout', 'w').write('%d\n' % sum(r))
)py";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script}, Target::Ready::kOnExec);
    ASSERT_GT(t.pid(), 0) << t.error();
    ASSERT_TRUE(poll_until([&] { return tree_of(t.pid()).size() == 3; }, std::chrono::seconds(20)))
        << "the pool's two workers did not start";
    if (!dump_target(dir, t, mode, dir.path("img"), {}, /*self_exiting=*/true)) continue;
    ASSERT_NE(access((dir.work() + "/mpout").c_str(), F_OK), 0)
        << "the pool finished before the dump did: give it more work";
    ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
    EXPECT_TRUE(r.status.ok()) << "foreground crrestore (python's exit status): " << r.describe()
                               << "\nlog: " << read_file(dir.work() + "/log");
    EXPECT_EQ(read_file(dir.work() + "/mpout"), "239999994\n");
  }
}

// A small C project: six sources slow enough to compile that make -j2 is caught with two
// compilers running. The restored make finishes the build; the program prints what a program
// built without interruption prints.
const char* kGenerator = R"py(
import sys
n = int(sys.argv[1])
for i in range(n):
    with open("f%d.c" % i, "w") as f:
        f.write("#include <stdint.h>\n")
        for j in range(100):
            f.write("uint64_t f%d_%d(uint64_t x) { uint64_t s = x; " % (i, j))
            for k in range(40):
                f.write("s = s * %du + (s >> %d) ^ %du; " % (k * 7 + j + 3, k % 13 + 1, i * 1000 + j * 10 + k))
            f.write("return s; }\n")
        f.write("uint64_t sum%d(uint64_t x) { return 0" % i)
        for j in range(100):
            f.write(" + f%d_%d(x)" % (i, j))
        f.write("; }\n")
with open("main.c", "w") as f:
    f.write("#include <stdio.h>\n#include <stdint.h>\n")
    for i in range(n):
        f.write("uint64_t sum%d(uint64_t);\n" % i)
    f.write("int main(void) { uint64_t t = 0;\n")
    for i in range(n):
        f.write("  t += sum%d(12345);\n" % i)
    f.write('  printf("%llu\\n", (unsigned long long)t); return 0; }\n')
with open("Makefile", "w") as f:
    f.write("OBJS = main.o " + " ".join("f%d.o" % i for i in range(n)) + "\n")
    f.write("prog: $(OBJS)\n\tgcc -o prog $(OBJS)\n%.o: %.c\n\tgcc -O2 -c $< -o $@\n")
)py";

TEST(RealTrees, MakeJ2WhileCompiling) {
  if (!tools_present()) return;
  if (access("/usr/bin/make", X_OK) != 0 || access("/usr/bin/gcc", X_OK) != 0)
    GTEST_SKIP() << "make and gcc are not installed (scripts/deps.sh installs them)";
  TempDir dir;
  auto generate = [&](const std::string& where) {
    SpawnSpec g;
    g.argv = {"/usr/bin/python3", "-I", "-c", kGenerator, "6"};
    g.cwd = where;
    return wait_exit(spawn(g), std::chrono::seconds(60));
  };
  auto gen = generate(dir.work());
  ASSERT_TRUE(gen && gen->ok()) << "generating the project";
  Target t = Target::start(dir, {"/usr/bin/make", "-j2"}, Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  ASSERT_TRUE(poll_until([&] { return running(t.pid(), "cc1") == 2; }, std::chrono::seconds(60)))
      << "make never ran two compilers at once";
  ASSERT_TRUE(dump_target(dir, t, Mode::kKill, dir.path("img"), {}, /*self_exiting=*/true));
  ASSERT_NE(access((dir.work() + "/prog").c_str(), F_OK), 0) << "built before the dump";
  ToolRun r = run_tool(dir, "crrestore", {"-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << "foreground crrestore (make's exit status): " << r.describe()
                             << "\nlog: " << read_file(dir.work() + "/log");
  // The same project built without interruption, next to it.
  const std::string ref = dir.path("ref");
  ASSERT_EQ(mkdir(ref.c_str(), 0755), 0);
  gen = generate(ref);
  ASSERT_TRUE(gen && gen->ok());
  SpawnSpec m;
  m.argv = {"/usr/bin/make", "-s", "-j2"};
  m.cwd = ref;
  auto made = wait_exit(spawn(m), std::chrono::seconds(300));
  ASSERT_TRUE(made && made->ok()) << "reference build";
  auto output = [&](const std::string& where) {
    SpawnSpec p;
    p.argv = {where + "/prog"};
    p.stdout_fd = open((where + "/out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    auto st = wait_exit(spawn(p), std::chrono::seconds(30));
    close(p.stdout_fd);
    return st && st->ok() ? read_file(where + "/out") : std::string("<failed>");
  };
  const std::string want = output(ref);
  EXPECT_NE(want, "<failed>");
  EXPECT_EQ(output(dir.work()), want) << "the restored build's program";
}


// A daemon, made the classic way: python3 calls setsid(), forks and exits, so the daemon is in a
// session (and group) whose leader is gone, and has no terminal. Dumped and restored (from this
// harness, whose session is another), it is in its own session again, with the same id, and
// carries on: on SIGTERM it checks its session and group against the ones it saw before.
TEST(RealTrees, DaemonKeepsTheSessionOfItsGoneLeader) {
  if (!tools_present()) return;
  become_subreaper();  // the daemon, orphaned, and later the restored one, come to us
  TempDir dir;
  const std::string script = R"py(
import os, signal, sys
os.setsid()
if os.fork() != 0:
    os._exit(0)  # the session leader goes
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
sid, pg = os.getsid(0), os.getpgrp()
os.write(1, b'%d\n' % os.getpid())
os.dup2(os.open('/dev/null', os.O_WRONLY), 1)  # nothing left pointing at the harness
signal.sigwait([signal.SIGTERM])
ok = os.getsid(0) == sid and os.getpgrp() == pg and sid != os.getpid()
with open('result', 'w') as f:
    f.write('ok' if ok else 'session %d group %d, was %d %d' % (os.getsid(0), os.getpgrp(), sid, pg))
)py";
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  SpawnSpec spec;
  spec.argv = {"/usr/bin/python3", "-c", script};
  spec.cwd = dir.root();
  spec.stdout_fd = out[1];
  const pid_t leader = spawn(spec);
  ASSERT_GT(leader, 0);
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  waitpid(leader, nullptr, 0);
  const pid_t daemon = static_cast<pid_t>(std::atoi(line.c_str()));
  ASSERT_GT(daemon, 0) << "no pid from the daemon: '" << line << "'";
  ASSERT_EQ(getsid(daemon), leader) << "the daemon is not in its gone leader's session";
  const std::string img = dir.path("img");
  ToolRun d = run_tool(dir, "crdump", {"-o", img, std::to_string(daemon)});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  waitpid(daemon, nullptr, 0);  // killed by crdump; ours to reap (we are a subreaper)
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  EXPECT_EQ(getsid(daemon), leader) << "restored into another session";
  EXPECT_EQ(getpgid(daemon), leader);
  ASSERT_EQ(kill(daemon, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(waitpid(daemon, &st, 0), daemon);  // ours again once crrestore -d has gone
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(read_file(dir.root() + "/result"), "ok");
}

}  // namespace
}  // namespace cr::e2e
