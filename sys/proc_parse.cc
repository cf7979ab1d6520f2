#include "sys/proc_parse.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>
#include <type_traits>

namespace cr::sys {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

// Next whitespace-separated token of `s`, consumed from it.
std::string_view next_token(std::string_view& s) {
  size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(b);
  size_t e = s.find_first_of(" \t\n");
  std::string_view tok = s.substr(0, e);
  s.remove_prefix(e == std::string_view::npos ? s.size() : e);
  return tok;
}

Error bad(std::string_view what, std::string_view line) {
  return make_error(std::string(what) + ": cannot parse '" + std::string(line.substr(0, 200)) +
                    "'");
}

}  // namespace

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::optional<uint64_t> parse_uint(std::string_view s, int base) {
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// ---- ProcDir

Result<ProcDir> ProcDir::open(pid_t pid) {
  ProcDir d;
  d.pid_ = pid;
  std::string path = "/proc/" + std::to_string(pid);
  d.dir_.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.dir_.valid()) {
    if (errno == ENOENT) return make_error("no process with pid " + std::to_string(pid), ESRCH);
    return errno_error("open " + path);
  }
  return d;
}

Result<std::string> ProcDir::read(const std::string& name) const {
  ScopedFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open /proc/" + std::to_string(pid_) + "/" + name);
  std::string out;
  size_t used = 0;
  out.resize(4096);
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read /proc/" + std::to_string(pid_) + "/" + name);
    if (n == 0) break;
    used += n;
  }
  out.resize(used);
  return out;
}

Result<std::string> ProcDir::readlink(const std::string& name) const {
  char buf[4096];
  ssize_t n = ::readlinkat(dir_.get(), name.c_str(), buf, sizeof buf);
  if (n < 0) return errno_error("readlink /proc/" + std::to_string(pid_) + "/" + name);
  return std::string(buf, n);
}

Result<struct stat> ProcDir::stat(const std::string& name) const {
  struct stat st {};
  if (::fstatat(dir_.get(), name.c_str(), &st, 0) != 0)
    return errno_error("stat /proc/" + std::to_string(pid_) + "/" + name);
  return st;
}

