#include "sys/cgroupfs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace cr::sys {
namespace {

// A hybrid machine as this one is: v1 controllers, a named hierarchy and cgroup2 beside them.
constexpr const char* kMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:32 / /mnt/memory\\040again rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:5 - cgroup cgroup "
    "rw,xattr,release_agent=/x,name=systemd\n"
    "41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

TEST(CgroupParse, ProcCgroupLines) {
  auto lines = parse_cgroup("9:name=systemd:/\n4:memory:/a/b\n1:cpu,cpuacct:/x:y\n0::/sub/c\n");
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  ASSERT_EQ(lines->size(), 4u);
  EXPECT_EQ((*lines)[0].hierarchy, 9u);
  EXPECT_EQ((*lines)[0].controllers, "name=systemd");
  EXPECT_EQ((*lines)[1].path, "/a/b");
  EXPECT_EQ((*lines)[2].controllers, "cpu,cpuacct");
  EXPECT_EQ((*lines)[2].path, "/x:y");  // the path is the rest of the line
  EXPECT_EQ((*lines)[3].controllers, "");
  EXPECT_FALSE(parse_cgroup("4:memory\n").ok());
  EXPECT_FALSE(parse_cgroup("x:memory:/\n").ok());
  EXPECT_FALSE(parse_cgroup("4:memory:relative\n").ok());
}

TEST(CgroupParse, NamespaceRoot) {
  EXPECT_EQ(cgroup_ns_root("/a/b/c", "/b/c"), "/a");
  EXPECT_EQ(cgroup_ns_root("/a/b", "/"), "/a/b");
  EXPECT_EQ(cgroup_ns_root("/a/b", "/a/b"), "/");
  EXPECT_EQ(cgroup_ns_root("/", "/"), "/");
  EXPECT_EQ(cgroup_ns_root("/xb/c", "/b/c"), std::nullopt);  // whole parts only
  EXPECT_EQ(cgroup_ns_root("/a/b", "/../x"), std::nullopt);  // outside the namespace root
  EXPECT_EQ(cgroup_ns_root("/a", "/a/b"), std::nullopt);
}

TEST(CgroupParse, MountinfoFieldsAndEscapes) {
  auto m = parse_mountinfo(kMountinfo);
  ASSERT_TRUE(m.ok()) << m.error().message;
  ASSERT_EQ(m->size(), 6u);
  EXPECT_EQ((*m)[1].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ((*m)[1].fstype, "cgroup");
  EXPECT_EQ((*m)[1].super_options, "rw,cpu,cpuacct");
  EXPECT_EQ((*m)[3].mount_point, "/mnt/memory again");
  EXPECT_EQ((*m)[4].fstype, "cgroup");  // after an optional field
  EXPECT_EQ((*m)[5].root, "/sub");
  EXPECT_EQ((*m)[5].major, 0u);  // 0:38, the filesystem's device (inotify watches find it)
  EXPECT_EQ((*m)[5].minor, 38u);
  EXPECT_FALSE(parse_mountinfo("31 23 0 / /x rw - tmpfs tmpfs rw\n").ok());
  EXPECT_FALSE(parse_mountinfo("31 23 0:28 / /x rw no-dash-here tmpfs\n").ok());
}

TEST(Cgroupfs, FindsEachHierarchysMount) {
  auto lines = parse_mountinfo(kMountinfo);
  ASSERT_TRUE(lines.ok());
  auto mounts = cgroup_mounts(*lines);
  ASSERT_EQ(mounts.size(), 4u);  // memory once, tmpfs not at all
  const CgroupMount* cpu = find_cgroup_mount(mounts, "cpu,cpuacct");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(find_cgroup_mount(mounts, "cpuacct,cpu"), cpu);  // order does not matter
  EXPECT_EQ(find_cgroup_mount(mounts, "cpu"), nullptr);      // a hierarchy is all its names
  const CgroupMount* sd = find_cgroup_mount(mounts, "name=systemd");
  ASSERT_NE(sd, nullptr);  // the flags in its options are not names
  EXPECT_EQ(find_cgroup_mount(mounts, "memory")->mount_point, "/sys/fs/cgroup/memory");
  const CgroupMount* v2 = find_cgroup_mount(mounts, "");
  ASSERT_NE(v2, nullptr);
  EXPECT_TRUE(v2->v2);
  EXPECT_EQ(cgroup_dir(*cpu, "/"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(cgroup_dir(*cpu, "/a/b"), "/sys/fs/cgroup/cpu,cpuacct/a/b");
  // A mount of a subtree shows that subtree only.
  EXPECT_EQ(cgroup_dir(*v2, "/sub/c"), "/sys/fs/cgroup/unified/c");
  EXPECT_EQ(cgroup_dir(*v2, "/sub"), "/sys/fs/cgroup/unified");
  EXPECT_EQ(cgroup_dir(*v2, "/subway"), std::nullopt);
  EXPECT_EQ(cgroup_dir(*v2, "/other"), std::nullopt);
}

TEST(Cgroupfs, PathsAnImageMayName) {
  for (const char* ok : {"/", "/a", "/a/b.c", "/user.slice/user-1000.slice"})
    EXPECT_TRUE(valid_cgroup_path(ok)) << ok;
  for (const char* bad : {"", "a", "//", "/a/", "/a//b", "/..", "/a/../b", "/./a", "/a\nb"})
    EXPECT_FALSE(valid_cgroup_path(bad)) << bad;
  EXPECT_FALSE(valid_cgroup_path(std::string("/a\0b", 4)));
  EXPECT_TRUE(valid_cgroup_controllers(""));
  EXPECT_TRUE(valid_cgroup_controllers("cpu,cpuacct"));
  EXPECT_TRUE(valid_cgroup_controllers("name=systemd"));
  EXPECT_FALSE(valid_cgroup_controllers("../x"));
  EXPECT_FALSE(valid_cgroup_controllers("cpu,"));
  EXPECT_FALSE(valid_cgroup_controllers("cpu,,memory"));
}

TEST(Cgroupfs, OnlyKeptSettingsAreKnown) {
  EXPECT_TRUE(known_cgroup_property(true, "memory.max"));
  EXPECT_TRUE(known_cgroup_property(true, "cgroup.subtree_control"));
  EXPECT_FALSE(known_cgroup_property(true, "cgroup.procs"));
  EXPECT_FALSE(known_cgroup_property(true, "memory.limit_in_bytes"));
  EXPECT_TRUE(known_cgroup_property(false, "memory.limit_in_bytes"));
  EXPECT_TRUE(known_cgroup_property(false, "devices.allow"));
  EXPECT_FALSE(known_cgroup_property(false, "devices.list"));  // written as deny/allow
  EXPECT_FALSE(known_cgroup_property(false, "release_agent"));
  EXPECT_FALSE(known_cgroup_property(false, "tasks"));
  EXPECT_FALSE(known_cgroup_property(false, "../../etc/passwd"));
}

// The settings as read from a directory laid out like a cgroup's (a plain one: the reader only
// reads files).
TEST(Cgroupfs, ReadsSettingsInTheirWrittenForm) {
  char tmpl[] = "/tmp/cgroupfs_testXXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto put = [&](const char* name, const char* text) { std::ofstream(dir + "/" + name) << text; };
  put("cgroup.type", "domain\n");
  put("cgroup.subtree_control", "cpu memory\n");
  put("memory.max", "max\n");
  put("io.max",
      "8:0 rbps=1 wbps=max riops=max wiops=max\n8:16 rbps=2 wbps=max riops=max wiops=max\n");
  put("cgroup.procs", "1\n");  // never a setting
  auto v2 = read_cgroup_properties(dir, true);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  std::vector<std::pair<std::string, std::string>> want = {
      {"memory.max", "max"},
      {"io.max", "8:0 rbps=1 wbps=max riops=max wiops=max"},
      {"io.max", "8:16 rbps=2 wbps=max riops=max wiops=max"},
      {"cgroup.subtree_control", "+cpu +memory"}};
  EXPECT_EQ(*v2, want);
  put("memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 0\n");
  put("devices.list", "c 1:3 rwm\nc 1:5 rwm\n");
  put("pids.max", "64\n");
  auto v1 = read_cgroup_properties(dir, false);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  want = {{"memory.oom_control", "1"},
          {"pids.max", "64"},
          {"devices.deny", "a"},
          {"devices.allow", "c 1:3 rwm"},
          {"devices.allow", "c 1:5 rwm"}};
  EXPECT_EQ(*v1, want);
  put("devices.list", "a *:* rwm\n");  // everything: what a new cgroup inherits anyway
  v1 = read_cgroup_properties(dir, false);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->size(), 2u);
  for (const char* f : {"cgroup.type", "cgroup.subtree_control", "memory.max", "io.max",
                        "cgroup.procs", "memory.oom_control", "devices.list", "pids.max"})
    ::unlink((dir + "/" + f).c_str());
  ::rmdir(dir.c_str());
}

}  // namespace
}  // namespace cr::sys
