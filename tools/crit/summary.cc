#include "tools/crit/summary.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>

#include "common/text.h"

namespace cr::crit {

std::string prot_text(uint64_t prot, uint64_t map_flags) {
  std::string s = "----";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  s[3] = (map_flags & MAP_SHARED) ? 's' : 'p';
  return s;
}

std::string vma_kind_text(uint64_t kind) {
  switch (kind) {
    case schema::kVmaAnon:
      return "anon";
    case schema::kVmaDroppable:
      return "droppable";
    case schema::kVmaFilePrivate:
      return "file";
    case schema::kVmaHeap:
      return "heap";
    case schema::kVmaStack:
      return "stack";
    case schema::kVmaVdso:
      return "vdso";
    case schema::kVmaVvar:
      return "vvar";
    case schema::kVmaVvarVclock:
      return "vvar_vclock";
    case schema::kVmaFileShared:
      return "file-shared";
    case schema::kVmaAnonShared:
      return "shmem";
    case schema::kVmaShmemPrivate:
      return "shmem-priv";
    case schema::kVmaSysvShm:
      return "sysv-shm";
  }
  return "kind" + std::to_string(kind);
}

std::string file_kind_text(uint64_t kind) {
  switch (kind) {
    case schema::kFileRegular:
      return "reg";
    case schema::kFileDirectory:
      return "dir";
    case schema::kFileDevice:
      return "dev";
    case schema::kFilePipe:
      return "pipe";
    case schema::kFileFifo:
      return "fifo";
    case schema::kFileTty:
      return "tty";
    case schema::kFileDeleted:
      return "deleted";
    case schema::kFileExternal:
      return "external";
    case schema::kFileEventfd:
      return "eventfd";
    case schema::kFileSignalfd:
      return "signalfd";
    case schema::kFileTimerfd:
      return "timerfd";
    case schema::kFilePtyMaster:
      return "pty-master";
    case schema::kFilePtySlave:
      return "pty-slave";
    case schema::kFileEpoll:
      return "epoll";
    case schema::kFileMemfd:
      return "memfd";
    case schema::kFileUnixSocket:
      return "unix";
    case schema::kFileNetlinkSocket:
      return "netlink";
    case schema::kFileInetSocket:
      return "inet";
    case schema::kFileGhostNode:
      return "deleted-node";
    case schema::kFileProcPid:
      return "proc";
  }
  return "kind" + std::to_string(kind);
}

std::string unix_socket_text(const Fields& f) {
  const uint64_t type = f.u("type"), state = f.u("state"), shut = f.u("shutdown");
  std::string s = type == SOCK_STREAM      ? "stream"
                  : type == SOCK_DGRAM     ? "dgram"
                  : type == SOCK_SEQPACKET ? "seqpacket"
                                           : "type " + std::to_string(type);
  s += state == schema::kUnixListening   ? " listening backlog " + std::to_string(f.u("backlog"))
       : state == schema::kUnixConnected ? " connected peer ino " + std::to_string(f.u("peer_ino"))
       : state == schema::kUnixPeerGone  ? " connected, peer closed"
       : state == schema::kUnixExternal  ? " connected outside to " + printable(f.s("peer_name"), 108)
       : state == schema::kUnixConnecting
           ? " connecting to listener ino " + std::to_string(f.u("peer_ino")) + ", not accepted"
           : " unconnected";
  std::string_view name = f.s("name");
  if (!name.empty() && name[0] == '\0')
    s += " name @" + printable(name.substr(1), 108);
  else if (!name.empty())
    s += " name " + printable(name, 108) +
         (f.s("dir").empty() ? "" : " in " + printable(f.s("dir"), 120));
  if (shut != 0)
    s += std::string(" shutdown") + ((shut & 1) ? " rd" : "") + ((shut & 2) ? " wr" : "");
  return s;
}

namespace {

std::string generic(const Fields& f) {
  std::string s;
  for (const auto& v : f.all()) {
    if (!s.empty()) s += ' ';
    s += field_text(v);
  }
  return s;
}

std::string q(std::string_view s) { return "\"" + printable(s, 120) + "\""; }

std::string open_flags_text(uint64_t flags) {
  std::string s;
  switch (flags & O_ACCMODE) {
    case O_RDONLY:
      s = "O_RDONLY";
      break;
    case O_WRONLY:
      s = "O_WRONLY";
      break;
    default:
      s = "O_RDWR";
  }
  if (flags & O_APPEND) s += "|O_APPEND";
  if (flags & O_NONBLOCK) s += "|O_NONBLOCK";
  if (flags & O_DIRECTORY) s += "|O_DIRECTORY";
  return s;
}

using Summarizer = std::function<std::string(const Fields&, std::span<const uint8_t>, uint32_t)>;

const std::map<std::string, Summarizer, std::less<>>& summarizers() {
  using T = std::span<const uint8_t>;
  static const std::map<std::string, Summarizer, std::less<>> table = {
      {"stream_header",
       [](const Fields& f, T, uint32_t) {
         return "arch " + std::to_string(f.u("arch")) + ", page " +
                std::to_string(f.u("page_size")) + ", kernel " + q(f.s("kernel_release")) +
                ", tool " + q(f.s("tool_version")) + ", host " + q(f.s("hostname")) +
                ", root pid " + std::to_string(f.u("root_pid"));
       }},
      {"schema_type",
       [](const Fields& f, T, uint32_t) {
         const auto* fields = f.get("fields");
         const size_t n = fields == nullptr || fields->bytes.empty()
                              ? 0
                              : 1 + std::count(fields->str().begin(), fields->str().end(), ',');
         char id[16];
         std::snprintf(id, sizeof id, "0x%04llx", static_cast<unsigned long long>(f.u("type_id")));
         return std::string(id) + " " + std::string(f.s("name")) + ": " + std::to_string(n) +
                (n == 1 ? " field" : " fields") + (f.u("has_tail") ? " + tail" : "");
       }},
      {"trailer",
       [](const Fields& f, T, uint32_t) {
         char crc[16];
         std::snprintf(crc, sizeof crc, "%08llx",
                       static_cast<unsigned long long>(f.u("stream_crc")));
         return std::to_string(f.u("record_count")) + " records before, stream crc " + crc;
       }},
      {"error", [](const Fields& f, T, uint32_t) { return q(f.s("message")); }},
      {"process",
       [](const Fields& f, T, uint32_t) {
         return "pid " + std::to_string(f.u("pid")) + " ppid " + std::to_string(f.u("ppid")) +
                " pgid " + std::to_string(f.u("pgid")) + " sid " + std::to_string(f.u("sid")) +
                " comm " + q(f.s("comm")) + " threads " + std::to_string(f.u("nthreads"));
       }},
      {"creds",
       [](const Fields& f, T, uint32_t) {
         const auto* g = f.get("groups");
         return "pid " + std::to_string(f.u("pid")) + " uid " + std::to_string(f.u("uid")) +
                " euid " + std::to_string(f.u("euid")) + " gid " + std::to_string(f.u("gid")) +
                " egid " + std::to_string(f.u("egid")) + " groups " +
                std::to_string(g ? g->count() : 0) + " cap_eff " + hex(f.u("cap_eff"));
       }},
      {"fs",
       [](const Fields& f, T, uint32_t) {
         return "pid " + std::to_string(f.u("pid")) + " cwd " + q(f.s("cwd")) + " root " +
                q(f.s("root"));
       }},
      {"mm",
       [](const Fields& f, T, uint32_t) {
         return "pid " + std::to_string(f.u("pid")) + " brk " + hex(f.u("start_brk")) + "-" +
                hex(f.u("brk")) + " stack " + hex(f.u("start_stack")) + " exe " +
                q(f.s("exe_path"));
       }},
      {"vma",
       [](const Fields& f, T, uint32_t) {
         std::string s = hex(f.u("start")) + "-" + hex(f.u("end")) + " " +
                         prot_text(f.u("prot"), f.u("flags")) + " " + vma_kind_text(f.u("kind"));
         if (!f.s("path").empty()) s += " " + printable(f.s("path"), 120);
         return s + " (pid " + std::to_string(f.u("pid")) + ")";
       }},
      {"pages",
       [](const Fields& f, T tail, uint32_t page) {
         std::string s = hex(f.u("vaddr")) + " +" + std::to_string(f.u("npages")) + " pages";
         if (page != 0 && tail.size() != f.u("npages") * page)
           s += " (tail " + std::to_string(tail.size()) + " bytes!)";
         return s + " (pid " + std::to_string(f.u("pid")) + ")";
       }},
      {"thread",
       [](const Fields& f, T, uint32_t) {
         const auto* regs = f.get("regs");
         std::string s = "pid " + std::to_string(f.u("pid")) + " tid " +
                         std::to_string(f.u("tid")) + " comm " + q(f.s("comm"));
         // user_regs_struct: rip is word 16, rsp word 19.
         if (regs != nullptr && regs->count() > 19)
           s += " rip " + hex(regs->at(16)) + " rsp " + hex(regs->at(19));
         return s + " sigmask " + hex(f.u("sigmask"));
       }},
      {"sigaction",
       [](const Fields& f, T, uint32_t) {
         return "pid " + std::to_string(f.u("pid")) + " sig " + std::to_string(f.u("signo")) +
                " handler " + hex(f.u("handler")) + " flags " + hex(f.u("flags"));
       }},
      {"pending_signal",
       [](const Fields& f, T, uint32_t) {
         const auto* si = f.get("siginfo");
         const uint64_t signo =
             si && si->bytes.size() >= 4 ? format::get_le(si->bytes.data(), 4) : 0;
         return "pid " + std::to_string(f.u("pid")) + " tid " + std::to_string(f.u("tid")) +
                " sig " + std::to_string(signo);
       }},
      {"pipe",
       [](const Fields& f, T, uint32_t) {
         return "#" + std::to_string(f.u("id")) + " ino " + std::to_string(f.u("ino")) +
                " capacity " + std::to_string(f.u("capacity"));
       }},
      {"pipe_data",
       [](const Fields& f, T tail, uint32_t) {
         return "pipe #" + std::to_string(f.u("pipe")) + " " + std::to_string(tail.size()) +
                " bytes";
       }},
      {"file",
       [](const Fields& f, T, uint32_t) {
         std::string s = "#" + std::to_string(f.u("id")) + " " + file_kind_text(f.u("kind"));
         if (!f.s("path").empty()) s += " " + printable(f.s("path"), 120);
         s += " " + open_flags_text(f.u("flags")) + " pos " + std::to_string(f.u("pos"));
         if (f.u("pipe") != 0) s += " pipe #" + std::to_string(f.u("pipe"));
         if (!f.s("key").empty()) s += " key " + q(f.s("key"));
         return s;
       }},
      {"unix_socket",
       [](const Fields& f, T, uint32_t) {
         return "#" + std::to_string(f.u("id")) + " ino " + std::to_string(f.u("ino")) + " " +
                unix_socket_text(f);
       }},
      {"unix_socket_data",
       [](const Fields& f, T tail, uint32_t) {
         return "socket #" + std::to_string(f.u("socket")) + " " + std::to_string(tail.size()) +
                " bytes";
       }},
      {"file_data",
       [](const Fields& f, T tail, uint32_t) {
         return "file #" + std::to_string(f.u("file")) + " offset " +
                std::to_string(f.u("offset")) + " " + std::to_string(tail.size()) + " bytes";
       }},
      {"fd",
       [](const Fields& f, T, uint32_t) {
         return "pid " + std::to_string(f.u("pid")) + " fd " + std::to_string(f.u("fd")) +
                " -> file #" + std::to_string(f.u("file")) +
                ((f.u("fd_flags") & FD_CLOEXEC) ? " cloexec" : "");
       }},
  };
  return table;
}

}  // namespace

std::string summarize(const format::StreamType& type, const Fields& f,
                      std::span<const uint8_t> tail, uint32_t page_size) {
  if (!f.ok()) return "<undecodable: " + f.error() + ">";
  const auto& table = summarizers();
  auto it = table.find(type.name);
  std::string s = it != table.end() ? it->second(f, tail, page_size) : generic(f);
  if (it == table.end() && type.has_tail) s += " tail=" + std::to_string(tail.size()) + "B";
  return s;
}

}  // namespace cr::crit