Result<struct stat> ProcDir::lstat(const std::string& name) const {
  struct stat st {};
  if (::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno_error("lstat /proc/" + std::to_string(pid_) + "/" + name);
  return st;
}

namespace {

// The numbered entries of directory `dir` (relative to `at`), ascending.
Result<std::vector<int>> numbered_entries(int at, const char* dir, const std::string& where) {
  ScopedFd fd(::openat(at, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return errno_error("open " + where);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return errno_error("fdopendir " + where);
  (void)fd.release();  // the DIR owns it now
  std::vector<int> out;
  while (dirent* e = ::readdir(d)) {
    if (auto v = parse_uint(e->d_name)) out.push_back(static_cast<int>(*v));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::vector<int>> ProcDir::numbered(const char* dir) const {
  return numbered_entries(dir_.get(), dir, "/proc/" + std::to_string(pid_) + "/" + dir);
}

Result<std::vector<int>> ProcDir::all_pids() {
  return numbered_entries(AT_FDCWD, "/proc", "/proc");
}

std::string map_files_entry(uint64_t start, uint64_t end) {
  char name[64];
  snprintf(name, sizeof name, "map_files/%llx-%llx", static_cast<unsigned long long>(start),
           static_cast<unsigned long long>(end));
  return name;
}

std::optional<std::string> memfd_name(std::string_view shown) {
  constexpr std::string_view kPrefix = "/memfd:", kDeleted = " (deleted)";
  if (!shown.starts_with(kPrefix)) return std::nullopt;
  shown.remove_prefix(kPrefix.size());
  // A memfd is never linked: the kernel always adds the suffix, once.
  if (shown.ends_with(kDeleted)) shown.remove_suffix(kDeleted.size());
  return std::string(shown);
}

// ---- maps

bool MapEntry::has_flag(std::string_view f) const {
  for (const auto& x : vm_flags)
    if (x == f) return true;
  return false;
}

Result<MapEntry> parse_maps_line(std::string_view line) {
  // 7f12a000-7f12b000 r-xp 00001000 fd:01 1234567      /usr/lib/x.so (deleted)
  MapEntry m;
  std::string_view rest = line;
  std::string_view range = next_token(rest), perms = next_token(rest), off = next_token(rest),
                   dev = next_token(rest), ino = next_token(rest);
  size_t dash = range.find('-');
  size_t colon = dev.find(':');
  if (dash == std::string_view::npos || perms.size() != 4 || colon == std::string_view::npos)
    return bad("maps", line);
  auto start = parse_uint(range.substr(0, dash), 16), end = parse_uint(range.substr(dash + 1), 16),
       offset = parse_uint(off, 16), major = parse_uint(dev.substr(0, colon), 16),
       minor = parse_uint(dev.substr(colon + 1), 16), inode = parse_uint(ino, 10);
  if (!start || !end || !offset || !major || !minor || !inode || *end <= *start)
    return bad("maps", line);
  m.start = *start;
  m.end = *end;
  m.read = perms[0] == 'r';
  m.write = perms[1] == 'w';
  m.exec = perms[2] == 'x';
  m.shared = perms[3] == 's';
  m.offset = *offset;
  m.dev_major = static_cast<uint32_t>(*major);
  m.dev_minor = static_cast<uint32_t>(*minor);
  m.inode = *inode;
  // The path is the rest after the padding; it may itself contain spaces.
  size_t b = rest.find_first_not_of(' ');
  std::string_view path = b == std::string_view::npos ? std::string_view{} : rest.substr(b);
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.size() > kDeleted.size() && path.ends_with(kDeleted)) {
    m.deleted = true;
    path.remove_suffix(kDeleted.size());
  }
  m.path = std::string(path);
  return m;
}

Result<std::vector<MapEntry>> parse_maps(std::string_view text) {
  std::vector<MapEntry> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    CR_TRY_ASSIGN(MapEntry m, parse_maps_line(line));
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<MapEntry>> parse_smaps(std::string_view text) {
  std::vector<MapEntry> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    // Header lines start with a hex range; attribute lines with "Name:".
    size_t colon = line.find(':');
    size_t space = line.find(' ');
    bool attribute =
        colon != std::string_view::npos && (space == std::string_view::npos || colon < space);
    if (!attribute) {
      CR_TRY_ASSIGN(MapEntry m, parse_maps_line(line));
      out.push_back(std::move(m));
      continue;
    }
    if (out.empty()) return bad("smaps", line);
    if (line.starts_with("VmFlags:")) {
      std::string_view rest = line.substr(8);
      for (std::string_view t = next_token(rest); !t.empty(); t = next_token(rest))
        out.back().vm_flags.emplace_back(t);
    } else if (line.starts_with("ProtectionKey:")) {
      std::string_view rest = line.substr(14);
      std::string_view t = next_token(rest);
      uint64_t key = 0;
      auto r = std::from_chars(t.data(), t.data() + t.size(), key);
      if (r.ec != std::errc() || r.ptr != t.data() + t.size()) return bad("smaps", line);
      out.back().protection_key = static_cast<uint32_t>(key);
    }
  }
  return out;
}

// ---- status

Result<ProcStatus> parse_status(std::string_view text) {
  ProcStatus s;
  bool seen_uid = false, seen_gid = false;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), val = trim(line.substr(colon + 1));
    auto num = [&](int base) -> Result<uint64_t> {
      auto v = parse_uint(val, base);
      if (!v) return bad("status", line);
      return *v;
    };
    auto quad = [&](uint32_t* out) -> Status {
      std::string_view rest = val;
      for (int i = 0; i < 4; ++i) {
        auto v = parse_uint(next_token(rest));
        if (!v) return bad("status", line);
        out[i] = static_cast<uint32_t>(*v);
      }
      return {};
    };
    if (key == "Name") {
      s.name = std::string(val);
    } else if (key == "Umask") {
      CR_TRY_ASSIGN(s.umask, num(8));
    } else if (key == "State") {
      s.state = val.empty() ? 0 : val[0];
    } else if (key == "PPid") {
      CR_TRY_ASSIGN(s.ppid, num(10));
    } else if (key == "TracerPid") {
      CR_TRY_ASSIGN(s.tracer_pid, num(10));
    } else if (key == "Uid") {
      CR_TRY(quad(s.uid));
      seen_uid = true;
    } else if (key == "Gid") {
      CR_TRY(quad(s.gid));
      seen_gid = true;
    } else if (key == "Groups") {
      std::string_view rest = val;
      for (std::string_view t = next_token(rest); !t.empty(); t = next_token(rest)) {
        auto v = parse_uint(t);
        if (!v) return bad("status", line);
        s.groups.push_back(static_cast<uint32_t>(*v));
      }
    } else if (key == "CapInh") {
      CR_TRY_ASSIGN(s.cap_inh, num(16));
    } else if (key == "CapPrm") {
      CR_TRY_ASSIGN(s.cap_prm, num(16));
    } else if (key == "CapEff") {
      CR_TRY_ASSIGN(s.cap_eff, num(16));
    } else if (key == "CapBnd") {
      CR_TRY_ASSIGN(s.cap_bnd, num(16));
    } else if (key == "CapAmb") {
      CR_TRY_ASSIGN(s.cap_amb, num(16));
    } else if (key == "NoNewPrivs") {
      CR_TRY_ASSIGN(s.no_new_privs, num(10));
    } else if (key == "Seccomp") {
      CR_TRY_ASSIGN(s.seccomp, num(10));
    } else if (key == "Seccomp_filters") {
      CR_TRY_ASSIGN(s.seccomp_filters, num(10));
    } else if (key == "NSpid" || key == "NSpgid" || key == "NSsid") {
      std::vector<pid_t>& ids = key == "NSpid" ? s.ns_pid : key == "NSpgid" ? s.ns_pgid : s.ns_sid;
      std::string_view rest = val;
      for (std::string_view t = next_token(rest); !t.empty(); t = next_token(rest)) {
        auto v = parse_uint(t);
        if (!v || *v > INT32_MAX) return bad("status", line);
        ids.push_back(static_cast<pid_t>(*v));
      }
    } else if (key == "Threads") {
      CR_TRY_ASSIGN(s.threads, num(10));
    } else if (key == "SigQ") {
      size_t slash = val.find('/');
      auto q = parse_uint(val.substr(0, slash));
      auto l = slash == std::string_view::npos ? std::nullopt : parse_uint(val.substr(slash + 1));
      if (!q || !l) return bad("status", line);
      s.sig_queued = *q;
      s.sig_queue_limit = *l;
    } else if (key == "SigPnd") {
      CR_TRY_ASSIGN(s.sig_pnd, num(16));
    } else if (key == "ShdPnd") {
      CR_TRY_ASSIGN(s.shd_pnd, num(16));
    } else if (key == "SigBlk") {
      CR_TRY_ASSIGN(s.sig_blk, num(16));
    } else if (key == "SigIgn") {
      CR_TRY_ASSIGN(s.sig_ign, num(16));
    } else if (key == "SigCgt") {
      CR_TRY_ASSIGN(s.sig_cgt, num(16));
    } else if (key == "RssAnon" || key == "VmLck") {
      std::string_view rest = val;
      auto v = parse_uint(next_token(rest));
      if (!v) return bad("status", line);
      (key == "VmLck" ? s.vm_lck_kb : s.rss_anon_kb) = *v;
    }
  }
  if (!seen_uid || !seen_gid || s.threads == 0)
    return make_error("status: missing Uid, Gid or Threads");
  return s;
}

// ---- stat

Result<ProcStat> parse_stat(std::string_view text) {
  ProcStat s;
  size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open)
    return bad("stat", text);
  auto pid = parse_uint(trim(text.substr(0, open)));
  if (!pid) return bad("stat", text);
  s.pid = static_cast<pid_t>(*pid);
  s.comm = std::string(text.substr(open + 1, close - open - 1));
  // Field 3 (state) is the first after ')'; fields[i] below is field i+3.
  std::vector<std::string_view> f;
  std::string_view rest = text.substr(close + 1);
  for (std::string_view t = next_token(rest); !t.empty(); t = next_token(rest)) {
    if (t.back() == '\n') t.remove_suffix(1);
    f.push_back(t);
  }
  if (f.size() < 49) return make_error("stat: only " + std::to_string(f.size() + 2) + " fields");
  auto field = [&](int n) -> Result<uint64_t> {
    auto v = parse_uint(f[n - 3]);
    // tty_nr is printed signed but is a device number (never negative): read unsigned too.
    if (!v)
      return make_error("stat: field " + std::to_string(n) + " is '" + std::string(f[n - 3]) + "'");
    return *v;
  };
  s.state = f[0].empty() ? 0 : f[0][0];
  CR_TRY_ASSIGN(s.ppid, field(4));
  CR_TRY_ASSIGN(s.pgrp, field(5));
  CR_TRY_ASSIGN(s.session, field(6));
  CR_TRY_ASSIGN(s.tty_nr, field(7));
  // -1 without a controlling terminal: the one signed field read here.
  if (f[8 - 3] != "-1") {
    CR_TRY_ASSIGN(s.tpgid, field(8));
  }
  CR_TRY_ASSIGN(s.num_threads, field(20));
  CR_TRY_ASSIGN(s.start_code, field(26));
  CR_TRY_ASSIGN(s.end_code, field(27));
  CR_TRY_ASSIGN(s.start_stack, field(28));
  CR_TRY_ASSIGN(s.start_data, field(45));
  CR_TRY_ASSIGN(s.end_data, field(46));
  CR_TRY_ASSIGN(s.start_brk, field(47));
  CR_TRY_ASSIGN(s.arg_start, field(48));
  CR_TRY_ASSIGN(s.arg_end, field(49));
  CR_TRY_ASSIGN(s.env_start, field(50));
  CR_TRY_ASSIGN(s.env_end, field(51));
  if (f.size() >= 50) {
    CR_TRY_ASSIGN(s.exit_code, field(52));
  }
  return s;
}

// ---- fdinfo

std::string_view fdinfo_kind_name(FdinfoKind k) {
  switch (k) {
    case FdinfoKind::kPlain:
      return "file";
    case FdinfoKind::kEventfd:
      return "eventfd";
    case FdinfoKind::kEpoll:
      return "epoll";
    case FdinfoKind::kSignalfd:
      return "signalfd";
    case FdinfoKind::kInotify:
      return "inotify";
    case FdinfoKind::kFanotify:
      return "fanotify";
    case FdinfoKind::kTimerfd:
      return "timerfd";
    case FdinfoKind::kPidfd:
      return "pidfd";
  }
  return "?";
}

Result<EpollWatch> parse_epoll_watch(std::string_view line) {
  // "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x": a key is a word ending in
  // ':', its value either glued to it or the next word.
  std::vector<std::string_view> words;
  for (size_t i = 0; i < line.size();) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  EpollWatch w;
  bool tfd = false, events = false, data = false;
  for (size_t i = 0; i < words.size(); ++i) {
    size_t colon = words[i].find(':');
    if (colon == std::string_view::npos) return bad("epoll fdinfo", line);
    std::string_view key = words[i].substr(0, colon), val = words[i].substr(colon + 1);
    if (val.empty()) {
      if (i + 1 == words.size()) return bad("epoll fdinfo", line);
      val = words[++i];
    }
    const int base = key == "tfd" || key == "pos" ? 10 : 16;
    std::optional<uint64_t> v;
    if (key == "pos" && !val.empty() && val.front() == '-') {
      v = 0;  // a negative position (some devices): nothing we restore from it
    } else {
      v = parse_uint(val, base);
    }
    if (!v) return bad("epoll fdinfo", line);
    if (key == "tfd") {
      if (*v > 0x7fffffff) return bad("epoll fdinfo", line);
      w.tfd = static_cast<int>(*v);
      tfd = true;
    } else if (key == "events") {
      w.events = static_cast<uint32_t>(*v);
      events = true;
    } else if (key == "data") {
      w.data = *v;
      data = true;
    } else if (key == "pos") {
      w.pos = *v;
    } else if (key == "ino") {
      w.ino = *v;
    } else if (key == "sdev") {
      w.sdev = static_cast<uint32_t>(*v);
    }
  }
  if (!tfd || !events || !data) return bad("epoll fdinfo", line);
  return w;
}

Result<InotifyWatch> parse_inotify_watch(std::string_view line) {
  std::string_view rest = line;
  if (next_token(rest) != "inotify") return bad("inotify fdinfo", line);
  InotifyWatch w;
  bool wd = false, ino = false, sdev = false, mask = false;
  size_t handle_bytes = 0;
  for (std::string_view word; !(word = next_token(rest)).empty();) {
    const size_t colon = word.find(':');
    if (colon == std::string_view::npos) return bad("inotify fdinfo", line);
    const std::string_view key = word.substr(0, colon), val = word.substr(colon + 1);
    if (key == "f_handle") {
      if (val.size() % 2 != 0 || val.size() / 2 > 128) return bad("inotify fdinfo", line);
      for (size_t i = 0; i < val.size(); i += 2) {
        auto b = parse_uint(val.substr(i, 2), 16);
        if (!b) return bad("inotify fdinfo", line);
        w.handle.push_back(static_cast<uint8_t>(*b));
      }
      continue;
    }
    auto v = parse_uint(val, 16);
    if (!v) return bad("inotify fdinfo", line);
    if (key == "wd") {
      if (*v == 0 || *v > 0x7fffffff) return bad("inotify fdinfo", line);
      w.wd = static_cast<int>(*v);
      wd = true;
    } else if (key == "ino") {
      w.ino = *v;
      ino = true;
    } else if (key == "sdev") {
      w.sdev = static_cast<uint32_t>(*v);
      sdev = true;
    } else if (key == "mask") {
      w.mask = static_cast<uint32_t>(*v);
      mask = true;
    } else if (key == "ignored_mask") {
      w.ignored_mask = static_cast<uint32_t>(*v);
    } else if (key == "fhandle-bytes") {
      handle_bytes = static_cast<size_t>(*v);
    } else if (key == "fhandle-type") {
      w.handle_type = static_cast<int>(*v);
    }
  }
  if (!wd || !ino || !sdev || !mask || handle_bytes != w.handle.size())
    return bad("inotify fdinfo", line);
  return w;
}

namespace {

// "key:hex" words after the first one of `line`, into `out` (f_handle's bytes into `handle`);
// false on a word that is not one.
bool hex_fields(std::string_view line, std::map<std::string_view, uint64_t>& out,
                std::vector<uint8_t>& handle) {
  std::string_view rest = line;
  next_token(rest);
  for (std::string_view word; !(word = next_token(rest)).empty();) {
    const size_t colon = word.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view key = word.substr(0, colon), val = word.substr(colon + 1);
    if (key == "f_handle") {
      if (val.size() % 2 != 0 || val.size() / 2 > 128) return false;
      for (size_t i = 0; i < val.size(); i += 2) {
        auto b = parse_uint(val.substr(i, 2), 16);
        if (!b) return false;
        handle.push_back(static_cast<uint8_t>(*b));
      }
      continue;
    }
    auto v = parse_uint(val, 16);
    if (!v || !out.emplace(key, *v).second) return false;
  }
  return true;
}

}  // namespace

Result<FanotifyMark> parse_fanotify_mark(std::string_view line) {
  std::string_view first = line;
  if (next_token(first) != "fanotify") return bad("fanotify fdinfo", line);
  FanotifyMark m;
  m.line = std::string(line);
  std::map<std::string_view, uint64_t> f;
  if (!hex_fields(line, f, m.handle)) return bad("fanotify fdinfo", line);
  auto get = [&](std::string_view k, auto& into) {
    auto it = f.find(k);
    if (it == f.end()) return false;
    into = static_cast<std::remove_reference_t<decltype(into)>>(it->second);
    return true;
  };
  if (!get("mflags", m.mflags) || !get("mask", m.mask) || !get("ignored_mask", m.ignored_mask))
    return bad("fanotify fdinfo", line);
  const bool ino = get("ino", m.ino), sdev = get("sdev", m.sdev), mnt = get("mnt_id", m.mnt_id);
  size_t handle_bytes = 0;
  get("fhandle-bytes", handle_bytes);
  get("fhandle-type", m.handle_type);
  if (handle_bytes != m.handle.size()) return bad("fanotify fdinfo", line);
  if (ino && sdev && !mnt && f.size() <= 8)
    m.type = FanotifyMark::kInode;
  else if (mnt && !ino && !sdev && f.size() == 4)
    m.type = FanotifyMark::kMount;
  else if (sdev && !ino && !mnt && f.size() == 4)
    m.type = FanotifyMark::kFilesystem;
  return m;
}

Result<Fdinfo> parse_fdinfo(std::string_view text) {
  Fdinfo fi;
  bool seen_pos = false, seen_flags = false, clockid = false, ticks = false;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), val = trim(line.substr(colon + 1));
    if (key == "pos") {
      auto v = parse_uint(val);
      if (!v) return bad("fdinfo", line);
      fi.pos = *v;
      seen_pos = true;
    } else if (key == "flags") {
      auto v = parse_uint(val, 8);
      if (!v) return bad("fdinfo", line);
      fi.flags = static_cast<uint32_t>(*v);
      seen_flags = true;
    } else if (key == "mnt_id") {
      auto v = parse_uint(val);
      if (v) fi.mnt_id = static_cast<uint32_t>(*v);
    } else if (key == "eventfd-count") {
      fi.kind = FdinfoKind::kEventfd;
      auto v = parse_uint(val, 16);
      if (!v) return bad("fdinfo", line);
      fi.eventfd_count = *v;
    } else if (key == "tty-index") {
      auto v = parse_uint(val);
      if (!v) return bad("fdinfo", line);
      fi.tty_index = static_cast<int64_t>(*v);
    } else if (key == "eventfd-semaphore") {
      fi.eventfd_semaphore = val == "1";
    } else if (key == "tfd") {
      fi.kind = FdinfoKind::kEpoll;
      CR_TRY_ASSIGN(EpollWatch w, parse_epoll_watch(line));
      fi.epoll_watches.push_back(w);
    } else if (key == "sigmask") {
      fi.kind = FdinfoKind::kSignalfd;
      auto v = parse_uint(val, 16);
      if (!v) return bad("fdinfo", line);
      fi.sigmask = *v;
    } else if (key == "settime flags") {
      auto v = parse_uint(val, 8);
      if (v) fi.settime_flags = static_cast<uint32_t>(*v);
    } else if (key == "it_value" || key == "it_interval") {
      // "(sec, nsec)"
      std::string_view t = val;
      if (!t.empty() && t.front() == '(') t.remove_prefix(1);
      if (!t.empty() && t.back() == ')') t.remove_suffix(1);
      size_t comma = t.find(',');
      auto sec = parse_uint(trim(t.substr(0, comma)));
      auto nsec =
          comma == std::string_view::npos ? std::nullopt : parse_uint(trim(t.substr(comma + 1)));
      if (!sec || !nsec) return bad("fdinfo", line);
      (key == "it_value" ? fi.value_ns : fi.interval_ns) = *sec * 1000000000ull + *nsec;
    } else if (key == "inotify wd") {
      fi.kind = FdinfoKind::kInotify;
      CR_TRY_ASSIGN(InotifyWatch w, parse_inotify_watch(line));
      fi.inotify_watches.push_back(std::move(w));
    } else if (key == "Pid") {
      fi.kind = FdinfoKind::kPidfd;
      std::string_view v = val;
      const bool negative = !v.empty() && v.front() == '-';
      if (negative) v.remove_prefix(1);
      auto n = parse_uint(v);
      if (!n || *n > 0x7fffffff) return bad("fdinfo", line);
      fi.pidfd_pid = negative ? -static_cast<int64_t>(*n) : static_cast<int64_t>(*n);
    } else if (key == "fanotify flags") {
      // "fanotify flags:%x event-flags:%x"
      fi.kind = FdinfoKind::kFanotify;
      std::map<std::string_view, uint64_t> f;
      std::vector<uint8_t> none;
      if (!hex_fields(line, f, none) || !f.count("flags") || !f.count("event-flags"))
        return bad("fanotify fdinfo", line);
      fi.fanotify_flags = static_cast<uint32_t>(f["flags"]);
      fi.fanotify_event_flags = static_cast<uint32_t>(f["event-flags"]);
    } else if (line.starts_with("fanotify ")) {
      fi.kind = FdinfoKind::kFanotify;
      CR_TRY_ASSIGN(FanotifyMark m, parse_fanotify_mark(line));
      fi.fanotify_marks.push_back(std::move(m));
    } else if (key == "clockid") {
      clockid = true;
      auto v = parse_uint(val);
      if (v) fi.clockid = static_cast<uint32_t>(*v);
    } else if (key == "ticks") {
      ticks = true;
      auto v = parse_uint(val);
      if (v) fi.ticks = *v;
    }
  }
  if (clockid && ticks) fi.kind = FdinfoKind::kTimerfd;
  if (!seen_pos || !seen_flags) return make_error("fdinfo: missing pos or flags");
  return fi;
}

