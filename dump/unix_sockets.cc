// AF_UNIX sockets: their state from sock_diag (sys/unix_diag), their options and queued data
// through a copy of the fd taken with pidfd_getfd. The queue is read with MSG_PEEK, walked with
// SO_PEEK_OFF (put back as it was), so the target's sockets keep every byte.
#include "dump/unix_sockets.h"

#include <netinet/tcp.h>  // TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN: sock_diag states of unix too
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/mounts.h"

namespace cr::dump {

namespace {

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

// Tail bytes per UnixSocketData record for stream data, and the largest datagram read.
constexpr size_t kStreamChunk = 1u << 20;
constexpr size_t kMaxMessage = 1u << 20;

std::string family_name(int family) {
  switch (family) {
    case AF_INET:
      return "inet (AF_INET)";
    case AF_INET6:
      return "inet6 (AF_INET6)";
    case AF_NETLINK:
      return "netlink (AF_NETLINK)";
    case AF_PACKET:
      return "packet (AF_PACKET)";
    case AF_UNIX:
      return "unix (AF_UNIX)";
    default:
      return "family " + std::to_string(family);
  }
}

std::string type_name(uint32_t type) {
  switch (type) {
    case SOCK_STREAM:
      return "stream";
    case SOCK_DGRAM:
      return "dgram";
    case SOCK_SEQPACKET:
      return "seqpacket";
    default:
      return "type " + std::to_string(type);
  }
}

Result<int> get_int_opt(int s, int opt, const char* name) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(s, SOL_SOCKET, opt, &v, &len) != 0)
    return errno_error(std::string("getsockopt ") + name);
  return v;
}

// SO_PEEK_OFF set to 0 for the walk, put back to the target's value on every path.
class PeekOffset {
 public:
  static Result<PeekOffset> start(int s, UndoGuard& undo) {
    CR_TRY_ASSIGN(int old, get_int_opt(s, SO_PEEK_OFF, "SO_PEEK_OFF"));
    CR_TRY(undo.on_death_setopt(s, SOL_SOCKET, SO_PEEK_OFF, old));
    int zero = 0;
    if (::setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) != 0)
      return errno_error("setsockopt SO_PEEK_OFF");
    return PeekOffset(s, old);
  }
  PeekOffset(PeekOffset&& o) noexcept : s_(std::exchange(o.s_, -1)), old_(o.old_) {}
  PeekOffset(const PeekOffset&) = delete;
  ~PeekOffset() {
    if (s_ >= 0) ::setsockopt(s_, SOL_SOCKET, SO_PEEK_OFF, &old_, sizeof old_);
  }

 private:
  PeekOffset(int s, int old) : s_(s), old_(old) {}
  int s_;
  int old_;
};

// SO_PASSCRED turned on for the walk of a seqpacket queue, put back off on every path. With it
// every queued message, even one of zero bytes, comes with SCM_CREDENTIALS, while the end of
// file of a socket whose peer has gone comes with nothing: both read 0 bytes otherwise.
class PassCredProbe {
 public:
  static Result<PassCredProbe> start(int s, UndoGuard& undo) {
    CR_TRY_ASSIGN(int old, get_int_opt(s, SO_PASSCRED, "SO_PASSCRED"));
    if (old != 0) return PassCredProbe(-1);  // the target's own: its credentials are refused
    CR_TRY(undo.on_death_setopt(s, SOL_SOCKET, SO_PASSCRED, 0));
    int one = 1;
    if (::setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
      return errno_error("setsockopt SO_PASSCRED");
    return PassCredProbe(s);
  }
  PassCredProbe(PassCredProbe&& o) noexcept : s_(std::exchange(o.s_, -1)) {}
  PassCredProbe(const PassCredProbe&) = delete;
  ~PassCredProbe() {
    int zero = 0;
    if (s_ >= 0) ::setsockopt(s_, SOL_SOCKET, SO_PASSCRED, &zero, sizeof zero);
  }
  /// Whether the credentials recvmsg shows are the probe's, not the target's.
  bool active() const { return s_ >= 0; }

 private:
  explicit PassCredProbe(int s) : s_(s) {}
  int s_;
};

struct Peeked {
  std::vector<std::vector<uint8_t>> messages;  // stream: runs of bytes
  std::vector<std::string> senders;            // each datagram's sender name ("": unnamed)
  std::vector<std::vector<ScopedFd>> rights;   // each message's fds in flight, received here
  std::vector<std::optional<ucred>> creds;     // each message's SCM_CREDENTIALS (pid not 0)
};

// The fds in flight a peek installed here (SCM_RIGHTS), ours to close.
std::vector<ScopedFd> take_rights(msghdr& m) {
  std::vector<ScopedFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t nfds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const int* fds = reinterpret_cast<const int*>(CMSG_DATA(c));
    for (size_t i = 0; i < nfds; ++i) got.emplace_back(fds[i]);
  }
  return got;
}

