// Parsers for the text files of /proc/PID. Every parser takes the file's text as a
// std::string_view, so tests feed canned text; reading the files is ProcDir's job.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"

namespace cr::sys {

/// /proc/PID opened once; files are read relative to it with openat.
class ProcDir {
 public:
  static Result<ProcDir> open(pid_t pid);
  pid_t pid() const { return pid_; }
  int fd() const { return dir_.get(); }
  /// Whole text of a file under /proc/PID ("status", "fdinfo/3").
  Result<std::string> read(const std::string& name) const;
  /// Target of a symlink under /proc/PID ("exe", "fd/3").
  Result<std::string> readlink(const std::string& name) const;
  /// stat(2) following the link ("fd/3", "map_files/7f..-7f..").
  Result<struct stat> stat(const std::string& name) const;
  /// lstat(2): the link itself (a map_files entry's mode is its file's open mode).
  Result<struct stat> lstat(const std::string& name) const;
  /// The numbered entries of a directory under /proc/PID ("task", "fd"), ascending. A listing
  /// is a snapshot: threads and fds come and go.
  Result<std::vector<int>> numbered(const char* dir) const;
  /// Every process's pid in /proc, ascending (a snapshot).
  static Result<std::vector<int>> all_pids();
  /// The thread ids in task/, ascending.
  Result<std::vector<pid_t>> tasks() const { return numbered("task"); }
  /// The open fds in fd/, ascending.
  Result<std::vector<int>> fds() const { return numbered("fd"); }

 private:
  pid_t pid_ = 0;
  ScopedFd dir_;
};

/// The /proc/PID/map_files entry of the mapping [start, end) ("map_files/7f..-7f..").
std::string map_files_entry(uint64_t start, uint64_t end);

/// The memfd_create() name in the link of a memfd's fd or map_files entry ("/memfd:NAME
/// (deleted)": the kernel adds the suffix once, so a name ending in " (deleted)" keeps it);
/// nullopt when it is not a memfd's link.
std::optional<std::string> memfd_name(std::string_view shown);

// ---- maps / smaps

/// One line of /proc/PID/maps, plus VmFlags when it came from smaps.
struct MapEntry {
  uint64_t start = 0, end = 0;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0;  // bytes
  uint32_t dev_major = 0, dev_minor = 0;
  uint64_t inode = 0;
  std::string path;                   // as shown, without a " (deleted)" suffix
  bool deleted = false;               // the path ended in " (deleted)"
  std::vector<std::string> vm_flags;  // two-letter smaps VmFlags ("rd", "dd", ...)
  uint32_t protection_key = 0;        // smaps "ProtectionKey:" (x86 PKU), 0 = default

