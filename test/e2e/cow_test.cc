// Memory a forked child still shares copy-on-write with its parent is stored once: tree_cow's
// three children name the parent's pages (pages_parent records) instead of holding copies, and
// the tree restored from that image passes its own checks (each process sees its own bytes).
#include <fcntl.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

TEST(CopyOnWrite, ForkedChildrenNameTheirParentsPages) {
  if (!tools_present() || !tool_exists("crit")) return;
  if (::geteuid() != 0) return;  // pagemap shows frame numbers to CAP_SYS_ADMIN only
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_cow")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img)) {
    dir.keep();
    return;
  }
  {
    ScopedFd out(::open(dir.path("img.json").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                        0644));
    ASSERT_TRUE(out.valid());
    ToolRun r = run_tool(dir, "crit", {"decode", img}, -1, out.get());
    ASSERT_TRUE(r.status.ok()) << r.describe();
  }
  const nlohmann::json recs = nlohmann::json::parse(read_file(dir.path("img.json")))["records"];
  std::map<uint64_t, uint64_t> own, parents;  // pid -> pages
  std::vector<uint64_t> order;                // pids in stream order
  for (const auto& r : recs) {
    const auto& f = r["fields"];
    if (r["type"] == "process") order.push_back(f["pid"].get<uint64_t>());
    if (r["type"] == "pages") own[f["pid"].get<uint64_t>()] += f["npages"].get<uint64_t>();
    if (r["type"] == "pages_parent")
      parents[f["pid"].get<uint64_t>()] += f["npages"].get<uint64_t>();
  }
  ASSERT_EQ(order.size(), 4u) << "tree_cow is a parent and three children";
  EXPECT_EQ(parents.count(static_cast<uint64_t>(pid)), 0u) << "the root has no parent to share";
  // tree_cow's 2048 anonymous pages: 64 rewritten by the parent after the fork, 16 written and 8
  // dropped by each child; so nearly 1960 still shared, and some of its heap.
  EXPECT_GT(own[static_cast<uint64_t>(pid)], 2000u);
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_GT(parents[order[i]], 1900u) << "child " << order[i];
    EXPECT_LT(own[order[i]], 300u) << "child " << order[i] << " stores copies of shared pages";
  }
  if (!restore_detached(dir, img, pid)) {
    dir.keep();
    return;
  }
  expect_restored_passes(dir, pid);
  if (HasFailure()) dir.keep();
}

}  // namespace
}  // namespace cr::e2e