// ---- limits

Result<std::vector<uint64_t>> parse_limits(std::string_view text) {
  // "Limit                     Soft Limit           Hard Limit           Units     "
  // "Max open files            1024                 1048576              files     "
  // Names contain spaces; the values start at a fixed column, found from the header.
  auto lines = split_lines(text);
  if (lines.empty() || !lines[0].starts_with("Limit")) return make_error("limits: no header");
  size_t col = lines[0].find("Soft Limit");
  if (col == std::string_view::npos) return make_error("limits: no 'Soft Limit' column");
  std::vector<uint64_t> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    if (line.size() <= col) return bad("limits", line);
    std::string_view rest = line.substr(col);
    for (int k = 0; k < 2; ++k) {
      std::string_view t = next_token(rest);
      if (t == "unlimited") {
        out.push_back(~uint64_t{0});
      } else {
        auto v = parse_uint(t);
        if (!v) return bad("limits", line);
        out.push_back(*v);
      }
    }
  }
  if (out.size() != 32)
    return make_error("limits: " + std::to_string(out.size() / 2) + " rows, expected 16");
  return out;
}

Result<std::vector<uint64_t>> parse_id_map(std::string_view text) {
  std::vector<uint64_t> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    std::string_view rest = line;
    std::string_view w[3] = {next_token(rest), next_token(rest), next_token(rest)};
    if (w[2].empty() || !next_token(rest).empty()) return bad("id map", line);
    for (std::string_view v : w) {
      auto n = parse_uint(v);
      if (!n || *n > 0xffffffffull) return bad("id map", line);
      out.push_back(*n);
    }
    // The kernel takes at most 340 lines, each a range inside 32 bits and not empty.
    if (out.back() == 0 || out[out.size() - 3] + out.back() > 0x100000000ull ||
        out[out.size() - 2] + out.back() > 0x100000000ull || out.size() > 340 * 3)
      return bad("id map", line);
  }
  return out;
}

