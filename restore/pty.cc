#include "restore/pty.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "sys/linux_abi.h"

namespace cr::restore {

namespace {

constexpr int kCreationFlags = O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY;
constexpr int kSettableFlags = O_APPEND | O_NONBLOCK | O_ASYNC;

std::string pts_name(uint32_t index) { return "/dev/pts/" + std::to_string(index); }

// TIOCSPGRP from a background group stops us with SIGTTOU unless it is blocked.
int set_foreground(int fd, pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  ::sigprocmask(SIG_BLOCK, &ttou, &old);
  const int r = ::ioctl(fd, TIOCSPGRP, &pgrp);
  const int err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return r;
}

Status set_state(const schema::Pty& p, int master) {
  const std::string what = "pty " + pts_name(p.index);
  const sys::KTermios2 t = sys::termios_of_record(p);
  // On a master, termios and window size requests act on its slave.
  if (::ioctl(master, sys::kTcsets2, &t) != 0) return errno_error(what + ": TCSETS2");
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(p.rows);
  ws.ws_col = static_cast<unsigned short>(p.cols);
  ws.ws_xpixel = static_cast<unsigned short>(p.xpixel);
  ws.ws_ypixel = static_cast<unsigned short>(p.ypixel);
  if (::ioctl(master, TIOCSWINSZ, &ws) != 0) return errno_error(what + ": TIOCSWINSZ");
  int pkt = (p.flags & schema::kPtyPacket) != 0 ? 1 : 0;
  if (::ioctl(master, TIOCPKT, &pkt) != 0) return errno_error(what + ": TIOCPKT");
  return {};
}

}  // namespace

Result<PtyMaker::Pair*> PtyMaker::make(const schema::Pty& p) {
  auto it = pairs_.find(p.id);
  if (it != pairs_.end()) return &it->second;
  const std::string what = "pty " + pts_name(p.index);
  std::vector<ScopedFd> lower;  // pairs devpts gave below the index: freed again on return
  ScopedFd master;
  for (;;) {
    ScopedFd m(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!m.valid()) return errno_error(what + ": open /dev/ptmx");
    int n = -1;
    if (::ioctl(m.get(), TIOCGPTN, &n) != 0) return errno_error(what + ": TIOCGPTN");
    if (static_cast<uint32_t>(n) == p.index) {
      master = std::move(m);
      break;
    }
    if (static_cast<uint32_t>(n) > p.index) return Error{what + " is in use", EEXIST};
    lower.push_back(std::move(m));
  }
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) != 0) return errno_error(what + ": TIOCSPTLCK");
  CR_TRY(set_state(p, master.get()));
  const int s = ::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0) return errno_error(what + ": TIOCGPTPEER");
  ScopedFd slave(s);
  // devpts makes the node crrestore's (root) with its default mode; the tree's programs may
  // have been given theirs (grantpt, or a chown by a login program).
  if (p.slave_mode != 0) {
    if (::fchown(slave.get(), p.slave_uid, p.slave_gid) != 0)
      return errno_error(what + ": fchown " + std::to_string(p.slave_uid) + ":" +
                         std::to_string(p.slave_gid));
    if (::fchmod(slave.get(), p.slave_mode & 07777) != 0) return errno_error(what + ": fchmod");
  }
  Pair& pair = pairs_[p.id];
  pair.rec = &p;
  pair.master = std::move(master);
  pair.slave = std::move(slave);
  return &pair;
}

Result<int> PtyMaker::open_master(const schema::Pty& p, uint32_t flags) {
  CR_TRY_ASSIGN(Pair * pair, make(p));
  if (pair->master_used)
    return make_error("pty " + pts_name(p.index) + ": a second open of its master");
  pair->master_used = true;
  int fd = ::fcntl(pair->master.get(), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) return errno_error("pty " + pts_name(p.index) + ": dup master");
  if (::fcntl(fd, F_SETFL, static_cast<int>(flags) & kSettableFlags) != 0) {
    ::close(fd);
    return errno_error("pty " + pts_name(p.index) + ": F_SETFL");
  }
  return fd;
}

