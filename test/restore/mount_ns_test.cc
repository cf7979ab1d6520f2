#include "restore/mount_ns.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "sys/mount_tree.h"

namespace cr::restore {
namespace {

// crrestore's namespace and a tree's, as in sys/mount_tree_test: the tree binds /data/sub at
// "/run/box/data dir" and keeps copies of /, /proc and /data.
constexpr const char* kHost =
    "22 21 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n"
    "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 21 8:2 /exported /data rw,relatime shared:3 - xfs /dev/sda2 rw\n";
constexpr const char* kTree =
    "101 90 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "102 101 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "103 101 8:2 /exported /data rw,relatime - xfs /dev/sda2 rw\n"
    "110 102 0:50 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "112 101 8:2 /exported/sub /run/box ro,relatime - xfs /dev/sda2 rw\n";

std::vector<sys::MountLine> lines(const char* text) {
  auto l = sys::parse_mountinfo(text);
  EXPECT_TRUE(l.ok());
  return l.ok() ? *l : std::vector<sys::MountLine>{};
}

std::vector<schema::Mount> records() {
  auto r = sys::classify_mounts(lines(kTree), lines(kHost));
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::vector<schema::Mount>{};
}

// /tmp exists on every machine the tests run on (realpath needs it); in the canned lines it is
// on the root mount, /data/... on the xfs one whose root is /exported.
TEST(ExternalMounts, BindAndHostCopyBecomeBindsOfTheGivenPath) {
  const auto host = lines(kHost);
  auto r = apply_external_mounts(records(), {{"/run/box", "/tmp"}}, host, false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const schema::Mount& box = r->back();
  ASSERT_EQ(box.mount_point, "/run/box");
  EXPECT_EQ(box.kind, schema::kMountBind);
  EXPECT_EQ(box.bind_from, "/tmp");
  EXPECT_EQ(box.fstype, "ext4");
  EXPECT_EQ(box.root, "/tmp");
  EXPECT_EQ(box.options, "ro,relatime") << "its own mount options stay";

  auto copy = apply_external_mounts(records(), {{"/data", "/tmp"}}, host, false);
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  EXPECT_EQ((*copy)[2].kind, schema::kMountBind);
  EXPECT_EQ((*copy)[2].root, "/tmp");
}

TEST(ExternalMounts, RootOfAPathOnAnotherMountIsThatMountsRootPlusTheRest) {
  // A path under /data: that mount's root (/exported) joined with what follows /data.
  std::vector<sys::MountLine> host = lines(kHost);
  host.push_back(host[2]);
  host.back().mount_point = "/tmp";  // pretend /tmp is that xfs mount, root /exported
  auto r = apply_external_mounts(records(), {{"/run/box", "/tmp"}}, host, false);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->back().fstype, "xfs");
  EXPECT_EQ(r->back().root, "/exported");
}

TEST(ExternalMounts, RefusesWhatNamesNoBindOrHostMount) {
  const auto host = lines(kHost);
  for (const auto& [point, path, why] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"/nowhere", "/tmp", "no bind or host mount at /nowhere"},
           {"/", "/tmp", "no bind or host mount at /"},
           {"/run/box", "tmp", "not an absolute path that exists"},
           {"/run/box", "/no/such/dir/here", "not an absolute path that exists"}}) {
    auto r = apply_external_mounts(records(), {{point, path}}, host, false);
    ASSERT_FALSE(r.ok()) << point;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("--external mnt[" + point + "]"), std::string::npos);
  }
}