  bool has_flag(std::string_view f) const;
  bool special() const { return !path.empty() && path.front() == '['; }
};

/// Parses one maps line; errors quote the line.
Result<MapEntry> parse_maps_line(std::string_view line);
/// Parses all of /proc/PID/maps.
Result<std::vector<MapEntry>> parse_maps(std::string_view text);
/// Parses /proc/PID/smaps: header lines as in maps, VmFlags collected per entry.
Result<std::vector<MapEntry>> parse_smaps(std::string_view text);

// ---- status

struct ProcStatus {
  std::string name;
  uint32_t umask = 0;
  char state = 0;
  pid_t ppid = 0;
  uint32_t uid[4] = {}, gid[4] = {};  // real, effective, saved, fs
  std::vector<uint32_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  uint32_t no_new_privs = 0;
  uint32_t seccomp = 0;  // 0 none, 1 strict, 2 filter
  uint32_t seccomp_filters = 0;  // Seccomp_filters: the length of the task's chain (5.9+)
  uint32_t threads = 0;
  uint64_t sig_queued = 0, sig_queue_limit = 0;  // SigQ
  uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  uint64_t rss_anon_kb = 0;  // RssAnon
  uint64_t vm_lck_kb = 0;    // VmLck: the size of the mm's locked mappings
  pid_t tracer_pid = 0;      // TracerPid: 0 when nobody ptraces it
  // NSpid, NSpgid, NSsid: the ids in each pid namespace from the reader's (/proc's) down to
  // the task's own, outermost first; empty on a kernel without the lines.
  std::vector<pid_t> ns_pid, ns_pgid, ns_sid;
};
Result<ProcStatus> parse_status(std::string_view text);

// ---- stat

struct ProcStat {
  pid_t pid = 0;
  std::string comm;
  char state = 0;
  pid_t ppid = 0, pgrp = 0, session = 0;
  uint32_t tty_nr = 0;  // field 7: the controlling terminal's device number (new encoding), 0 none
  pid_t tpgid = -1;     // field 8: the foreground process group of that terminal, -1 none
  uint32_t num_threads = 0;
  uint64_t start_code = 0, end_code = 0, start_stack = 0;
  uint64_t start_data = 0, end_data = 0, start_brk = 0, arg_start = 0, arg_end = 0, env_start = 0,
           env_end = 0;
  uint32_t exit_code = 0;  // field 52: a zombie's status, as waitpid() would report it
};
/// Fields are counted after the last ')' so a comm holding ") (" cannot shift them.
Result<ProcStat> parse_stat(std::string_view text);

// ---- fdinfo

/// What the kernel says about an fd beyond pos and flags: the markers of the anon-inode
/// files crdump does not handle.
enum class FdinfoKind {
  kPlain,
  kEventfd,
  kEpoll,
  kSignalfd,
  kInotify,
  kFanotify,
  kTimerfd,
  kPidfd
};

/// One "tfd: ... events: ... data: ... pos:... ino:... sdev:..." line of an epoll's fdinfo.
struct EpollWatch {
  int tfd = -1;         // the fd number the watch was registered under
  uint32_t events = 0;  // hex in the file
  uint64_t data = 0;    // hex
  uint64_t pos = 0;     // the target file's position
  uint64_t ino = 0;     // hex: the target's inode
  uint32_t sdev = 0;    // hex: the target's superblock device, kernel encoding
};
/// Parses one such line, "tfd:" included; errors quote it.
Result<EpollWatch> parse_epoll_watch(std::string_view line);

/// One "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x
/// fhandle-type:%x f_handle:%02x..." line of an inotify's fdinfo (every number in hex). The
/// handle is absent when the filesystem cannot encode one.
struct InotifyWatch {
  int wd = 0;
  uint64_t ino = 0;
  uint32_t sdev = 0;  // the superblock's device, kernel encoding (major << 20 | minor)
  uint32_t mask = 0;  // IN_* events, with IN_ONESHOT and IN_EXCL_UNLINK as set
  uint32_t ignored_mask = 0;
  int handle_type = 0;
  std::vector<uint8_t> handle;  // f_handle bytes (fhandle-bytes of them)
};
/// Parses one such line, "inotify" included; errors quote it.
Result<InotifyWatch> parse_inotify_watch(std::string_view line);

/// One mark line of a fanotify's fdinfo, every number in hex:
///   "fanotify ino:%lx sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x
///    fhandle-type:%x f_handle:%02x..."                           an inode mark
///   "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x"        a mount mark
///   "fanotify sdev:%x mflags:%x mask:%x ignored_mask:%x"          a filesystem mark
/// Any other form (a newer kernel's mark types) is kept as kUnknown with its text.
struct FanotifyMark {
  enum Type { kInode, kMount, kFilesystem, kUnknown } type = kUnknown;
  uint64_t ino = 0;
  uint32_t sdev = 0;    // kernel encoding (major << 20 | minor)
  uint32_t mnt_id = 0;  // mountinfo's first field
  uint32_t mflags = 0, mask = 0, ignored_mask = 0;
  int handle_type = 0;
  std::vector<uint8_t> handle;
  std::string line;  // as the kernel wrote it, for messages
};
/// Parses one such line, "fanotify" included; errors quote it.
Result<FanotifyMark> parse_fanotify_mark(std::string_view line);

struct Fdinfo {
  uint64_t pos = 0;
  uint32_t flags = 0;  // octal in the file; includes O_CLOEXEC for the fd
  uint32_t mnt_id = 0;
  FdinfoKind kind = FdinfoKind::kPlain;
  // eventfd
  uint64_t eventfd_count = 0;
  bool eventfd_semaphore = false;
  // signalfd
  uint64_t sigmask = 0;
  // timerfd: remaining time and period, expirations not yet read
  uint32_t clockid = 0, settime_flags = 0;
  uint64_t ticks = 0, value_ns = 0, interval_ns = 0;
  // pty master (/dev/ptmx): the index of its /dev/pts/N, -1 when the line is absent
  int64_t tty_index = -1;
  // epoll: its watches, in the kernel's order (the order KCMP_EPOLL_TFD's toff counts in)
  std::vector<EpollWatch> epoll_watches;
  // inotify: its watches, in the kernel's order
  std::vector<InotifyWatch> inotify_watches;
  // fanotify: "fanotify flags:%x event-flags:%x" and its marks, in the kernel's order
  uint32_t fanotify_flags = 0, fanotify_event_flags = 0;
  std::vector<FanotifyMark> fanotify_marks;
  // pidfd: "Pid:" (-1: the process has been reaped, 0: not in the reader's pid namespace)
  int64_t pidfd_pid = 0;
};
Result<Fdinfo> parse_fdinfo(std::string_view text);
std::string_view fdinfo_kind_name(FdinfoKind k);

// ---- limits

/// [soft, hard] for the 16 RLIMIT_* rows in order; "unlimited" is ~0.
Result<std::vector<uint64_t>> parse_limits(std::string_view text);

// ---- timers

struct ProcTimer {
  uint32_t id = 0;
  uint32_t signo = 0;
  uint64_t sigval = 0;
  uint32_t notify = 0;  // sigev_notify: SIGEV_SIGNAL 0, SIGEV_NONE 1, SIGEV_THREAD 2, | 4 tid
  uint32_t notify_tid = 0;
  uint32_t clock_id = 0;
};
Result<std::vector<ProcTimer>> parse_timers(std::string_view text);

// ---- time namespaces

/// /proc/PID/timens_offsets: "monotonic S NS" and "boottime S NS" lines, the offsets of the
/// time namespace the task makes its children in (its own unless it unshared since).
struct TimensOffsets {
  int64_t monotonic_sec = 0, boottime_sec = 0;
  uint32_t monotonic_nsec = 0, boottime_nsec = 0;  // below 1e9
};
Result<TimensOffsets> parse_timens_offsets(std::string_view text);

/// /proc/PID/uid_map or gid_map as a reader in the parent namespace sees it: lines of
/// "inside outside count", returned as (inside, outside, count) triples in line order. An empty
/// map (nothing written yet) is no triple at all.
Result<std::vector<uint64_t>> parse_id_map(std::string_view text);

/// An id map's translation, both ways (the kernel's rule: the first line holding the id).
/// kUnmapped where no line does (the kernel shows those as the overflow id, 65534).
struct IdMap {
  static constexpr uint32_t kUnmapped = 0xffffffffu;
  std::vector<uint64_t> triples;  // (inside, outside, count)
  uint32_t inside(uint32_t outside) const {
    for (size_t i = 0; i + 2 < triples.size(); i += 3)
      if (outside >= triples[i + 1] && outside - triples[i + 1] < triples[i + 2])
        return static_cast<uint32_t>(triples[i] + (outside - triples[i + 1]));
    return kUnmapped;
  }
  uint32_t outside(uint32_t inside) const {
    for (size_t i = 0; i + 2 < triples.size(); i += 3)
      if (inside >= triples[i] && inside - triples[i] < triples[i + 2])
        return static_cast<uint32_t>(triples[i + 1] + (inside - triples[i]));
    return kUnmapped;
  }
};

// ---- cgroups and mounts

/// One line of /proc/PID/cgroup: "4:memory:/a/b" (v1), "0::/a" (v2), "9:name=systemd:/".
struct CgroupLine {
  uint32_t hierarchy = 0;
  std::string controllers;  // "" for v2
  std::string path;         // from the reader's cgroup namespace root
};
Result<std::vector<CgroupLine>> parse_cgroup(std::string_view text);

/// The fields of a /proc/PID/mountinfo line crtools reads, octal escapes (\040) decoded.
struct MountLine {
  uint32_t id = 0;
  uint32_t parent = 0;            // the mount it is mounted on (itself or unseen: the root)
  uint32_t major = 0, minor = 0;  // st_dev of its filesystem
  std::string root;  // the mount's root within its filesystem
  std::string mount_point;
  std::string options;      // per-mount: "rw,nosuid,relatime"
  std::string propagation;  // the optional fields ("shared:1 master:2 unbindable"), "" if private
  std::string fstype;
  std::string source;
  std::string super_options;  // "rw,memory" for a v1 cgroup hierarchy
};
Result<std::vector<MountLine>> parse_mountinfo(std::string_view text);

// ---- multicast groups

/// A multicast group some socket on this machine joined on an interface: /proc/net/igmp (IPv4)
/// and /proc/net/igmp6 lines.
struct McastGroup {
  int ifindex = 0;
  std::string device;
  std::vector<uint8_t> group;  // 4 or 16 bytes, network order
};
Result<std::vector<McastGroup>> parse_igmp(std::string_view text);
Result<std::vector<McastGroup>> parse_igmp6(std::string_view text);

// ---- TCP sockets of a net namespace

/// One line of /proc/PID/net/tcp or tcp6: a TCP socket of the process's net namespace,
/// with or without a file (inode 0: none, as a connection in a listener's accept queue).
struct ProcTcpSocket {
  std::vector<uint8_t> local, remote;  // 4 or 16 bytes, network order
  uint32_t local_port = 0, remote_port = 0;
  uint32_t state = 0;  // TCP_ESTABLISHED 1, TCP_LISTEN 10...
  uint32_t tx_queue = 0, rx_queue = 0;
  uint64_t inode = 0;
};
Result<std::vector<ProcTcpSocket>> parse_proc_net_tcp(std::string_view text);

// ---- small helpers shared with the passes

/// Splits `text` at '\n' (no empty trailing piece).
std::vector<std::string_view> split_lines(std::string_view text);
/// Parses an unsigned integer in `base`; the whole string must be used.
std::optional<uint64_t> parse_uint(std::string_view s, int base = 10);
/// Whitespace-separated unsigned numbers ("/proc/sys/kernel/sem": "32000 1024000000 500 32000");
/// nullopt if any is not a number or there is none.
std::optional<std::vector<uint64_t>> parse_uint_list(std::string_view text);
/// "/proc/PID/task/TID/children": the pids of the thread's children, space separated.
std::vector<pid_t> parse_children(std::string_view text);
/// Parses /proc/PID/auxv: native u64 (type, value) pairs up to and including AT_NULL.
std::vector<uint64_t> parse_auxv(std::string_view bytes);
/// "/proc/PID/personality": a hex number.
Result<uint32_t> parse_personality(std::string_view text);

}  // namespace cr::sys
