// Internet sockets (issue 12): listeners, UDP and their options in every mode; established TCP
// connections with both ends in the tree and with the peer outside it (this test process), held
// through the network lock; --tcp-close; the refusal without --tcp-established; redis-server
// with a client that keeps its connection; netlink route sockets with their port ids and groups.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "common/scoped_fd.h"
#include "e2e_common.h"
#include "tcp_client.h"

namespace cr::e2e {
namespace {

// python3 running `script` under the zdtm protocol, dumped with `dump_args`, restored with
// `restore_args`, told to check itself.
void python_round(const std::string& script, Mode mode, std::vector<std::string> dump_args,
                  std::vector<std::string> restore_args = {}) {
  SCOPED_TRACE(mode_name(mode));
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, mode, img, dump_args)) return;
  std::vector<std::string> args = {"-d", "-i", img};
  args.insert(args.end(), restore_args.begin(), restore_args.end());
  ToolRun r = run_tool(dir, "crrestore", args);
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << read_file(dir.work() + "/log");
  if (mode == Mode::kTwice) {
    if (!redump_restored(dir, pid, img, dump_args)) return;
    r = run_tool(dir, "crrestore", args);
    ASSERT_TRUE(r.status.ok()) << "second restore: " << r.describe();
  }
  expect_restored_passes(dir, pid);
  EXPECT_FALSE(lock_present(lock_of(img))) << "a network lock was left behind";
  std::cout << "  [python3 " << mode_name(mode) << "] " << read_file(dir.work() + "/log");
}

// Listeners (IPv4, IPv6 only), a bound UDP socket, a connected one, an unbound TCP socket and
// their options: the same after the restore, and every one of them works.
TEST(Network, ListenersUdpAndOptions) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
l4 = S.socket()
l4.setsockopt(S.SOL_SOCKET, S.SO_REUSEADDR, 1)
l4.setsockopt(S.IPPROTO_TCP, S.TCP_NODELAY, 1)
l4.setsockopt(S.SOL_SOCKET, S.SO_RCVBUF, 65536)
l4.bind(('127.0.0.1', 0)); l4.listen(7)
l6 = S.socket(S.AF_INET6)
l6.setsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY, 1)
l6.setsockopt(S.SOL_SOCKET, S.SO_KEEPALIVE, 1)
l6.setsockopt(S.IPPROTO_TCP, S.TCP_KEEPIDLE, 77)
l6.bind(('::1', 0)); l6.listen(3)
u = S.socket(S.AF_INET, S.SOCK_DGRAM); u.bind(('127.0.0.1', 0))
uc = S.socket(S.AF_INET, S.SOCK_DGRAM); uc.connect(u.getsockname())
u6 = S.socket(S.AF_INET6, S.SOCK_DGRAM); u6.setsockopt(S.SOL_SOCKET, S.SO_BROADCAST, 1)
fresh = S.socket()
def opts():
    return (l4.getsockname(), l6.getsockname()[:2], u.getsockname(), uc.getsockname(), uc.getpeername(),
            l4.getsockopt(S.SOL_SOCKET, S.SO_REUSEADDR) != 0, l4.getsockopt(S.IPPROTO_TCP, S.TCP_NODELAY) != 0,
            l4.getsockopt(S.SOL_SOCKET, S.SO_RCVBUF), l6.getsockopt(S.IPPROTO_IPV6, S.IPV6_V6ONLY),
            l6.getsockopt(S.SOL_SOCKET, S.SO_KEEPALIVE) != 0, l6.getsockopt(S.IPPROTO_TCP, S.TCP_KEEPIDLE),
            u6.getsockopt(S.SOL_SOCKET, S.SO_BROADCAST) != 0, l6.getsockopt(S.SOL_SOCKET, S.SO_REUSEADDR))
before = opts()
os.close(3)
signal.sigwait([signal.SIGTERM])
errs = []
after = opts()
if after != before: errs.append('options %r -> %r' % (before, after))
for l, fam in ((l4, S.AF_INET), (l6, S.AF_INET6)):
    c = S.socket(fam); c.connect(l.getsockname()); a, _ = l.accept()
    c.sendall(b'ping'); a.sendall(a.recv(10) + b'!')
    if c.recv(10) != b'ping!': errs.append('listener %r' % (l.getsockname(),))
    c.close(); a.close()
uc.send(b'dgram')
data, sender = u.recvfrom(100)
if (data, sender) != (b'dgram', uc.getsockname()): errs.append('udp %r %r' % (data, sender))
fresh.bind(('127.0.0.1', 0))
print('PASS' if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning, Mode::kTwice}) python_round(script, mode, {});
}

