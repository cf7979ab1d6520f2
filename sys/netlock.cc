// nft is run as a child process with the script on its stdin and its stderr captured: one
// transaction per lock or unlock, so a failure leaves no half-made table.
#include "sys/netlock.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "common/scoped_fd.h"

extern char** environ;

namespace cr::sys {

namespace {

std::string addr_text(int family, const std::array<uint8_t, 16>& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, a.data(), buf, sizeof buf);
  return buf;
}

// One drop rule for packets going from (a, ap) to (b, bp).
std::string rule(int family, const std::array<uint8_t, 16>& a, uint16_t ap,
                 const std::array<uint8_t, 16>& b, uint16_t bp) {
  const char* ip = family == AF_INET6 ? "ip6" : "ip";
  return std::string("    ") + ip + " saddr " + addr_text(family, a) + " tcp sport " +
         std::to_string(ap) + " " + ip + " daddr " + addr_text(family, b) + " tcp dport " +
         std::to_string(bp) + " drop\n";
}

const char* nft_path() {
  for (const char* p : {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"})
    if (::access(p, X_OK) == 0) return p;
  return nullptr;
}

}  // namespace

std::string netlock_table_name() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return "crtools_lock_" + std::to_string(::getpid()) + "_" +
         std::to_string(static_cast<uint64_t>(ts.tv_sec) * 1000000000ull +
                        static_cast<uint64_t>(ts.tv_nsec));
}

std::string netlock_script(const std::string& table, const std::vector<TcpTuple>& conns) {
  std::string rules;
  for (const TcpTuple& c : conns) {
    rules += rule(c.family, c.src, c.sport, c.dst, c.dport);
    rules += rule(c.family, c.dst, c.dport, c.src, c.sport);
  }
  // Before conntrack and every usual filter (priority -300 < raw): nothing else sees them.
  std::string s = "table inet " + table + " {\n";
  for (const char* hook : {"input", "output"})
    s += std::string("  chain ") + hook + " {\n    type filter hook " + hook +
         " priority -300; policy accept;\n    meta mark " + std::to_string(kNetLockPassMark) +
         " accept\n" + rules + "  }\n";
  return s + "}\n";
}

Status run_nft(const std::string& script) {
  const char* nft = nft_path();
  if (nft == nullptr)
    return make_error("the network lock needs the nft tool (Debian package nftables), not found");
  int in[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return errno_error("pipe");
  ScopedFd in_r(in[0]), in_w(in[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return errno_error("pipe");
  ScopedFd err_r(err[0]), err_w(err[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), STDIN_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), STDERR_FILENO);
  char arg0[] = "nft", arg1[] = "-f", arg2[] = "-";
  char* argv[] = {arg0, arg1, arg2, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, nft, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return errno_error(std::string("spawn ") + nft, rc);
  in_r.reset();
  err_w.reset();
  // The script is small (a few rules per connection): written whole before reading stderr
  // would only block past the pipe's 64 KiB, so write and read in turn.
  size_t off = 0;
  std::string msg;
  bool err_open = true;
  while (off < script.size() || err_open) {
    pollfd p[2] = {{err_r.get(), POLLIN, 0}, {in_w.valid() ? in_w.get() : -1, POLLOUT, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents != 0) {
      ssize_t n = ::write(in_w.get(), script.data() + off, script.size() - off);
      if (n > 0) off += static_cast<size_t>(n);
      if (n < 0 && errno != EINTR) off = script.size();
      if (off == script.size()) in_w.reset();
    }
    if (p[0].revents != 0) {
      char buf[512];
      ssize_t n = ::read(err_r.get(), buf, sizeof buf);
      if (n > 0 && msg.size() < 4096) msg.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EINTR)) err_open = false;
    }
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return errno_error("waitpid nft");
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return {};
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
  return make_error("nft: " + (msg.empty() ? std::string("failed") : msg));
}

Status netlock_delete(const std::string& table) {
  // "destroy" (nft 1.0.8+) ignores a missing table; Debian 12's 1.0.6 has only "delete", so
  // the table is added first (a no-op when it exists) to make the delete always apply.
  return run_nft("add table inet " + table + "\ndelete table inet " + table + "\n");
}

Result<NetLock> NetLock::install(const std::vector<TcpTuple>& conns, const std::string& table) {
  NetLock l;
  CR_TRY(run_nft(netlock_script(table, conns)));
  l.table_ = table;
  return l;
}

NetLock& NetLock::operator=(NetLock&& o) noexcept {
  if (this != &o) {
    (void)release();
    table_ = std::move(o.table_);
    o.table_.clear();
  }
  return *this;
}

NetLock::~NetLock() { (void)release(); }

Status NetLock::release() {
  if (table_.empty()) return {};
  std::string t = std::move(table_);
  table_.clear();
  return netlock_delete(t);
}

}  // namespace cr::sys