// ---- cgroups and mounts

Result<TimensOffsets> parse_timens_offsets(std::string_view text) {
  TimensOffsets out;
  bool mono = false, boot = false;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    // "monotonic           0         0": name, seconds (signed), nanoseconds.
    std::string_view rest = line;
    std::string_view w[3] = {next_token(rest), next_token(rest), next_token(rest)};
    if (w[2].empty() || !next_token(rest).empty()) return bad("timens_offsets", line);
    const bool neg = w[1].starts_with('-');
    auto sec = parse_uint(neg ? w[1].substr(1) : w[1]);
    auto nsec = parse_uint(w[2]);
    if (!sec || *sec > static_cast<uint64_t>(INT64_MAX) || !nsec || *nsec >= 1000000000)
      return bad("timens_offsets", line);
    const int64_t s = neg ? -static_cast<int64_t>(*sec) : static_cast<int64_t>(*sec);
    if (w[0] == "monotonic" && !mono) {
      out.monotonic_sec = s;
      out.monotonic_nsec = static_cast<uint32_t>(*nsec);
      mono = true;
    } else if (w[0] == "boottime" && !boot) {
      out.boottime_sec = s;
      out.boottime_nsec = static_cast<uint32_t>(*nsec);
      boot = true;
    } else {
      return bad("timens_offsets", line);
    }
  }
  if (!mono || !boot) return bad("timens_offsets", text);
  return out;
}