// UDP datagrams left unread come back in order with their senders: from a socket of the tree,
// from this process (outside, still bound), over IPv6, zero bytes long, and on a connected
// socket from its peer.
TEST(Network, UdpQueuedDatagramsKeepTheirSenders) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
u = S.socket(S.AF_INET, S.SOCK_DGRAM); u.bind(('127.0.0.1', 0))
a = S.socket(S.AF_INET, S.SOCK_DGRAM); a.bind(('127.0.0.1', 0))
u6 = S.socket(S.AF_INET6, S.SOCK_DGRAM); u6.bind(('::1', 0))
b6 = S.socket(S.AF_INET6, S.SOCK_DGRAM); b6.bind(('::1', 0))
c = S.socket(S.AF_INET, S.SOCK_DGRAM); c.connect(a.getsockname())
open('port', 'w').write(str(u.getsockname()[1]))
a.sendto(b'first', u.getsockname())
a.sendto(b'', u.getsockname())
b6.sendto(b'six', u6.getsockname())
a.sendto(b'to c', c.getsockname())
# UDP-Lite (protocol 136), v4 and v6, with checksum coverages of their own (send 12, receive
# at least 8: options 10 and 11 of level 136).
lite = []
for fam, host in ((S.AF_INET, '127.0.0.1'), (S.AF_INET6, '::1')):
    r = S.socket(fam, S.SOCK_DGRAM, 136); r.bind((host, 0)); r.setsockopt(136, 11, 8)
    w = S.socket(fam, S.SOCK_DGRAM, 136); w.bind((host, 0)); w.setsockopt(136, 10, 12)
    w.sendto(b'lite one', r.getsockname()); w.sendto(b'lite two!', r.getsockname())
    lite.append((r, w))
os.close(3)
signal.sigwait([signal.SIGTERM])
outside = ('127.0.0.1', int(open('sender').read()))
want = [(u, b'first', a.getsockname()), (u, b'', a.getsockname()), (u, b'outside', outside),
        (u6, b'six', b6.getsockname()), (c, b'to c', a.getsockname())]
for r, w in lite:
    want += [(r, b'lite one', w.getsockname()), (r, b'lite two!', w.getsockname())]
errs = []
for r, w in lite:
    if r.getsockopt(136, 11) != 8 or w.getsockopt(136, 10) != 12:
        errs.append('coverage %d %d' % (r.getsockopt(136, 11), w.getsockopt(136, 10)))
for s, data, sender in want:
    s.setblocking(False)
    try:
        got = s.recvfrom(100)
        if got[0] != data or got[1][:2] != sender[:2]: errs.append('%r from %r' % got)
    except BlockingIOError:
        errs.append('missing %r' % data)
for s in [u, u6, c] + [r for r, w in lite]:
    try:
        errs.append('extra %r' % (s.recvfrom(100),))
    except BlockingIOError:
        pass
