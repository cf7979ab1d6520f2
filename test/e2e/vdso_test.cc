// An image whose vDSO differs from this kernel's (as one written on another kernel build):
// crrestore moves this kernel's vDSO aside and puts jumps at the dumped functions' offsets, so
// libc's pointers into the dumped vDSO still reach clock_gettime, gettimeofday and time. The
// image is a real dump of vdso_clock whose Vdso record's checksum is changed with crit.
#include <fcntl.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

TEST(VdsoProxy, DifferentVdsoRestoresThroughJumps) {
  if (!tools_present() || !tool_exists("crit")) return;
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("vdso_clock"), "proxy"});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img)) {
    dir.keep();
    return;
  }
  {
    ToolRun r = run_tool_to_file(dir, "crit", {"decode", "--pages", img}, dir.path("img.json"));
    ASSERT_TRUE(r.status.ok()) << r.describe();
  }
  nlohmann::json doc = nlohmann::json::parse(read_file(dir.path("img.json")));
  bool found = false;
  for (auto& r : doc["records"]) {
    if (r["type"] != "vdso") continue;
    found = true;
    EXPECT_NE(r["fields"]["names"].get<std::string>().find("clock_gettime"), std::string::npos);
    r["fields"]["crc"] = r["fields"]["crc"].get<uint32_t>() ^ 1u;
  }
  ASSERT_TRUE(found) << "crdump wrote no vdso record";
  ToolRun enc = crit_encode(dir, doc.dump(), dir.path("img.other"));
  ASSERT_TRUE(enc.status.ok()) << enc.describe();
  if (!restore_detached(dir, dir.path("img.other"), pid)) {
    dir.keep();
    return;
  }
  expect_restored_passes(dir, pid);
  if (HasFailure()) dir.keep();
}

}  // namespace
}  // namespace cr::e2e
