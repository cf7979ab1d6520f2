#include "sys/mount_tree.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

namespace cr::sys {
namespace {

// crdump's namespace: a root, /proc, /tmp on the root fs, a data disk at /data, /mnt/gone.
// /proc is listed before its parent, as on this machine.
constexpr const char* kHost =
    "22 21 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw\n"
    "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "23 21 8:2 / /data rw,relatime shared:3 - ext4 /dev/sda2 rw\n"
    "24 21 0:30 / /mnt/gone rw,relatime shared:4 - tmpfs tmpfs rw\n";

// unshare --mount --pid --mount-proc, then a tmpfs, a bind of /data/sub, /mnt/gone unmounted.
constexpr const char* kTree =
    "101 90 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
    "102 101 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "103 101 8:2 / /data rw,relatime - ext4 /dev/sda2 rw\n"
    "110 102 0:50 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "111 101 0:51 / /run/box rw,nodev,relatime - tmpfs box rw,size=1024k,mode=700\n"
    "112 111 8:2 /sub /run/box/data\\040dir ro,relatime - ext4 /dev/sda2 rw\n";

std::vector<MountLine> lines(const char* text) {
  auto l = parse_mountinfo(text);
  EXPECT_TRUE(l.ok());
  return l.ok() ? *l : std::vector<MountLine>{};
}

TEST(MountTree, ParsesParentOptionsPropagationSource) {
  auto h = lines(kHost);
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].parent, 21u);
  EXPECT_EQ(h[0].options, "rw,nosuid,nodev,noexec,relatime");
  EXPECT_EQ(h[0].propagation, "shared:2");
  EXPECT_EQ(h[2].source, "/dev/sda2");
  EXPECT_EQ(lines(kTree)[1].propagation, "");
}

TEST(MountTree, ClassifiesCopiesAndNewMounts) {
  auto r = classify_mounts(lines(kTree), lines(kHost));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 6u);
  EXPECT_EQ((*r)[0].kind, schema::kMountHost);
  EXPECT_EQ((*r)[1].kind, schema::kMountHost);
  EXPECT_EQ((*r)[2].kind, schema::kMountHost);
  EXPECT_EQ((*r)[3].kind, schema::kMountProc);
  EXPECT_EQ((*r)[4].kind, schema::kMountTmpfs);
  EXPECT_EQ((*r)[4].super_options, "rw,size=1024k,mode=700");
  EXPECT_EQ((*r)[5].kind, schema::kMountBind);
  EXPECT_EQ((*r)[5].bind_from, "/data/sub");
  EXPECT_EQ((*r)[5].mount_point, "/run/box/data dir");
}

TEST(MountTree, RefusesWhatItCannotMakeAgain) {
  auto host = lines(kHost);
  auto shared =
      classify_mounts(lines("101 90 8:1 / / rw,relatime shared:7 - ext4 /dev/sda1 rw\n"), host);
  ASSERT_FALSE(shared.ok());
  EXPECT_NE(shared.error().message.find("propagation 'shared:7'"), std::string::npos);
  auto overlay = classify_mounts(
      lines("101 90 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
            "102 101 0:60 / /merged rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c\n"),
      host);
  ASSERT_FALSE(overlay.ok());
  EXPECT_NE(overlay.error().message.find("fs type overlay"), std::string::npos);
  auto ro = classify_mounts(lines("101 90 8:1 / / ro,relatime - ext4 /dev/sda1 rw\n"), host);
  ASSERT_FALSE(ro.ok());
  EXPECT_NE(ro.error().message.find("options changed"), std::string::npos);
  auto pivot = classify_mounts(lines("101 90 0:70 / / rw - tmpfs tmpfs rw\n"), host);
  ASSERT_FALSE(pivot.ok());
  EXPECT_NE(pivot.error().message.find("root mount"), std::string::npos);
}

TEST(MountTree, MatchesTheCopyAndTheRebuiltList) {
  auto recs = classify_mounts(lines(kTree), lines(kHost));
  ASSERT_TRUE(recs.ok());
  // The root's copy of crrestore's namespace: other ids; /mnt/gone is not in the records.
  auto copy = lines(
      "202 201 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
      "201 190 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
      "203 201 8:2 / /data rw,relatime - ext4 /dev/sda2 rw\n"
      "204 201 0:30 / /mnt/gone rw,relatime - tmpfs tmpfs rw\n");
  auto m = match_mounts(*recs, copy, true);
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m[101], 201u);
  EXPECT_EQ(m[103], 203u);
  EXPECT_EQ(m.count(110), 0u);
  auto rebuilt = lines(
      "201 190 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n"
      "202 201 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
      "203 201 8:2 / /data rw,relatime - ext4 /dev/sda2 rw\n"
      "210 202 0:80 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
      "211 201 0:81 / /run/box rw,nodev,relatime - tmpfs box rw,size=1024k,mode=700\n"
      "212 211 8:2 /sub /run/box/data\\040dir ro,relatime - ext4 /dev/sda2 rw\n");
  EXPECT_EQ(match_mounts(*recs, rebuilt, false).size(), 6u);
  // A bind of the wrong root is not the recorded one.
  rebuilt.back().root = "/other";
  EXPECT_EQ(match_mounts(*recs, rebuilt, false).size(), 5u);
}

TEST(MountTree, FlagsAndSafePaths) {
  EXPECT_EQ(mount_flags("ro,nosuid,nodev,relatime"),
            static_cast<unsigned long>(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_RELATIME));
  EXPECT_TRUE(safe_relative_path("a/b c/d"));
  EXPECT_TRUE(safe_relative_path(""));
  EXPECT_FALSE(safe_relative_path("../x"));
  EXPECT_FALSE(safe_relative_path("a//b"));
  EXPECT_FALSE(safe_relative_path("/etc"));
  EXPECT_FALSE(safe_relative_path("a/./b"));
}

}  // namespace
}  // namespace cr::sys