print('PASS' if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning, Mode::kTwice}) {
    SCOPED_TRACE(mode_name(mode));
    TempDir dir;
    ScopedFd sender(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(sender.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::getsockname(sender.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    write_file(dir.work() + "/sender", std::to_string(ntohs(a.sin_port)));
    Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
    ASSERT_GT(t.pid(), 0) << t.error();
    const pid_t pid = t.pid();
    a.sin_port = htons(static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port"))));
    ASSERT_EQ(::sendto(sender.get(), "outside", 7, 0, reinterpret_cast<sockaddr*>(&a), sizeof a), 7);
    const std::string img = dir.path("img");
    if (!dump_target(dir, t, mode, img)) continue;
    ASSERT_TRUE(restore_detached(dir, img, pid));
    if (mode == Mode::kTwice) {
      if (!redump_restored(dir, pid, img)) continue;
      ASSERT_TRUE(restore_detached(dir, img, pid));
    }
    expect_restored_passes(dir, pid);
    std::cout << "  [python3 " << mode_name(mode) << "] " << read_file(dir.work() + "/log");
  }
}

// A connection with both ends in one process: bytes queued unread both ways, and a send queue
// filled until the peer's window closed (bytes never sent); one that keeps SO_REUSEADDR, on
// a port a TIME_WAIT socket without reuse also holds. After the restore every byte comes
// out once, in order, and the connections carry on (IPv4 and IPv6).
const char* const kPairScript = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
def pair(fam, host):
    l = S.socket(fam); l.bind((host, 0)); l.listen(1)
    c = S.socket(fam); c.connect(l.getsockname()[:2]); a, _ = l.accept()
    l.close()
    return c, a
c, a = pair(S.AF_INET, '127.0.0.1')
c6, a6 = pair(S.AF_INET6, '::1')
c.setsockopt(S.IPPROTO_TCP, S.TCP_NODELAY, 1)
c.sendall(b'to-a' * 1000)
a.sendall(b'to-c')
c6.sendall(b'six')
# A connection accepted from a listener with SO_REUSEADDR (it inherits it), whose port also
# has a TIME_WAIT socket without reuse (a connection on it the server closed first): restore
# must bind it in spite of that one, and give it its SO_REUSEADDR back.
l3 = S.socket(); l3.setsockopt(S.SOL_SOCKET, S.SO_REUSEADDR, 1)
l3.bind(('127.0.0.1', 0)); l3.listen(2)
t = S.socket(); t.connect(l3.getsockname()); tw, _ = l3.accept()
tw.setsockopt(S.SOL_SOCKET, S.SO_REUSEADDR, 0); tw.close(); t.recv(1); t.close()
c3 = S.socket(); c3.connect(l3.getsockname()); a3, _ = l3.accept(); l3.close()
c2, a2 = pair(S.AF_INET, '127.0.0.1')
a2.setblocking(False)
sent = 0
try:
    while True:
        sent += a2.send(bytes((sent + i) % 251 for i in range(4096)))
except BlockingIOError:
    pass
a2.setblocking(True)
os.close(3)
signal.sigwait([signal.SIGTERM])
errs = []
def recv_n(s, n):
    out = b''
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d: break
        out += d
    return out
if recv_n(a, 4000) != b'to-a' * 1000: errs.append('a queue')
if recv_n(c, 4) != b'to-c': errs.append('c queue')
if recv_n(a6, 3) != b'six': errs.append('a6 queue')
got = recv_n(c2, sent)
if got != bytes(i % 251 for i in range(sent)): errs.append('c2: %d of %d bytes, content %s' % (len(got), sent, 'ok' if got == bytes(i % 251 for i in range(len(got))) else 'wrong'))
if a3.getsockopt(S.SOL_SOCKET, S.SO_REUSEADDR) == 0: errs.append('a3 lost SO_REUSEADDR')
if c3.getsockopt(S.SOL_SOCKET, S.SO_REUSEADDR) != 0: errs.append('c3 got SO_REUSEADDR')
for x, y in ((c, a), (a, c), (c6, a6), (a2, c2), (a3, c3), (c3, a3)):
    x.sendall(b'more')
    if recv_n(y, 4) != b'more': errs.append('after restore')
print('PASS %d bytes in flight' % sent if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";

TEST(Network, ConnectionsInsideTheTree) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  // Not --leave-running: the original, ended after the dump, would leave its connections'
  // addresses in TIME_WAIT on this machine.
  for (Mode mode : {Mode::kKill, Mode::kTwice})
    python_round(kPairScript, mode, {"--tcp-established"});
}

// Half-closed connections with both ends in one process (IPv4 and IPv6): one end shut for
// writing (FIN_WAIT2, its peer CLOSE_WAIT with the bytes sent before the FIN unread), and one
// shut behind bytes its peer's window has no room for (FIN_WAIT1, the FIN unsent). TCP_REPAIR
// makes a connection established; crrestore then replays the FINs (shutdown, and the peer's
// FIN and ACK as packets through the network lock). After the restore the states are the
// same, the bytes then end of file come out, and the open direction still carries data.
const char* const kHalfClosedPairScript = R"py(
import os, signal, socket as S, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
st = lambda s: s.getsockopt(S.IPPROTO_TCP, S.TCP_INFO, 1)[0]
def pair(fam, host):
    l = S.socket(fam); l.bind((host, 0)); l.listen(1)
    c = S.socket(fam); c.connect(l.getsockname()[:2]); a, _ = l.accept()
    l.close()
    c.sendall(b'req'); c.shutdown(S.SHUT_WR)
    return c, a
pairs = [pair(S.AF_INET, '127.0.0.1'), pair(S.AF_INET6, '::1')]
# FIN_WAIT1: shut after filling the peer's window, the FIN queued behind bytes never sent.
l = S.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c3 = S.socket(); c3.connect(l.getsockname()); a3, _ = l.accept(); l.close()
a3.setblocking(False)
sent = 0
try:
    while True:
        sent += a3.send(bytes((sent + i) % 251 for i in range(4096)))
except BlockingIOError:
    pass
a3.setblocking(True); a3.shutdown(S.SHUT_WR)
for i in range(1000):
    if all((st(c), st(a)) == (5, 8) for c, a in pairs): break
    time.sleep(0.01)
os.close(3)
signal.sigwait([signal.SIGTERM])
errs = []
def recv_all(s):
    out = b''
    while True:
        d = s.recv(65536)
        if not d: return out
        out += d
for n, (c, a) in enumerate(pairs):
    if (st(c), st(a)) != (5, 8): errs.append('%d: states %d %d' % (n, st(c), st(a)))
    if recv_all(a) != b'req': errs.append('%d: bytes before the FIN' % n)
    a.sendall(b'resp')
    if c.recv(4) != b'resp': errs.append('%d: the open direction' % n)
    try:
        c.send(b'x'); errs.append('%d: send after shutdown' % n)
    except BrokenPipeError:
        pass
    a.close()
    if c.recv(4) != b'': errs.append('%d: end of file' % n)
if st(a3) != 4: errs.append('FIN_WAIT1: state %d' % st(a3))
got = recv_all(c3)
if got != bytes(i % 251 for i in range(sent)): errs.append('FIN_WAIT1: %d of %d bytes before the FIN' % (len(got), sent))
print('PASS' if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";

TEST(Network, HalfClosedConnectionsInsideTheTree) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  for (Mode mode : {Mode::kKill, Mode::kTwice})
    python_round(kHalfClosedPairScript, mode, {"--tcp-established"});
}

// A server in the tree, its client outside: one connection the client shut for writing after
// its request (the server's end in CLOSE_WAIT, the request unread), one the server shut after
// its answer (FIN_WAIT2). After the restore the server reads the request and end of file and
// answers; the client's late bytes on the other still reach it. The client sees no error.
TEST(Network, HalfClosedConnectionsWithAClientOutside) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  const std::string script = R"py(
import os, signal, socket as S, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
st = lambda s: s.getsockopt(S.IPPROTO_TCP, S.TCP_INFO, 1)[0]
l = S.socket(); l.bind(('127.0.0.1', 0)); l.listen(4)
open('port', 'w').write(str(l.getsockname()[1]))
os.close(3)
a1, _ = l.accept(); a2, _ = l.accept()
a2.sendall(b'bye'); a2.shutdown(S.SHUT_WR)
for i in range(1000):
    if (st(a1), st(a2)) == (8, 5): break
    time.sleep(0.01)
a1.sendall(b'ready')
signal.sigwait([signal.SIGTERM])
errs = []
# a2 has the client's FIN by now (closed); crrestore checked it came back FIN_WAIT2.
if st(a1) != 8: errs.append('state %d' % st(a1))
def recv_all(s):
    out = b''
    while True:
        d = s.recv(100)
        if not d: return out
        out += d
if recv_all(a1) != b'req': errs.append('request')
a1.sendall(b'resp'); a1.close()
if recv_all(a2) != b'late': errs.append('late bytes')
print('PASS' if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  ScopedFd c1 = connect_tcp(port);
  ASSERT_TRUE(c1.valid());
  ScopedFd c2 = connect_tcp(port);
  ASSERT_TRUE(c2.valid());
  ASSERT_TRUE(send_all(c1.get(), "req"));
  ASSERT_EQ(::shutdown(c1.get(), SHUT_WR), 0);
  std::string err;
  ASSERT_EQ(recv_n(c2.get(), 3, &err), "bye") << err;
  ASSERT_EQ(recv_n(c1.get(), 5, &err), "ready") << err;  // the server saw both states
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img, {"--tcp-established"})) return;
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << read_file(dir.work() + "/log");
  EXPECT_FALSE(lock_present(lock_of(img)));
  ASSERT_TRUE(send_all(c2.get(), "late"));
  ASSERT_EQ(::shutdown(c2.get(), SHUT_WR), 0);
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  EXPECT_EQ(recv_n(c1.get(), 4, &err), "resp") << err;
  EXPECT_EQ(recv_n(c1.get(), 1, &err), "") << "end of file after the answer: " << err;
  EXPECT_EQ(recv_n(c2.get(), 1, &err), "") << "the server's FIN: " << err;
  expect_restored_passes(dir, pid);
}

// A TCP listener with a connection not yet accepted: refused, naming --skip-in-flight; with
// it the listener is dumped without that connection, whose client sees a reset when the tree
// is killed, and the restored server accepts the next client.
TEST(Network, SkipInFlightLeavesOutPendingConnections) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
l = S.socket(); l.bind(('127.0.0.1', 0)); l.listen(4)
open('port', 'w').write(str(l.getsockname()[1]))
os.close(3)
signal.sigwait([signal.SIGTERM])
a, _ = l.accept()
ok = a.recv(3) == b'new'
print('PASS' if ok else 'FAIL', file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  ScopedFd pending = connect_tcp(port);  // the handshake is the kernel's: no accept needed
  ASSERT_TRUE(pending.valid());
  ToolRun refused = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(pid)});
  EXPECT_FALSE(refused.status.ok());
  EXPECT_TRUE(refused.one_line_error("crdump")) << refused.err;
  EXPECT_NE(refused.err.find("1 connections not yet accepted (kept only for one from a client "
                            "of the tree"),
            std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("dump with --skip-in-flight"), std::string::npos) << refused.err;
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"), {"--skip-in-flight"})) return;
  char b;
  const timeval bound{30, 0};  // a reset that never comes fails the test, not hangs it
  ASSERT_EQ(::setsockopt(pending.get(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound), 0);
  EXPECT_EQ(::recv(pending.get(), &b, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET) << "the connection left out is reset with the tree";
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << r.describe();
  ScopedFd c = connect_tcp(port);
  ASSERT_TRUE(c.valid());
  ASSERT_TRUE(send_all(c.get(), "new"));
  expect_restored_passes(dir, pid);
}

// Without --tcp-established the dump is refused, naming the connection and the option, and
// the program carries on untouched.
TEST(Network, EstablishedRefusedWithoutTheOption) {
  if (!tools_present()) return;
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", kPairScript});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_FALSE(d.status.ok());
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;
  EXPECT_NE(d.err.find("established connection tcp 127.0.0.1:"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("--tcp-established"), std::string::npos) << d.err;
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

// An echo server in the tree, this process its client. The client's bytes sent while the tree
// is away are dropped by the lock and sent again by the kernel once it is back: the client
// sees a pause, every answer, no error. Twice: the restored server is dumped again.
const char* const kEchoServer = R"py(
import os, select, signal, socket as S, sys
srv = S.socket(); srv.setsockopt(S.SOL_SOCKET, S.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', 0)); srv.listen(4)
open('port', 'w').write(str(srv.getsockname()[1]))
r, w = os.pipe(); os.set_blocking(w, False)
signal.set_wakeup_fd(w); signal.signal(signal.SIGTERM, lambda *a: None)
conns, served = [], 0
os.close(3)
while True:
    rl, _, _ = select.select([srv, r] + conns, [], [])
    if r in rl: break
    if srv in rl:
        conns.append(srv.accept()[0])
    for c in conns[:]:
        if c in rl:
            try:
                d = c.recv(4096)
            except ConnectionError as e:
                print('FAIL: %r' % e, file=sys.stderr); sys.exit(1)
            if not d:
                conns.remove(c); c.close(); continue
            c.sendall(b'echo:' + d); served += 1
print('PASS served %d' % served, file=sys.stderr)
)py";

// A client of the kEchoServer target started in `dir`, its connection checked with one round
// trip ("one"); invalid if it could not connect or was not answered.
ScopedFd echo_client(TempDir& dir) {
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  ScopedFd c = connect_tcp(port);
  if (!c.valid() || !send_all(c.get(), "one") || recv_n(c.get(), 8) != "echo:one") return {};
  return c;
}

TEST(Network, ClientOutsideTheTreeKeepsItsConnection) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", kEchoServer});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  ScopedFd c = echo_client(dir);
  ASSERT_TRUE(c.valid()) << "no echo from the server";
  std::string err;
  const std::string img = dir.path("img");
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    if (round == 0) {
      if (!dump_target(dir, t, Mode::kKill, img, {"--tcp-established"})) return;
    } else if (!redump_restored(dir, pid, img, {"--tcp-established"})) {
      return;
    }
    const std::string table = lock_of(img);
    EXPECT_TRUE(lock_present(table)) << "the lock should hold while the tree is away: '" << table << "'";
    // Sent while nobody is there: dropped, then sent again by the kernel.
    ASSERT_TRUE(send_all(c.get(), "away"));
    ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
    ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << read_file(dir.work() + "/log");
    EXPECT_FALSE(lock_present(table));
    EXPECT_EQ(recv_n(c.get(), 9, &err), "echo:away") << err;
    ASSERT_TRUE(send_all(c.get(), "back"));
    EXPECT_EQ(recv_n(c.get(), 9, &err), "echo:back") << err;
  }
  // A new client is served too.
  ScopedFd c2 = connect_tcp(port);
  ASSERT_TRUE(c2.valid());
  ASSERT_TRUE(send_all(c2.get(), "new"));
  EXPECT_EQ(recv_n(c2.get(), 8, &err), "echo:new") << err;
  c2.reset();
  c.reset();
  expect_restored_passes(dir, pid);
}

// crdump SIGKILLed at every pass of a --tcp-established dump (CR_TEST_KILL_AT, as in
// fault_injection_test.cc): its guardian (dump/undo_guard.h) turns repair off, puts
// SO_REUSEADDR back and deletes the lock, so the client's connection carries on each time.
TEST(Network, KilledDumpLeavesTheConnectionWorking) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", kEchoServer});
  ASSERT_GT(t.pid(), 0) << t.error();
  ScopedFd c = echo_client(dir);
  ASSERT_TRUE(c.valid()) << "no echo from the server";
  std::string err;
  int kills = 0;
  for (int n = 1; n < 200; ++n) {
    const std::string msg = "m" + std::to_string(n);
    ASSERT_TRUE(send_all(c.get(), msg));
    ASSERT_EQ(recv_n(c.get(), 5 + msg.size(), &err), "echo:" + msg) << err << " before run " << n;
    ::setenv("CR_TEST_KILL_AT", ("pass:" + std::to_string(n)).c_str(), 1);
    const pid_t dumper = start_tool(dir, "crdump",
                                    {"--tcp-established", "--leave-running", "-o",
                                     dir.path("img"), std::to_string(t.pid())},
                                    -1, -1, "dump.err");
    ::unsetenv("CR_TEST_KILL_AT");
    ASSERT_GT(dumper, 0);
    auto st = wait_exit(dumper, std::chrono::seconds(60));
    ASSERT_TRUE(st.has_value()) << "crdump hangs at pass " << n;
    if (st->ok()) break;  // past the last pass
    ASSERT_TRUE(!st->exited && st->code == SIGKILL) << st->describe() << read_file(dir.path("dump.err"));
    ++kills;
    // The guardian sees crdump gone and puts everything back (the table's name has crdump's pid).
    const std::string prefix = "crtools_lock_" + std::to_string(dumper) + "_";
    EXPECT_TRUE(poll_until(
        [&] { return command_output("nft list tables 2>/dev/null").find(prefix) == std::string::npos; },
        std::chrono::seconds(20)))
        << "the lock of crdump killed at pass " << n << " was left behind";
    // Repair mode off again: what the client sends now is answered.
    ASSERT_TRUE(send_all(c.get(), "after"));
    ASSERT_EQ(recv_n(c.get(), 10, &err), "echo:after") << err << " after crdump was killed at pass " << n;
  }
  EXPECT_GT(kills, 3);
  std::cout << "  [killed dumps] crdump killed at " << kills << " passes; the connection went on\n";
  c.reset();
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
}

