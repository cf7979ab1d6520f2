// Memory a forked child still shares copy-on-write with its parent is stored once: tree_cow's
// three children name the parent's pages (pages_parent records) instead of holding copies, and
// the tree restored from that image passes its own checks (each process sees its own bytes)
// and shares that memory again (each child's proportional share of its anonymous memory is a
// fraction of what it maps). Without the image's premap area (as if crrestore's own memory
// were there) the children get copies, and still pass.
#include <fcntl.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

// Anonymous (mapped anonymous memory) and Pss_Anon of a process, kB.
std::pair<uint64_t, uint64_t> anon_kb(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/smaps_rollup");
  auto field = [&](const std::string& name) -> uint64_t {
    size_t at = text.find("\n" + name + ":");
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + name.size() + 2));
  };
  return {field("Anonymous"), field("Pss_Anon")};
}

// Shared_Dirty of the [heap] mapping of a process, kB.
uint64_t heap_shared_kb(pid_t pid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/smaps");
  size_t at = text.find("[heap]");
  if (at == std::string::npos) return 0;
  at = text.find("\nShared_Dirty:", at);
  return at == std::string::npos ? 0 : std::stoull(text.substr(at + 14));
}

void run_cow(bool premap) {
  if (!tools_present() || !tool_exists("crit")) return;
  if (::geteuid() != 0) GTEST_SKIP() << "pagemap shows frame numbers to CAP_SYS_ADMIN only";
  TempDir dir;
  Target t = Target::start(dir, {zdtm_path("tree_cow")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img)) return;
  {
    ToolRun r = run_tool_to_file(dir, "crit", {"decode", "--pages", img}, dir.path("img.json"));
    ASSERT_TRUE(r.status.ok()) << r.describe();
  }
  const nlohmann::json recs = nlohmann::json::parse(read_file(dir.path("img.json")))["records"];
  std::map<uint64_t, uint64_t> own, parents, prefork;  // pid -> pages
  std::vector<uint64_t> order;                // pids in stream order
  for (const auto& r : recs) {
    const auto& f = r["fields"];
    if (r["type"] == "process") order.push_back(f["pid"].get<uint64_t>());
    if (r["type"] == "pages") own[f["pid"].get<uint64_t>()] += f["npages"].get<uint64_t>();
    if (r["type"] == "pages_parent")
      parents[f["pid"].get<uint64_t>()] += f["npages"].get<uint64_t>();
    if (r["type"] == "pages_prefork")
      prefork[f["pid"].get<uint64_t>()] += f["npages"].get<uint64_t>();
  }
  ASSERT_EQ(order.size(), 4u) << "tree_cow is a parent and three children";
  EXPECT_EQ(parents.count(static_cast<uint64_t>(pid)), 0u) << "the root has no parent to share";
  // tree_cow's 2048 anonymous pages: 64 rewritten by the parent after the fork, 16 written and 8
  // dropped by each child; so nearly 1960 still shared, and some of its heap.
  EXPECT_GT(own[static_cast<uint64_t>(pid)], 2000u);
  // The 64 pages the parent rewrote after the fork, which the three children still share: once,
  // in the parent's section.
  EXPECT_GE(prefork[static_cast<uint64_t>(pid)], 64u);
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_GT(parents[order[i]], 1900u + 64u) << "child " << order[i];
    EXPECT_LT(own[order[i]], 100u) << "child " << order[i] << " stores copies of shared pages";
  }
  std::string to_restore = img;
  if (!premap) {
    nlohmann::json doc = nlohmann::json::parse(read_file(dir.path("img.json")));
    nlohmann::json kept = nlohmann::json::array();
    for (auto& r : doc["records"])
      if (r["type"] != "premap_area") kept.push_back(r);
    ASSERT_EQ(kept.size() + 1, doc["records"].size()) << "no premap_area record";
    doc["records"] = kept;
    ToolRun enc = crit_encode(dir, doc.dump(), dir.path("img.copies"));
    ASSERT_TRUE(enc.status.ok()) << enc.describe();
    to_restore = dir.path("img.copies");
  }
  if (!restore_detached(dir, to_restore, pid)) {
    dir.keep();
    return;
  }
  const std::vector<pid_t> kids = child_pids(pid);
  EXPECT_EQ(kids.size(), 3u);
  for (pid_t k : kids) {
    auto [rss, pss] = anon_kb(k);
    if (premap) {
      EXPECT_LT(pss * 2, rss) << "child " << k << ": its memory is not shared with its parent";
      // tree_cow's 64 pages from brk (one child grew its heap past them and rewrote one).
      EXPECT_GE(heap_shared_kb(k), 63u * 4) << "child " << k << ": its heap is not shared";
    } else {
      EXPECT_GT(pss * 10, rss * 9) << "child " << k << ": copies expected";
    }
  }
  expect_restored_passes(dir, pid);
  if (::testing::Test::HasFailure()) dir.keep();
}

TEST(CopyOnWrite, ForkedChildrenShareTheirParentsPagesAgain) {
  run_cow(true);
}

TEST(CopyOnWrite, WithoutPremapAreaChildrenGetCopies) {
  run_cow(false);
}

}  // namespace
}  // namespace cr::e2e
