// Unmodified Debian servers dumped and restored while a client outside the tree (this test
// process) holds a connection (issue 12, "network servers"): nginx, a master and two workers of
// another uid sharing a listener, serving a file to a keep-alive client.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "e2e_common.h"
#include "proc_snapshot.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

const char* const kNginx = "/usr/sbin/nginx";

// Every path nginx writes (pid, logs, temp dirs) is in WORK, so nothing of the machine's own
// nginx setup is read or touched. daemon off: the master stays the test's child, the root of
// the tree. Workers run as nobody (nginx's default when started as root), so the tree has two
// sets of credentials. The keep-alive timeout is longer than any run of the test: nginx never
// closes an idle client by itself.
const char* const kNginxConf = R"(daemon off;
master_process on;
worker_processes 2;
pid WORK/nginx.pid;
error_log WORK/error.log info;
events { worker_connections 64; }
http {
  access_log WORK/access.log;
  client_body_temp_path WORK/tmp_client_body;
  proxy_temp_path WORK/tmp_proxy;
  fastcgi_temp_path WORK/tmp_fastcgi;
  uwsgi_temp_path WORK/tmp_uwsgi;
  scgi_temp_path WORK/tmp_scgi;
  keepalive_timeout 600s;
  server {
    listen 127.0.0.1:PORT;
    root WORK/html;
  }
}
)";

std::string nginx_conf(const std::string& work, uint16_t port) {
  std::string conf = kNginxConf;
  for (size_t at = conf.find("WORK"); at != std::string::npos; at = conf.find("WORK", at))
    conf.replace(at, 4, work);
  return conf.replace(conf.find("PORT"), 4, std::to_string(port));
}

// The workers of `master` (its children: nginx's workers have none of their own), ascending.
std::vector<pid_t> children_of(pid_t master) {
  std::vector<pid_t> pids = tree_pids(master);  // the root first, then ascending
  pids.erase(pids.begin());
  return pids;
}

// How many socket fds the processes of the tree hold (listener, channels, connections).
int socket_fds(pid_t root) {
  int n = 0;
  for (pid_t p : tree_pids(root)) {
    const std::string fds = fd_listing(p);
    for (size_t at = fds.find("socket:["); at != std::string::npos;
         at = fds.find("socket:[", at + 1))
      ++n;
  }
  return n;
}

// The lines of nginx's error log at levels that mean something went wrong (a worker that died
// of a signal is an [alert] of the master, a reset connection an [error] or [info] "reset").
std::string error_lines(const std::string& log) {
  std::string out;
  size_t at = 0;
  while (at < log.size()) {
    size_t end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(at, end - at);
    for (const char* level : {"[emerg]", "[alert]", "[crit]", "[error]", "reset by peer"})
      if (line.find(level) != std::string::npos) {
        out += line + "\n";
        break;
      }
    at = end + 1;
  }
  return out;
}

// The tree as /proc shows it once every process waits (the master in sigsuspend, the workers
// in epoll_wait).
Snapshot settled(pid_t root, const std::string& what) {
  if (!wait_quiescent(root, std::chrono::seconds(10)))
    ADD_FAILURE() << what << ": a process of the nginx tree is still running 10 s on";
  return take_snapshot(root);
}

void expect_same_proc(const std::string& what, const Snapshot& before, const Snapshot& after) {
  std::string bad = describe_unallowed(diff(before, after, "nginx", zdtm_allowlist()));
  EXPECT_TRUE(bad.empty()) << what << ": /proc differs from before the dump:\n" << bad;
}

// Ends the tree however the test went: SIGTERM to the master if it is our child and running
// (it stops its workers and waits for them), then anything of it still there is killed, by
// pid, if it is our child (a worker is, once the master is gone: we are its subreaper). After
// a dump the master's pid is no longer ours until the restore: nothing is sent to it then.
struct NginxTree {
  pid_t master = -1;
  std::vector<pid_t> workers;
  ExitStatus stop() {
    ExitStatus st;
    int raw = 0;
    if (master > 0) {
      const pid_t w = waitpid(master, &raw, WNOHANG);
      if (w == 0) {
        st = terminate_pid(master);
      } else if (w == master) {  // it had ended already
        st.exited = WIFEXITED(raw);
        st.code = st.exited ? WEXITSTATUS(raw) : WTERMSIG(raw);
      }
    }
    for (pid_t w : workers) kill_child(w);
    master = -1;
    workers.clear();
    return st;
  }
  // The network locks of its dumps: one a failed restore left behind (crrestore removes it
  // when it succeeds) is removed with the tree, so it does not outlive the test.
  std::vector<std::string> locks;
  ~NginxTree() {
    stop();
    for (const std::string& table : locks)
      if (lock_present(table)) command_output("nft delete table inet " + table);
  }
};

