// crcriu's request loop. See session.h.
#include "criu_rpc/session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "criu_rpc/options.h"
#include "dump/dump.h"
#include "format/record_reader.h"
#include "format/record_writer.h"
#include "restore/restorer.h"

namespace cr::criu_rpc {
namespace {

// runc reads replies into 40 KiB; requests are far smaller. A bigger packet is refused whole.
constexpr size_t kMaxPacket = 1 << 20;

// The stream is written under a temporary name in the images directory and renamed over
// crtools.img once complete and durable, before any process is killed: a failed dump never
// leaves a partial or replaced image.
class ImageFile {
 public:
  ImageFile(int dir) : dir_(dir) {}
  ~ImageFile() {
    if (!tmp_.empty()) ::unlinkat(dir_, tmp_.c_str(), 0);
  }
  Status create() {
    tmp_ = std::string(kImageName) + ".crcriu-" + std::to_string(::getpid());
    fd_.reset(::openat(dir_, tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd_.valid()) {
      Error e = errno_error(tmp_);
      tmp_.clear();
      return e;
    }
    return {};
  }
  int fd() const { return fd_.get(); }
  Status commit() {
    if (::fsync(fd_.get()) != 0) return errno_error("fsync " + tmp_);
    if (::renameat(dir_, tmp_.c_str(), dir_, kImageName) != 0)
      return errno_error(std::string("rename to ") + kImageName);
    tmp_.clear();
    if (::fsync(dir_) != 0) return errno_error("fsync of the images directory");
    return {};
  }

 private:
  int dir_;
  std::string tmp_;
  ScopedFd fd_;
};

// CRIU reads config_file (runc: /etc/criu/runc.conf when present). crcriu reads no CRIU
// configuration: a file that sets something is refused rather than ignored.
Status check_config_file(const crcriu::Opts& o) {
  if (!o.has_config_file() || o.config_file().empty()) return {};
  std::ifstream in(o.config_file());
  if (!in) return {};  // CRIU too goes on without it
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    return make_error("config_file " + o.config_file() +
                          " sets options, and crcriu reads no CRIU configuration file",
                      EOPNOTSUPP);
  }
  return {};
}

// Before each pass of a dump: a cancel signal (blocked by crcriu's main, as by crdump's) ends
// it between passes, so no tracee is left half-injected; the tree carries on.
Status checkpoint(std::string_view) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, sig);
  const timespec zero{};
  const int sig = ::sigtimedwait(&set, nullptr, &zero);
  if (sig > 0)
    return make_error(std::string("cancelled by SIG") + sigabbrev_np(sig) +
                          " (the tree carries on)",
                      ECANCELED);
  return {};
}

// podman, containerd and others take a checkpoint directory for complete when it holds a
// non-empty inventory.img (CRIU's first image): one saying where the image is stands for it.
// It is not CRIU's format: a tool decoding it as such fails, naming the file.
constexpr std::string_view kInventory =
    "crtools checkpoint: the image is crtools.img (crcriu, one crtools stream); this file only "
    "marks the directory complete for tools that look for CRIU's inventory.img\n";

bool ours_inventory(int dir) {
  ScopedFd f(::openat(dir, "inventory.img", O_RDONLY | O_CLOEXEC));
  char buf[32] = {};
  return f.valid() && ::read(f.get(), buf, 18) == 18 &&
         std::string_view(buf, 18) == kInventory.substr(0, 18);
}

