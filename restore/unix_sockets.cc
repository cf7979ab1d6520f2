// The order matters: sockets are created (a pair with socketpair), named, made listeners; a
// datagram queue that was filled by others gets its messages from a socket of our own while
// it is still unconnected; then connections are made (a client connects to its listener in the
// image, which accepts the other end); then the peers send each other's queues; shutdown and
// the peek offset come last, once nothing more is sent.
#include "restore/unix_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "common/text.h"
#include "sys/fd_passing.h"

namespace cr::restore {

namespace {

// Send buffer of a socket while it puts a queue back (SO_SNDBUFFORCE doubles it).
constexpr int kFillSndbuf = 4 << 20;

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

struct Sock {
  const UnixSocketImage* img = nullptr;
  ScopedFd fd;
  bool accepted = false;  // made by accept() on its listener
  ScopedFd ghost;         // kUnixPeerGone: the stand-in peer that sends its queue, then closes
  const schema::UnixSocket& rec() const { return img->sock; }
};

std::string what(const Sock& s) {
  std::string w = "unix socket " + std::to_string(s.rec().id);
  if (!s.rec().name.empty())
    w += " '" +
         socket_name_text(
             {reinterpret_cast<const char*>(s.rec().name.data()), s.rec().name.size()}) +
         "'";
  return w;
}

// Enters the directory a relative name resolves from, and goes back on every path.
class CwdScope {
 public:
  static Result<CwdScope> enter(const std::string& dir) {
    CwdScope c;
    if (dir.empty()) return c;
    c.old_.reset(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!c.old_.valid()) return errno_error("open the current directory");
    if (::chdir(dir.c_str()) != 0) return errno_error("chdir " + dir);
    return c;
  }
  CwdScope() = default;
  CwdScope(CwdScope&&) = default;
  ~CwdScope() {
    if (old_.valid() && ::fchdir(old_.get()) != 0) {
      // Nothing sensible is left to do: the next relative path would be wrong, so stop here.
      ::abort();
    }
  }

 private:
  ScopedFd old_;
};

std::pair<sockaddr_un, socklen_t> address(const schema::bytes_t& name) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, name.data(), std::min(name.size(), sizeof a.sun_path));
  return {a, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())};
}

// A path name still on disk from the dumped tree is stale when nobody answers at it (connect
// says ECONNREFUSED): it is removed so the name can be bound again. A live socket keeps it.
// The probe uses another socket type, so a live socket only answers EPROTOTYPE.
Status clear_stale_path(const Sock& s) {
  const schema::bytes_t& name = s.rec().name;
  const std::string path(name.begin(), name.end());
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode))
    return make_error(what(s) + ": " + path + " exists and is not a socket");
  ScopedFd probe(::socket(
      AF_UNIX,
      (s.rec().type == SOCK_DGRAM ? SOCK_SEQPACKET : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK,
      0));
  if (!probe.valid()) return errno_error("socket");
  auto [a, len] = address(name);
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), len) == 0 || errno != ECONNREFUSED)
    return make_error(what(s) + ": the name is held by a live socket");
  if (::unlink(path.c_str()) != 0) return errno_error("unlink stale socket " + path);
  return {};
}

// Acts as `as` (a restricted image) for what goes through a path: bind, connect, sendto.
Result<std::optional<FsCredsScope>> act_as(const FsIdentity* as) {
  std::optional<FsCredsScope> scope;
  if (as == nullptr) return scope;
  CR_TRY_ASSIGN(FsCredsScope c, FsCredsScope::enter(*as));
  scope.emplace(std::move(c));
  return scope;
}

// The umask bind makes the socket file with (its mode is 0777 & ~umask), put back after.
class UmaskScope {
 public:
  explicit UmaskScope(mode_t mask) : old_(::umask(mask)) {}
  ~UmaskScope() { ::umask(old_); }
  UmaskScope(const UmaskScope&) = delete;
  UmaskScope& operator=(const UmaskScope&) = delete;

 private:
  mode_t old_;
};