// Whether the stream byte at peek offset `at` came with fds (peeked alone; they are closed).
Result<bool> has_rights_at(int s, int at) {
  if (::setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &at, sizeof at) != 0)
    return errno_error("setsockopt SO_PEEK_OFF");
  char b;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{&b, 1};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  if (::recvmsg(s, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC) != 1)
    return errno_error("recvmsg(MSG_PEEK) of one byte");
  return !take_rights(m).empty();
}

// Every message queued on `s`, oldest first, without consuming any.
Result<Peeked> peek_queue(int s, uint32_t type, UndoGuard& undo) {
  CR_TRY_ASSIGN(PeekOffset guard, PeekOffset::start(s, undo));
  std::optional<PassCredProbe> probe;
  if (type == SOCK_SEQPACKET) {
    auto started = PassCredProbe::start(s, undo);
    if (!started.ok()) return started.error();
    probe.emplace(std::move(*started));
  }
  Peeked out;
  int stream_off = 0;  // the peek offset a stream run starts at
  std::vector<uint8_t> buf(type == SOCK_STREAM ? kStreamChunk : kMaxMessage);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253) + CMSG_SPACE(sizeof(ucred))];
  for (;;) {
    sockaddr_un from{};
    iovec iov{buf.data(), buf.size()};
    msghdr m{};
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(s, &m, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return errno_error("recvmsg(MSG_PEEK)");
    std::vector<ScopedFd> got = take_rights(m);
    bool creds = false;
    std::optional<ucred> cred;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
          c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        creds = true;
        ucred u;
        std::memcpy(&u, CMSG_DATA(c), sizeof u);
        if (u.pid != 0) cred = u;  // 0: the message carries none (sent with SO_PASSCRED off)
      }
    if ((m.msg_flags & MSG_CTRUNC) != 0)
      return make_error(
          "unix socket with more fds in flight in one message than crdump takes "
          "(253) not supported yet");
    if (probe) {
      // A seqpacket socket whose peer has gone reads 0 for ever past its last message; with
      // SO_PASSCRED on (the probe's, or the target's own) only a real message has credentials.
      if (n == 0 && !creds) break;
      if (probe->active()) cred.reset();  // the probe's view, not the target's
    }
    if (type == SOCK_STREAM) {
      if (n == 0) break;  // the peer shut down writing: end of the stream
      // A run ends with the buffer that carries fds, and may start with bytes before it that
      // carry none: where that buffer begins is the first byte that peeks with fds.
      int split = 0;
      if (!got.empty() && n > 1) {
        int lo = 0, hi = static_cast<int>(n) - 1;
        while (lo < hi) {
          const int mid = (lo + hi) / 2;
          CR_TRY_ASSIGN(bool r, has_rights_at(s, stream_off + mid));
          if (r)
            hi = mid;
          else
            lo = mid + 1;
        }
        split = lo;
        const int next = stream_off + static_cast<int>(n);
        if (::setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &next, sizeof next) != 0)
          return errno_error("setsockopt SO_PEEK_OFF");
      }
      if (split > 0) {
        out.messages.emplace_back(buf.begin(), buf.begin() + split);
        out.rights.emplace_back();
        out.creds.push_back(cred);
      }
      out.messages.emplace_back(buf.begin() + split, buf.begin() + n);
      out.rights.push_back(std::move(got));
      out.creds.push_back(cred);
      stream_off += static_cast<int>(n);
      continue;
    }
    if ((m.msg_flags & MSG_TRUNC) != 0)
      return make_error("unix " + type_name(type) + " message over " +
                        std::to_string(kMaxMessage >> 20) + " MiB queued");
    std::string sender;
    if (type == SOCK_DGRAM && m.msg_namelen > sizeof(sa_family_t)) {
      sender.assign(from.sun_path, m.msg_namelen - sizeof(sa_family_t));
      if (sender[0] != '\0') sender = sender.substr(0, sender.find('\0'));  // a path's NUL
    }
    out.senders.push_back(std::move(sender));
    out.messages.emplace_back(buf.begin(), buf.begin() + n);
    out.rights.push_back(std::move(got));
    out.creds.push_back(cred);
  }
  // An out-of-band byte (MSG_OOB) would come back as an ordinary one: refused.
  char oob;
  if (type == SOCK_STREAM && ::recv(s, &oob, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) == 1)
    return make_error("unix stream socket with out-of-band data (MSG_OOB) not supported yet");
  return out;
}

}  // namespace