// A dump cancelled after the network lock went on (SIGTERM while paused before the pages):
// crdump turns repair off and deletes the lock before the tree runs again, so the client's
// connection goes on as if nothing had happened.
TEST(Network, CancelledDumpLeavesTheConnectionWorking) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", kEchoServer});
  ASSERT_GT(t.pid(), 0) << t.error();
  ScopedFd c = echo_client(dir);
  ASSERT_TRUE(c.valid()) << "no echo from the server";
  std::string err;
  const std::string img = dir.path("img");
  ScopedFd out(::open(img.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  PausedDump d = start_paused({"--tcp-established", std::to_string(t.pid())}, "pages", out.get());
  ASSERT_GT(d.pid, 0);
  ASSERT_TRUE(d.paused("pages")) << d.err;
  // Locked and in repair now: sent while so, it is dropped and sent again later.
  ASSERT_TRUE(send_all(c.get(), "two"));
  auto st = d.signal_and_wait(SIGTERM);
  ASSERT_TRUE(st && st->exited && st->code == 1) << (st ? st->describe() : "hangs") << " " << d.err;
  EXPECT_FALSE(lock_present(lock_of(img))) << "the lock outlived the cancelled dump";
  EXPECT_EQ(recv_n(c.get(), 8, &err), "echo:two") << err;
  ASSERT_TRUE(send_all(c.get(), "three"));
  EXPECT_EQ(recv_n(c.get(), 10, &err), "echo:three") << err;
  c.reset();
  ExitStatus done = t.terminate();
  EXPECT_TRUE(done.ok()) << done.describe() << "\nlog: " << t.log();
}

// --tcp-close: the peer is gone; the program's connection comes back closed and its next call
// on it fails instead of waiting for ever.
TEST(Network, TcpCloseRestoresConnectionsClosed) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
l = S.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)
c = S.socket(); c.connect(l.getsockname()); a, _ = l.accept()
a.sendall(b'lost')
os.close(3)
signal.sigwait([signal.SIGTERM])
outcome = []
for s in (c, a):
    try:
        d = s.recv(10)
        outcome.append('eof' if d == b'' else 'data %r' % d)
    except OSError as e:
        outcome.append(type(e).__name__)
