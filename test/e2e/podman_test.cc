// podman (Debian's, runc as its runtime) with crcriu as its criu: `podman container checkpoint`
// and `podman container restore` of a busybox container imported from a tarball built here (no
// registry is reachable), counting into a log in a host directory it has as a volume. podman
// finds criu on PATH, and runc too: a directory with `criu` -> crcriu comes first.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "e2e_common.h"
#include "tcp_client.h"  // command_output

namespace cr::e2e {
namespace {

const std::string kPodman = "/usr/bin/podman";

struct Ran {
  ExitStatus status;
  std::string out;
  std::string describe() const { return status.describe() + ": " + out; }
};

// `podman ARGS...` with PATH leading to crcriu as criu; stdout and stderr together in a file.
Ran podman(TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "PATH=" + dir.path("criu-bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
                                   kPodman};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out = dir.path("podman.out");
  int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdout_fd = o;
  spec.stderr_fd = o;
  const pid_t pid = spawn(spec);
  ::close(o);
  Ran r;
  if (pid > 0) {
    auto st = wait_exit(pid, std::chrono::seconds(180));
    if (st) r.status = *st;
    else kill_child(pid);
  }
  r.out = read_file(out);
  return r;
}

bool counting_from_one(const std::string& log, size_t& n) {
  std::istringstream in(log);
  std::string line;
  n = 0;
  while (std::getline(in, line))
    if (std::stol(line) != static_cast<long>(++n)) return false;
  return true;
}

// Waits (bounded, re-reading as the file grows) for more than `n` lines.
bool grows_past(const std::string& log, size_t n) {
  return poll_until(
      [&] {
        const std::string t = read_file(log);
        return static_cast<size_t>(std::count(t.begin(), t.end(), '\n')) > n;
      },
      std::chrono::seconds(60));
}

TEST(Podman, CheckpointAndRestoreWithCrcriuCountOn) {
  ASSERT_EQ(geteuid(), 0u);
  if (!tools_present()) return;
  ASSERT_EQ(::access(kPodman.c_str(), X_OK), 0) << "podman is missing (scripts/deps.sh installs it)";
  TempDir dir;
  std::filesystem::create_directories(dir.path("criu-bin"));
  std::filesystem::create_symlink(std::string(CR_BIN_DIR) + "/crcriu", dir.path("criu-bin/criu"));
  const std::string rootfs = dir.path("rootfs"), out = dir.path("out");
  for (const char* d : {"/bin", "/proc", "/sys", "/dev", "/tmp", "/out"})
    std::filesystem::create_directories(rootfs + d);
  std::filesystem::create_directories(out);
  std::filesystem::copy_file("/bin/busybox", rootfs + "/bin/busybox");
  std::filesystem::create_symlink("busybox", rootfs + "/bin/sh");
  std::filesystem::create_symlink("busybox", rootfs + "/bin/sleep");
  const std::string tar = dir.path("rootfs.tar");
  ASSERT_EQ(command_output("tar -C " + rootfs + " -cf " + tar + " . && echo ok"), "ok\n");
  const std::string tag = std::to_string(::getpid());
  const std::string image = "localhost/crtools-test-busybox:" + tag;
  const std::string name = "crtools-test-" + tag;
  Ran imp = podman(dir, {"import", tar, image});
  ASSERT_TRUE(imp.status.ok()) << imp.describe();
  // podman asks for open-file and process limits above what this machine lets a process
  // raise (no CAP_SYS_RESOURCE): lower ones, which any process may set, are given instead.
  Ran run = podman(dir, {"run", "--detach", "--runtime", "runc", "--network", "none", "--ulimit",
                         "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
                         "--name", name, "--volume", out + ":/out", image,
                         "sh", "-c",
                         "i=0; while :; do i=$((i+1)); echo $i >> /out/log; sleep 0.01; done"});
  EXPECT_TRUE(run.status.ok()) << run.describe();
  const std::string log = out + "/log";
  if (run.status.ok()) {
    EXPECT_TRUE(grows_past(log, 5));
    Ran ckpt = podman(dir, {"container", "checkpoint", name});
    // crcriu's log, where runc's message points (podman keeps it in the container's userdata).
    auto crcriu_log = [&](const char* file) {
      Ran id = podman(dir, {"inspect", "--format", "{{.Id}}", name});
      std::string cid = id.out.substr(0, id.out.find('\n'));
      return read_file("/var/lib/containers/storage/overlay-containers/" + cid + "/userdata/" +
                       file);
    };
    EXPECT_TRUE(ckpt.status.ok()) << ckpt.describe() << "\n" << crcriu_log("dump.log");
    size_t at_checkpoint = 0;
    EXPECT_TRUE(counting_from_one(read_file(log), at_checkpoint)) << read_file(log);
    // Its root filesystem unmounted (podman's cleanup does it too, when it gets to it): the
    // restore mounts the overlay anew, with another device number.
    (void)podman(dir, {"umount", name});
    Ran rest = podman(dir, {"container", "restore", name});
    EXPECT_TRUE(rest.status.ok()) << rest.describe() << "\n" << crcriu_log("restore.log");
    EXPECT_TRUE(grows_past(log, at_checkpoint + 5)) << "no count after the restore";
    size_t after = 0;
    EXPECT_TRUE(counting_from_one(read_file(log), after)) << "the count restarted or skipped";
    EXPECT_GT(after, at_checkpoint);
  }
  (void)podman(dir, {"rm", "--force", name});
  (void)podman(dir, {"rmi", "--force", image});
  if (HasFailure()) dir.keep();
}

}  // namespace
}  // namespace cr::e2e