Result<std::vector<CgroupLine>> parse_cgroup(std::string_view text) {
  std::vector<CgroupLine> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    // The path is the rest of the line: it may hold ':' itself.
    const size_t a = line.find(':');
    const size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) return bad("cgroup", line);
    auto h = parse_uint(line.substr(0, a));
    if (!h || *h > UINT32_MAX || !line.substr(b + 1).starts_with('/')) return bad("cgroup", line);
    out.push_back({static_cast<uint32_t>(*h), std::string(line.substr(a + 1, b - a - 1)),
                   std::string(line.substr(b + 1))});
  }
  return out;
}

namespace {

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescape_mount_field(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

Result<std::vector<MountLine>> parse_mountinfo(std::string_view text) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
  std::vector<MountLine> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    std::string_view rest = line;
    MountLine m;
    auto id = parse_uint(next_token(rest));
    auto parent = parse_uint(next_token(rest));
    const std::string_view dev = next_token(rest);  // major:minor
    const size_t colon = dev.find(':');
    auto major = parse_uint(dev.substr(0, colon));
    auto minor =
        parse_uint(colon == std::string_view::npos ? std::string_view{} : dev.substr(colon + 1));
    std::string_view root = next_token(rest), point = next_token(rest);
    std::string_view options = next_token(rest);
    // Optional fields up to the lone "-".
    std::string_view t;
    while (!(t = next_token(rest)).empty() && t != "-") {
      if (!m.propagation.empty()) m.propagation += ' ';
      m.propagation += t;
    }
    std::string_view fstype = next_token(rest);
    std::string_view source = next_token(rest);
    std::string_view super = next_token(rest);
    if (!id || *id > UINT32_MAX || !parent || *parent > UINT32_MAX || t != "-" || fstype.empty() ||
        root.empty() || point.empty() || !major || !minor || *major > UINT32_MAX ||
        *minor > UINT32_MAX)
      return bad("mountinfo", line);
    m.id = static_cast<uint32_t>(*id);
    m.parent = static_cast<uint32_t>(*parent);
    m.options = std::string(options);
    m.source = unescape_mount_field(source);
    m.major = static_cast<uint32_t>(*major);
    m.minor = static_cast<uint32_t>(*minor);
    m.root = unescape_mount_field(root);
    m.mount_point = unescape_mount_field(point);
    m.fstype = std::string(fstype);
    m.super_options = std::string(super);
    out.push_back(std::move(m));
  }
  return out;
}