ok = all(o in ('ConnectionAbortedError', 'ConnectionResetError', 'eof') for o in outcome)
print(('PASS ' if ok else 'FAIL: ') + ' '.join(outcome), file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  python_round(script, Mode::kKill, {"--tcp-established"}, {"--tcp-close"});
}

// redis-server with a client outside the tree that holds its connection through the dump and
// the restore: its counter goes on, and a new client is served after.
TEST(Network, RedisKeepsItsClient) {
  if (!tools_present()) return;
  if (!nft_present() || access("/usr/bin/redis-server", X_OK) != 0)
    GTEST_SKIP() << "redis-server or nft not installed (scripts/deps.sh installs both)";
  TempDir dir;
  const uint16_t port = free_port();
  ASSERT_NE(port, 0);
  Target t = Target::start(dir,
                           {"/usr/bin/redis-server", "--port", std::to_string(port), "--bind",
                            "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
                            "--protected-mode", "no", "--logfile", ""},
                           Target::Ready::kOnExec);
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  // Ready when it accepts.
  ScopedFd c = connect_tcp_when_listening(port);
  ASSERT_TRUE(c.valid()) << "redis-server does not accept on port " << port << "\n" << t.log();
  std::string err;
  const std::string incr = "*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n";
  ASSERT_TRUE(send_all(c.get(), incr));
  ASSERT_EQ(recv_n(c.get(), 4, &err), ":1\r\n") << err;
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img, {"--tcp-established"})) return;
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img, "--pidfile", dir.path("pid")});
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << t.log();
  EXPECT_EQ(read_file(dir.path("pid")), std::to_string(pid) + "\n");
  ASSERT_TRUE(send_all(c.get(), incr));
  EXPECT_EQ(recv_n(c.get(), 4, &err), ":2\r\n") << err;
  ScopedFd c2 = connect_tcp(port);
  ASSERT_TRUE(c2.valid());
  ASSERT_TRUE(send_all(c2.get(), incr));
  EXPECT_EQ(recv_n(c2.get(), 4, &err), ":3\r\n") << err;
  EXPECT_FALSE(lock_present(lock_of(img)));
  ExitStatus st = terminate_pid(pid);
  EXPECT_TRUE(st.ok()) << st.describe();
}

