// Hostile images: a real image of a uid-1001 process (zdtm creds_user_files), edited through
// `crit decode --pages` -> JSON -> `crit encode` to ask root's crrestore for what the user
// could not get: each must be refused in one line, and nothing of it left behind. Then a
// symlink swapped in for the socket file while restores run must never have its target
// changed. README "Trust model" says what is allowed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e_common.h"
#include "harness.h"

namespace cr::e2e {
namespace {

using Json = nlohmann::ordered_json;
constexpr uid_t kUser = 1001;

std::string hex_of(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += d[c >> 4];
    h += d[c & 15];
  }
  return h;
}

// One dump of creds_user_files for the whole suite: every case edits a copy of its JSON.
class HostileImage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0 || !tool_exists("crit") || !tool_exists("crrestore")) return;
    become_subreaper();
    dir_ = new TempDir;
    Target t = Target::start(*dir_, {zdtm_path("creds_user_files")});
    if (t.pid() <= 0) return;
    pid_ = t.pid();
    const std::string img = dir_->path("img");
    if (!dump_target(*dir_, t, Mode::kKill, img)) return;
    int out = open(dir_->path("img.json").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ToolRun d = run_tool(*dir_, "crit", {"decode", "--pages", img}, -1, out);
    close(out);
    if (!d.status.ok()) return;
    doc_ = new Json(Json::parse(read_file(dir_->path("img.json"))));
  }
  static void TearDownTestSuite() {
    delete doc_;
    delete dir_;
    doc_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "restoring another user's image needs root";
    ASSERT_NE(doc_, nullptr) << "dumping and decoding creds_user_files failed";
  }

  // The records of `type` in a copy of the document.
  static std::vector<Json*> records(Json& doc, const std::string& type) {
    std::vector<Json*> v;
    for (auto& r : doc["records"])
      if (r["type"] == type) v.push_back(&r["fields"]);
    return v;
  }
  static Json* file_named(Json& doc, const std::string& tail) {
    for (Json* f : records(doc, "file")) {
      const std::string p = (*f)["path"].is_string() ? (*f)["path"].get<std::string>() : "";
      if (p.size() >= tail.size() && p.find(tail) != std::string::npos) return f;
    }
    return nullptr;
  }

  // Encodes `doc` and runs crrestore on it.
  ToolRun restore(const Json& doc) {
    const std::string json = dir_->path("edit.json"), img = dir_->path("edit.img");
    write_file(json, doc.dump());
    ToolRun e = run_tool(*dir_, "crit", {"encode", json, "-o", img});
    EXPECT_TRUE(e.status.ok()) << "crit encode: " << e.describe();
    dir_->restore_work();  // as at dump time: a restore before may have written the log
    ToolRun r = run_tool(*dir_, "crrestore", {"-d", "-i", img});
    return r;
  }

  // The edited image is refused in one line naming `want`, and no process is left.
  void expect_refused(const Json& doc, const std::vector<std::string>& want) {
    ToolRun r = restore(doc);
    EXPECT_FALSE(r.status.ok()) << "restored: " << r.describe();
    EXPECT_TRUE(r.one_line_error("crrestore")) << "want one line 'crrestore: ...': " << r.err;
    for (const auto& w : want)
      EXPECT_NE(r.err.find(w), std::string::npos) << "message should name '" << w << "': " << r.err;
    std::cout << "  [refused] " << r.err;
    if (r.status.ok()) terminate_pid(pid_);
    EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " left after a refused restore";
    kill_child(pid_);
  }

  static TempDir* dir_;
  static Json* doc_;
  static pid_t pid_;
};

TempDir* HostileImage::dir_ = nullptr;
Json* HostileImage::doc_ = nullptr;
pid_t HostileImage::pid_ = -1;

