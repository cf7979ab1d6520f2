// See proc_snapshot.h. The flatteners are pure; take_snapshot() reads /proc through
// sys::ProcDir and hands the text to them.
#include "proc_snapshot.h"

#include <fnmatch.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

#include "sys/proc_parse.h"

namespace cr::e2e {

using sys::split_lines;

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t' && s[j] != '\n') ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// R, S and D differ only by when the file was read; the states that mean something (stopped,
// traced, zombie) stay as the kernel shows them.
std::string run_state(std::string_view v) {
  if (!v.empty() && (v[0] == 'R' || v[0] == 'S' || v[0] == 'D')) return "running";
  return std::string(v);
}

// status lines that count or measure rather than describe (times, residency, peaks; SigQ
// counts the signals queued by every process of the uid).
bool status_counter(std::string_view key) {
  static const std::set<std::string_view> k = {"VmPeak",
                                               "VmHWM",
                                               "VmRSS",
                                               "RssAnon",
                                               "RssFile",
                                               "RssShmem",
                                               "VmPTE",
                                               "VmSwap",
                                               "HugetlbPages",
                                               "SigQ",
                                               "voluntary_ctxt_switches",
                                               "nonvoluntary_ctxt_switches"};
  return k.count(key) > 0;
}

// A number shown by the kernel in hex ("ino:1a2b" of a tfd line) as decimal text.
std::string hex_to_dec(const std::string& h) {
  auto v = sys::parse_uint(h, 16);
  return v ? std::to_string(*v) : h;
}

}  // namespace

std::string Canon::name(const std::string& kind, const std::string& id) {
  auto& m = seen_[kind];
  auto it = m.find(id);
  if (it == m.end()) it = m.emplace(id, static_cast<int>(m.size()) + 1).first;
  return "#" + std::to_string(it->second);
}

bool Canon::has(const std::string& kind, const std::string& id) const {
  auto m = seen_.find(kind);
  return m != seen_.end() && m->second.count(id) > 0;
}

void add_status(Snapshot& s, const std::string& prefix, std::string_view text) {
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    if (status_counter(key)) continue;
    std::string val = trim(line.substr(colon + 1));
    if (key == "State") val = run_state(val);
    s[prefix + "status/" + std::string(key)] = val;
  }
}

void add_stat(Snapshot& s, const std::string& prefix, std::string_view text) {
  // Fields are counted after the last ')' (comm may hold anything); field 3 is the first.
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) {
    s[prefix + "stat"] = "!unparsable";
    return;
  }
  std::vector<std::string> f = words(text.substr(close + 1));
  static const std::pair<int, const char*> kState[] = {
      {3, "state"},        {4, "ppid"},         {5, "pgrp"},        {6, "session"},
      {7, "tty_nr"},       {8, "tpgid"},        {9, "flags"},       {18, "priority"},
      {19, "nice"},        {20, "num_threads"}, {23, "vsize"},      {25, "rsslim"},
      {26, "startcode"},   {27, "endcode"},     {28, "startstack"}, {38, "exit_signal"},
      {40, "rt_priority"}, {41, "policy"},      {45, "start_data"}, {46, "end_data"},
      {47, "start_brk"},   {48, "arg_start"},   {49, "arg_end"},    {50, "env_start"},
      {51, "env_end"},     {52, "exit_code"}};
  for (auto [n, name] : kState) {
    size_t i = static_cast<size_t>(n - 3);
    if (i >= f.size()) continue;
    if (n == 9) {
      // PF_* bits one entry each, so that one bit can be allowed without the others.
      uint64_t flags = sys::parse_uint(f[i]).value_or(0);
      for (int b = 0; b < 32; ++b)
        if (flags & (uint64_t{1} << b)) {
          char bit[32];
          snprintf(bit, sizeof bit, "stat/flags/0x%08llx", 1ull << b);
          s[prefix + bit] = "1";
        }
      continue;
    }
    s[prefix + "stat/" + name] = n == 3 ? run_state(f[i]) : f[i];
  }
}

std::string canon_link(const std::string& link, Canon& canon) {
  // "pipe:[123]", "socket:[456]": the number is an inode the kernel makes anew.
  size_t lb = link.find(":[");
  if (!link.empty() && link[0] != '/' && lb != std::string::npos && link.back() == ']') {
    std::string id = link.substr(lb + 2, link.size() - lb - 3);
    if (!id.empty() && std::all_of(id.begin(), id.end(), ::isdigit))
      return link.substr(0, lb + 2) + canon.name("ino", id) + "]";
  }
  return link;
}

