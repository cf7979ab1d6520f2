#include "sys/pagemap_scan.h"

#include <sys/ioctl.h>

#include "common/text.h"
#include "sys/linux_abi.h"

namespace cr::sys {

Result<std::vector<PageRun>> pagemap_scan(int pagemap, uint64_t start, uint64_t end,
                                          uint64_t want, uint64_t unwanted) {
  constexpr size_t kRegions = 1024;
  std::vector<PageRun> out;
  std::vector<PageRegion> regions(kRegions);
  PmScanArg arg{};
  arg.size = sizeof arg;
  arg.vec = reinterpret_cast<uint64_t>(regions.data());
  arg.vec_len = regions.size();
  arg.category_anyof_mask = kPageIsPresent;
  arg.category_mask = want | unwanted;
  arg.category_inverted = unwanted;
  for (uint64_t at = start; at < end;) {
    arg.start = at;
    arg.end = end;
    arg.walk_end = 0;
    long n = ::ioctl(pagemap, kPagemapScan, &arg);
    if (n < 0) return errno_error("PAGEMAP_SCAN at " + hex(at));
    for (long i = 0; i < n; ++i) {
      if (!out.empty() && out.back().second == regions[i].start)
        out.back().second = regions[i].end;
      else
        out.emplace_back(regions[i].start, regions[i].end);
    }
    if (arg.walk_end <= at) return make_error("PAGEMAP_SCAN made no progress at " + hex(at));
    at = arg.walk_end;
  }
  return out;
}

}  // namespace cr::sys