// ---- multicast groups

Result<std::vector<McastGroup>> parse_igmp(std::string_view text) {
  // "1\tlo        :     2      V3" starts a device; "\t\t\t\t030201EF     1 0:00000000\t\t0"
  // is one of its groups, the address as the kernel prints a big-endian word in host order.
  std::vector<McastGroup> out;
  int ifindex = -1;
  std::string device;
  auto lines = split_lines(text);
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    std::string_view rest = line;
    if (line.front() != '\t' && line.front() != ' ') {
      auto idx = parse_uint(next_token(rest));
      std::string_view name = next_token(rest);
      if (!idx || name.empty()) return bad("igmp", line);
      ifindex = static_cast<int>(*idx);
      device = std::string(name);
      continue;
    }
    auto word = parse_uint(next_token(rest), 16);
    if (!word || ifindex < 0 || *word > UINT32_MAX) return bad("igmp", line);
    const uint32_t w = static_cast<uint32_t>(*word);
    out.push_back({ifindex,
                   device,
                   {static_cast<uint8_t>(w), static_cast<uint8_t>(w >> 8),
                    static_cast<uint8_t>(w >> 16), static_cast<uint8_t>(w >> 24)}});
  }
  return out;
}

Result<std::vector<McastGroup>> parse_igmp6(std::string_view text) {
  // "1    lo              ff020000000000000000000000000001     1 0000000C 0"
  std::vector<McastGroup> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    std::string_view rest = line;
    auto idx = parse_uint(next_token(rest));
    std::string_view name = next_token(rest), hex = next_token(rest);
    if (!idx || name.empty() || hex.size() != 32) return bad("igmp6", line);
    McastGroup g{static_cast<int>(*idx), std::string(name), {}};
    for (size_t k = 0; k < 32; k += 2) {
      auto b = parse_uint(hex.substr(k, 2), 16);
      if (!b) return bad("igmp6", line);
      g.group.push_back(static_cast<uint8_t>(*b));
    }
    out.push_back(std::move(g));
  }
  return out;
}

