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
  // No atime option in mountinfo is strictatime (runc's /dev), which mount(2) must be told.
  EXPECT_EQ(mount_flags("rw,nosuid"), static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(mount_flags("rw,noatime"), static_cast<unsigned long>(MS_NOATIME));
  EXPECT_TRUE(safe_relative_path("a/b c/d"));
  EXPECT_TRUE(safe_relative_path(""));
  EXPECT_FALSE(safe_relative_path("../x"));
  EXPECT_FALSE(safe_relative_path("a//b"));
  EXPECT_FALSE(safe_relative_path("/etc"));
  EXPECT_FALSE(safe_relative_path("a/./b"));
}

}  // namespace
}  // namespace cr::sys

namespace cr::sys {
namespace {

// runc's default container (runc spec) on a cgroup v1 host, as its mountinfo lists it: the root
// a bind of the bundle's rootfs after pivot_root, /dev a tmpfs with devpts and mqueue under it,
// cgroup binds of the host's hierarchies, /proc's subdirectories bound read-only, the
// container's /dev/null bound over masked files, empty read-only tmpfs over masked directories.
constexpr const char* kRuncHost =
    "25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "26 25 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "27 25 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "28 27 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755\n"
    "29 28 0:29 / /sys/fs/cgroup/cpu rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup "
    "rw,cpu\n";
constexpr const char* kRuncTree =
    "68 46 254:0 /tmp/bb/rootfs / ro,relatime - ext4 /dev/vda rw\n"
    "69 68 0:41 / /proc rw,relatime - proc proc rw\n"
    "70 68 0:42 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
    "71 70 0:43 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts "
    "rw,gid=5,mode=620,ptmxmode=666\n"
    "73 70 0:40 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw\n"
    "74 68 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
    "75 74 0:46 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755\n"
    "76 75 0:29 /bb1 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup "
    "rw,cpu\n"
    "47 69 0:41 /bus /proc/bus ro,relatime - proc proc rw\n"
    "51 69 0:47 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n"
    "52 69 0:42 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n";

TEST(MountTree, ARuncContainerIsAPivotedRootWithItsOwnBinds) {
  auto r = classify_mounts(lines(kRuncTree), lines(kRuncHost));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 11u);
  const auto& m = *r;
  EXPECT_EQ(m[0].kind, schema::kMountBind);
  EXPECT_EQ(m[0].bind_from, "/tmp/bb/rootfs");
  EXPECT_TRUE(pivoted_root(m));
  EXPECT_EQ(m[1].kind, schema::kMountProc);
  EXPECT_EQ(m[2].kind, schema::kMountTmpfs);
  EXPECT_EQ(m[3].kind, schema::kMountDevpts);
  EXPECT_EQ(m[4].kind, schema::kMountMqueue);
  EXPECT_EQ(m[5].kind, schema::kMountSysfs);
  EXPECT_EQ(m[6].kind, schema::kMountTmpfs);
  EXPECT_EQ(m[7].kind, schema::kMountBind);
  EXPECT_EQ(m[7].bind_from, "/sys/fs/cgroup/cpu/bb1");
  // A bind of a whole host mount names its mount point, with no slash after.
  auto whole = classify_mounts(
      lines("68 46 254:0 /tmp/bb/rootfs / ro,relatime - ext4 /dev/vda rw\n"
            "74 68 0:21 / /sys ro,nosuid - sysfs sysfs rw\n"),
      lines("25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
            "27 25 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"));
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ((*whole)[1].kind, schema::kMountBind);
  EXPECT_EQ((*whole)[1].bind_from, "/sys");
  // Parents first: /proc's children come after /proc.
  EXPECT_EQ(m[8].mount_point, "/proc/bus");
  EXPECT_EQ(m[8].kind, schema::kMountBindTree);
  EXPECT_EQ(m[8].bind_from, "/proc/bus");
  EXPECT_EQ(m[9].kind, schema::kMountTmpfs);
  EXPECT_EQ(m[10].kind, schema::kMountBindTree);
  EXPECT_EQ(m[10].bind_from, "/dev/null");

  // Paths of the tree as crdump and crrestore reach them.
  EXPECT_EQ(host_path(m, "/bin/busybox"), "/tmp/bb/rootfs/bin/busybox");
  EXPECT_EQ(host_path(m, "/"), "/tmp/bb/rootfs");
  EXPECT_EQ(host_path(m, "/sys/fs/cgroup/cpu/tasks"), "/sys/fs/cgroup/cpu/bb1/tasks");
  EXPECT_EQ(host_path(m, "/dev/null"), std::nullopt);
  EXPECT_EQ(host_path(m, "/proc/1/status"), std::nullopt);
  EXPECT_EQ(host_path(m, "relative"), std::nullopt);
  // Not pivoted: every path is crdump's own.
  auto plain = classify_mounts(lines(kTree), lines(kHost));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(pivoted_root(*plain));
  EXPECT_EQ(host_path(*plain, "/run/box/x"), "/run/box/x");
}

TEST(MountTree, ARootOfNoHostFilesystemIsStillRefused) {
  auto r = classify_mounts(lines("68 46 0:99 / / rw - overlay overlay rw,lowerdir=/a\n"),
                           lines(kRuncHost));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("root mount"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace cr::sys
