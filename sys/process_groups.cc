#include "sys/process_groups.h"

#include <unistd.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace cr::sys {

namespace {

// An exited process whose threads are gone too (a zombie leader with live threads still counts).
bool dead(const ProcStat& st) {
  return (st.state == 'Z' || st.state == 'X' || st.state == 'x') && st.num_threads <= 1;
}

// Pid 1 is the global init only when we are in the initial pid namespace: then our NSpid line
// has one level.
pid_t global_init_in_view() {
  auto self = ProcDir::open(::getpid());
  if (!self.ok()) return 0;
  auto text = self->read("status");
  if (!text.ok()) return 0;
  for (std::string_view line : split_lines(*text)) {
    if (!line.starts_with("NSpid:")) continue;
    line.remove_prefix(6);
    int levels = 0;
    bool in_word = false;
    for (char c : line) {
      const bool space = c == ' ' || c == '\t';
      if (!space && !in_word) ++levels;
      in_word = !space;
    }
    return levels == 1 ? 1 : 0;
  }
  return 0;
}

}  // namespace

bool pgrp_orphaned(pid_t pgid, std::span<const ProcStat> all, pid_t global_init) {
  std::unordered_map<pid_t, const ProcStat*> by_pid;
  for (const ProcStat& st : all) by_pid.emplace(st.pid, &st);
  for (const ProcStat& p : all) {
    if (p.pgrp != pgid || dead(p)) continue;
    if (global_init != 0 && p.ppid == global_init) continue;
    auto parent = by_pid.find(p.ppid);
    if (parent == by_pid.end()) continue;
    if (parent->second->pgrp != pgid && parent->second->session == p.session) return false;
  }
  return true;
}

Result<bool> pgrp_orphaned_now(pid_t pgid) {
  CR_TRY_ASSIGN(std::vector<int> pids, ProcDir::all_pids());
  std::vector<ProcStat> all;
  all.reserve(pids.size());
  for (int pid : pids) {
    auto proc = ProcDir::open(pid);
    if (!proc.ok()) continue;  // gone since the listing
    auto text = proc->read("stat");
    if (!text.ok()) continue;
    auto st = parse_stat(*text);
    if (st.ok()) all.push_back(std::move(st).value());
  }
  return pgrp_orphaned(pgid, all, global_init_in_view());
}

}  // namespace cr::sys