Result<bool> UnixSocketCollector::knows(uint64_t ino) {
  if (!diag_) {
    CR_TRY_ASSIGN(auto all, sys::query_unix_sockets());
    diag_ = std::move(all);
  }
  return diag_->count(ino) != 0;
}

Result<uint32_t> UnixSocketCollector::add(DumpContext& proc, int fd, uint64_t ino) {
  if (auto it = entries_.find(ino); it != entries_.end()) return it->second.id;
  if (!diag_) {
    CR_TRY_ASSIGN(auto all, sys::query_unix_sockets());
    diag_ = std::move(all);
  }
  auto d = diag_->find(ino);
  if (d == diag_->end()) {
    // Not a unix socket of this network namespace (a frozen tree creates none meanwhile).
    CR_TRY_ASSIGN(ScopedFd s, copy_task_fd(proc, fd));
    CR_TRY_ASSIGN(int family, get_int_opt(s.get(), SO_DOMAIN, "SO_DOMAIN"));
    if (family == AF_UNIX)
      return make_error(fd_name(fd) + ": unix socket socket:[" + std::to_string(ino) +
                        "] of another network namespace not supported yet");
    return make_error(fd_name(fd) + ": socket of family " + family_name(family) +
                      " not supported yet");
  }
  Entry e;
  e.id = tree_.next_obj_id++;
  e.proc = &proc;
  e.fd = fd;
  e.diag = d->second;
  entries_[ino] = std::move(e);
  order_.push_back(ino);
  return entries_[ino].id;
}

// A listening socket of the tree holding the name `e` shows (e was accepted from it), or null.
const UnixSocketCollector::Entry* UnixSocketCollector::listener_named(const Entry& e) const {
  if (e.diag.name.empty()) return nullptr;
  for (const auto& [ino, o] : entries_) {
    if (ino == e.diag.ino || o.diag.state != TCP_LISTEN || o.diag.type != e.diag.type ||
        o.diag.name != e.diag.name)
      continue;
    if (e.diag.name[0] == '\0' ||
        (o.diag.vfs_ino == e.diag.vfs_ino && o.diag.vfs_dev == e.diag.vfs_dev))
      return &o;
  }
  return nullptr;
}

// A path name must still lead to the socket's own file (or, accepted, its listener's), or the
// name cannot come back: an absolute path as it is, a relative one from the cwd of a process
// of the tree (the one holding it first).
Status UnixSocketCollector::resolve_name(const Entry& e, schema::UnixSocket& rec) const {
  const std::string& n = e.diag.name;
  rec.name.assign(n.begin(), n.end());
  if (n.empty() || n[0] == '\0') return {};
  const std::string bad = "unix socket bound to '" + n + "'";
  if (!e.diag.has_vfs) return make_error(bad + " has no file behind its name");
  std::vector<std::string> dirs;
  if (n[0] == '/') {
    dirs.emplace_back();
  } else {
    if (auto cwd = e.proc->proc.readlink("cwd"); cwd.ok()) dirs.push_back(*cwd);
    for (const auto& p : tree_.procs)
      if (!p->zombie && p.get() != e.proc)
        if (auto cwd = p->proc.readlink("cwd"); cwd.ok()) dirs.push_back(*cwd);
  }
  for (const std::string& dir : dirs) {
    const std::string path = dir.empty() ? n : dir + "/" + n;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    if (st.st_ino != e.diag.vfs_ino || st.st_dev != sys::user_dev(e.diag.vfs_dev)) continue;
    rec.dir = dir;
    rec.file_mode = st.st_mode;
    rec.file_uid = st.st_uid;
    rec.file_gid = st.st_gid;
    return {};
  }
  // Unlinked: nothing is at the path any more (a relative one: from the holder's cwd). Restore
  // binds the name again, which makes a file, and unlinks it once every connection is made.
  // Something else at the path would have to go for that: refused.
  const std::string path = n[0] == '/' ? n : dirs.empty() ? std::string() : dirs.front() + "/" + n;
  struct stat st {};
  if (!path.empty() && ::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    rec.dir = n[0] == '/' ? std::string() : dirs.front();
    rec.flags |= schema::kUnixNameUnlinked;
    return {};
  }
  return make_error(bad +
                    ": the file was replaced, or the name is relative to no cwd of the tree "
                    "(the name cannot be restored)");
}