// The baseline: the image as dumped, through the same decode/encode, restores as the user's.
TEST_F(HostileImage, UneditedImageRestores) {
  ToolRun r = restore(*doc_);
  ASSERT_TRUE(r.status.ok()) << r.describe() << "\nlog: " << read_file(dir_->work() + "/log");
  struct stat st {};
  ASSERT_EQ(lstat((dir_->work() + "/sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kUser) << "socket file made as root";
  ExitStatus s = terminate_pid(pid_);
  EXPECT_TRUE(s.ok()) << s.describe() << "\nlog: " << read_file(dir_->work() + "/log");
}

TEST_F(HostileImage, SetuidGhostFileRefused) {
  Json doc = *doc_;
  Json* f = file_named(doc, "/gone");
  ASSERT_NE(f, nullptr);
  (*f)["mode"] = 06777;
  expect_refused(doc, {"mode 6777", "set-user-ID"});
}

TEST_F(HostileImage, ShadowOpenedReadWriteRefused) {
  struct stat st {};
  ASSERT_EQ(stat("/etc/shadow", &st), 0);
  Json doc = *doc_;
  Json* f = file_named(doc, "/data");
  ASSERT_NE(f, nullptr);
  // Size and mtime as they are, so only the permission stands in the way.
  (*f)["path"] = "/etc/shadow";
  (*f)["flags"] = O_RDWR;
  (*f)["pos"] = 0;
  (*f)["size"] = static_cast<uint64_t>(st.st_size);
  (*f)["mtime_ns"] = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                     static_cast<uint64_t>(st.st_mtim.tv_nsec);
  (*f)["dev"] = static_cast<uint64_t>(st.st_dev);
  (*f)["ino"] = static_cast<uint64_t>(st.st_ino);
  expect_refused(doc, {"/etc/shadow", "as uid 1001", "Permission denied"});
}

TEST_F(HostileImage, KmsgDeviceRefused) {
  Json doc = *doc_;
  Json* f = file_named(doc, "/data");
  ASSERT_NE(f, nullptr);
  (*f)["kind"] = 3;  // kFileDevice
  (*f)["path"] = "/dev/kmsg";
  (*f)["flags"] = O_RDWR;
  (*f)["pos"] = 0;
  (*f)["rdev"] = static_cast<uint64_t>(makedev(1, 11));
  expect_refused(doc, {"/dev/kmsg", "device 1:11"});
}

TEST_F(HostileImage, HardRlimitAboveOursRefused) {
  rlimit ours{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &ours), 0);
  ASSERT_NE(ours.rlim_max, RLIM_INFINITY);
  Json doc = *doc_;
  auto lim = records(doc, "rlimits");
  ASSERT_FALSE(lim.empty());
  (*lim[0])["limits"][2 * RLIMIT_NOFILE + 1] = static_cast<uint64_t>(ours.rlim_max) + 1;
  expect_refused(doc, {"hard RLIMIT_NOFILE", "cannot raise a hard limit"});
}

TEST_F(HostileImage, CapabilitiesAddedRefused) {
  Json doc = *doc_;
  auto creds = records(doc, "creds");
  ASSERT_FALSE(creds.empty());
  (*creds[0])["cap_prm"] = 0x1ffffffffffull;
  (*creds[0])["cap_eff"] = 0x1ffffffffffull;
  expect_refused(doc, {"uid 1001 with capabilities", "cannot ask for capabilities"});
}

// The root group, as the process's group or a supplementary one, or a group uid 1001 (no
// passwd entry: only group 1001) does not have: each would open other groups' files.
TEST_F(HostileImage, GroupsNotTheUsersRefused) {
  for (const char* field : {"gid", "egid", "fsgid"}) {
    Json doc = *doc_;
    auto creds = records(doc, "creds");
    ASSERT_FALSE(creds.empty());
    (*creds[0])[field] = 0;
    expect_refused(doc, {"uid 1001 with group 0", "not one of its user's groups"});
  }
  Json doc = *doc_;
  auto creds = records(doc, "creds");
  ASSERT_FALSE(creds.empty());
  (*creds[0])["groups"] = Json::array({1001, 42});
  expect_refused(doc, {"uid 1001 with group 42", "not one of its user's groups"});
}

TEST_F(HostileImage, ExeLinkToRootOnlyFileRefused) {
  // Readable and executable by root only, in a directory everyone can search.
  const std::string exe = dir_->path("root-only-exe");
  write_file(exe, "#!/bin/sh\n");
  ASSERT_EQ(chmod(exe.c_str(), 0700), 0);
  struct stat st {};
  ASSERT_EQ(stat(exe.c_str(), &st), 0);
  Json doc = *doc_;
  auto mm = records(doc, "mm");
  ASSERT_FALSE(mm.empty());
  (*mm[0])["exe_path"] = exe;
  (*mm[0])["exe_dev"] = static_cast<uint64_t>(st.st_dev);
  (*mm[0])["exe_ino"] = static_cast<uint64_t>(st.st_ino);
  expect_refused(doc, {"root-only-exe", "Permission denied"});
}

TEST_F(HostileImage, SocketBoundInRootDirectoryRefused) {
  const std::string root_dir = dir_->path("root-dir");
  ASSERT_EQ(mkdir(root_dir.c_str(), 0755), 0);
  Json doc = *doc_;
  auto socks = records(doc, "unix_socket");
  ASSERT_FALSE(socks.empty());
  (*socks[0])["name"] = hex_of("sock");
  (*socks[0])["dir"] = root_dir;
  expect_refused(doc, {"bind in " + root_dir, "as uid 1001", "Permission denied"});
  struct stat st {};
  EXPECT_NE(lstat((root_dir + "/sock").c_str(), &st), 0) << "a socket file was made there";
}

// A zombie child runs none of the image's code: it must not make the image a root one (it has
// no credentials of its own to say it is not).
TEST_F(HostileImage, ZombieDoesNotLiftRestrictions) {
  Json doc = *doc_;
  auto& recs = doc["records"];
  for (size_t i = 0; i < recs.size(); ++i) {
    if (recs[i]["type"] != "process") continue;
    Json zombie = recs[i];
    zombie["fields"]["ppid"] = zombie["fields"]["pid"];
    zombie["fields"]["pid"] = zombie["fields"]["pid"].get<uint32_t>() + 1;
    zombie["fields"]["flags"] = 2;  // kProcessZombie
    zombie["fields"]["nthreads"] = 0;
    recs.insert(recs.begin() + static_cast<long>(i) + 1, zombie);
    break;
  }
  auto creds = records(doc, "creds");
  ASSERT_FALSE(creds.empty());
  (*creds[0])["cap_prm"] = 0x1ffffffffffull;
  (*creds[0])["cap_eff"] = 0x1ffffffffffull;
  expect_refused(doc, {"uid 1001 with capabilities", "cannot ask for capabilities"});
}

// The image's cgroup of a hierarchy mounted here whose root cgroup it names (a process of the
// suite sits in the root of cgroup2 and of pids on this machine), or nullptr.
Json* root_cgroup(Json& doc) {
  for (const char* want : {"", "pids", "name=systemd"})
    for (auto& r : doc["records"])
      if (r["type"] == "cgroup" && r["fields"]["controllers"] == want && r["fields"]["path"] == "/")
        return &r["fields"];
  return nullptr;
}

TEST_F(HostileImage, CgroupPathOutsideTheHierarchyRefused) {
  Json doc = *doc_;
  Json* cg = root_cgroup(doc);
  ASSERT_NE(cg, nullptr) << "the image names no root cgroup of cgroup2, pids or name=systemd";
  (*cg)["path"] = "/../../../etc";
  expect_refused(doc, {"path '/../../../etc'", "'..' parts"});
}

TEST_F(HostileImage, CgroupFileThatIsNoSettingRefused) {
  Json doc = *doc_;
  Json* cg = root_cgroup(doc);
  ASSERT_NE(cg, nullptr);
  (*cg)["path"] = "/crtools-hostile";
  Json prop = {{"type", "cgroup_property"},
               {"fields", {{"cgroup", (*cg)["id"]}, {"name", "release_agent"}, {"value", "/x"}}}};
  auto& recs = doc["records"];
  for (size_t i = 0; i < recs.size(); ++i)
    if (recs[i]["type"] == "cgroup" && &recs[i]["fields"] == cg) {
      recs.insert(recs.begin() + static_cast<long>(i) + 1, prop);
      break;
    }
  expect_refused(doc, {"'release_agent' is not a setting restore writes"});
}

// The user's process asks to join a cgroup of root's, and to have one made where only root may:
// both are things uid 1001 could not do.
TEST_F(HostileImage, CgroupsOfRootRefused) {
  Json doc = *doc_;
  Json* cg = root_cgroup(doc);
  ASSERT_NE(cg, nullptr);
  const std::string controllers = (*cg)["controllers"];
  std::string mount;
  for (const char* m : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"})
    if (controllers.empty() && access((std::string(m) + "/cgroup.procs").c_str(), F_OK) == 0 &&
        access((std::string(m) + "/cgroup.controllers").c_str(), F_OK) == 0) {
      mount = m;
      break;
    }
  if (!controllers.empty())
    mount = "/sys/fs/cgroup/" + controllers.substr(controllers.find('=') + 1);
  const std::string name = "crtools-hostile-" + std::to_string(getpid());
  const std::string dir = mount + "/" + name;
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << strerror(errno);
  (*cg)["path"] = "/" + name;
  expect_refused(doc, {"uid 1001 cannot write " + dir + "/cgroup.procs", "Permission denied"});
  (*cg)["path"] = "/" + name + "/made";
  expect_refused(doc, {"mkdir " + dir + "/made as uid 1001", "Permission denied"});
  EXPECT_EQ(rmdir(dir.c_str()), 0) << dir << ": " << strerror(errno);
}

// The directory's owner swaps a symlink to a root-only file in for the socket file while
// crrestore binds it: the target's mode and owner must never change. Before each restore a
// symlink waits beside the socket's name; a racer thread exchanges the two names
// (renameat2 RENAME_EXCHANGE, which fails while the socket file does not exist yet) the moment
// bind has made the file, once per restore. Anything crrestore then does through the name
// lands on the target.
TEST_F(HostileImage, SocketFileSymlinkSwapNeverReachesTarget) {
  const std::string target = dir_->path("precious");
  write_file(target, "root's\n");
  ASSERT_EQ(chmod(target.c_str(), 0600), 0);
  const std::string sock = dir_->work() + "/sock", lnk = dir_->work() + "/sock.lnk";
  std::atomic<bool> stop{false}, armed{false};
  std::atomic<int> swaps{0};
  std::thread racer([&] {
    while (!stop.load()) {
      if (!armed.load()) continue;
      if (syscall(SYS_renameat2, AT_FDCWD, lnk.c_str(), AT_FDCWD, sock.c_str(), RENAME_EXCHANGE) ==
          0) {
        armed = false;
        swaps.fetch_add(1);
      }
    }
  });
  int restored = 0;
  constexpr int kRestores = 40;
  for (int i = 0; i < kRestores; ++i) {
    dir_->restore_work();
    unlink(sock.c_str());
    unlink(lnk.c_str());
    ASSERT_EQ(symlink(target.c_str(), lnk.c_str()), 0);
    armed = true;
    ToolRun r = run_tool(*dir_, "crrestore", {"-d", "-i", dir_->path("img")});
    armed = false;
    if (r.status.ok()) ++restored;
    kill_child(pid_);
    reap_zombies();
    struct stat st {};
    ASSERT_EQ(stat(target.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << "restore " << i << " changed the target's mode";
    EXPECT_EQ(st.st_uid, 0u) << "restore " << i << " changed the target's owner";
    if (HasFailure()) break;
  }
  stop = true;
  racer.join();
  // After the last swap `sock` is the symlink: the suite's next restores must not find it.
  unlink(sock.c_str());
  unlink(lnk.c_str());
  dir_->restore_work();
  std::cout << "  " << restored << " of " << kRestores << " restores succeeded, " << swaps.load()
            << " socket files swapped for the symlink\n";
  EXPECT_GT(swaps.load(), 0) << "the racer never saw a socket file: nothing was tested";
}

// Pages "shared with the parent" in a root, which has none in the image: refused before
// anything is made, and a run of them in a process not flagged to have any.
TEST_F(HostileImage, ParentPagesOfTheRootRefused) {
  Json doc = *doc_;
  Json* p = records(doc, "process").front();
  (*p)["flags"] = (*p)["flags"].get<uint32_t>() | 0x10000u;
  expect_refused(doc, {"root process has pages shared with a parent"});

  Json runs = *doc_;
  Json copy = Json::array();
  bool added = false;
  for (auto& r : runs["records"]) {
    if (!added && r["type"] == "pages") {
      Json pp;
      pp["type"] = "pages_parent";
      pp["fields"] = {{"pid", r["fields"]["pid"]}, {"vaddr", r["fields"]["vaddr"]},
                      {"npages", 1}, {"prefork", 0}};
      copy.push_back(pp);
      added = true;
    }
    copy.push_back(r);
  }
  ASSERT_TRUE(added);
  runs["records"] = copy;
  expect_refused(runs, {"pages of the parent at", "not flagged to have any"});
}

// A vDSO record that does not hold together (as if from another kernel build, so it is used):
// refused naming it.
TEST_F(HostileImage, MalformedVdsoRecordRefused) {
  Json doc = *doc_;
  auto v = records(doc, "vdso");
  if (v.empty()) GTEST_SKIP() << "this kernel maps no vDSO (booted with vdso=0): no vdso record to edit";
  (*v.front())["crc"] = (*v.front())["crc"].get<uint32_t>() ^ 1u;
  (*v.front())["offsets"].push_back(0);
  expect_refused(doc, {"vdso record:", "names for"});
}

// A listener's pending connection from a socket that is not connecting to it: refused before
// anything is made.
TEST_F(HostileImage, UnixPendingConnectionThatIsNoneRefused) {
  Json doc2 = *doc_;
  auto socks2 = records(doc2, "unix_socket");
  (*socks2[0])["state"] = 1;  // a listener
  (*socks2[0])["pending"] = Json::array({(*socks2[0])["ino"].get<uint64_t>()});
  for (Json* p : records(doc2, "process")) (*p)["flags"] = (*p)["flags"].get<uint32_t>() | 0x40000u;
  expect_refused(doc2, {"pending connection from socket:["});
}

}  // namespace
}  // namespace cr::e2e