// --ext-unix-sk, a client in the tree: its stream socket connected to a listener outside (this
// process) and its dgram socket connected to an outside dgram socket are connected to their
// paths again at restore; without the option the dump is refused, naming it.
TEST(Network, ExtUnixSkReconnectsToOutsidePaths) {
  if (!tools_present()) return;
  TempDir dir;
  const std::string spath = dir.work() + "/outside.sock", dpath = dir.work() + "/outside.dgram";
  ScopedFd lst(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ScopedFd dg(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", spath.c_str());
  ASSERT_EQ(::bind(lst.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  ASSERT_EQ(::listen(lst.get(), 4), 0);
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", dpath.c_str());
  ASSERT_EQ(::bind(dg.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
c = S.socket(S.AF_UNIX, S.SOCK_STREAM); c.connect('outside.sock')
d = S.socket(S.AF_UNIX, S.SOCK_DGRAM); d.connect('outside.dgram')
os.close(3)
signal.sigwait([signal.SIGTERM])
c.sendall(b'stream again'); d.send(b'dgram again')
ok = c.recv(10) == b'welcome'
print('PASS' if ok else 'FAIL', file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  ScopedFd first(::accept4(lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(first.valid());
  ToolRun refused = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(pid)});
  EXPECT_FALSE(refused.status.ok());
  EXPECT_NE(refused.err.find("outside the process tree (dump with --ext-unix-sk"), std::string::npos)
      << refused.err;
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"), {"--ext-unix-sk"})) return;
  first.reset();  // the dumped connection; the restored one is new
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << t.log();
  ScopedFd again(::accept4(lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(again.valid()) << "the restored client did not connect again";
  ASSERT_TRUE(send_all(again.get(), "welcome"));
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  std::string err;
  EXPECT_EQ(recv_n(again.get(), 12, &err), "stream again") << err;
  char buf[64];
  ssize_t n = ::recv(dg.get(), buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "dgram again");
  expect_restored_passes(dir, pid);
}

// --ext-unix-sk, a server in the tree (redis-server with redis-cli, say): the connection of its
// client outside ends with the dump, so the restored server reads its end as closed by the
// peer, and serves new clients. So does a client outside still in the accept queue: the
// restored server accepts it first, and reads end of file.
TEST(Network, ExtUnixSkServerSeesOutsideClientGone) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
l = S.socket(S.AF_UNIX, S.SOCK_STREAM); l.bind('srv.sock'); l.listen(4)
os.close(3)
a, _ = l.accept()
a.recv(100, S.MSG_PEEK)
signal.sigwait([signal.SIGTERM])
old = a.recv(100), a.recv(100)
p, _ = l.accept()
pend = p.recv(100)
n, _ = l.accept()
new = n.recv(100)
ok = old == (b'queued', b'') and pend == b'' and new == b'new client'
print('PASS' if ok else 'FAIL %r %r %r' % (old, pend, new), file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  auto connect_unix = [&]() {
    ScopedFd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", (dir.work() + "/srv.sock").c_str());
    if (::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) c.reset();
    return c;
  };
  ScopedFd c = connect_unix();
  ASSERT_TRUE(c.valid());
  ASSERT_TRUE(send_all(c.get(), "queued"));
  // The server has accepted and seen the bytes (its peek returned) once it sleeps in sigwait
  // (rt_sigtimedwait, 128): polled, the condition read again each round.
  bool waiting = false;
  for (int i = 0; i < 3000 && !waiting; ++i) {
    std::string sc = read_file("/proc/" + std::to_string(pid) + "/syscall");
    waiting = sc.starts_with("128 ");
    if (!waiting) ::poll(nullptr, 0, 10);
  }
  ASSERT_TRUE(waiting) << "the server never reached sigwait";
  ScopedFd pending = connect_unix();  // not accepted before the dump
  ASSERT_TRUE(pending.valid());
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"), {"--ext-unix-sk"})) return;
  std::string err;
  EXPECT_EQ(recv_n(c.get(), 1, &err), "") << "the outside client should see its end closed";
  EXPECT_EQ(recv_n(pending.get(), 1, &err), "") << "so should the one not accepted";
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << t.log();
  ScopedFd c2 = connect_unix();
  ASSERT_TRUE(c2.valid());
  ASSERT_TRUE(send_all(c2.get(), "new client"));
  expect_restored_passes(dir, pid);
}

// python3's http.server (HTTP/1.1, keep-alive) serving a file to a client outside the tree
// whose connection stays open through the dump and the restore.
TEST(Network, PythonHttpServerKeepAliveClient) {
  if (!tools_present()) return;
  if (!nft_present()) GTEST_SKIP() << "nft not installed (Debian nftables; scripts/deps.sh installs it)";
  TempDir dir;
  write_file(dir.work() + "/hello.txt", "hello over http\n");
  const std::string script = R"py(
import http.server, os, socketserver, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
srv = http.server.HTTPServer(('127.0.0.1', 0), H)
open('port', 'w').write(str(srv.server_address[1]))
os.close(3)
srv.serve_forever()
)py";
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const uint16_t port = static_cast<uint16_t>(std::stoi(read_file(dir.work() + "/port")));
  ScopedFd c = connect_tcp(port);
  ASSERT_TRUE(c.valid());
  ASSERT_EQ(http_get(c.get(), "/hello.txt"), "hello over http\n");
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img, {"--tcp-established"})) return;
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", img});
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << t.log();
  EXPECT_EQ(http_get(c.get(), "/hello.txt"), "hello over http\n") << "the kept-alive connection";
  c.reset();  // the server (one connection at a time) goes back to accepting
  ScopedFd c2 = connect_tcp(port);
  ASSERT_TRUE(c2.valid());
  EXPECT_EQ(http_get(c2.get(), "/hello.txt"), "hello over http\n") << "a new connection";
  c2.reset();
  kill_child(pid);
}

// Netlink (issue 12): a NETLINK_ROUTE socket bound with RTMGRP_LINK, a group above 32 joined
// with NETLINK_ADD_MEMBERSHIP and NETLINK_NO_ENOBUFS set, and an unbound one. After the
// restore each has its port id, groups and option, and the kernel answers an RTM_GETLINK dump
// on the bound one (to its port id); the unbound one is bound by its first send, as before.
const char* const kNetlinkScript = R"py(
import os, signal, socket as S, struct, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
SOL_NETLINK, ADD, NO_ENOBUFS, LIST = 270, 1, 5, 9
n = S.socket(S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_ROUTE)
n.bind((0, 1))                              # RTMGRP_LINK; the kernel picks the port id
n.setsockopt(SOL_NETLINK, ADD, 33)          # RTNLGRP_BRVLAN: beyond bind's 32 bits
n.setsockopt(SOL_NETLINK, NO_ENOBUFS, 1)
u = S.socket(S.AF_NETLINK, S.SOCK_DGRAM, S.NETLINK_ROUTE)
def state():
    return (n.getsockname(), n.getsockopt(SOL_NETLINK, LIST, 8), n.getsockopt(SOL_NETLINK, NO_ENOBUFS),
            u.getsockname())
def drain():  # link events another program caused since (none are expected)
    n.setblocking(False)
    try:
        while True: n.recv(65536)
    except BlockingIOError:
        pass
    n.setblocking(True)
before = state()
drain()
os.close(3)
signal.sigwait([signal.SIGTERM])
errs = []
after = state()
if after != before: errs.append('state %r -> %r' % (before, after))
port = n.getsockname()[0]
req = struct.pack('=IHHII', 32, 18, 0x301, 77, port) + struct.pack('=BxHiII', 0, 0, 0, 0, 0)
n.send(req)
links, done = 0, False
while not done:
    data = n.recv(1 << 16)
    off = 0
    while off + 16 <= len(data):
        ln, typ, fl, seq, pid = struct.unpack_from('=IHHII', data, off)
        if seq == 77:
            if pid != port: errs.append('reply to port %d, not %d' % (pid, port))
            if typ == 16: links += 1
            if typ == 3: done = True
            if typ == 2: errs.append('error reply'); done = True
        off += (ln + 3) & ~3
        if ln < 16: break
if links == 0: errs.append('no RTM_NEWLINK in the reply')
u.send(struct.pack('=IHHII', 16, 1, 5, 1, 0))   # NLMSG_NOOP with NLM_F_ACK: binds it
if u.getsockname()[0] == 0: errs.append('unbound socket not bound by its send')
print('PASS links %d' % links if not errs else 'FAIL: ' + '; '.join(errs), file=sys.stderr)
sys.exit(0 if not errs else 1)
)py";

TEST(Network, NetlinkRouteSocketKeepsPortAndGroups) {
  if (!tools_present()) return;
  for (Mode mode : {Mode::kKill, Mode::kLeaveRunning, Mode::kTwice})
    python_round(kNetlinkScript, mode, {});
}

// A reply the program has not read yet cannot be put back: the dump is refused in one line,
// naming the socket, and the program carries on.
TEST(Network, NetlinkQueuedMessagesRefused) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, struct, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
n = S.socket(S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_ROUTE)
n.send(struct.pack('=IHHII', 16, 1, 5, 1, 0))   # NLMSG_NOOP with NLM_F_ACK: an ack is queued
os.close(3)
signal.sigwait([signal.SIGTERM])
ok = struct.unpack_from('=IHHIIi', n.recv(4096))[5] == 0
print('PASS' if ok else 'FAIL: no ack', file=sys.stderr)
sys.exit(0 if ok else 1)
)py";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump", {"-o", dir.path("img"), std::to_string(t.pid())});
  EXPECT_FALSE(d.status.ok());
  EXPECT_TRUE(d.one_line_error("crdump")) << d.err;
  EXPECT_NE(d.err.find("netlink route socket with messages queued not supported yet"),
            std::string::npos)
      << d.err;
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

// The port id is the socket's address: while another socket holds it (here the original,
// left running) the restore is refused in one line naming it, before any process is made.
TEST(Network, NetlinkPortIdInUseAtRestore) {
  if (!tools_present()) return;
  const std::string script = R"py(
import os, signal, socket as S, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
n = S.socket(S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_ROUTE); n.bind((0, 0))
os.close(3)
signal.sigwait([signal.SIGTERM])
print('PASS', file=sys.stderr)
)py";
  TempDir dir;
  Target t = Target::start(dir, {"/usr/bin/python3", "-I", "-c", script});
  ASSERT_GT(t.pid(), 0) << t.error();
  ToolRun d = run_tool(dir, "crdump",
                       {"--leave-running", "-o", dir.path("img"), std::to_string(t.pid())});
  ASSERT_TRUE(d.status.ok()) << d.describe();
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path("img")});
  EXPECT_FALSE(r.status.ok());
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find("port id " + std::to_string(t.pid()) + " is in use"), std::string::npos)
      << r.err;
  ExitStatus st = t.terminate();
  EXPECT_TRUE(st.ok()) << st.describe() << "\nlog: " << t.log();
  EXPECT_NE(t.log().find("PASS"), std::string::npos) << t.log();
}

}  // namespace
}  // namespace cr::e2e
