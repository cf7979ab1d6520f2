// crit x ps|fds|mems: views across records (processes, fd tables, address spaces), built from
// the field names of the stream's own description.
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <set>

#include "schema/records.h"
#include "tools/crit/crit.h"
#include "tools/crit/summary.h"

namespace cr::crit {

namespace {

// Calls `fn(type_name, fields, tail)` for every record of the image.
// `page_size`, when given, receives the stream header's page size.
template <class Fn>
void for_each_record(const std::string& path, bool verify, Fn&& fn, uint32_t* page_size = nullptr) {
  Image img = open_image(path, /*bookkeeping=*/false, verify);
  auto& r = *img.reader;
  if (page_size != nullptr && r.header().page_size != 0) *page_size = r.header().page_size;
  while (take(r.next())) {
    const auto* t = r.describe(r.type());
    if (t == nullptr) continue;
    Fields f(*t, r.fields());
    if (!f.ok()) fail("offset " + std::to_string(r.offset()) + ": " + f.error());
    fn(t->name, f, r.tail());
  }
}

int x_ps(const std::string& path, bool verify) {
  std::printf("%-8s %-8s %-8s %-8s %-8s %s\n", "PID", "PPID", "PGID", "SID", "THREADS", "COMM");
  std::map<uint64_t, uint64_t> thread_records;
  struct Proc {
    uint64_t pid, ppid, pgid, sid, nthreads;
    std::string comm;
    uint64_t flags, exit_status;
  };
  std::vector<Proc> procs;
  for_each_record(path, verify,
                  [&](const std::string& type, const Fields& f, std::span<const uint8_t>) {
                    if (type == "process")
                      procs.push_back({f.u("pid"), f.u("ppid"), f.u("pgid"), f.u("sid"),
                                       f.u("nthreads"), std::string(f.s("comm")), f.u("flags"),
                                       f.u("exit_status")});
                    else if (type == "thread")
                      ++thread_records[f.u("pid")];
                  });
  for (const auto& p : procs) {
    std::string threads = std::to_string(p.nthreads);
    const uint64_t seen = thread_records.count(p.pid) ? thread_records[p.pid] : 0;
    if (seen != p.nthreads) threads += " (" + std::to_string(seen) + " stored)";
    std::string comm = printable(p.comm, 64);
    if ((p.flags & cr::schema::kProcessZombie) != 0) {
      const int st = static_cast<int>(p.exit_status);
      comm += WIFSIGNALED(st) ? " <zombie: killed by signal " + std::to_string(WTERMSIG(st)) + ">"
                              : " <zombie: exit " + std::to_string(WEXITSTATUS(st)) + ">";
    }
    std::printf("%-8llu %-8llu %-8llu %-8llu %-8s %s\n", static_cast<unsigned long long>(p.pid),
                static_cast<unsigned long long>(p.ppid), static_cast<unsigned long long>(p.pgid),
                static_cast<unsigned long long>(p.sid), threads.c_str(), comm.c_str());
  }
  return 0;
}

// EPOLL* bits by name, e.g. "IN|ERR|HUP|ET"; bits without a name in hex.
std::string epoll_events_text(uint64_t events) {
  static const std::pair<uint64_t, const char*> kNames[] = {
      {0x001, "IN"},        {0x002, "PRI"},        {0x004, "OUT"},    {0x008, "ERR"},
      {0x010, "HUP"},       {0x040, "RDNORM"},     {0x080, "RDBAND"}, {0x100, "WRNORM"},
      {0x200, "WRBAND"},    {0x400, "MSG"},        {0x2000, "RDHUP"}, {1u << 28, "EXCLUSIVE"},
      {1u << 29, "WAKEUP"}, {1u << 30, "ONESHOT"}, {1u << 31, "ET"}};
  std::string s;
  for (const auto& [bit, name] : kNames)
    if ((events & bit) != 0) {
      s += s.empty() ? "" : "|";
      s += name;
      events &= ~bit;
    }
  if (events != 0) s += (s.empty() ? "" : "|") + hex(events);
  return s.empty() ? "0" : s;
}

std::string octal(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0%llo", static_cast<unsigned long long>(v));
  return buf;
}

// "seals write,grow" from F_GET_SEALS bits; F_SEAL_SEAL alone is a memfd that never allowed
// sealing.
std::string seals_text(uint64_t seals) {
  static constexpr std::pair<uint64_t, const char*> kNames[] = {
      {0x1, "seal"}, {0x2, "shrink"}, {0x4, "grow"}, {0x8, "write"}, {0x10, "future_write"},
      {0x20, "exec"}};
  std::string s;
  for (const auto& [bit, name] : kNames)
    if ((seals & bit) != 0) s += std::string(s.empty() ? "" : ",") + name;
  if ((seals & ~uint64_t{0x3f}) != 0) s += (s.empty() ? "" : ",") + hex(seals & ~uint64_t{0x3f});
  return s.empty() ? "none" : s;
}

int x_fds(const std::string& path, bool verify) {
  struct FileInfo {
    std::string text;
    uint64_t refs = 0;
  };
  std::map<uint64_t, FileInfo> files;                                  // by objdef id
  std::map<uint64_t, std::vector<std::pair<uint64_t, uint64_t>>> fds;  // pid -> (fd, file id)
  std::map<uint64_t, uint64_t> pipe_bytes;                             // pipe id -> queued bytes
  std::map<uint64_t, std::string> ptys;                                // pty id -> its summary
  std::map<uint64_t, std::vector<std::string>> watches;                // epoll file id -> lines
  std::map<uint64_t, std::string> memfds;  // Shmem id -> its name, size and seals
  std::map<uint64_t, std::string> sockets;                             // unix socket id -> text
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> sock_queued;       // id -> (records, bytes)
  std::map<uint64_t, uint64_t> sock_by_ino;                            // ino -> unix socket id
  for_each_record(path, verify,
                  [&](const std::string& type, const Fields& f, std::span<const uint8_t> tail) {
                    if (type == "pty") {
                      std::string s = "/dev/pts/" + std::to_string(f.u("index"));
                      if (f.u("sid") != 0)
                        s += " ctty of session " + std::to_string(f.u("sid")) + " fg " +
                             std::to_string(f.u("pgrp"));
                      s += " " + std::to_string(f.u("cols")) + "x" + std::to_string(f.u("rows"));
                      if (f.u("flags") & schema::kPtyPacket) s += " packet";
                      if (f.u("flags") & schema::kPtyLocked) s += " locked";
                      if (f.u("flags") & schema::kPtyExclusive) s += " exclusive";
                      ptys[f.u("id")] = s;
                    } else if (type == "shmem" && f.u("kind") == cr::schema::kShmemMemfd) {
                      memfds[f.u("id")] = " \"" + printable(f.s("name"), 64) + "\" size " +
                                          std::to_string(f.u("file_size")) + " mode " +
                                          octal(f.u("mode")) + " seals " + seals_text(f.u("seals"));
                    } else if (type == "file") {
                      std::string s = file_kind_text(f.u("kind"));
                      if (!f.s("path").empty()) s += " " + printable(f.s("path"), 120);
                      const uint64_t flags = f.u("flags");
                      s += (flags & 3) == 0 ? " r" : (flags & 3) == 1 ? " w" : " rw";
                      s += " flags " + hex(flags) + " pos " + std::to_string(f.u("pos"));
                      if (f.u("pipe") != 0) s += " pipe #" + std::to_string(f.u("pipe"));
                      if (!f.s("key").empty()) s += " key \"" + printable(f.s("key"), 64) + "\"";
                      const uint64_t kind = f.u("kind");
                      if ((kind == schema::kFilePtyMaster || kind == schema::kFilePtySlave) &&
                          ptys.count(f.u("object")) != 0)
                        s += " pty #" + std::to_string(f.u("object")) + " " + ptys[f.u("object")];
                      if (f.u("kind") == cr::schema::kFileMemfd) {
                        // Written before its files: the Shmem says what the memfd holds.
                        s += " shmem #" + std::to_string(f.u("object"));
                        if (memfds.count(f.u("object"))) s += memfds[f.u("object")];
                      }
                      if (kind == schema::kFileUnixSocket)
                        s += " object #" + std::to_string(f.u("object"));
                      files[f.u("id")].text = s;
                    } else if (type == "unix_socket") {
                      sockets[f.u("id")] = unix_socket_text(f);
                      sock_by_ino[f.u("ino")] = f.u("id");
                    } else if (type == "unix_socket_data") {
                      auto& q = sock_queued[f.u("socket")];
                      ++q.first;
                      q.second += tail.size();
                    } else if (type == "pipe_data") {
                      pipe_bytes[f.u("pipe")] += tail.size();
                    } else if (type == "fd") {
                      fds[f.u("pid")].emplace_back(f.u("fd"), f.u("file"));
                      ++files[f.u("file")].refs;
                    } else if (type == "epoll_item") {
                      const uint64_t ev = f.u("events");
                      std::string w = "watch fd " + std::to_string(f.u("tfd")) + " -> #" +
                                      std::to_string(f.u("target")) + " events " +
                                      epoll_events_text(ev) + " data " + hex(f.u("data"));
                      // A fired EPOLLONESHOT keeps only its flag bits until re-armed.
                      if ((ev & (1u << 30)) != 0 && (ev & 0x0fffffff) == 0) w += " (fired)";
                      watches[f.u("epoll")].push_back(std::move(w));
                    }
                  });
  std::set<uint64_t> watches_shown;
  for (const auto& [pid, list] : fds) {
    std::printf("pid %llu\n", static_cast<unsigned long long>(pid));
    for (const auto& [fd, id] : list) {
      const FileInfo& fi = files[id];
      std::string line = fi.text.empty() ? std::string("<no file record>") : fi.text;
      // Pipe data belongs to the pipe, so any end of it can say how much is queued.
      const auto pos = line.find(" pipe #");
      if (pos != std::string::npos) {
        const uint64_t pipe = std::stoull(line.substr(pos + 7));
        if (pipe_bytes.count(pipe))
          line += " (" + std::to_string(pipe_bytes[pipe]) + " bytes queued)";
      }
      // A unix socket: its type, state, name, peer and queue.
      const auto obj = line.find(" object #");
      if (obj != std::string::npos && line.starts_with("unix")) {
        const uint64_t id = std::stoull(line.substr(obj + 9));
        line += " " + sockets[id];
        const size_t p = line.find("peer ino ");
        if (p != std::string::npos) {
          const size_t end = line.find_first_not_of("0123456789", p + 9);
          const uint64_t ino = std::stoull(line.substr(p + 9));
          if (sock_by_ino.count(ino))
            line.insert(end == std::string::npos ? line.size() : end,
                        " (#" + std::to_string(sock_by_ino[ino]) + ")");
        }
        if (sock_queued.count(id))
          line += ", " + std::to_string(sock_queued[id].second) + " bytes queued in " +
                  std::to_string(sock_queued[id].first) + " records";
      }
      if (fi.refs > 1) line += " [shared: " + std::to_string(fi.refs) + " fds]";
      std::printf("  %4llu -> #%llu %s\n", static_cast<unsigned long long>(fd),
                  static_cast<unsigned long long>(id), line.c_str());
      // An epoll's watches, under the first fd that shows it.
      if (watches.count(id) != 0 && watches_shown.insert(id).second)
        for (const auto& w : watches[id]) std::printf("           %s\n", w.c_str());
    }
  }
  return 0;
}

int x_mems(const std::string& path, bool verify) {
  struct Vma {
    uint64_t start, end, prot, flags, kind;
    std::string path;
    uint64_t pages = 0;
  };
  std::map<uint64_t, std::map<uint64_t, Vma>> vmas;  // pid -> start -> vma
  std::map<uint64_t, uint64_t> stray;                // pid -> pages outside any vma
  uint32_t page_size = 4096;
  for_each_record(
      path, verify,
      [&](const std::string& type, const Fields& f, std::span<const uint8_t>) {
        if (type == "vma") {
          vmas[f.u("pid")][f.u("start")] = Vma{f.u("start"), f.u("end"),  f.u("prot"),
                                               f.u("flags"), f.u("kind"), std::string(f.s("path"))};
        } else if (type == "pages") {
          // A run is counted against every VMA it overlaps (runs normally stay within one).
          auto& m = vmas[f.u("pid")];
          uint64_t addr = f.u("vaddr");
          const uint64_t end = addr + f.u("npages") * page_size;
          auto it = m.upper_bound(addr);
          if (it != m.begin()) --it;
          uint64_t counted = 0;
          for (; it != m.end() && it->second.start < end; ++it) {
            const uint64_t lo = std::max(addr, it->second.start),
                           hi = std::min(end, it->second.end);
            if (lo < hi) {
              it->second.pages += (hi - lo) / page_size;
              counted += (hi - lo) / page_size;
            }
          }
          stray[f.u("pid")] += f.u("npages") - counted;
        }
      },
      &page_size);
  for (const auto& [pid, m] : vmas) {
    std::printf("pid %llu\n", static_cast<unsigned long long>(pid));
    uint64_t total = 0;
    for (const auto& [start, v] : m) {
      std::printf("  %016llx-%016llx %s %-11s %8llu pages  %s\n",
                  static_cast<unsigned long long>(v.start), static_cast<unsigned long long>(v.end),
                  prot_text(v.prot, v.flags).c_str(), vma_kind_text(v.kind).c_str(),
                  static_cast<unsigned long long>(v.pages), printable(v.path, 120).c_str());
      total += v.pages;
    }
    std::printf("  %zu vmas, %llu pages stored", m.size(), static_cast<unsigned long long>(total));
    if (stray[pid] != 0)
      std::printf(", %llu pages outside any vma", static_cast<unsigned long long>(stray[pid]));
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int cmd_x(const std::string& what, const std::string& path, bool verify) {
  if (what == "ps") return x_ps(path, verify);
  if (what == "fds") return x_fds(path, verify);
  if (what == "mems") return x_mems(path, verify);
  fail("x: unknown view '" + what + "' (ps, fds, mems)");
}

}  // namespace cr::crit