Result<int> PtyMaker::open_slave(const schema::Pty& p, uint32_t flags) {
  CR_TRY(make(p));
  const std::string path = pts_name(p.index);
  // O_NOCTTY: crrestore must not take it; the session leader does (restore_controlling_tty).
  int fd = ::open(path.c_str(), (static_cast<int>(flags) & ~kCreationFlags) | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return errno_error("open " + path);
  return fd;
}

Status PtyMaker::finish() {
  for (auto& [id, pair] : pairs_) {
    const std::string what = "pty " + pts_name(pair.rec->index);
    if ((pair.rec->flags & schema::kPtyExclusive) != 0 && ::ioctl(pair.slave.get(), TIOCEXCL) != 0)
      return errno_error(what + ": TIOCEXCL");
    int lock = 1;
    if ((pair.rec->flags & schema::kPtyLocked) != 0 &&
        ::ioctl(pair.master.get(), TIOCSPTLCK, &lock) != 0)
      return errno_error(what + ": TIOCSPTLCK");
  }
  return {};
}

Status restore_controlling_tty(const ProcessImage& shared, const schema::Process& p,
                               const std::map<uint32_t, int>& carriers) {
  for (const auto& [id, pty] : shared.ptys) {
    const bool leader = pty.sid == p.pid && p.sid == p.pid;
    const bool foreground = pty.sid == p.sid && pty.pgrp == p.pid && pty.pgrp != pty.sid;
    if (!leader && !foreground) continue;
    const std::string what = "pty " + pts_name(pty.index);
    // Any slave fd of the tree will do: these requests are about the terminal, not the fd.
    int fd = -1;
    for (const auto& [fid, f] : shared.files)
      if (f.kind == schema::kFilePtySlave && f.object == id && carriers.count(fid) != 0)
        fd = carriers.at(fid);
    if (fd < 0) return make_error(what + ": no slave open to make it a controlling terminal");
    if (leader && ::ioctl(fd, TIOCSCTTY, 0) != 0) return errno_error(what + ": TIOCSCTTY");
    if (foreground && set_foreground(fd, static_cast<pid_t>(pty.pgrp)) != 0)
      return errno_error(what + ": TIOCSPGRP " + std::to_string(pty.pgrp));
  }
  return {};
}

Status restore_shell_ctty(const ProcessImage& shared, const schema::Process& p,
                          const std::map<uint32_t, int>& carriers, std::string& warning) {
  if (!shared.shell_tty) return {};
  const schema::ShellTty& t = *shared.shell_tty;
  const bool leader = t.sid == p.pid && p.sid == p.pid;
  const bool foreground =
      t.sid != 0 && t.sid == p.sid && t.pgrp == p.pid && p.pgid == p.pid && t.pgrp != t.sid;
  if (!leader && !foreground) return {};
  int fd = -1;
  for (const auto& [fid, f] : shared.files)
    if (f.kind == schema::kFileTty && carriers.count(fid) != 0) fd = carriers.at(fid);
  if (fd < 0) return {};  // no fd of the tree on it: nothing to take it through
  if (leader && ::ioctl(fd, TIOCSCTTY, 0) != 0) {
    // EPERM: the session crrestore runs in has it (stealing it would hang that session up).
    warning = "session leader: TIOCSCTTY on the terminal (" + std::string(std::strerror(errno)) +
              "): it stays without a controlling terminal (the terminal is another session's, "
              "as when crrestore runs from a shell on it)";
    return {};
  }
  if (foreground && set_foreground(fd, static_cast<pid_t>(p.pid)) != 0)
    warning = "TIOCSPGRP " + std::to_string(p.pid) + " on the terminal (" +
              std::string(std::strerror(errno)) + "): the group runs in the background";
  return {};
}

Status set_shell_tty_modes(const schema::ShellTty& t, int fd, std::string& warning, bool& resized) {
  // Our controlling terminal with another group in the foreground: someone else's program has
  // it now. (ENOTTY: not our controlling terminal, no job control applies.)
  const pid_t fg = ::tcgetpgrp(fd);
  if (fg >= 0 && fg != ::getpgrp()) {
    warning = "crrestore runs in the background of its terminal: the job's modes (dumped from " +
              t.path + ") are not set";
    return {};
  }
  const sys::KTermios2 k = sys::termios_of_record(t);
  if (::ioctl(fd, sys::kTcsets2, &k) != 0) return errno_error("the terminal: TCSETS2");
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0) resized = ws.ws_row != t.rows || ws.ws_col != t.cols;
  return {};
}

}  // namespace cr::restore