// nginx, master and two workers, serving a file to a client that keeps its connection alive
// through crdump --tcp-established and crrestore: the second request on that connection gets
// the file, and a new connection is served too. Then again on the restored tree with the new
// connection held (the client reconnected), which also checks that nothing leaked: the first
// connection, closed by the client, is closed by the restored worker (the tree holds as many
// sockets as at the start), no network lock is left, and nginx logs no error.
TEST(RealServers, NginxKeepAliveClientThroughTwoRestores) {
  if (!tools_present()) return;
  if (access(kNginx, X_OK) != 0)
    GTEST_SKIP() << "nginx not installed (Debian nginx-light; scripts/deps.sh installs it)";
  if (!nft_present())
    GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  TempDir dir;
  const std::string work = dir.work();
  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  ASSERT_EQ(mkdir((work + "/html").c_str(), 0755), 0);
  const std::string body = "hello from nginx\n";
  write_file(work + "/html/hello.txt", body);
  write_file(work + "/nginx.conf", nginx_conf(work, port));
  // -e: the error log from the start (before the configuration is read), not the machine's.
  Target t = Target::start(
      dir, {kNginx, "-p", work, "-e", work + "/error.log", "-c", work + "/nginx.conf"},
      Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  NginxTree tree;
  tree.master = t.pid();
  t.release();  // from here on `tree` ends it, also when restored
  auto logs = [&] {
    return "\nstderr: " + read_file(work + "/log") + "\nerror.log:\n" +
           read_file(work + "/error.log");
  };
  ScopedFd c = connect_tcp_when_listening(port);
  ASSERT_TRUE(c.valid()) << "nginx does not accept on port " << port << logs();
  ASSERT_EQ(http_get(c.get(), "/hello.txt"), body) << logs();
  ASSERT_TRUE(
      poll_until([&] { return children_of(tree.master).size() == 2; }, std::chrono::seconds(20)))
      << "nginx did not start two workers" << logs();
  tree.workers = children_of(tree.master);
  std::sort(tree.workers.begin(), tree.workers.end());
  // Counted once every process waits: a worker just forked may still be setting up its
  // channels (under load the count then grew by one before the first dump).
  settled(tree.master, "started");
  const int sockets = socket_fds(tree.master);

  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string img = dir.path("img" + std::to_string(round));
    const Snapshot before = settled(tree.master, "before the dump");
    ToolRun d =
        run_tool(dir, "crdump", {"--tcp-established", "-o", img, std::to_string(tree.master)});
    ASSERT_TRUE(d.status.ok()) << "crdump: " << d.describe() << logs();
    // The master (our child) and its workers (killed first, then handed to us as the master
    // died) are reaped, so their pids are free for the restore.
    ASSERT_TRUE(wait_exit(tree.master, std::chrono::seconds(10)).has_value());
    reap_zombies();
    tree.locks.push_back(lock_of(img));
    EXPECT_TRUE(lock_present(tree.locks.back())) << "the lock should hold while the tree is away";
    ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
    ASSERT_TRUE(r.status.ok()) << "crrestore: " << r.describe() << logs();
    EXPECT_EQ(d.err + r.err, "") << "no warning from either tool";
    EXPECT_FALSE(lock_present(tree.locks.back())) << "a network lock was left behind";
    std::vector<pid_t> workers = children_of(tree.master);
    std::sort(workers.begin(), workers.end());
    ASSERT_EQ(workers, tree.workers) << "the workers, with their pids";
    const Snapshot after = settled(tree.master, "restored");
    expect_same_proc("restored", before, after);
    std::cout << "  [nginx round " << round << "] " << tree_pids(tree.master).size()
              << " processes, " << after.size() << " /proc entries compared\n";
    EXPECT_EQ(http_get(c.get(), "/hello.txt"), body) << "the kept-alive connection" << logs();
    // The client reconnects: its old connection, restored, is closed on both sides (the worker
    // reads the end of file and closes its fd), and a new one is served. Counted from now: a
    // worker closes the channels of the workers started after it at some point after its
    // start, so the count may only go down by itself, never up.
    const int open_now = socket_fds(tree.master);
    EXPECT_LE(open_now, sockets);
    c.reset();
    EXPECT_TRUE(poll_until([&] { return socket_fds(tree.master) <= open_now - 1; },
                           std::chrono::seconds(20)))
        << "the restored connection was not closed by nginx:\n"
        << fd_listing(tree.master);
    c = connect_tcp(port);
    ASSERT_TRUE(c.valid());
    EXPECT_EQ(http_get(c.get(), "/hello.txt"), body) << "a new connection" << logs();
    EXPECT_LE(socket_fds(tree.master), open_now)
        << "the tree holds more sockets than before the reconnection:\n"
        << fd_listing(tree.master);
  }

  // Five requests served, each logged by the worker that served it (once the response is
  // sent: polled, the client may read it first).
  auto served = [&] {
    const std::string log = read_file(work + "/access.log");
    size_t n = 0;
    for (size_t at = log.find("\"GET /hello.txt HTTP/1.1\" 200 "); at != std::string::npos;
         at = log.find("\"GET /hello.txt HTTP/1.1\" 200 ", at + 1))
      ++n;
    return n;
  };
  EXPECT_TRUE(poll_until([&] { return served() == 5; }, std::chrono::seconds(20)))
      << read_file(work + "/access.log");
  c.reset();
  ExitStatus st = tree.stop();
  EXPECT_TRUE(st.ok()) << "nginx master on SIGTERM: " << st.describe() << logs();
  EXPECT_EQ(error_lines(read_file(work + "/error.log")), "") << logs();
}

