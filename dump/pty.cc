// Pseudo-terminal pairs whose master is open in the tree: one Pty record each, read through
// copies of the tree's own fds (pidfd_getfd: a reopen of /dev/ptmx would make a new pair), and
// the checks that keep a restore from losing part of one (queued bytes, holders outside the
// tree, a controlling terminal of a session that is not the tree's).
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/text.h"
#include "dump/passes.h"
#include "sys/linux_abi.h"

namespace cr::dump {

namespace {

std::string pts_name(uint32_t index) { return "/dev/pts/" + std::to_string(index); }

Result<int> int_ioctl(int fd, unsigned long req, const char* name) {
  int v = 0;
  if (::ioctl(fd, req, &v) != 0) return errno_error(name);
  return v;
}

// Bytes waiting in either direction. n_tty cannot show them without consuming them, so a pair
// holding any is refused rather than restored without them.
Status check_queues(const PtyEnds& e, int master, int slave) {
  const std::string fd = "fd " + std::to_string(e.master_fd) + ": pty with ";
  const std::string pts = pts_name(e.index);
  CR_TRY_ASSIGN(int out, int_ioctl(master, FIONREAD, "FIONREAD on the master"));
  CR_TRY_ASSIGN(int in, int_ioctl(slave, FIONREAD, "FIONREAD on the slave"));
  CR_TRY_ASSIGN(int mq, int_ioctl(master, TIOCOUTQ, "TIOCOUTQ on the master"));
  CR_TRY_ASSIGN(int sq, int_ioctl(slave, TIOCOUTQ, "TIOCOUTQ on the slave"));
  if (in + mq > 0)
    return make_error(fd + "unread input (" + std::to_string(in + mq) + " bytes for the slave " +
                      pts + ") not supported yet");
  if (out + sq > 0)
    return make_error(fd + "unread output (" + std::to_string(out + sq) + " bytes from the slave " +
                      pts + ") not supported yet");
  // In packet mode a status change not yet read shows as POLLPRI (poll reads nothing).
  pollfd pfd{master, POLLPRI, 0};
  if (::poll(&pfd, 1, 0) < 0) return errno_error("poll the master");
  if ((pfd.revents & POLLPRI) != 0)
    return make_error(fd + "an unread packet-mode status (" + pts + ") not supported yet");
  return {};
}

// The slave's session must be one the tree restores: led by a tree process, its foreground
// group led by one too, and every process of the session holding the terminal (a restored
// session member gets it by inheritance from its leader).
Status check_session(const DumpTree& tree, const schema::Pty& p, uint32_t tty_nr) {
  // Read here: the files pass runs before process_info fills DumpContext::stat (all frozen).
  std::vector<ProcStat> stats;
  for (const auto& c : tree.procs) {
    if (c->zombie) continue;
    CR_TRY_ASSIGN(std::string text, c->proc.read("stat"));
    CR_TRY_ASSIGN(ProcStat st, parse_stat(text));
    stats.push_back(std::move(st));
  }
  const std::string what = "pty " + pts_name(p.index);
  if (p.sid == 0) {
    for (const auto& st : stats)
      if (st.tty_nr == tty_nr)
        return make_error(what + ": controlling terminal of pid " + std::to_string(st.pid) +
                          " without a session");
    return {};
  }
  auto leads = [&](uint32_t pid, bool group) {
    for (const auto& st : stats)
      if (static_cast<uint32_t>(st.pid) == pid &&
          static_cast<uint32_t>(group ? st.pgrp : st.session) == pid &&
          static_cast<uint32_t>(st.session) == p.sid)
        return true;
    return false;
  };
  if (!leads(p.sid, false))
    return make_error(what + " is the controlling terminal of session " + std::to_string(p.sid) +
                      ", which is not led inside the process tree");
  if (p.pgrp != 0 && !leads(p.pgrp, true))
    return make_error(what + ": foreground process group " + std::to_string(p.pgrp) +
                      " is not led inside the process tree");
  for (const auto& st : stats) {
    const bool in_session = static_cast<uint32_t>(st.session) == p.sid;
    if (in_session != (st.tty_nr == tty_nr))
      return make_error("pid " + std::to_string(st.pid) + (in_session ? " has dropped " : " has ") +
                        "controlling terminal " + pts_name(p.index) + " of session " +
                        std::to_string(p.sid) + ": not supported yet");
  }
  return {};
}

// The terminal's modes and window size, as TCGETS2 and TIOCGWINSZ report them, into `r`.
template <class Record>
Status read_modes(int fd, const std::string& what, Record& r) {
  sys::KTermios2 t{};
  if (::ioctl(fd, sys::kTcgets2, &t) != 0) return errno_error(what + ": TCGETS2");
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return errno_error(what + ": TIOCGWINSZ");
  sys::modes_to_record(t, ws, r);
  return {};
}

}  // namespace

uint32_t pty_tty_nr(dev_t rdev) {
  // new_encode_dev(), as /proc/PID/stat prints tty_nr.
  const uint32_t ma = major(rdev), mi = minor(rdev);
  return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

Result<schema::Pty> read_pty(const DumpTree& tree, const PtyEnds& e) {
  const std::string what =
      "fd " + std::to_string(e.master_fd) + ": pty master of " + pts_name(e.index);
  if (e.slave_pid == 0)
    return make_error(what + " with no slave open in the process tree not supported yet");
  // The slave must be the /dev/pts/N crrestore will open: the same devpts instance.
  struct stat st {};
  if (::stat(pts_name(e.index).c_str(), &st) != 0 || st.st_dev != e.slave_st.st_dev ||
      st.st_rdev != e.slave_st.st_rdev)
    return make_error(what + ": on another devpts instance than /dev/pts not supported yet");
  CR_TRY_ASSIGN(ScopedFd master, copy_task_fd(tree, e.master_pid, e.master_fd));
  CR_TRY_ASSIGN(ScopedFd slave, copy_task_fd(tree, e.slave_pid, e.slave_fd));
  CR_TRY_ASSIGN(int index, int_ioctl(master.get(), TIOCGPTN, "TIOCGPTN"));
  if (static_cast<uint32_t>(index) != e.index)
    return make_error(what + ": TIOCGPTN says " + std::to_string(index));
  CR_TRY(check_queues(e, master.get(), slave.get()));

  schema::Pty p;
  p.index = e.index;
  // On a master, termios and window size requests act on its slave.
  CR_TRY(read_modes(master.get(), what, p));
  CR_TRY_ASSIGN(int pkt, int_ioctl(master.get(), TIOCGPKT, "TIOCGPKT"));
  CR_TRY_ASSIGN(int lck, int_ioctl(master.get(), TIOCGPTLCK, "TIOCGPTLCK"));
  CR_TRY_ASSIGN(int excl, int_ioctl(slave.get(), TIOCGEXCL, "TIOCGEXCL"));
  p.flags = (pkt ? uint32_t{schema::kPtyPacket} : 0u) | (lck ? uint32_t{schema::kPtyLocked} : 0u) |
            (excl ? uint32_t{schema::kPtyExclusive} : 0u);
  // Through the master these answer for the slave without being in its session.
  pid_t sid = 0, pgrp = 0;
  if (::ioctl(master.get(), TIOCGSID, &sid) != 0) {
    if (errno != ENOTTY) return errno_error(what + ": TIOCGSID");
    sid = 0;  // no session has it as its controlling terminal
  }
  if (sid != 0 && ::ioctl(master.get(), TIOCGPGRP, &pgrp) != 0)
    return errno_error(what + ": TIOCGPGRP");
  p.sid = static_cast<uint32_t>(sid);
  p.pgrp = static_cast<uint32_t>(pgrp);
  CR_TRY(check_session(tree, p, pty_tty_nr(e.slave_st.st_rdev)));
  struct stat node {};
  if (::fstat(slave.get(), &node) != 0) return errno_error(what + ": fstat of the slave");
  p.slave_uid = node.st_uid;
  p.slave_gid = node.st_gid;
  p.slave_mode = node.st_mode;
  return p;
}

Result<schema::ShellTty> read_shell_tty(const DumpTree& tree, pid_t pid, int fd,
                                        const struct stat& st, const std::string& link) {
  const std::string what = "fd " + std::to_string(fd) + ": terminal " + link;
  CR_TRY_ASSIGN(ScopedFd tty, copy_task_fd(tree, pid, fd));
  schema::ShellTty s;
  s.path = link;
  s.rdev = st.st_rdev;
  CR_TRY(read_modes(tty.get(), what, s));
  // A session leader of the tree with this terminal as its controlling terminal gets it back
  // (TIOCSCTTY at restore); stat shows it as tty_nr, and the foreground group as tpgid.
  const uint32_t tty_nr = pty_tty_nr(st.st_rdev);
  for (const auto& c : tree.procs) {
    if (c->zombie) continue;
    CR_TRY_ASSIGN(std::string text, c->proc.read("stat"));
    CR_TRY_ASSIGN(ProcStat ps, parse_stat(text));
    if (ps.session != ps.pid || ps.tty_nr != tty_nr) continue;
    s.sid = static_cast<uint32_t>(ps.pid);
    s.pgrp = ps.tpgid > 0 ? static_cast<uint32_t>(ps.tpgid) : 0;
  }
  return s;
}

Status check_pty_holders(const DumpTree& tree, const std::vector<schema::Pty>& ptys) {
  if (ptys.empty()) return {};
  std::set<uint32_t> indexes;
  std::map<uint32_t, uint32_t> by_tty_nr;  // the slave's tty_nr -> its index
  for (const auto& p : ptys) {
    indexes.insert(p.index);
    struct stat st {};
    if (::stat(pts_name(p.index).c_str(), &st) == 0) by_tty_nr[pty_tty_nr(st.st_rdev)] = p.index;
  }
  std::string found;
  any_outside_process(tree, [&](const ProcDir& proc, const std::vector<int>& fds) {
    if (proc.pid() == ::getpid()) return false;  // crdump's own copies of the tree's fds
    const std::string who = "pid " + std::to_string(proc.pid());
    if (auto text = proc.read("stat"); text.ok())
      if (auto s = parse_stat(*text); s.ok() && by_tty_nr.count(s->tty_nr) != 0) {
        found = pts_name(by_tty_nr[s->tty_nr]) + " is the controlling terminal of " + who;
        return true;
      }
    for (int fd : fds) {
      auto st = proc.stat("fd/" + std::to_string(fd));
      if (!st.ok() || !S_ISCHR(st->st_mode)) continue;
      if (major(st->st_rdev) == 5 && minor(st->st_rdev) == 2) {
        auto info = proc.read("fdinfo/" + std::to_string(fd));
        if (!info.ok()) continue;
        auto parsed = parse_fdinfo(*info);
        if (parsed.ok() && parsed->tty_index >= 0 &&
            indexes.count(static_cast<uint32_t>(parsed->tty_index)) != 0) {
          found = "the master of " + pts_name(static_cast<uint32_t>(parsed->tty_index)) +
                  " is also open in " + who + " fd " + std::to_string(fd);
          return true;
        }
      } else if (auto it = by_tty_nr.find(pty_tty_nr(st->st_rdev)); it != by_tty_nr.end()) {
        found = pts_name(it->second) + " is also open in " + who + " fd " + std::to_string(fd);
        return true;
      }
    }
    return false;
  });
  if (!found.empty()) return make_error("pty " + found + ", outside the process tree");
  return {};
}

}  // namespace cr::dump