// --ext-unix-sk: a peer bound to an absolute path that still leads to it is connected to
// again; any other peer (a client of the tree's listener, an unnamed or abstract socket) is
// treated as gone: the socket comes back with its queue, then end of file, as if the peer had
// closed (which is what a kill of the tree does to it).
Status UnixSocketCollector::describe_external(const Entry& e, schema::UnixSocket& rec) {
  const sys::UnixDiag& d = e.diag;
  auto p = diag_->find(d.peer_ino);
  const bool ours_named_same = p != diag_->end() && p->second.name == d.name;
  if (p != diag_->end() && !p->second.name.empty() && p->second.name[0] == '/' &&
      p->second.has_vfs && !ours_named_same) {
    struct stat st {};
    if (::stat(p->second.name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_ino == p->second.vfs_ino && st.st_dev == sys::user_dev(p->second.vfs_dev)) {
      rec.state = schema::kUnixExternal;
      rec.peer_name = p->second.name;
      return {};
    }
  }
  rec.state = schema::kUnixPeerGone;
  return {};
}

// The listener whose accept queue holds a connection from socket `ino`, or null. Such a
// socket shows no peer inode: its peer is the listener's new socket, which has none until
// accept() gives it one, as a closed peer has none.
const sys::UnixDiag* UnixSocketCollector::pending_on(uint64_t ino) const {
  for (const auto& [lino, l] : *diag_)
    if (l.state == TCP_LISTEN && std::find(l.icons.begin(), l.icons.end(), ino) != l.icons.end())
      return &l;
  return nullptr;
}

namespace {

// Bytes a connection not yet accepted carries cannot be read: they are in the listener's new
// socket, which no fd holds until accept() (and accepting would take it from the program). The
// client's send queue length says whether there are any.
Status check_nothing_sent(const sys::UnixDiag& client, const std::string& listener) {
  if (client.wqueue != 0)
    return make_error("unix socket connected to listener '" + listener +
                      "', not accepted yet, with data sent to it (queued where it cannot be read "
                      "before accept) not supported yet");
  return {};
}

}  // namespace

// A listener's accept queue: each connection's client is a socket of the tree (connected again
// at restore, in the same order) or, with --ext-unix-sk, one outside (its connection ends with
// the dump: a stand-in connects in its place and closes). A client already closed, or one that
// sent data, left bytes in the new socket that cannot be read: refused.
Status UnixSocketCollector::describe_pending(const Entry& e, schema::UnixSocket& rec) {
  const sys::UnixDiag& d = e.diag;
  const std::string name = socket_name_text(d.name);
  if (d.icons.size() != d.rqueue)
    return make_error("listening unix socket '" + name + "' with " + std::to_string(d.rqueue) +
                      " connections not yet accepted, of which sock_diag lists " +
                      std::to_string(d.icons.size()) + " (not supported)");
  for (uint64_t c : d.icons) {
    if (c == 0)
      return make_error("listening unix socket '" + name +
                        "' with a connection not yet accepted whose client has closed (what it "
                        "sent cannot be read before accept) not supported yet");
    auto cd = diag_->find(c);
    if (cd == diag_->end())
      return make_error("listening unix socket '" + name + "': its pending client socket:[" +
                        std::to_string(c) + "] is not known to sock_diag");
    CR_TRY(check_nothing_sent(cd->second, name));
    if (entries_.count(c) != 0) {
      rec.pending.push_back(c);
      continue;
    }
    if (!e.proc->opts.ext_unix_sk)
      return make_error("listening unix socket '" + name +
                        "' with a connection not yet accepted from socket:[" + std::to_string(c) +
                        "] outside the process tree (dump with --ext-unix-sk to restore it as "
                        "closed by its client)");
    rec.pending.push_back(0);
  }
  if (!rec.pending.empty()) tree_.procs.front()->process.flags |= schema::kProcessUnixPending;
  return {};
}

// A socket of the tree connected to a listener that has not accepted it: to a listener of the
// tree it connects again at restore; to one outside, with --ext-unix-sk, to its path again.
Status UnixSocketCollector::describe_connecting(const Entry& e, const sys::UnixDiag& l,
                                                schema::UnixSocket& rec) {
  const std::string name = socket_name_text(l.name);
  CR_TRY(check_nothing_sent(e.diag, name));
  if (entries_.count(l.ino) != 0) {
    rec.state = schema::kUnixConnecting;
    rec.peer_ino = l.ino;
    return {};
  }
  if (e.proc->opts.ext_unix_sk && !l.name.empty() && l.name[0] == '/' && l.has_vfs) {
    struct stat st {};
    if (::stat(l.name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == l.vfs_ino &&
        st.st_dev == sys::user_dev(l.vfs_dev)) {
      rec.state = schema::kUnixExternal;
      rec.peer_name = l.name;
      return {};
    }
  }
  return make_error("unix socket connecting to listener socket:[" + std::to_string(l.ino) + "] '" +
                    name + "' outside the process tree, not accepted yet" +
                    (e.proc->opts.ext_unix_sk
                         ? " (its path no longer leads to it)"
                         : " (dump with --ext-unix-sk to connect to it again)"));
}

Status UnixSocketCollector::describe(const Entry& e, schema::UnixSocket& rec,
                                     const std::function<Result<uint32_t>(int)>& file_of) {
  const sys::UnixDiag& d = e.diag;
  rec.id = e.id;
  rec.ino = d.ino;
  rec.type = d.type;
  rec.shutdown = d.shutdown;
  if (d.type != SOCK_STREAM && d.type != SOCK_DGRAM && d.type != SOCK_SEQPACKET)
    return make_error("unix socket of " + type_name(d.type) + " not supported yet");
  switch (d.state) {
    case TCP_LISTEN:
      rec.state = schema::kUnixListening;
      rec.backlog = d.wqueue;
      CR_TRY(describe_pending(e, rec));
      break;
    case TCP_ESTABLISHED:
      // A dgram socket another one connected to shows established too, with no peer of its
      // own: it is not connected.
      if (d.type == SOCK_DGRAM && !d.has_peer) {
        rec.state = schema::kUnixUnconnected;
        break;
      }
      if (!d.has_peer || d.peer_ino == 0) {
        if (const sys::UnixDiag* l = pending_on(d.ino)) {
          CR_TRY(describe_connecting(e, *l, rec));
          break;
        }
        // Its peer was closed: sock_diag shows no inode for a released socket.
        rec.state = schema::kUnixPeerGone;
        break;
      }
      if (entries_.count(d.peer_ino) == 0) {
        if (!e.proc->opts.ext_unix_sk)
          return make_error("unix socket connected to socket:[" + std::to_string(d.peer_ino) +
                            "] outside the process tree (dump with --ext-unix-sk to reconnect "
                            "it by name, or --inherit-fd " +
                            std::to_string(e.fd) + ")");
        CR_TRY(describe_external(e, rec));
        break;
      }
      rec.state = schema::kUnixConnected;
      rec.peer_ino = d.peer_ino;
      break;
    case TCP_CLOSE:
      rec.state = schema::kUnixUnconnected;
      break;
    default:
      return make_error("unix socket in state " + std::to_string(d.state) + " not supported yet");
  }
  CR_TRY(resolve_name(e, rec));
  if (rec.state == schema::kUnixExternal) {
    // Its queue came from the outside peer, which a new connection would not send again.
    CR_TRY_ASSIGN(ScopedFd s, copy_task_fd(*e.proc, e.fd));
    CR_TRY_ASSIGN(Peeked q, peek_queue(s.get(), d.type, tree_.undo));
    if (!q.messages.empty())
      return make_error("unix socket connected to '" + rec.peer_name + "' outside the tree with " +
                        std::to_string(q.messages.size()) + " messages queued not supported yet");
    tree_.procs.front()->process.flags |= schema::kProcessExtUnix;
    CR_TRY_ASSIGN(int sndbuf, get_int_opt(s.get(), SO_SNDBUF, "SO_SNDBUF"));
    CR_TRY_ASSIGN(int rcvbuf, get_int_opt(s.get(), SO_RCVBUF, "SO_RCVBUF"));
    CR_TRY_ASSIGN(int passcred, get_int_opt(s.get(), SO_PASSCRED, "SO_PASSCRED"));
    rec.sndbuf = static_cast<uint32_t>(sndbuf);
    rec.rcvbuf = static_cast<uint32_t>(rcvbuf);
    if (passcred != 0) rec.flags |= schema::kUnixPassCred;
    rec.peek_off = -1;
    return {};
  }
  // Accepted from a listener that still listens, outside the tree: restore could not give it
  // its name back without that listener.
  if ((rec.state == schema::kUnixConnected || rec.state == schema::kUnixPeerGone) &&
      d.type != SOCK_DGRAM && !d.name.empty() && listener_named(e) == nullptr)
    for (const auto& [ino, o] : *diag_)
      if (o.state == TCP_LISTEN && o.type == d.type && o.name == d.name &&
          (d.name[0] == '\0' || (o.vfs_ino == d.vfs_ino && o.vfs_dev == d.vfs_dev)))
        return make_error("unix socket accepted from listener socket:[" + std::to_string(ino) +
                          "] '" + socket_name_text(d.name) + "' outside the process tree");

  CR_TRY_ASSIGN(ScopedFd s, copy_task_fd(*e.proc, e.fd));
  CR_TRY_ASSIGN(int passcred, get_int_opt(s.get(), SO_PASSCRED, "SO_PASSCRED"));
  CR_TRY_ASSIGN(int sndbuf, get_int_opt(s.get(), SO_SNDBUF, "SO_SNDBUF"));
  CR_TRY_ASSIGN(int rcvbuf, get_int_opt(s.get(), SO_RCVBUF, "SO_RCVBUF"));
  CR_TRY_ASSIGN(int peek_off, get_int_opt(s.get(), SO_PEEK_OFF, "SO_PEEK_OFF"));
  if (passcred != 0) rec.flags |= schema::kUnixPassCred;
  rec.sndbuf = static_cast<uint32_t>(sndbuf);
  rec.rcvbuf = static_cast<uint32_t>(rcvbuf);
  rec.peek_off = peek_off;
  // Only a dgram socket or a connected one has a queue (recv on the others is EINVAL).
  if (rec.state == schema::kUnixListening ||
      (d.type != SOCK_DGRAM && rec.state == schema::kUnixUnconnected))
    return {};

  CR_TRY_ASSIGN(Peeked q, peek_queue(s.get(), d.type, tree_.undo));
  if (q.messages.empty()) return {};
  // Restore sends the queue again: from the peer of a pair (a peer gone is replaced by a
  // socket of crrestore's own, closed after sending), else to the name, each datagram from
  // the socket of the tree bound to its sender's name, or from an unnamed one. A datagram
  // whose sender cannot send it again that way would come back from the wrong address.
  const bool peer_gone = rec.state == schema::kUnixPeerGone;
  const bool mutual = peer_gone || (rec.state == schema::kUnixConnected &&
                                    entries_.at(d.peer_ino).diag.peer_ino == d.ino);
  if (!mutual && d.name.empty())
    return make_error("unnamed unix " + type_name(d.type) +
                      " socket with queued data and no peer to send it again not supported yet");
  for (const std::string& sender : q.senders) {
    if (sender.empty()) continue;
    bool ok = false;
    if (mutual)
      ok = !peer_gone && entries_.at(d.peer_ino).diag.name == sender;
    else
      ok = std::count_if(entries_.begin(), entries_.end(), [&](const auto& o) {
             return o.second.diag.type == SOCK_DGRAM && o.second.diag.name == sender;
           }) == 1;
    if (!ok)
      return make_error("unix dgram socket with datagrams queued from '" +
                        socket_name_text(sender) +
                        "' (their sender cannot be restored) not supported yet");
  }
  // Credentials in flight: sent again by crrestore once the tree exists (the kernel wants
  // their pid to), by the peer; so only a pair's queue, from processes of the tree.
  for (size_t i = 0; i < q.creds.size(); ++i) {
    if (!q.creds[i]) continue;
    const pid_t pid = q.creds[i]->pid;
    const DumpContext* sender = tree_.find(pid);
    if (!mutual)
      return make_error("unix " + type_name(d.type) +
                        " socket with credentials in flight (SO_PASSCRED) from sockets other "
                        "than its peer not supported yet");
    if (!q.rights[i].empty())
      return make_error(
          "unix socket with a message carrying both fds and credentials in "
          "flight not supported yet");
    if (sender == nullptr)
      return make_error("unix socket with credentials in flight from pid " + std::to_string(pid) +
                        ", not a process of the tree (it could not send them again)");
  }
  for (size_t i = 0; i < q.messages.size(); ++i) {
    std::vector<uint64_t> files;
    for (const ScopedFd& f : q.rights[i]) {
      // Sent again by the peer with the queue; datagrams others sent go to the name instead.
      if (!mutual)
        return make_error("unix " + type_name(d.type) +
                          " socket with fds in flight from a socket other than its peer not "
                          "supported yet");
      CR_TRY_ASSIGN(uint32_t id, file_of(f.get()));
      files.push_back(id);
      tree_.procs.front()->process.flags |= schema::kProcessUnixRights;
    }
    std::optional<schema::UnixSocketCreds> creds;
    if (q.creds[i])
      creds = schema::UnixSocketCreds{e.id, 0, static_cast<uint32_t>(q.creds[i]->pid),
                                      q.creds[i]->uid, q.creds[i]->gid};
    tree_.files.unix_data.push_back({e.id,
                                     i < q.senders.size() ? std::move(q.senders[i]) : std::string(),
                                     std::move(q.messages[i]), std::move(files), creds});
  }
  return {};
}

Status UnixSocketCollector::finish(const std::function<Result<uint32_t>(int)>& file_of) {
  std::map<std::pair<std::string, std::string>, int> bound;  // (dir, name) -> fd binding it
  for (size_t i = 0; i < order_.size(); ++i) {
    const Entry& e = entries_.at(order_[i]);
    const std::string where =
        (e.proc == tree_.procs.front().get() ? "" : "pid " + std::to_string(e.proc->pid) + ": ") +
        fd_name(e.fd);
    schema::UnixSocket rec;
    auto st = describe(e, rec, file_of);
    if (!st.ok()) {
      CR_TRY(tree_.refuse(e.proc->pid, std::move(st).error().wrap(where)));
      continue;  // a dry run: the next socket
    }
    if (rec.peer_ino != 0) {
      const Entry& peer = entries_.at(rec.peer_ino);
      for (size_t j = 0; j < i; ++j)
        if (order_[j] == rec.peer_ino) rec.peer = peer.id;
    }
    // Every path or abstract name is bound once at restore: by its listener, or by the one
    // socket holding it. Accepted sockets get theirs from their listener; those whose listener
    // is closed (a connected stream or seqpacket showing a name its unnamed peer does not)
    // from a stand-in listener, as many as share the name.
    const bool connected =
        rec.state == schema::kUnixConnected || rec.state == schema::kUnixPeerGone;
    const bool accepted = connected && e.diag.type != SOCK_DGRAM &&
                          (listener_named(e) != nullptr || rec.state == schema::kUnixPeerGone ||
                           entries_.at(rec.peer_ino).diag.name.empty());
    if (!e.diag.name.empty() && !accepted) {
      auto [it, fresh] = bound.emplace(std::make_pair(rec.dir, e.diag.name), e.fd);
      if (!fresh)
        CR_TRY(tree_.refuse(
            e.proc->pid, make_error(where + ": unix sockets at fd " + std::to_string(it->second) +
                                    " and " + std::to_string(e.fd) + " share the name '" +
                                    socket_name_text(e.diag.name) + "' not supported yet")));
    }
    tree_.files.unix_sockets.push_back(std::move(rec));
  }
  return {};
}

}  // namespace cr::dump
