// postgres (Debian's, as its own user, over TCP) with a psql session outside the tree that is
// inside a transaction through the dump and the restore: the transaction goes on and commits,
// and a new session sees it. Then a second round with a new session (nothing leaked).
//
// postgres keeps a small SysV segment (its interlock) beside MAP_SHARED memory: it runs in an
// IPC namespace of its own (unshare --ipc), which crtools restores with its objects. Its image is
// a user's (uid postgres), so the established connection (TCP_REPAIR) is granted only to an
// image signed by the key's holder (crdump --sign-key, crrestore --verify-key; README "Trust
// model").
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "e2e_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

// The newest installed server binary's directory ("" if none).
std::string postgres_bindir() {
  glob_t g{};
  std::string dir;
  if (::glob("/usr/lib/postgresql/*/bin/postgres", 0, nullptr, &g) == 0 && g.gl_pathc > 0)
    dir = g.gl_pathv[g.gl_pathc - 1];
  ::globfree(&g);
  return dir.empty() ? dir : dir.substr(0, dir.rfind('/'));
}

// Runs argv to completion with output to `log`; its exit status.
ExitStatus run_to_end(const std::vector<std::string>& argv, const std::string& log) {
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdout_fd = out;
  spec.stderr_fd = out;
  pid_t pid = spawn(spec);
  ::close(out);
  if (pid < 0) return {};
  auto st = wait_exit(pid, std::chrono::seconds(120));
  if (!st) {
    kill_child(pid);
    return {};
  }
  return *st;
}