// Links whose inode is made anew by a restore: pipes, sockets, anon inodes, memfds, shared
// anonymous memory.
static bool fresh_inode(const std::string& link) {
  return (!link.empty() && link[0] != '/') || link.starts_with("/memfd:") ||
         link.starts_with("/dev/zero") || link.starts_with("/SYSV");
}

void add_fdinfo(Snapshot& s, const std::string& prefix, int fd, const std::string& link,
                std::string_view text, Canon& canon) {
  const std::string base = prefix + "fdinfo/" + std::to_string(fd) + "/";
  // Keys that come once ("pos") are entries of their own; repeated ones ("lock", the lines of
  // an inotify) are sorted and numbered, as the kernel's order is not theirs.
  std::map<std::string, std::vector<std::string>> lines;
  for (std::string_view line : split_lines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key(line.substr(0, colon));
    std::string val = trim(line.substr(colon + 1));
    if (key == "ino" && fresh_inode(link)) {
      val = canon.name("ino", val);
    } else if (key == "it_value") {
      continue;  // time left: a clock reading, not state
    } else if (key == "eventfd-id") {
      val = canon.name("eventfd-id", val);  // an ida number handed out at creation
    } else if (key == "tfd") {
      // "tfd:        5 events:       19 data:                5  pos:0 ino:1a2b sdev:f"
      // Keyed by the watched fd (the kernel lists watches in the order of file addresses).
      std::vector<std::string> w = words(val);
      std::string rest;
      for (size_t i = 1; i < w.size(); ++i) {
        std::string t = w[i];
        if (t.starts_with("ino:")) {
          std::string dec = hex_to_dec(t.substr(4));
          t = "ino:" + (canon.has("ino", dec) ? canon.name("ino", dec) : dec);
        }
        rest += (rest.empty() ? "" : " ") + t;
      }
      // Several watches can share a number (files dup2'd to it in turn): sorted below.
      lines["tfd/" + (w.empty() ? "?" : w[0])].push_back(rest);
      continue;
    } else if (key == "lock") {
      // "lock:\t1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF": the "1:" is the lock's place
      // in the whole system's list.
      std::vector<std::string> w = words(val);
      val.clear();
      for (size_t i = 1; i < w.size(); ++i) val += (val.empty() ? "" : " ") + w[i];
    }
    lines[key].push_back(val);
  }
  for (auto& [key, vals] : lines) {
    if (vals.size() == 1 && key != "lock" && !key.starts_with("tfd/")) {
      s[base + key] = vals[0];
      continue;
    }
    std::sort(vals.begin(), vals.end());
    for (size_t i = 0; i < vals.size(); ++i) s[base + key + "/" + std::to_string(i)] = vals[i];
  }
}

std::vector<MergedMap> merged_maps(std::string_view smaps_text, std::string* error) {
  auto maps = sys::parse_smaps(smaps_text);
  if (!maps) {
    if (error) *error = maps.error().message;
    return {};
  }
  std::vector<MergedMap> out;
  auto flags_but_ac = [](const sys::MapEntry& m) {
    std::vector<std::string> f;
    for (const std::string& x : m.vm_flags)
      if (x != "ac") f.push_back(x);
    std::sort(f.begin(), f.end());
    return f;
  };
  for (const sys::MapEntry& m : *maps) {
    if (!out.empty()) {
      MergedMap& p = out.back();
      const sys::MapEntry& l = p.pieces.back();
      const bool same = l.end == m.start && l.read == m.read && l.write == m.write &&
                        l.exec == m.exec && l.shared == m.shared &&
                        l.offset + (l.end - l.start) == m.offset && l.dev_major == m.dev_major &&
                        l.dev_minor == m.dev_minor && l.inode == m.inode && l.path == m.path &&
                        l.deleted == m.deleted && l.protection_key == m.protection_key &&
                        flags_but_ac(l) == flags_but_ac(m) && !m.special();
      if (same) {
        p.pieces.push_back(m);
        continue;
      }
    }
    out.push_back(MergedMap{{m}});
  }
  return out;
}