// crcriu's ext_mnt: runc names mount points the image may not have (its devices); those are
// skipped, and the pivoted root of a container may be given a new place.
TEST(ExternalMounts, WhereFoundSkipsOthersAndMovesAPivotedRoot) {
  const auto host = lines(kHost);
  auto r = apply_external_mounts(records(), {{"/nowhere", "/tmp"}, {"/run/box", "/tmp"}}, host,
                                 true);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->back().bind_from, "/tmp");
  // A copy of crrestore's root is not moved, even so.
  auto root = apply_external_mounts(records(), {{"/", "/tmp"}}, host, true);
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->front().kind, schema::kMountHost);

  auto pivoted = sys::classify_mounts(
      lines("68 46 8:1 /srv/rootfs / ro,relatime - ext4 /dev/sda1 rw\n"
            "69 68 0:41 / /proc rw,relatime - proc proc rw\n"),
      host);
  ASSERT_TRUE(pivoted.ok()) << pivoted.error().message;
  auto moved = apply_external_mounts(*pivoted, {{"/", "/tmp"}}, host, false);
  ASSERT_TRUE(moved.ok()) << moved.error().message;
  EXPECT_EQ(moved->front().kind, schema::kMountBind);
  EXPECT_EQ(moved->front().bind_from, "/tmp");
  EXPECT_EQ(moved->front().root, "/tmp");
  EXPECT_EQ(sys::host_path(*moved, "/etc/passwd"), "/tmp/etc/passwd");
}

}  // namespace
}  // namespace cr::restore

namespace cr::restore {
namespace {

// runc on cgroup v1: the container's /sys/fs/cgroup/cpu binds its cgroup (/ct1) of the host's
// cpu hierarchy; restored as another container (/ct2), it binds that one. The memory hierarchy's
// cgroup lies deeper (/machine/ct1), a name= hierarchy is matched by its name, and what is not
// below the tree's cgroup, or of a hierarchy not moved, stays.
TEST(CgroupBinds, MoveToTheCgroupsTheTreeIsRestoredIn) {
  auto bind = [](const char* point, const char* root, const char* from, const char* opts) {
    schema::Mount m;
    m.kind = schema::kMountBind;
    m.fstype = "cgroup";
    m.mount_point = point;
    m.root = root;
    m.bind_from = from;
    m.super_options = opts;
    return m;
  };
  std::vector<schema::Mount> mounts = {
      bind("/sys/fs/cgroup/cpu", "/ct1", "/sys/fs/cgroup/cpu/ct1", "rw,cpu"),
      bind("/sys/fs/cgroup/memory", "/machine/ct1", "/sys/fs/cgroup/memory/machine/ct1",
           "rw,memory"),
      bind("/sys/fs/cgroup/systemd", "/ct1/sub", "/sys/fs/cgroup/systemd/ct1/sub",
           "rw,name=systemd"),
      bind("/sys/fs/cgroup/pids", "/other", "/sys/fs/cgroup/pids/other", "rw,pids"),
      bind("/sys/fs/cgroup/blkio", "/ct1", "/sys/fs/cgroup/blkio/ct1", "rw,blkio"),
  };
  const std::map<std::string, std::pair<std::string, std::string>> moved = {
      {"cpu", {"/ct1", "/ct2"}},
      {"memory", {"/machine/ct1", "/machine/ct2"}},
      {"name=systemd", {"/ct1", "/ct2"}},
      {"pids", {"/ct1", "/ct2"}},
  };
  const auto out = move_cgroup_binds(mounts, moved);
  EXPECT_EQ(out[0].bind_from, "/sys/fs/cgroup/cpu/ct2");
  EXPECT_EQ(out[0].root, "/ct2");
  EXPECT_EQ(out[1].bind_from, "/sys/fs/cgroup/memory/machine/ct2");
  EXPECT_EQ(out[1].root, "/machine/ct2");
  EXPECT_EQ(out[2].bind_from, "/sys/fs/cgroup/systemd/ct2/sub");
  EXPECT_EQ(out[2].root, "/ct2/sub");
  EXPECT_EQ(out[3].bind_from, "/sys/fs/cgroup/pids/other") << "not below the tree's cgroup";
  EXPECT_EQ(out[4].bind_from, "/sys/fs/cgroup/blkio/ct1") << "a hierarchy not moved";

  // A host mount whose own root is below / (the hierarchy mounted at /machine): bind_from has
  // only the part below it.
  std::vector<schema::Mount> deep = {
      bind("/sys/fs/cgroup/cpu", "/machine/ct1", "/sys/fs/cgroup/cpu/ct1", "rw,cpu")};
  const auto moved_deep = move_cgroup_binds(deep, {{"cpu", {"/machine/ct1", "/machine/ct2"}}});
  EXPECT_EQ(moved_deep[0].bind_from, "/sys/fs/cgroup/cpu/ct2");
  EXPECT_EQ(moved_deep[0].root, "/machine/ct2");
}

}  // namespace
}  // namespace cr::restore