Status write_inventory(int dir) {
  ScopedFd f(::openat(dir, "inventory.img", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!f.valid()) return errno_error("inventory.img");
  if (::write(f.get(), kInventory.data(), kInventory.size()) !=
          static_cast<ssize_t>(kInventory.size()) ||
      ::fsync(f.get()) != 0)
    return errno_error("write inventory.img");
  return {};
}

// CRIU's statistics image in the work directory: its service and stats magics, then one
// entry (a 32-bit size and the message), as CRIU's image tools read it.
Status write_stats(int dir, const char* name, const crcriu::StatsEntry& e) {
  constexpr uint32_t kImgService = 0x55105940, kStats = 0x57093306;
  std::string body;
  if (!e.SerializeToString(&body)) return make_error(std::string("encode ") + name, EINVAL);
  std::string img(12, '\0');
  const uint32_t head[3] = {kImgService, kStats, static_cast<uint32_t>(body.size())};
  std::memcpy(img.data(), head, sizeof head);  // little-endian, as x86_64 is
  img += body;
  ScopedFd f(::openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!f.valid() || ::write(f.get(), img.data(), img.size()) != static_cast<ssize_t>(img.size()))
    return errno_error(std::string("write ") + name);
  return {};
}

uint32_t micros(double seconds) { return static_cast<uint32_t>(seconds * 1e6); }

// runc (and podman through it) gives a container's init pipes for stdio (conmon's, or its
// caller's), lists them in descriptors.json and hands new ones back at restore as inherit_fd
// keyed "pipe:[INODE]": the root's stdio pipes are external, as crdump --inherit-fd makes them.
void external_stdio(DumpPlan& plan) {
  for (int fd = 0; fd <= 2; ++fd) {
    const std::string link = "/proc/" + std::to_string(plan.pid) + "/fd/" + std::to_string(fd);
    char target[64];
    const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n <= 0 || std::string_view(target, static_cast<size_t>(n)).rfind("pipe:", 0) != 0)
      continue;
    auto& v = plan.opts.inherit_fds;
    if (std::find(v.begin(), v.end(), fd) == v.end()) v.push_back(fd);
  }
}

crcriu::Response failure(crcriu::ReqType type, const Error& e) {
  crcriu::Response r;
  r.set_type(type);
  r.set_success(false);
  r.set_cr_errno(e.code);
  r.set_cr_errmsg(e.message);
  return r;
}

}  // namespace

Session::Session(int sk) : sk_(sk) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(sk_, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) peer_ = cred.pid;
}

void Session::log(const std::string& line) {
  if (!log_.valid()) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "(%5ld.%06ld) ", static_cast<long>(ts.tv_sec),
                ts.tv_nsec / 1000);
  const std::string text = stamp + line + "\n";
  (void)!::write(log_.get(), text.data(), text.size());
}