// python3's http.server started under a seccomp filter by a launcher (no_new_privs, uname(2)
// fails with EPERM, then exec: what systemd's SystemCallFilter= does to a service). The
// handler answers each request with what os.uname() gives it. After a dump and restore the
// server still serves, its status still shows the filter, and uname still fails in it.
const char* const kUnameServer = R"py(
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        try:
            body = os.uname().sysname
        except OSError as e:
            body = 'errno %d' % e.errno
        body = (body + '\n').encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
open('port', 'w').write(str(srv.server_address[1]))
os.close(3)
srv.serve_forever()
)py";

TEST(RealServers, PythonHttpServerUnderSeccomp) {
  if (!tools_present()) return;
  if (geteuid() != 0) GTEST_SKIP() << "crdump needs CAP_SYS_ADMIN for a task with seccomp";
  TempDir dir;
  Target t = Target::start(
      dir, {zdtm_path("seccomp_launch"), "/usr/bin/python3", "-I", "-c", kUnameServer});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  const std::string eperm = "errno " + std::to_string(EPERM) + "\n";
  auto ask = [&] {
    ScopedFd c = connect_tcp(port);
    return c.valid() ? http_get(c.get(), "/uname") : std::string("no connection");
  };
  ASSERT_EQ(ask(), eperm) << "uname should fail under the launcher's filter\nlog: " << t.log();
  auto filter_status = [&] {
    const std::string st = read_file("/proc/" + std::to_string(pid) + "/status");
    return st.find("\nSeccomp:\t2\nSeccomp_filters:\t1\n") != std::string::npos;
  };
  ASSERT_TRUE(filter_status());
  const Snapshot before = settled(pid, "before the dump");
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img)) return;
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
  ASSERT_TRUE(r.status.ok()) << "crrestore: " << r.describe() << "\nlog: " << t.log();
  EXPECT_EQ(r.err, "") << "no warning from crrestore";
  EXPECT_TRUE(filter_status()) << read_file("/proc/" + std::to_string(pid) + "/status");
  expect_same_proc("restored", before, settled(pid, "restored"));
  EXPECT_EQ(ask(), eperm) << "uname in the restored server\nlog: " << t.log();
  EXPECT_EQ(ask(), eperm) << "a second request";
  kill_child(pid);
}

}  // namespace
}  // namespace cr::e2e