// ---- TCP sockets

Result<std::vector<ProcTcpSocket>> parse_proc_net_tcp(std::string_view text) {
  // "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 12345 ..."
  // An address is its 32-bit words as the kernel holds them (network order) printed as
  // host-order numbers: each word parsed and stored back in host order gives the bytes.
  auto address = [](std::string_view hex, std::vector<uint8_t>& out, uint32_t& port) {
    const size_t colon = hex.find(':');
    if (colon == std::string_view::npos || (colon != 8 && colon != 32)) return false;
    for (size_t w = 0; w < colon; w += 8) {
      auto v = parse_uint(hex.substr(w, 8), 16);
      if (!v) return false;
      const uint32_t word = static_cast<uint32_t>(*v);
      const auto* b = reinterpret_cast<const uint8_t*>(&word);
      out.insert(out.end(), b, b + 4);
    }
    auto p = parse_uint(hex.substr(colon + 1), 16);
    if (!p || *p > 0xffff) return false;
    port = static_cast<uint32_t>(*p);
    return true;
  };
  std::vector<ProcTcpSocket> out;
  bool header = true;
  for (std::string_view line : split_lines(text)) {
    if (header) {  // "  sl  local_address rem_address   st tx_queue rx_queue ..."
      header = false;
      continue;
    }
    std::string_view rest = line;
    ProcTcpSocket t;
    const std::string_view sl = next_token(rest), local = next_token(rest),
                           remote = next_token(rest), st = next_token(rest),
                           queues = next_token(rest);
    next_token(rest);  // tr:tm->when
    next_token(rest);  // retrnsmt
    next_token(rest);  // uid
    next_token(rest);  // timeout
    const auto inode = parse_uint(next_token(rest));
    const auto state = parse_uint(st, 16);
    const size_t qc = queues.find(':');
    if (sl.empty() || sl.back() != ':' || !address(local, t.local, t.local_port) ||
        !address(remote, t.remote, t.remote_port) || t.local.size() != t.remote.size() || !state ||
        qc == std::string_view::npos || !inode)
      return bad("net/tcp", line);
    const auto tx = parse_uint(queues.substr(0, qc), 16),
               rx = parse_uint(queues.substr(qc + 1), 16);
    if (!tx || !rx) return bad("net/tcp", line);
    t.state = static_cast<uint32_t>(*state);
    t.tx_queue = static_cast<uint32_t>(*tx);
    t.rx_queue = static_cast<uint32_t>(*rx);
    t.inode = *inode;
    out.push_back(std::move(t));
  }
  return out;
}

