#include "sys/file_locks.h"

#include <charconv>

#include "sys/proc_parse.h"

namespace cr::sys {

namespace {

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <class T>
bool number(std::string_view s, T& out, int base = 10) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::string LockLine::text() const {
  std::string s = kind + " " + mode + " " + type + " " + std::to_string(pid) + " " + dev + ":" +
                  std::to_string(ino) + " " + std::to_string(start) + " ";
  return s + (end == kToEof ? std::string("EOF") : std::to_string(end));
}

Result<LockLine> parse_lock_line(std::string_view line) {
  auto bad = [&] { return make_error("lock line '" + std::string(line) + "' not understood"); };
  std::vector<std::string_view> w = words(line);
  LockLine l;
  size_t i = 1;  // past "N:"
  if (w.empty() || w[0].back() != ':') return bad();
  if (w.size() > 1 && w[1] == "->") {
    l.blocked = true;
    ++i;
  }
  // kind mode type pid dev:ino start end
  if (w.size() != i + 7) return bad();
  l.kind = w[i];
  l.mode = w[i + 1];
  l.type = w[i + 2];
  if (!number(w[i + 3], l.pid)) return bad();
  std::string_view di = w[i + 4];
  size_t colon = di.rfind(':');
  if (colon == std::string_view::npos) return bad();
  l.dev = std::string(di.substr(0, colon));
  if (!number(di.substr(colon + 1), l.ino)) return bad();
  if (!number(w[i + 5], l.start)) return bad();
  if (w[i + 6] == "EOF") {
    l.end = LockLine::kToEof;
  } else if (!number(w[i + 6], l.end)) {
    return bad();
  }
  return l;
}

Result<std::vector<LockLine>> parse_proc_locks(std::string_view text) {
  std::vector<LockLine> out;
  for (std::string_view line : split_lines(text)) {
    if (line.empty()) continue;
    CR_TRY_ASSIGN(LockLine l, parse_lock_line(line));
    out.push_back(std::move(l));
  }
  return out;
}

Result<std::vector<LockLine>> parse_fdinfo_locks(std::string_view text) {
  constexpr std::string_view kPrefix = "lock:";
  std::vector<LockLine> out;
  for (std::string_view line : split_lines(text)) {
    if (!line.starts_with(kPrefix)) continue;
    CR_TRY_ASSIGN(LockLine l, parse_lock_line(line.substr(kPrefix.size())));
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace cr::sys
