// Shared memory objects moved in the image head: crdump writes them before the files (a memfd
// File names its Shmem), images written before memfd support have them after every Fd. An
// image of the older order, made from a fresh dump by moving the records with crit, must still
// restore, and the restored tree must still share its memory.
#include <fcntl.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "e2e_common.h"

namespace cr::e2e {
namespace {

bool crit_to_file(TempDir& dir, const std::vector<std::string>& args, const std::string& out) {
  ToolRun r = run_tool_to_file(dir, "crit", args, out);
  EXPECT_TRUE(r.status.ok()) << "crit " << args.front() << ": " << r.describe();
  return r.status.ok();
}

size_t first_of(const nlohmann::json& recs, const std::string& type) {
  for (size_t i = 0; i < recs.size(); ++i)
    if (recs[i]["type"] == type) return i;
  return recs.size();
}

TEST(ShmemOrder, OlderImageWithShmemAfterTheFdsRestores) {
  if (!tools_present() || !tool_exists("crit")) return;
  TempDir dir;
  // tree_shmem: shared anonymous memory between a parent and its child, checked both ways.
  Target t = Target::start(dir, {zdtm_path("tree_shmem")});
  ASSERT_GT(t.pid(), 0) << t.error();
  const pid_t pid = t.pid();
  const std::string img = dir.path("img");
  if (!dump_target(dir, t, Mode::kKill, img)) {
    dir.keep();
    return;
  }
  ASSERT_TRUE(crit_to_file(dir, {"decode", "--pages", img}, dir.path("img.json")));
  nlohmann::json doc = nlohmann::json::parse(read_file(dir.path("img.json")));
  nlohmann::json& recs = doc["records"];
  const size_t shmem = first_of(recs, "shmem"), file = first_of(recs, "file");
  ASSERT_LT(shmem, recs.size()) << "tree_shmem's image has no shmem record";
  ASSERT_LT(file, recs.size());
  EXPECT_LT(shmem, file) << "crdump writes shared memory before the files";

  // The older order: every shmem and shmem_data record right after the last fd.
  nlohmann::json moved = nlohmann::json::array(), rest = nlohmann::json::array();
  for (auto& r : recs)
    (r["type"] == "shmem" || r["type"] == "shmem_data" ? moved : rest).push_back(r);
  size_t last_fd = 0;
  for (size_t i = 0; i < rest.size(); ++i)
    if (rest[i]["type"] == "fd") last_fd = i;
  ASSERT_GT(last_fd, 0u);
  nlohmann::json old_order = nlohmann::json::array();
  for (size_t i = 0; i < rest.size(); ++i) {
    old_order.push_back(rest[i]);
    if (i == last_fd)
      for (auto& m : moved) old_order.push_back(m);
  }
  recs = old_order;
  ToolRun enc = crit_encode(dir, doc.dump(), dir.path("img.old"));
  ASSERT_TRUE(enc.status.ok()) << enc.describe();

  ASSERT_TRUE(crit_to_file(dir, {"decode", dir.path("img.old")}, dir.path("check.json")));
  const nlohmann::json check = nlohmann::json::parse(read_file(dir.path("check.json")))["records"];
  size_t fd_at = 0;
  for (size_t i = 0; i < check.size(); ++i)
    if (check[i]["type"] == "fd") fd_at = i;
  EXPECT_GT(first_of(check, "shmem"), fd_at) << "the image was not put in the older order";

  if (!restore_detached(dir, dir.path("img.old"), pid)) {
    dir.keep();
    return;
  }
  expect_restored_passes(dir, pid);
  if (HasFailure()) dir.keep();
}

}  // namespace
}  // namespace cr::e2e