// ---- timers

Result<std::vector<ProcTimer>> parse_timers(std::string_view text) {
  // ID: 0
  // signal: 14/00000000deadbeef
  // notify: signal/pid.1234     (or thread/..., none/..., and tid.N for SIGEV_THREAD_ID)
  // ClockID: 1
  std::vector<ProcTimer> out;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), val = trim(line.substr(colon + 1));
    if (key == "ID") {
      auto v = parse_uint(val);
      if (!v) return bad("timers", line);
      out.push_back(ProcTimer{});
      out.back().id = static_cast<uint32_t>(*v);
      continue;
    }
    if (out.empty()) return bad("timers", line);
    ProcTimer& t = out.back();
    if (key == "signal") {
      size_t slash = val.find('/');
      auto sig = parse_uint(val.substr(0, slash));
      auto sv =
          slash == std::string_view::npos ? std::nullopt : parse_uint(val.substr(slash + 1), 16);
      if (!sig || !sv) return bad("timers", line);
      t.signo = static_cast<uint32_t>(*sig);
      t.sigval = *sv;
    } else if (key == "notify") {
      size_t slash = val.find('/'), dot = val.find('.');
      if (slash == std::string_view::npos || dot == std::string_view::npos || dot < slash)
        return bad("timers", line);
      std::string_view how = val.substr(0, slash), who = val.substr(slash + 1, dot - slash - 1);
      auto id = parse_uint(val.substr(dot + 1));
      if (!id) return bad("timers", line);
      if (how == "signal") {
        t.notify = 0;
      } else if (how == "none") {
        t.notify = 1;
      } else if (how == "thread") {
        t.notify = 2;
      } else {
        return bad("timers", line);
      }
      if (who == "tid") t.notify |= 4;
      t.notify_tid = static_cast<uint32_t>(*id);
    } else if (key == "ClockID") {
      auto v = parse_uint(val);
      if (!v) return bad("timers", line);
      t.clock_id = static_cast<uint32_t>(*v);
    }
  }
  return out;
}

std::optional<std::vector<uint64_t>> parse_uint_list(std::string_view text) {
  std::vector<uint64_t> out;
  for (std::string_view rest = text;;) {
    std::string_view tok = next_token(rest);
    if (tok.empty()) break;
    auto v = parse_uint(tok);
    if (!v) return std::nullopt;
    out.push_back(*v);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::vector<pid_t> parse_children(std::string_view text) {
  std::vector<pid_t> out;
  for (std::string_view rest = text;;) {
    std::string_view tok = next_token(rest);
    if (tok.empty()) break;
    if (auto v = parse_uint(tok)) out.push_back(static_cast<pid_t>(*v));
  }
  return out;
}

std::vector<uint64_t> parse_auxv(std::string_view bytes) {
  std::vector<uint64_t> out;
  for (size_t off = 0; off + 16 <= bytes.size(); off += 16) {
    uint64_t type = 0, val = 0;
    std::memcpy(&type, bytes.data() + off, 8);
    std::memcpy(&val, bytes.data() + off + 8, 8);
    out.push_back(type);
    out.push_back(val);
    if (type == 0) break;  // AT_NULL
  }
  return out;
}

Result<uint32_t> parse_personality(std::string_view text) {
  auto v = parse_uint(trim(text), 16);
  if (!v) return bad("personality", text);
  return static_cast<uint32_t>(*v);
}

}  // namespace cr::sys