// The file of a path name is made by bind with its dumped owner and mode: nothing is done
// through its path afterwards, where the directory's owner could have swapped in a symlink.
// A restricted image binds as the process holding the socket (the user's rights on the
// directory, the file the user's); otherwise crrestore binds with the dumped owner as its fs
// identity and its capabilities kept.
Status bind_name(const Sock& s, const FsIdentity* as) {
  const auto& r = s.rec();
  const bool path = r.name[0] != '\0';
  std::optional<FsCredsScope> creds;
  if (as != nullptr) {
    CR_TRY_ASSIGN(FsCredsScope c, FsCredsScope::enter(*as));
    creds.emplace(std::move(c));
  } else if (path && r.file_mode != 0) {
    CR_TRY_ASSIGN(FsCredsScope c, FsCredsScope::enter({r.file_uid, r.file_gid, {}}, true));
    creds.emplace(std::move(c));
  }
  CR_TRY_ASSIGN(CwdScope cwd, CwdScope::enter(r.dir));
  if (path) CR_TRY(clear_stale_path(s));
  auto [a, len] = address(r.name);
  std::optional<UmaskScope> mask;
  if (path && r.file_mode != 0) mask.emplace(~r.file_mode & 0777);
  if (::bind(s.fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
    return errno_error(what(s) + ": bind" + (r.dir.empty() ? "" : " in " + r.dir) +
                       (as == nullptr ? "" : " as uid " + std::to_string(as->fsuid)));
  return {};
}

Status connect_to(int fd, const Sock& s, const Sock& target, const FsIdentity* as) {
  CR_TRY_ASSIGN(auto creds, act_as(as));
  CR_TRY_ASSIGN(CwdScope cwd, CwdScope::enter(target.rec().dir));
  auto [a, len] = address(target.rec().name);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), len) != 0)
    return errno_error(what(s) + ": connect to " + what(target));
  return {};
}