Result<crcriu::Request> Session::receive() {
  std::vector<char> buf(kMaxPacket);
  ssize_t n;
  do {
    n = ::recv(sk_, buf.data(), buf.size(), MSG_TRUNC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("reading a request");
  if (n == 0) return make_error("the caller closed the connection", EPIPE);
  if (static_cast<size_t>(n) > buf.size())
    return make_error("request of " + std::to_string(n) + " bytes: more than crcriu takes",
                      EMSGSIZE);
  crcriu::Request req;
  if (!req.ParseFromArray(buf.data(), static_cast<int>(n)))
    return make_error("request of " + std::to_string(n) + " bytes is not a CRIU RPC request",
                      EBADMSG);
  return req;
}

Status Session::send(const crcriu::Response& resp) {
  std::string bytes;
  if (!resp.SerializeToString(&bytes)) return make_error("cannot encode a response", EINVAL);
  ssize_t n;
  do {
    n = ::send(sk_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_error("sending a response");
  return {};
}

Status Session::notify(const std::string& script, pid_t pid) {
  if (!notify_) return {};
  log("notify " + script + (pid != 0 ? " pid " + std::to_string(pid) : std::string()));
  crcriu::Response r;
  r.set_type(crcriu::NOTIFY);
  r.set_success(true);
  r.mutable_notify()->set_script(script);
  if (pid != 0) r.mutable_notify()->set_pid(pid);
  CR_TRY_CTX(send(r), "notify " + script);
  auto ack = receive();
  if (!ack.ok()) return std::move(ack).error().wrap("notify " + script);
  if (ack->type() != crcriu::NOTIFY || !ack->notify_success())
    return make_error("the caller failed notification " + script, ECANCELED);
  return {};
}

Result<ScopedFd> Session::caller_fd(int fd, int flags) const {
  // The caller names its own fd (CRIU's way): reached through its /proc entry, which also
  // checks the caller may open it (crcriu runs as its user, or root).
  const std::string path = "/proc/" + std::to_string(peer_) + "/fd/" + std::to_string(fd);
  ScopedFd f(::open(path.c_str(), flags | O_CLOEXEC));
  if (!f.valid()) return errno_error("the caller's fd " + std::to_string(fd));
  return f;
}

Status Session::open_dirs(const crcriu::Opts& o) {
  if (o.images_dir_fd() >= 0) {
    CR_TRY_ASSIGN(images_, caller_fd(o.images_dir_fd(), O_RDONLY | O_DIRECTORY));
  } else if (o.has_images_dir()) {
    images_.reset(::open(o.images_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!images_.valid()) return errno_error("images_dir " + o.images_dir());
  } else {
    return make_error("no images directory (images_dir_fd or images_dir)", EINVAL);
  }
  if (o.has_work_dir_fd()) {
    CR_TRY_ASSIGN(work_, caller_fd(o.work_dir_fd(), O_RDONLY | O_DIRECTORY));
  } else {
    work_.reset(::fcntl(images_.get(), F_DUPFD_CLOEXEC, 0));
  }
  if (o.has_log_file() && !o.log_file().empty()) {
    if (o.log_file().find('/') != std::string::npos)
      return make_error("log_file " + o.log_file() + ": a name in the work directory, not a path",
                        EINVAL);
    log_.reset(::openat(work_.get(), o.log_file().c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    if (!log_.valid()) return errno_error("log_file " + o.log_file());
  }
  return {};
}

Status Session::dump(const crcriu::Opts& o, crcriu::Response& resp) {
  CR_TRY(check_config_file(o));
  CR_TRY_ASSIGN(DumpPlan plan, dump_plan(o));
  log("dump of pid " + std::to_string(plan.pid) + " into " + kImageName);
  CR_TRY(notify("pre-dump"));
  if (!plan.opts.shell_job) CR_TRY(dump::check_foreground_job(plan.pid));
  external_stdio(plan);
  CR_TRY(notify("network-lock"));
  ImageFile image(images_.get());
  // CRIU's figures as far as crtools has them: no lazy pages or parent images, and the pages
  // are written as they are read (memwrite_time 0: within memdump_time).
  crcriu::DumpStats stats;
  stats.set_freezing_time(0);
  stats.set_frozen_time(0);
  stats.set_memdump_time(0);
  stats.set_memwrite_time(0);
  stats.set_pages_scanned(0);
  stats.set_pages_skipped_parent(0);
  stats.set_pages_written(0);
  stats.set_pages_lazy(0);
  Status st = image.create();
  if (st.ok()) {
    plan.opts.checkpoint = checkpoint;
    plan.opts.on_pass = [this, &stats](std::string_view pass, double seconds) {
      log("pass " + std::string(pass) + ": " + std::to_string(seconds * 1e3) + " ms");
      // From the freeze to the kill (or the detach), the tree is frozen.
      if (pass == "freeze") stats.set_freezing_time(micros(seconds));
      if (pass == "pages") stats.set_memdump_time(micros(seconds));
      if (pass != "kill" && pass != "detach")
        stats.set_frozen_time(stats.frozen_time() + micros(seconds));
    };
    plan.opts.on_progress = [&stats](uint64_t page_bytes) {
      stats.set_pages_written(page_bytes / 4096);
      stats.set_pages_scanned(page_bytes / 4096);
    };
    // Complete and durable before the tree is killed; the caller's post-dump (runc marks the
    // container checkpointed) comes while it is still frozen, and a failure there resumes it.
    plan.opts.before_kill = [&]() -> Status {
      CR_TRY(image.commit());
      CR_TRY(write_inventory(images_.get()));
      Status told = notify("post-dump");
      // The tree resumes: an image of it next to a running container would be restored as a
      // second copy later.
      if (!told.ok()) ::unlinkat(images_.get(), kImageName, 0);
      return told;
    };
    auto header = dump::stream_header(plan.pid);
    if (!header.ok()) {
      st = std::move(header).error();
    } else {
      auto writer = format::RecordWriter::create(image.fd(), {}, *header);
      st = writer.ok() ? dump::dump_process(plan.pid, plan.opts, **writer)
                       : Status(std::move(writer).error());
    }
  }
  if (!st.ok() || plan.opts.leave_running) {
    // The tree runs again: the caller's network goes back (its failure does not hide ours).
    Status unlocked = notify("network-unlock");
    if (st.ok()) st = std::move(unlocked);
  }
  CR_TRY(std::move(st));
  crcriu::StatsEntry entry;
  *entry.mutable_dump() = stats;
  // The figures are a courtesy (podman --print-stats, --export): the dump stands without them.
  if (Status w = write_stats(work_.get(), "stats-dump", entry); !w.ok())
    log("warning: " + w.error().message);
  resp.mutable_dump()->set_restored(false);
  return {};
}

Status Session::restore(const crcriu::Opts& o, crcriu::Response& resp) {
  CR_TRY(check_config_file(o));
  CR_TRY_ASSIGN(RestorePlan plan, restore_plan(o));
  ScopedFd image(::openat(images_.get(), kImageName, O_RDONLY | O_CLOEXEC));
  if (!image.valid()) {
    const int err = errno;
    if (::faccessat(images_.get(), "inventory.img", F_OK, 0) == 0 && !ours_inventory(images_.get()))
      return make_error("the images directory holds CRIU's images, which crcriu cannot read",
                        ENOENT);
    return errno_error(kImageName, err);
  }
  log(std::string("restore from ") + kImageName);
  CR_TRY(notify("pre-restore"));
  auto reader = format::RecordReader::open(image.get(), {});
  if (!reader.ok()) return std::move(reader).error().wrap(kImageName);
  restore::RestoreContext ctx;
  ctx.opts = std::move(plan.opts);
  ctx.opts.external_mounts = std::move(plan.ext_mounts);
  ctx.opts.external_mounts_where_found = true;
  ctx.opts.root = o.root();
  ctx.opts.after_create = [this](pid_t root) -> Status {
    CR_TRY(notify("setup-namespaces", root));
    return notify("post-setup-namespaces");
  };
  ctx.opts.before_resume = [this](pid_t root) { return notify("post-restore", root); };
  ctx.reader = reader->get();
  auto pid = restore::restore(ctx);
  for (const auto& w : ctx.warnings) log("warning: " + w);
  for (const auto& p : ctx.pass_seconds)
    log("pass " + p.name + ": " + std::to_string(p.seconds * 1e3) + " ms");
  if (!pid.ok()) return std::move(pid).error();
  log("restored pid " + std::to_string(*pid));
  crcriu::StatsEntry entry;
  auto* rs = entry.mutable_restore();
  rs->set_pages_compared(0);
  rs->set_pages_skipped_cow(0);
  double total = 0;
  for (const auto& p : ctx.pass_seconds) {
    total += p.seconds;
    if (p.name == "create tree") rs->set_forking_time(micros(p.seconds));
  }
  if (!rs->has_forking_time()) rs->set_forking_time(0);
  rs->set_restore_time(micros(total));
  rs->set_pages_restored(ctx.page_bytes / 4096);  // the tree's: the root's counts them all
  if (Status w = write_stats(work_.get(), "stats-restore", entry); !w.ok())
    log("warning: " + w.error().message);
  // The tree runs: the caller's network comes back and it hears the tree has resumed. A
  // failure now cannot undo the restore; it is logged, the reply still names the root.
  for (const char* script : {"network-unlock", "post-resume"}) {
    Status st = notify(script, *pid);
    if (!st.ok()) log("warning: " + st.error().message);
  }
  resp.mutable_restore()->set_pid(*pid);
  return {};
}

crcriu::Response Session::handle(const crcriu::Request& req) {
  crcriu::Response resp;
  resp.set_type(req.type());
  resp.set_success(true);
  Status st = check_known_fields(req);
  if (st.ok()) {
    switch (req.type()) {
      case crcriu::VERSION: {
        auto* v = resp.mutable_version();
        v->set_major_number(kVersionMajor);
        v->set_minor_number(kVersionMinor);
        v->set_sublevel(0);
        v->set_name("crcriu");
        break;
      }
      case crcriu::FEATURE_CHECK:
        *resp.mutable_features() = supported_features();
        break;
      case crcriu::CHECK:
        break;
      case crcriu::DUMP:
      case crcriu::RESTORE: {
        if (!req.has_opts()) {
          st = make_error("request without opts", EINVAL);
          break;
        }
        notify_ = req.opts().notify_scripts();
        st = open_dirs(req.opts());
        if (st.ok())
          st = req.type() == crcriu::DUMP ? dump(req.opts(), resp) : restore(req.opts(), resp);
        break;
      }
      default:
        st = make_error("request " + crcriu::ReqType_Name(req.type()) + " is not supported by crcriu",
                        EOPNOTSUPP);
    }
  }
  if (st.ok()) return resp;
  log("error: " + st.error().message);
  return failure(req.type(), st.error());
}

int Session::serve() {
  for (;;) {
    auto req = receive();
    if (!req.ok()) {
      // A hang-up between requests ends the session quietly; anything else is answered.
      if (req.error().code == EPIPE) return 0;
      (void)send(failure(crcriu::EMPTY, req.error()));
      return 1;
    }
    crcriu::Response resp = handle(*req);
    Status sent = send(resp);
    if (!sent.ok() || !req->keep_open()) return sent.ok() && resp.success() ? 0 : 1;
  }
}

}  // namespace cr::criu_rpc