// A psql session: we write its stdin and read its stdout, line by line.
class Psql {
 public:
  Psql(uint16_t port) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    SpawnSpec spec;
    spec.argv = {"/usr/bin/psql",
                 "-X",
                 "-q",
                 "-tA",
                 "-v",
                 "ON_ERROR_STOP=1",
                 "-h",
                 "127.0.0.1",
                 "-p",
                 std::to_string(port),
                 "-U",
                 "postgres",
                 "postgres"};
    spec.stdin_fd = in[0];
    spec.stdout_fd = out[1];
    spec.stderr_fd = out[1];
    pid_ = spawn(spec);
    ::close(in[0]);
    ::close(out[1]);
    to_ = ScopedFd(in[1]);
    from_ = ScopedFd(out[0]);
  }
  ~Psql() {
    to_.reset();  // psql ends at EOF
    if (pid_ > 0 && !wait_exit(pid_, std::chrono::seconds(30))) kill_child(pid_);
  }
  bool send(const std::string& sql) { return send_all_fd(to_.get(), sql + "\n"); }
  // Everything it printed up to the line `marker` (excluded); "" + an error on EOF or silence.
  std::string until(const std::string& marker, std::string* error) {
    std::string got;
    for (;;) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line == marker) return got;
        got += line + "\n";
      }
      pollfd p{from_.get(), POLLIN, 0};
      if (::poll(&p, 1, 30000) <= 0) {
        *error = "psql printed no '" + marker + "' within 30 s: " + got + buf_;
        return "";
      }
      char b[4096];
      ssize_t n = ::read(from_.get(), b, sizeof b);
      if (n <= 0) {
        *error = "psql ended before '" + marker + "': " + got + buf_;
        return "";
      }
      buf_.append(b, static_cast<size_t>(n));
    }
  }

 private:
  static bool send_all_fd(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::write(fd, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  pid_t pid_ = -1;
  ScopedFd to_, from_;
  std::string buf_;
};

// One statement in a session of its own: what psql printed.
std::string query(uint16_t port, const std::string& sql) {
  Psql p(port);
  std::string err;
  p.send(sql + "; select 'done';");
  std::string out = p.until("done", &err);
  return err.empty() ? out : "error: " + err;
}

TEST(RealServers, PostgresTransactionGoesOnThroughTheRestore) {
  if (!tools_present()) return;
  const std::string bin = postgres_bindir();
  passwd* pw = ::getpwnam("postgres");
  if (bin.empty() || pw == nullptr || access("/usr/bin/psql", X_OK) != 0 ||
      access("/usr/sbin/nft", X_OK) != 0)
    GTEST_SKIP() << "postgresql or nftables not installed (scripts/deps.sh installs them)";
  if (geteuid() != 0) GTEST_SKIP() << "needs root (postgres runs as its own user)";
  become_subreaper();  // the restored server comes to us once crrestore -d has gone
  TempDir dir;
  // The server's files are its user's; the temp dir must let it through.
  ASSERT_EQ(::chmod(dir.root().c_str(), 0711), 0);
  const std::string data = dir.path("pgdata"), sock = dir.path("pgsock");
  for (const std::string& d : {data, sock}) {
    ASSERT_EQ(::mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(::chown(d.c_str(), pw->pw_uid, pw->pw_gid), 0);
  }
  const std::vector<std::string> as_postgres = {"/usr/bin/setpriv", "--reuid=postgres",
                                                "--regid=postgres", "--clear-groups"};
  std::vector<std::string> initdb = as_postgres;
  initdb.insert(initdb.end(), {bin + "/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                               "--no-sync", "-E", "UTF8"});
  ExitStatus st = run_to_end(initdb, dir.path("initdb.log"));
  ASSERT_TRUE(st.ok()) << "initdb: " << st.describe() << "\n" << read_file(dir.path("initdb.log"));

  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  std::vector<std::string> argv = {"/usr/bin/unshare", "--ipc"};
  argv.insert(argv.end(), as_postgres.begin(), as_postgres.end());
  argv.insert(argv.end(), {bin + "/postgres", "-D", data, "-k", sock, "-p", std::to_string(port),
                           "-h", "127.0.0.1", "-c", "shared_buffers=16MB", "-c", "fsync=off"});
  Target t = Target::start(dir, argv, Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ASSERT_TRUE(connect_tcp_when_listening(port, 1000).valid())
      << "postgres does not accept on port " << port << "\n"
      << t.log();

  const std::string key = dir.path("key");
  write_file(key, "a key only this test and its crtools know, 32 bytes+");
  const std::vector<std::string> dump_args = {"--tcp-established", "--sign-key", key};
  const std::string img = dir.path("img");
  ASSERT_EQ(query(port, "create table t(x int)"), "");
  int expect_count = 0, expect_sum = 0;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const int value = round == 0 ? 42 : 7;
    std::string err;
    Psql session(port);
    session.send("begin; insert into t values (" + std::to_string(value) + "); select 'in';");
    ASSERT_EQ(session.until("in", &err), "") << err;
    if (round == 0) {
      if (!dump_target(dir, t, Mode::kKill, img, dump_args)) return;
    } else if (!redump_restored(dir, pid, img, dump_args)) {
      return;
    }
    if (round == 0) {
      // Unsigned, the user's image may not ask for TCP_REPAIR: refused in one line that says
      // how to lift the network lock it leaves (not the image's to lift), and nothing made.
      ToolRun no = run_tool(dir, "crrestore", {"-d", "-i", img});
      EXPECT_FALSE(no.status.ok()) << "restored without --verify-key";
      EXPECT_TRUE(no.one_line_error("crrestore")) << no.err;
      EXPECT_NE(no.err.find("TCP_REPAIR"), std::string::npos) << no.err;
      EXPECT_NE(no.err.find("'nft delete table inet crtools_lock_"), std::string::npos) << no.err;
      EXPECT_FALSE(pid_exists(pid));
    }
    ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img, "--verify-key", key});
    ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << t.log();
    // Inside the transaction its own row counts; outside it does not yet.
    session.send("select count(*) from t; select 'counted';");
    EXPECT_EQ(session.until("counted", &err), std::to_string(expect_count + 1) + "\n") << err;
    EXPECT_EQ(query(port, "select count(*) from t"), std::to_string(expect_count) + "\n");
    session.send("commit; select 'committed';");
    EXPECT_EQ(session.until("committed", &err), "") << err;
    expect_count += 1;
    expect_sum += value;
    EXPECT_EQ(query(port, "select count(*), sum(x) from t"),
              std::to_string(expect_count) + "|" + std::to_string(expect_sum) + "\n");
    std::cout << "  [postgres] round " << round << ": " << expect_count << " rows committed\n";
  }
  t.release();  // restored: our child by pid, no longer the Target's
  // A fast shutdown: postgres ends its sessions and exits 0.
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  auto end = wait_exit(pid, std::chrono::seconds(60));
  ASSERT_TRUE(end.has_value()) << "postgres did not shut down";
  EXPECT_TRUE(end->ok()) << end->describe() << "\nlog: " << read_file(dir.work() + "/log");
}

}  // namespace
}  // namespace cr::e2e
