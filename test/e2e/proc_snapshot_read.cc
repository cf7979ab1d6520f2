// Reading a live tree for proc_snapshot.h: every file through sys::ProcDir, its text handed
// to the flatteners of proc_snapshot.cc.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include "proc_snapshot.h"
#include "sys/proc_parse.h"
#include "sys/rtnetlink.h"

namespace cr::e2e {
namespace {

// A tree's own mount table, each mount as its parent's mount point and the rest of its line,
// sorted. Not compared: mount ids (a restore mounts again, and the kernel numbers each new
// mount), and the device of a filesystem made anew (the tree's proc and tmpfs instances get
// the next free anonymous device), which stays only for the filesystems the harness has too.
std::string canon_mountinfo(const std::string& text) {
  auto lines = sys::parse_mountinfo(text);
  if (!lines) return text;
  auto own = sys::ProcDir::open(::getpid());
  std::set<std::pair<uint32_t, uint32_t>> ours;
  if (own)
    if (auto t = own->read("mountinfo"))
      if (auto l = sys::parse_mountinfo(*t))
        for (const auto& m : *l) ours.insert({m.major, m.minor});
  std::map<uint32_t, std::string> point;
  for (const auto& m : *lines) point[m.id] = m.mount_point;
  std::vector<std::string> out;
  for (const auto& m : *lines) {
    const auto p = point.find(m.parent);
    const bool host_dev = ours.count({m.major, m.minor}) != 0;
    out.push_back((p == point.end() ? std::string("-") : p->second) + " " +
                  (host_dev ? std::to_string(m.major) + ":" + std::to_string(m.minor) : "new") +
                  " " + m.root + " " + m.mount_point + " " + m.options + " [" + m.propagation +
                  "] " + m.fstype + " " + m.source + " " + m.super_options);
  }
  std::sort(out.begin(), out.end());
  std::string joined;
  for (const auto& l : out) joined += l + "\n";
  return joined;
}

std::string errno_text(const Error& e) {
  return std::string("!") + strerrorname_np(e.code ? e.code : EIO);
}

std::string uts_names(pid_t pid) {
  const int ns = ::open(("/proc/" + std::to_string(pid) + "/ns/uts").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return std::string("!") + strerrorname_np(errno);
  std::string out;
  std::thread reader([&] {
    struct utsname u {};
    if (::setns(ns, CLONE_NEWUTS) != 0 || ::uname(&u) != 0) {
      out = std::string("!") + strerrorname_np(errno);
      return;
    }
    out = std::string(u.nodename) + " " + u.domainname;
  });
  reader.join();
  ::close(ns);
  return out;
}

// A net namespace of the tree's own as a thread of ours that joins it sees it: the sysctls
// crtools keeps (/proc/sys/net shows the opener's namespace), one "name=value" a line.
std::string net_sysctls(pid_t pid) {
  const int ns = ::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return std::string("!") + strerrorname_np(errno);
  std::string out;
  std::thread reader([&] {
    if (::setns(ns, CLONE_NEWNET) != 0) {
      out = std::string("!") + strerrorname_np(errno);
      return;
    }
    for (const char* name : sys::kNetSysctls) {
      char buf[128] = {};
      const int fd = ::open((std::string("/proc/sys/net/") + name).c_str(), O_RDONLY | O_CLOEXEC);
      const ssize_t n = fd < 0 ? -1 : ::read(fd, buf, sizeof buf - 1);
      if (fd >= 0) ::close(fd);
      out += std::string(name) + "=" + (n < 0 ? "?" : std::string(buf, static_cast<size_t>(n)));
    }
  });
  reader.join();
  ::close(ns);
  return out;
}

// /proc/PID/net/{tcp,udp,tcp6,udp6} without what a restore renumbers or a kernel timer moves
// (slot, queues, timers, inode): local and remote address and state, sorted.
std::string net_sockets(const std::string& text) {
  std::vector<std::string> rows;
  size_t at = text.find('\n');
  while (at != std::string::npos && at + 1 < text.size()) {
    const size_t end = text.find('\n', at + 1);
    const std::string line = text.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    at = end;
    char local[64] = {}, remote[64] = {}, st[8] = {};
    if (std::sscanf(line.c_str(), "%*s %63s %63s %7s", local, remote, st) == 3)
      rows.push_back(std::string(local) + " " + remote + " " + st);
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  for (const auto& r : rows) out += r + "\n";
  return out;
}

std::string read_or_error(const sys::ProcDir& d, const std::string& name) {
  auto r = d.read(name);
  return r ? std::move(*r) : errno_text(r.error());
}

std::string link_or_error(const sys::ProcDir& d, const std::string& name) {
  auto r = d.readlink(name);
  return r ? std::move(*r) : errno_text(r.error());
}

std::string chomp(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// /proc/PID/cgroup read by a thread of ours that joins PID's cgroup namespace: the file shows
// paths from its reader's namespace root.
std::string cgroup_inside(pid_t pid) {
  const int ns =
      ::open(("/proc/" + std::to_string(pid) + "/ns/cgroup").c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return std::string("!") + strerrorname_np(errno);
  std::string out;
  std::thread reader([&] {
    if (::setns(ns, CLONE_NEWCGROUP) != 0) {
      out = std::string("!") + strerrorname_np(errno);
      return;
    }
    auto d = sys::ProcDir::open(pid);
    if (!d) {
      out = errno_text(d.error());
      return;
    }
    out = chomp(read_or_error(*d, "cgroup"));
  });
  reader.join();
  ::close(ns);
  return out;
}

// cmdline and environ: NUL-separated; shown with "\0" so an empty argument still counts.
std::string nul_text(std::string s) {
  std::string out;
  for (char c : s) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return out;
}

// "130 0x7ffd... 0x8 ..." -> "130"; "running" stays.
std::string syscall_nr(const std::string& text) {
  return text.substr(0, text.find_first_of(" \n"));
}

std::string sorted_words(const std::string& text) {
  std::vector<long> v;
  for (const auto& w : sys::parse_children(text)) v.push_back(w);
  std::sort(v.begin(), v.end());
  std::string out;
  for (long x : v) out += (out.empty() ? "" : " ") + std::to_string(x);
  return out;
}

std::vector<pid_t> tasks_of(pid_t pid) {
  auto d = sys::ProcDir::open(pid);
  if (!d) return {};
  auto t = d->tasks();
  return t ? *t : std::vector<pid_t>{};
}

// The files that are per thread, for the leader (prefix "PID/") or another thread
// ("PID/task/TID/"); `rel` is where the thread's files are relative to /proc/PID.
void add_thread_files(Snapshot& s, const sys::ProcDir& d, const std::string& prefix,
                      const std::string& rel) {
  add_status(s, prefix, read_or_error(d, rel + "status"));
  add_stat(s, prefix, read_or_error(d, rel + "stat"));
  s[prefix + "comm"] = chomp(read_or_error(d, rel + "comm"));
  s[prefix + "children"] = sorted_words(read_or_error(d, rel + "children"));
  s[prefix + "syscall"] = syscall_nr(read_or_error(d, rel + "syscall"));
  s[prefix + "attr/current"] = chomp(read_or_error(d, rel + "attr/current"));
  s[prefix + "attr/apparmor/current"] = chomp(read_or_error(d, rel + "attr/apparmor/current"));
}

void add_process(Snapshot& s, pid_t pid, Canon& canon) {
  const std::string p = std::to_string(pid) + "/";
  auto dr = sys::ProcDir::open(pid);
  if (!dr) {
    s[p + "exists"] = errno_text(dr.error());
    return;
  }
  const sys::ProcDir& d = *dr;
  add_thread_files(s, d, p, "task/" + std::to_string(pid) + "/");
  add_limits(s, p, read_or_error(d, "limits"));
  for (const char* f :
       {"cgroup", "personality", "timerslack_ns", "oom_score_adj", "loginuid", "sessionid",
        "coredump_filter", "uid_map", "gid_map", "setgroups", "timers"})
    s[p + f] = chomp(read_or_error(d, f));
  s[p + "cmdline"] = nul_text(read_or_error(d, "cmdline"));
  s[p + "environ"] = nul_text(read_or_error(d, "environ"));
  for (const char* f : {"cwd", "root", "exe"}) s[p + f] = link_or_error(d, f);

  // Namespaces: "host" where they are the harness's own.
  std::string mnt_ns;
  for (const char* ns : {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
                         "time_for_children", "user", "uts"}) {
    std::string link = link_or_error(d, std::string("ns/") + ns);
    std::string ours(4096, '\0');
    ssize_t n = readlink((std::string("/proc/self/ns/") + ns).c_str(), ours.data(), ours.size());
    ours.resize(n > 0 ? static_cast<size_t>(n) : 0);
    s[p + "ns/" + ns] = canon_ns(link, ours, canon);
    if (std::string(ns) == "mnt") mnt_ns = s[p + "ns/" + ns];
  }
  // The mount table of the harness's own namespace changes with what other tests on the machine
  // mount; it is compared only for a namespace of the tree's own.
  if (mnt_ns != "host") s[p + "mountinfo"] = canon_mountinfo(read_or_error(d, "mountinfo"));
  // The names of a UTS namespace of the tree's own (hostname, domainname): uname on a thread
  // of ours that joins it (setns changes the calling thread only).
  if (s[p + "ns/uts"] != "host") s[p + "uts"] = uts_names(d.pid());
  // A time namespace of the tree's own: its clock offsets (those of the namespace the task
  // makes its children in, its own unless it unshared since).
  if (s[p + "ns/time"] != "host" || s[p + "ns/time_for_children"] != "host")
    s[p + "timens_offsets"] = chomp(read_or_error(d, "timens_offsets"));
  // A cgroup namespace of the tree's own: the cgroups as the task sees them (paths from the
  // namespace's root), read from inside it.
  if (s[p + "ns/cgroup"] != "host") s[p + "cgroup_inside"] = cgroup_inside(d.pid());
  // A net namespace of the tree's own: its IPv4 routes, IPv6 addresses, sysctls and the
  // sockets in it (/proc/PID/net shows the task's namespace).
  if (s[p + "ns/net"] != "host") {
    s[p + "net/route"] = read_or_error(d, "net/route");
    // The kernel lists IPv6 addresses from a hash table: the order is not the program's.
    std::string six = read_or_error(d, "net/if_inet6");
    std::vector<std::string> rows;
    for (size_t at = 0; at < six.size();) {
      const size_t end = six.find('\n', at);
      rows.push_back(six.substr(at, end == std::string::npos ? end : end - at));
      at = end == std::string::npos ? six.size() : end + 1;
    }
    std::sort(rows.begin(), rows.end());
    six.clear();
    for (const auto& r : rows) six += r + "\n";
    s[p + "net/if_inet6"] = six;
    s[p + "net/sysctls"] = net_sysctls(d.pid());
    for (const char* f : {"net/tcp", "net/udp", "net/tcp6", "net/udp6"})
      s[p + f] = net_sockets(read_or_error(d, f));
  }

  // fds: every link first (so an epoll's watch can name its target's canonical inode).
  auto fds = d.fds();
  if (!fds) {
    s[p + "fd"] = errno_text(fds.error());
  } else {
    std::vector<std::pair<int, std::string>> links;
    for (int fd : *fds) {
      std::string link = link_or_error(d, "fd/" + std::to_string(fd));
      s[p + "fd/" + std::to_string(fd)] = canon_link(link, canon);
      links.emplace_back(fd, link);
    }
    for (auto& [fd, link] : links)
      add_fdinfo(s, p, fd, link, read_or_error(d, "fdinfo/" + std::to_string(fd)), canon);
  }

  std::string smaps = read_or_error(d, "smaps");
  add_smaps(s, p, smaps, canon);
  // map_files: the link's mode says how the file behind the mapping was opened (r or rw).
  for (const MergedMap& mm : merged_maps(smaps, nullptr)) {
    if (mm.pieces.front().inode == 0) continue;
    std::string modes;
    for (const sys::MapEntry& m : mm.pieces) {
      std::string entry = sys::map_files_entry(m.start, m.end);
      struct stat st {};
      std::string mode;
      if (fstatat(d.fd(), entry.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        mode = std::string("!") + strerrorname_np(errno);
      } else {
        char buf[16];
        snprintf(buf, sizeof buf, "%o", st.st_mode);
        mode = buf;
      }
      if (modes.find(mode) == std::string::npos) modes += (modes.empty() ? "" : ",") + mode;
    }
    s[p + "map_files/" + mm.range()] = modes;
  }

  auto tids = d.tasks();
  if (!tids) return;
  for (pid_t tid : *tids) {
    if (tid == pid) continue;
    const std::string tp = p + "task/" + std::to_string(tid) + "/";
    add_thread_files(s, d, tp, "task/" + std::to_string(tid) + "/");
    // timerslack_ns of a thread is shown only at /proc/TID, and looking a thread up there
    // keeps its tid taken after the process is gone (clone3 with set_tid then fails with
    // EEXIST, seen on 6.18): not read. The leader's is read at /proc/PID.
  }
}

}  // namespace

std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> out;
  auto d = sys::ProcDir::open(pid);
  if (!d) return out;
  for (pid_t tid : tasks_of(pid)) {
    auto text = d->read("task/" + std::to_string(tid) + "/children");
    if (!text) continue;
    for (pid_t c : sys::parse_children(*text)) out.push_back(c);
  }
  return out;
}

std::vector<pid_t> tree_pids(pid_t root) {
  std::vector<pid_t> out = {root}, todo = {root};
  while (!todo.empty()) {
    pid_t pid = todo.back();
    todo.pop_back();
    for (pid_t c : child_pids(pid)) {
      out.push_back(c);
      todo.push_back(c);
    }
  }
  std::sort(out.begin() + 1, out.end());
  return out;
}

Snapshot take_snapshot(pid_t root) {
  Snapshot s;
  Canon canon;
  std::vector<pid_t> pids = tree_pids(root);
  for (pid_t pid : pids) add_process(s, pid, canon);
  std::string locks;
  int fd = open("/proc/locks", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) locks.append(buf, static_cast<size_t>(n));
    close(fd);
  }
  add_locks(s, locks, pids);
  return s;
}

bool wait_quiescent(pid_t root, std::chrono::milliseconds limit, const Snapshot* like) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  // Each round records every task with the syscall it waits in; quiescent means no task runs
  // and two rounds read the same. A task at "-1" is blocked outside a system call (a page fault
  // of a program still starting under load); it must stay so for a while before it counts.
  std::vector<std::pair<pid_t, std::string>> last;
  int rounds_outside_syscall = 0;
  for (;;) {
    std::vector<std::pair<pid_t, std::string>> now;
    bool blocked = true;
    bool outside_syscall = false;
    for (pid_t pid : tree_pids(root)) {
      auto d = sys::ProcDir::open(pid);
      if (!d) continue;
      for (pid_t tid : tasks_of(pid)) {
        if (like) {
          const std::string key = std::to_string(pid) + "/" +
                                  (tid == pid ? "" : "task/" + std::to_string(tid) + "/") +
                                  "syscall";
          auto was = like->find(key);
          if (was == like->end() || was->second == "running") continue;
        }
        auto sc = d->read("task/" + std::to_string(tid) + "/syscall");
        std::string nr = sc ? sc->substr(0, sc->find(' ')) : "";
        if (nr.starts_with("running")) blocked = false;
        if (nr == "-1") outside_syscall = true;
        now.emplace_back(tid, std::move(nr));
      }
    }
    rounds_outside_syscall = outside_syscall ? rounds_outside_syscall + 1 : 0;
    if (blocked && (like || (now == last && (!outside_syscall || rounds_outside_syscall > 200))))
      return true;
    last = std::move(now);
    if (std::chrono::steady_clock::now() > deadline) return false;
    // A polling interval, not a synchronisation: the condition is re-read each round.
    poll(nullptr, 0, 1);
  }
}

}  // namespace cr::e2e