void add_smaps(Snapshot& s, const std::string& prefix, std::string_view text, Canon& canon) {
  std::string error;
  std::vector<MergedMap> maps = merged_maps(text, &error);
  if (!error.empty()) {
    s[prefix + "smaps"] = "!" + error;
    return;
  }
  for (const MergedMap& mm : maps) {
    const sys::MapEntry& m = mm.pieces.front();
    const std::string range = mm.range();
    std::string perms = std::string(m.read ? "r" : "-") + (m.write ? "w" : "-") +
                        (m.exec ? "x" : "-") + (m.shared ? "s" : "p");
    std::string path = m.path + (m.deleted ? " (deleted)" : "");
    std::string inode = std::to_string(m.inode);
    if (m.inode != 0 && fresh_inode(m.path)) inode = canon.name("ino", inode);
    char off[32];
    snprintf(off, sizeof off, "%llx", static_cast<unsigned long long>(m.offset));
    s[prefix + "maps/" + range] = perms + " " + off + " " + std::to_string(m.dev_major) + ":" +
                                  std::to_string(m.dev_minor) + " " + inode + " " + path;
    const std::string fl = prefix + "smaps/" + range + "/";
    size_t ac = 0;
    for (const sys::MapEntry& piece : mm.pieces) ac += piece.has_flag("ac");
    for (const std::string& f : m.vm_flags)
      if (f != "ac") s[fl + "VmFlags/" + f] = "1";
    if (ac > 0) s[fl + "VmFlags/ac"] = ac == mm.pieces.size() ? "1" : "part";
    if (m.protection_key != 0) s[fl + "ProtectionKey"] = std::to_string(m.protection_key);
  }
}

std::string MergedMap::range() const {
  char r[64];
  snprintf(r, sizeof r, "%llx-%llx", static_cast<unsigned long long>(pieces.front().start),
           static_cast<unsigned long long>(pieces.back().end));
  return r;
}

void add_limits(Snapshot& s, const std::string& prefix, std::string_view text) {
  static const char* kNames[16] = {"cpu",      "fsize",  "data",    "stack", "core",  "rss",
                                   "nproc",    "nofile", "memlock", "as",    "locks", "sigpending",
                                   "msgqueue", "nice",   "rtprio",  "rttime"};
  auto v = sys::parse_limits(text);
  if (!v) {
    s[prefix + "limits"] = "!" + v.error().message;
    return;
  }
  for (size_t i = 0; i < 16; ++i)
    s[prefix + "limits/" + kNames[i]] =
        std::to_string((*v)[2 * i]) + " " + std::to_string((*v)[2 * i + 1]);
}

void add_locks(Snapshot& s, std::string_view text, const std::vector<pid_t>& pids) {
  // "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a blocked waiter has "->" after "1:".
  std::map<std::string, std::vector<std::string>> found;
  for (std::string_view line : split_lines(text)) {
    std::vector<std::string> w = words(line);
    size_t i = 1;
    bool waiter = i < w.size() && w[i] == "->";
    if (waiter) ++i;
    if (w.size() < i + 7) continue;
    auto pid = sys::parse_uint(w[i + 3]);
    if (!pid || std::find(pids.begin(), pids.end(), static_cast<pid_t>(*pid)) == pids.end())
      continue;
    std::string key = w[i + 3] + "/locks/" + w[i + 4] + "/" + w[i + 5];
    found[key].push_back((waiter ? "-> " : "") + w[i] + " " + w[i + 1] + " " + w[i + 2] + " " +
                         w[i + 6]);
  }
  for (auto& [key, vals] : found) {
    std::sort(vals.begin(), vals.end());
    for (size_t i = 0; i < vals.size(); ++i) s[key + "/" + std::to_string(i)] = vals[i];
  }
}

std::string canon_ns(const std::string& link, const std::string& ours, Canon& canon) {
  if (link == ours) return "host";
  size_t lb = link.find(":[");
  if (lb == std::string::npos) return link;
  return link.substr(0, lb) + ":" + canon.name("ns", link);
}

// ---- Comparison

std::vector<Difference> diff(const Snapshot& before, const Snapshot& after,
                             const std::string& case_name, const std::vector<AllowEntry>& allow) {
  std::vector<Difference> out;
  auto add = [&](const std::string& key, const std::string& b, const std::string& a) {
    Difference d{key, b, a, nullptr};
    for (const AllowEntry& e : allow)
      if (fnmatch(e.case_glob, case_name.c_str(), 0) == 0 &&
          fnmatch(e.key_glob, key.c_str(), 0) == 0) {
        d.allowed = &e;
        break;
      }
    out.push_back(std::move(d));
  };
  auto b = before.begin(), a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      add(b->first, b->second, "<absent>");
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      add(a->first, "<absent>", a->second);
      ++a;
    } else {
      if (a->second != b->second) add(b->first, b->second, a->second);
      ++a, ++b;
    }
  }
  return out;
}

std::string describe_unallowed(const std::vector<Difference>& d) {
  std::string out;
  for (const Difference& x : d)
    if (!x.allowed) out += x.key + ": '" + x.before + "' -> '" + x.after + "'\n";
  return out;
}

}  // namespace cr::e2e