Status send_all(int from, const std::vector<uint8_t>& msg, uint32_t type, const std::string& w,
                const sockaddr_un* to = nullptr, socklen_t tolen = 0) {
  size_t off = 0;
  do {
    ssize_t n = ::sendto(from, msg.data() + off, msg.size() - off, MSG_DONTWAIT | MSG_NOSIGNAL,
                         reinterpret_cast<const sockaddr*>(to), tolen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(w + ": put back " + std::to_string(msg.size()) + " queued bytes");
    off += static_cast<size_t>(n);
    if (type != SOCK_STREAM && off != msg.size()) return make_error(w + ": message cut short");
  } while (off < msg.size());
  return {};
}

Status set_int(int fd, int opt, int v, const std::string& w, const char* name) {
  if (::setsockopt(fd, SOL_SOCKET, opt, &v, sizeof v) != 0)
    return errno_error(w + ": setsockopt " + name + " " + std::to_string(v));
  return {};
}

// getsockopt reports twice what was asked; the FORCE variants pass the limits (we are root).
Status set_buffers(int fd, const schema::UnixSocket& r, const std::string& w) {
  if (r.sndbuf != 0)
    CR_TRY(set_int(fd, SO_SNDBUFFORCE, static_cast<int>(r.sndbuf / 2), w, "SO_SNDBUFFORCE"));
  if (r.rcvbuf != 0)
    CR_TRY(set_int(fd, SO_RCVBUFFORCE, static_cast<int>(r.rcvbuf / 2), w, "SO_RCVBUFFORCE"));
  return {};
}
Status set_buffers(const Sock& s) { return set_buffers(s.fd.get(), s.rec(), what(s)); }

// What comes once nothing more is sent: shutdown, SO_PASSCRED (on before the queue was sent
// the kernel would have added crrestore's credentials to it), the peek offset.
Status finish_socket(int fd, const schema::UnixSocket& r, const std::string& w) {
  const uint32_t rd = 1, wr = 2;  // RCV_SHUTDOWN, SEND_SHUTDOWN
  if (r.shutdown != 0) {
    int how = (r.shutdown & (rd | wr)) == (rd | wr) ? SHUT_RDWR
              : (r.shutdown & rd)                   ? SHUT_RD
                                                    : SHUT_WR;
    if (::shutdown(fd, how) != 0) return errno_error(w + ": shutdown");
  }
  if ((r.flags & schema::kUnixPassCred) != 0) CR_TRY(set_int(fd, SO_PASSCRED, 1, w, "SO_PASSCRED"));
  if (r.peek_off >= 0) CR_TRY(set_int(fd, SO_PEEK_OFF, r.peek_off, w, "SO_PEEK_OFF"));
  return {};
}

// One queued message with the credentials it carried, all of it (a stream's run may go in
// several sends, each with them: the kernel joins runs of the same credentials).
Status send_with_creds(int from, const std::vector<uint8_t>& msg, uint32_t type,
                       const schema::UnixSocketCreds& c, const std::string& w) {
  const ucred u{static_cast<pid_t>(c.pid), c.uid, c.gid};
  size_t off = 0;
  do {
    const ssize_t n = sys::send_with_creds(from, msg.data() + off, msg.size() - off, u,
                                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0)
      return errno_error(w + ": put back a message with the credentials of pid " +
                         std::to_string(c.pid));
    off += static_cast<size_t>(n);
    if (type != SOCK_STREAM && off != msg.size()) return make_error(w + ": message cut short");
  } while (off < msg.size());
  return {};
}

class Builder {
 public:
  Builder(const std::map<uint32_t, UnixSocketImage>& images, const Privileges& priv,
          const std::map<uint32_t, schema::File>& files, const FileOpener& open_file,
          LateUnixQueues& late)
      : priv_(priv), files_(files), open_file_(open_file), late_(late) {
    for (const auto& [id, img] : images) {
      Sock& s = socks_[id];
      s.img = &img;
      by_ino_[img.sock.ino] = &s;
    }
  }

  Result<std::map<uint32_t, ScopedFd>> run() {
    for (auto& [id, s] : socks_) {
      if (s.rec().state == schema::kUnixConnected && by_ino_.count(s.rec().peer_ino) == 0)
        return make_error(what(s) + ": its peer socket:[" + std::to_string(s.rec().peer_ino) +
                          "] is not in the image");
    }
    CR_TRY(check_pending());
    // Accepted: a connected stream or seqpacket showing its listener's name, or a name its
    // unnamed (or closed) peer does not: its listener is closed, a stand-in takes its place.
    for (auto& [id, s] : socks_) {
      if ((!gone(s) && s.rec().state != schema::kUnixConnected) || s.rec().type == SOCK_DGRAM ||
          s.rec().name.empty())
        continue;
      s.accepted = listener_of(s) != nullptr || gone(s) || peer(s).rec().name.empty();
    }
    CR_TRY(create());
    for (auto& [id, s] : socks_) {
      if (s.accepted) continue;
      CR_TRY(set_buffers(s));
      if (!s.rec().name.empty()) CR_TRY(bind_name(s, as(s)));
      if (s.rec().state == schema::kUnixListening &&
          ::listen(s.fd.get(), static_cast<int>(s.rec().backlog)) != 0)
        return errno_error(what(s) + ": listen");
    }
    for (auto& [id, s] : socks_)
      if (!s.img->queue.empty() && !mutual(s)) CR_TRY(fill_from_outside(s));
    CR_TRY(connect_all());
    standins_.clear();                  // closed as the dumped listener was; a path keeps its file
    std::set<const Sock*> finish_late;  // a queue with credentials: its receiver and sender
    for (auto& [id, s] : socks_)
      if (!s.img->creds.empty()) {
        if (!mutual(s))
          return make_error(what(s) + ": credentials in flight from other sockets than its peer");
        LateUnixQueues::Queue q;
        q.what = what(s);
        q.img = s.img;
        if (gone(s)) {
          q.from = s.ghost.get();
          q.ghost = std::move(s.ghost);
        } else {
          q.from = peer(s).fd.get();
          q.from_rec = &peer(s).rec();
          finish_late.insert(&peer(s));
        }
        finish_late.insert(&s);
        late_.queues.push_back(std::move(q));
      }
    for (auto& [id, s] : socks_)
      if (!s.img->queue.empty() && mutual(s) && s.img->creds.empty()) {
        // The queue is charged to the sender until read, in skbs cut otherwise than the
        // original's: the sender gets room for it all, then its own buffer size back.
        const int from = gone(s) ? s.ghost.get() : peer(s).fd.get();
        CR_TRY(set_int(from, SO_SNDBUFFORCE, kFillSndbuf, what(s), "SO_SNDBUFFORCE"));
        for (size_t i = 0; i < s.img->queue.size(); ++i) {
          auto r = s.img->rights.find(i);
          if (r == s.img->rights.end())
            CR_TRY(send_all(from, s.img->queue[i], s.rec().type, what(s)));
          else
            CR_TRY(send_with_rights(from, s, s.img->queue[i], r->second));
        }
        if (!gone(s)) CR_TRY(set_buffers(peer(s)));
      }
    // The stand-ins close: a stream sees its peer gone (both directions shut) as it was.
    for (auto& [id, s] : socks_) s.ghost.reset();
    pending_ghosts_.clear();
    // Every connection to a name is made: the names whose file was unlinked lose it again.
    for (auto& [id, s] : socks_) CR_TRY(unlink_name(s));
    std::map<uint32_t, ScopedFd> out;
    for (auto& [id, s] : socks_) {
      if (finish_late.count(&s) != 0)
        late_.finishes.push_back({what(s), s.fd.get(), &s.rec()});
      else
        CR_TRY(finish_socket(s.fd.get(), s.rec(), what(s)));
      out[id] = std::move(s.fd);
    }
    return out;
  }

 private:
  Sock& peer(const Sock& s) { return *by_ino_.at(s.rec().peer_ino); }
  const FsIdentity* as(const Sock& s) const { return priv_.for_socket(s.rec().id); }
  static bool gone(const Sock& s) { return s.rec().state == schema::kUnixPeerGone; }
  // Its queue is sent by its peer (or the stand-in of a peer gone), not by a socket to its name.
  bool mutual(const Sock& s) {
    if (gone(s)) return true;
    return s.rec().state == schema::kUnixConnected &&
           peer(s).rec().state == schema::kUnixConnected && peer(s).rec().peer_ino == s.rec().ino;
  }

  // The listener of the image whose name an accepted socket shows.
  Sock* listener_of(const Sock& s) {
    if (s.rec().name.empty()) return nullptr;
    for (auto& [id, o] : socks_)
      if (o.rec().state == schema::kUnixListening && o.rec().type == s.rec().type &&
          o.rec().name == s.rec().name && o.rec().dir == s.rec().dir)
        return &o;
    return nullptr;
  }

  // The listener an accepted socket comes from: the image's, or a stand-in bound to the name
  // (its listener was closed), one per name whichever sockets share it.
  Result<Sock*> listener_for(const Sock& s) {
    if (Sock* l = listener_of(s)) return l;
    for (auto& st : standins_)
      if (st->rec().name == s.rec().name && st->rec().dir == s.rec().dir &&
          st->rec().type == s.rec().type)
        return st.get();
    auto img = std::make_unique<UnixSocketImage>();
    img->sock = s.rec();
    img->sock.state = schema::kUnixListening;
    img->queue.clear();
    auto st = std::make_unique<Sock>();
    st->img = img.get();
    st->fd.reset(::socket(AF_UNIX, static_cast<int>(s.rec().type) | SOCK_CLOEXEC, 0));
    if (!st->fd.valid()) return errno_error(what(s) + ": socket for its closed listener");
    CR_TRY(bind_name(*st, as(s)));
    if (::listen(st->fd.get(), SOMAXCONN) != 0) return errno_error(what(s) + ": listen");
    standin_images_.push_back(std::move(img));
    standins_.push_back(std::move(st));
    return standins_.back().get();
  }

  Status create() {
    for (auto& [id, s] : socks_) {
      if (s.fd.valid() || s.accepted) continue;
      const int type = static_cast<int>(s.rec().type) | SOCK_CLOEXEC;
      if (gone(s)) {
        int sv[2];
        if (::socketpair(AF_UNIX, type, 0, sv) != 0) return errno_error(what(s) + ": socketpair");
        s.fd.reset(sv[0]);
        s.ghost.reset(sv[1]);
        continue;
      }
      if (mutual(s) && !peer(s).accepted) {
        int sv[2];
        if (::socketpair(AF_UNIX, type, 0, sv) != 0) return errno_error(what(s) + ": socketpair");
        s.fd.reset(sv[0]);
        peer(s).fd.reset(sv[1]);
        continue;
      }
      s.fd.reset(::socket(AF_UNIX, type, 0));
      if (!s.fd.valid()) return errno_error(what(s) + ": socket");
    }
    return {};
  }

  // Datagrams others sent to a named socket come back sent to the name while the receiver is
  // not connected yet (a connected one takes only its peer's): each from the socket bound to
  // its sender's name, or from an unnamed socket of our own.
  Status fill_from_outside(const Sock& s) {
    const auto& r = s.rec();
    if (r.name.empty()) return make_error(what(s) + ": queued data and no way to send it again");
    ScopedFd tmp(::socket(AF_UNIX, static_cast<int>(r.type) | SOCK_CLOEXEC, 0));
    if (!tmp.valid()) return errno_error("socket");
    CR_TRY(set_int(tmp.get(), SO_SNDBUFFORCE, kFillSndbuf, what(s), "SO_SNDBUFFORCE"));
    CR_TRY_ASSIGN(auto creds, act_as(as(s)));
    CR_TRY_ASSIGN(CwdScope cwd, CwdScope::enter(r.dir));
    auto [a, len] = address(r.name);
    for (size_t i = 0; i < s.img->queue.size(); ++i) {
      int from = tmp.get();
      Sock* sender = nullptr;
      if (i < s.img->senders.size() && !s.img->senders[i].empty()) {
        sender = named(s.img->senders[i]);
        if (sender == nullptr)
          return make_error(
              what(s) + ": no socket of the image is named '" +
              socket_name_text({reinterpret_cast<const char*>(s.img->senders[i].data()),
                                s.img->senders[i].size()}) +
              "', which sent a queued datagram");
        from = sender->fd.get();
        CR_TRY(set_int(from, SO_SNDBUFFORCE, kFillSndbuf, what(*sender), "SO_SNDBUFFORCE"));
      }
      CR_TRY(send_all(from, s.img->queue[i], r.type, what(s), &a, len));
      if (sender != nullptr) CR_TRY(set_buffers(*sender));
    }
    return {};
  }

  // The dgram socket of the image bound to `name`.
  Sock* named(const schema::bytes_t& name) {
    for (auto& [id, o] : socks_)
      if (o.rec().type == SOCK_DGRAM && o.rec().name == name && o.fd.valid()) return &o;
    return nullptr;
  }

  Status connect_all() {
    std::vector<Sock*> one_way;  // connected to a socket connected elsewhere (dgram)
    for (auto& [id, s] : socks_) {
      if (s.rec().state == schema::kUnixExternal) {
        // --ext-unix-sk: to the outside peer's path again, as the process holding it.
        const std::string& path = s.rec().peer_name;
        if (path.empty() || path[0] != '/' || path.size() >= sizeof(sockaddr_un::sun_path))
          return make_error(what(s) + ": external peer path '" + path + "' is not absolute");
        CR_TRY_ASSIGN(auto creds, act_as(as(s)));
        auto [a, len] = address(schema::bytes_t(path.begin(), path.end()));
        if (::connect(s.fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0)
          return errno_error(what(s) + ": connect to its external peer " + path);
        continue;
      }
      if (gone(s) && s.accepted) {
        // Accepted, its client gone: a stand-in client connects, then closes once it has sent.
        CR_TRY_ASSIGN(Sock * l, listener_for(s));
        s.ghost.reset(::socket(AF_UNIX, static_cast<int>(s.rec().type) | SOCK_CLOEXEC, 0));
        if (!s.ghost.valid()) return errno_error(what(s) + ": socket");
        CR_TRY(connect_to(s.ghost.get(), s, *l, as(s)));
        s.fd.reset(::accept4(l->fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!s.fd.valid()) return errno_error(what(*l) + ": accept");
        CR_TRY(set_buffers(s));
        continue;
      }
      if (s.rec().state != schema::kUnixConnected || s.accepted) continue;
      Sock& p = peer(s);
      if (mutual(s) && !p.accepted) continue;  // a socketpair
      if (p.accepted) {
        CR_TRY_ASSIGN(Sock * l, listener_for(p));
        CR_TRY(connect_to(s.fd.get(), s, *l, as(s)));
        p.fd.reset(::accept4(l->fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!p.fd.valid()) return errno_error(what(*l) + ": accept");
        CR_TRY(set_buffers(p));
        continue;
      }
      if (p.rec().name.empty())
        return make_error(what(s) + ": connected to unnamed " + what(p) +
                          ", which cannot be reached");
      one_way.push_back(&s);
    }
    CR_TRY(connect_one_way(one_way));
    for (auto& [id, s] : socks_) CR_TRY(connect_pending(s));
    return {};
  }

  // A listener's pending list names sockets of the image connecting to it, and only those
  // name it: each connects once, whatever the image says. (One set over every list: a hostile
  // image's long lists cost no more than reading them.)
  Status check_pending() {
    std::set<uint64_t> pending;
    for (const auto& [id, s] : socks_) {
      const auto& r = s.rec();
      if (!r.pending.empty() && r.state != schema::kUnixListening)
        return make_error(what(s) + ": connections pending on a socket that is not a listener");
      for (uint64_t ino : r.pending) {
        if (ino == 0) continue;
        auto c = by_ino_.find(ino);
        if (c == by_ino_.end() || c->second->rec().state != schema::kUnixConnecting ||
            c->second->rec().peer_ino != r.ino)
          return make_error(what(s) + ": pending connection from socket:[" + std::to_string(ino) +
                            "], which is not a socket of the image connecting to it");
        if (!pending.insert(ino).second)
          return make_error(what(s) + ": socket:[" + std::to_string(ino) + "] pending twice");
      }
    }
    for (const auto& [id, s] : socks_)
      if (s.rec().state == schema::kUnixConnecting && pending.count(s.rec().ino) == 0)
        return make_error(what(s) + ": connecting to socket:[" + std::to_string(s.rec().peer_ino) +
                          "], which is not a listener of the image holding it pending");
    return {};
  }

  // A listener's accept queue, in its order: the tree's clients connect to it, and a stand-in
  // for each client outside (closed at the end). Non-blocking: a queue longer than the
  // backlog the image gives fails (EAGAIN) rather than waiting for an accept that never comes.
  Status connect_pending(const Sock& l) {
    for (uint64_t ino : l.rec().pending) {
      int fd = -1;
      if (ino == 0) {
        pending_ghosts_.emplace_back(
            ::socket(AF_UNIX, static_cast<int>(l.rec().type) | SOCK_CLOEXEC, 0));
        if (!pending_ghosts_.back().valid()) return errno_error(what(l) + ": socket");
        fd = pending_ghosts_.back().get();
      } else {
        fd = by_ino_.at(ino)->fd.get();
      }
      const Sock& c = ino == 0 ? l : *by_ino_.at(ino);
      const int fl = ::fcntl(fd, F_GETFL);
      if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return errno_error("fcntl");
      auto st = connect_to(fd, c, l, as(c));
      if (::fcntl(fd, F_SETFL, fl) != 0) return errno_error("fcntl");
      CR_TRY(std::move(st));
    }
    return {};
  }

  // kUnixNameUnlinked: the file bind made goes, as the original's had. Only a socket file is
  // removed (the name was free when bound; whatever is there now and is not one stays).
  Status unlink_name(const Sock& s) {
    const auto& r = s.rec();
    if ((r.flags & schema::kUnixNameUnlinked) == 0 || r.name.empty() || r.name[0] == '\0')
      return {};
    CR_TRY_ASSIGN(auto creds, act_as(as(s)));
    CR_TRY_ASSIGN(CwdScope cwd, CwdScope::enter(r.dir));
    const std::string path(r.name.begin(), r.name.end());
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return {};  // another socket of the name did it
    if (!S_ISSOCK(st.st_mode) || ::unlink(path.c_str()) != 0)
      return make_error(what(s) + ": cannot unlink " + path + " again (its file was unlinked)");
    return {};
  }

  // A dgram socket takes a connect only while it is unconnected or connected to the one
  // connecting (else EPERM): with A connected to B and B to C, A connects before B does.
  // Each socket connects once every socket connecting to it has; the kernel's rule makes a
  // cycle of three or more impossible, so the walk always ends.
  Status connect_one_way(const std::vector<Sock*>& pending) {
    std::map<uint64_t, int> incoming;  // by ino: connects into that socket still to make
    for (Sock* s : pending) ++incoming[s->rec().peer_ino];
    std::vector<Sock*> left = pending;
    while (!left.empty()) {
      std::vector<Sock*> later;
      for (Sock* s : left) {
        if (incoming[s->rec().ino] > 0) {
          later.push_back(s);
          continue;
        }
        CR_TRY(connect_to(s->fd.get(), *s, peer(*s), as(*s)));
        --incoming[s->rec().peer_ino];
      }
      if (later.size() == left.size())
        return make_error(what(*left.front()) + ": its dgram connections form a cycle");
      left = std::move(later);
    }
    return {};
  }

  // One queued message and the fds that came with it, in one sendmsg (the whole message: a
  // stream's run that carries fds is a buffer of its own, as the sender's was).
  Status send_with_rights(int from, const Sock& s, const std::vector<uint8_t>& msg,
                          const std::vector<uint32_t>& ids) {
    std::vector<int> fds;
    for (uint32_t id : ids) {
      const schema::File& f = files_.at(id);
      if (f.kind == schema::kFileUnixSocket) {
        auto it = socks_.find(f.object);
        if (it == socks_.end() || !it->second.fd.valid())
          return make_error(what(s) + ": the unix socket in flight (file " + std::to_string(id) +
                            ") is not one of the image");
        fds.push_back(it->second.fd.get());
        continue;
      }
      auto fd = open_file_(f);
      if (!fd.ok()) return std::move(fd).error().wrap(what(s) + ": file in flight");
      fds.push_back(*fd);
    }
    const ssize_t n =
        sys::send_with_fds(from, msg.data(), msg.size(), fds, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno_error(what(s) + ": put back a message with its fds in flight");
    if (static_cast<size_t>(n) != msg.size())
      return make_error(what(s) + ": a message with fds in flight cut short");
    return {};
  }

  const Privileges& priv_;
  const std::map<uint32_t, schema::File>& files_;
  const FileOpener& open_file_;
  LateUnixQueues& late_;
  std::map<uint32_t, Sock> socks_;  // by UnixSocket id: the stream's order
  std::map<uint64_t, Sock*> by_ino_;
  std::vector<std::unique_ptr<UnixSocketImage>> standin_images_;
  std::vector<std::unique_ptr<Sock>> standins_;  // listeners standing in for closed ones
  std::vector<ScopedFd> pending_ghosts_;         // clients outside, in a listener's queue
};

}  // namespace

Result<std::map<uint32_t, ScopedFd>> create_unix_sockets(
    const std::map<uint32_t, UnixSocketImage>& sockets, const Privileges& priv,
    const std::map<uint32_t, schema::File>& files, const FileOpener& open_file,
    LateUnixQueues& late) {
  return Builder(sockets, priv, files, open_file, late).run();
}

Status LateUnixQueues::send(const std::set<pid_t>& tree_pids) {
  for (Queue& q : queues) {
    CR_TRY(set_int(q.from, SO_SNDBUFFORCE, kFillSndbuf, q.what, "SO_SNDBUFFORCE"));
    const auto& r = q.img->sock;
    for (size_t i = 0; i < q.img->queue.size(); ++i) {
      auto c = q.img->creds.find(i);
      if (c == q.img->creds.end()) {
        CR_TRY(send_all(q.from, q.img->queue[i], r.type, q.what));
        continue;
      }
      if (tree_pids.count(static_cast<pid_t>(c->second.pid)) == 0)
        return make_error(q.what + ": credentials in flight of pid " +
                          std::to_string(c->second.pid) + ", not a process of the tree");
      CR_TRY(send_with_creds(q.from, q.img->queue[i], r.type, c->second, q.what));
    }
    if (q.from_rec != nullptr) CR_TRY(set_buffers(q.from, *q.from_rec, q.what + "'s peer"));
    q.ghost.reset();  // a peer gone: it closes, as it had
  }
  for (const Finish& f : finishes) CR_TRY(finish_socket(f.fd, *f.rec, f.what));
  queues.clear();
  finishes.clear();
  return {};
}

}  // namespace cr::restore
