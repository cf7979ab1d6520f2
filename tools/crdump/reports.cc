#include "tools/crdump/reports.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "sys/kernel_features.h"

namespace crdump {

int print_kernel_check() {
  const auto features = cr::sys::probe_kernel_features();
  size_t width = 0;
  for (const auto& f : features) width = std::max(width, f.name.size());
  std::string missing_required, missing_optional;
  for (const auto& f : features) {
    std::printf("%-*s  %-3s  %s\n", static_cast<int>(width), f.name.c_str(), f.ok ? "yes" : "no",
                f.detail.c_str());
    if (f.ok) continue;
    std::string& list = f.required ? missing_required : missing_optional;
    list += (list.empty() ? "" : ", ") + f.name;
  }
  if (!missing_required.empty()) {
    std::printf("crdump: a plain dump or restore cannot work here: missing %s\n",
                missing_required.c_str());
    return 1;
  }
  std::printf("crdump: everything a plain dump and restore needs works%s%s\n",
              missing_optional.empty() ? "" : "; not available: ", missing_optional.c_str());
  return 0;
}

int print_blockers(pid_t pid, const cr::dump::DumpOptions& opts) {
  const cr::dump::Blockers b = cr::dump::find_blockers(pid, opts);
  for (const std::string& line : b.lines) std::printf("%s\n", line.c_str());
  if (b.stopped) {
    std::printf("crdump: the check stopped at the last line; more may block the dump of %d\n", pid);
    return 1;
  }
  if (!b.lines.empty()) {
    std::printf("crdump: %zu thing%s block%s the dump of %d (left running)\n", b.lines.size(),
                b.lines.size() == 1 ? "" : "s", b.lines.size() == 1 ? "s" : "", pid);
    return 1;
  }
  std::printf("crdump: nothing blocks the dump of %d (left running)\n", pid);
  return 0;
}

}  // namespace crdump
