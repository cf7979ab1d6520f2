// crrestore: restores a process tree from an image stream (stdin or -i FILE, plain or zstd).
//
// --verify-key FILE: nothing is created before the signature is checked. Restore creates
// things while it reads the head (IPC objects, pipes, the process tree), and the MAC can only
// be checked at the stream's end, so the stream is first copied into a sealed memfd and read
// through once, verifying every checksum and the MAC; then it is restored from that copy. The
// cost: the image's size in memory (swappable shmem) and one extra read of it.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "format/record_reader.h"
#include "format/stream_seal.h"
#include "restore/pidns_launch.h"
#include "restore/user_ns.h"
#include "restore/restorer.h"
#include "tools/progress.h"

namespace {

// --ack-fd (and --listen): where the answer to a migration's source goes, one line: "ok PID"
// once the tree runs, "error: ..." when the restore fails (crmigrate keeps its tree frozen
// until then, and resumes it on anything but "ok").
int ack_fd = -1;

void ack(const std::string& line) {
  if (ack_fd < 0) return;
  const std::string text = line + "\n";
  (void)!::write(ack_fd, text.data(), text.size());
  ::close(ack_fd);
  ack_fd = -1;
}

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "crrestore: %s\n", msg.c_str());
  ack("error: " + msg);
  std::exit(1);
}

// --listen [HOST:]PORT: one TCP connection, accepted, is the image's stream and the way back for
// the answer (IPv4 or IPv6; port 0 picks one, said on stderr).
int listen_once(const std::string& where) {
  std::string host, port = where;
  if (const size_t colon = where.rfind(':'); colon != std::string::npos) {
    host = where.substr(0, colon);
    port = where.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); e != 0)
    die("--listen " + where + ": " + ::gai_strerror(e));
  cr::ScopedFd lsn(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  if (lsn.valid()) ::setsockopt(lsn.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (!lsn.valid() || ::bind(lsn.get(), res->ai_addr, res->ai_addrlen) != 0 || ::listen(lsn.get(), 1) != 0) {
    ::freeaddrinfo(res);
    die(cr::errno_error("--listen " + where).message);
  }
  ::freeaddrinfo(res);
  sockaddr_storage sa{};
  socklen_t len = sizeof sa;
  ::getsockname(lsn.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  char h[NI_MAXHOST] = "", s[NI_MAXSERV] = "";
  ::getnameinfo(reinterpret_cast<sockaddr*>(&sa), len, h, sizeof h, s, sizeof s,
                NI_NUMERICHOST | NI_NUMERICSERV);
  std::fprintf(stderr, "crrestore: listening on %s port %s\n", h, s);
  std::fflush(stderr);
  int c;
  do {
    c = ::accept4(lsn.get(), nullptr, nullptr, SOCK_CLOEXEC);
  } while (c < 0 && errno == EINTR);
  if (c < 0) die(cr::errno_error("--listen " + where + ": accept").message);
  return c;
}

// The child's fd table is built above every dumped fd number; let ours reach as high as the
// hard limit allows.
void raise_nofile() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

// Copies all of `in` into a memfd that nobody can change after (F_SEAL_WRITE etc.).
cr::Result<cr::ScopedFd> buffer_stream(int in) {
  cr::ScopedFd m(::memfd_create("crrestore-image", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!m.valid()) return cr::errno_error("memfd_create");
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return cr::errno_error("read");
    if (r == 0) break;
    for (ssize_t done = 0; done < r;) {
      const ssize_t w = ::write(m.get(), buf.data() + done, static_cast<size_t>(r - done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return cr::errno_error("buffering the image");
      done += w;
    }
  }
  if (::fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
    return cr::errno_error("sealing the image buffer");
  if (::lseek(m.get(), 0, SEEK_SET) != 0) return cr::errno_error("lseek");
  return m;
}

// Reads the whole stream with the key: every checksum, the seal and its MAC.
cr::Status verify_stream(int fd, const cr::format::ReaderOptions& ropts) {
  CR_TRY_ASSIGN(auto reader, cr::format::RecordReader::open(fd, ropts));
  for (;;) {
    CR_TRY_ASSIGN(bool more, reader->next());
    if (!more) break;
  }
  if (::lseek(fd, 0, SEEK_SET) != 0) return cr::errno_error("lseek");
  return {};
}

// Writes the root's pid to `pidfile`, whole or not at all: a reader never sees a partial number.
// False (said on stderr) when it could not.
bool write_pidfile(const std::string& pidfile, pid_t pid) {
  const std::string tmp = pidfile + ".tmp" + std::to_string(::getpid());
  FILE* f = std::fopen(tmp.c_str(), "we");
  bool ok = f != nullptr && std::fprintf(f, "%d\n", pid) > 0;
  if (f != nullptr && std::fclose(f) != 0) ok = false;
  if (!ok || std::rename(tmp.c_str(), pidfile.c_str()) != 0) {
    ::unlink(tmp.c_str());
    // The tree runs; only the file is missing: said, and the exit status says so too.
    std::fprintf(stderr, "crrestore: --pidfile %s: %s (pid %d restored)\n", pidfile.c_str(),
                 std::strerror(errno), pid);
    return false;
  }
  return true;
}

// --pidns, the launcher's part: the restore runs in the namespace (restore/pidns_launch.h);
// here the root's host pid is printed (-d) and written (--pidfile), and the exit status is the
// root's, through the init.
int launcher_main(cr::restore::PidNsLaunch& launch, bool detach, const std::string& pidfile,
                  int tty, bool modes_saved, const termios& saved_modes) {
  auto root = launch.wait_root();
  if (!root.ok()) {
    // The restorer said why; its status is the init's.
    ack("error: the restore in the new pid namespace failed");
    const int code = launch.wait_init();
    if (modes_saved) ::tcsetattr(tty, TCSADRAIN, &saved_modes);
    return code != 0 ? code : 1;
  }
  const bool pidfile_ok = pidfile.empty() || write_pidfile(pidfile, *root);
  ack("ok " + std::to_string(*root));
  if (detach) {
    launch.detach();
    if (!pidfile_ok) return 1;
    ::signal(SIGPIPE, SIG_IGN);
    std::printf("%d\n", *root);
    std::fflush(stdout);
    return 0;
  }
  const int code = launch.wait_init();
  if (tty >= 0) ::tcsetpgrp(tty, ::getpgrp());
  if (modes_saved && code > 128) ::tcsetattr(tty, TCSADRAIN, &saved_modes);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crrestore: restore a process tree from a crtools image", "crrestore"};
  std::string input;
  bool detach = false, shell_job = false, verbose = false, tcp_close = false, quiet = false;
  bool lazy = false;
  std::vector<std::string> inherit;
  std::string verify_key;
  app.add_option("-i,--input", input, "image file (default: stdin)");
  std::string listen_at;
  app.add_option("--listen", listen_at,
                 "read the image from one TCP connection accepted on [HOST:]PORT (crmigrate "
                 "PID HOST:PORT), and answer on it once the tree runs");
  app.add_option("--ack-fd", ack_fd,
                 "write one line to fd N once the tree runs (\"ok PID\") or the restore failed "
                 "(\"error: ...\"): crmigrate's destination command answers so");
  app.add_option("--verify-key", verify_key,
                 "refuse an image not signed with the key in FILE (crdump --sign-key); the "
                 "image is buffered in memory and checked whole before anything is created");
  app.add_flag("--lazy", lazy,
               "resume the tree before its private memory is in: its pages are copied in "
               "behind it, a page it touches first is fetched at once (crrestore stays until "
               "all are in; should it die before, the tree is killed)");
  app.add_flag("-d,--detach", detach,
               "return once the process runs, printing the restored root's pid on stdout");
  app.add_flag("--shell-job", shell_job,
               "reconnect terminal fds to ours (the first of stdin, stdout, stderr that is a "
               "terminal) with the modes the job had, in the foreground if we are");
  std::string pidfile;
  app.add_option("--pidfile", pidfile,
                 "write the restored root's pid to this file (with --pidns its host pid)");
  bool pidns = false;
  app.add_flag(
      "--pidns", pidns,
      "restore into a new pid namespace (crrestore's init its pid 1), where the tree "
      "keeps its pids even when they are taken on the host; -d prints the root's host pid");
  app.add_flag("--tcp-close", tcp_close,
               "restore established TCP connections closed (the peer is gone): the program's "
               "next call on one fails with ECONNABORTED");
  std::string manage_cgroups = "soft";
  app.add_option("--manage-cgroups", manage_cgroups,
                 "soft (default): each process and thread goes back to its cgroups, a missing "
                 "cgroup is created with its dumped settings; ignore: the tree stays in ours")
      ->check(CLI::IsMember({"soft", "ignore"}));
  bool allow_changed = false;
  app.add_flag("--allow-changed-files", allow_changed,
               "restore an fd whose regular file changed since the dump (size or mtime) at its "
               "recorded offset, with a warning naming the file; mapped files and the "
               "executable must still be unchanged");
  app.add_option("--inherit-fd", inherit, "fd[N]:KEY: give our fd N for the external file KEY");
  std::vector<std::string> external;
  app.add_option("--external", external,
                 "mnt[MOUNTPOINT]:PATH: make the tree's mount at MOUNTPOINT (a bind of a host "
                 "path, or a copy of a host mount) a bind of PATH instead (a tree with its own "
                 "mount namespace); veth[NAME]:OUTSIDE[@BRIDGE]: make the other end of the "
                 "tree's veth NAME here as OUTSIDE, a port of BRIDGE (a tree with its own net "
                 "namespace; default: as dumped)");
  app.add_flag("-v,--verbose", verbose, "print each pass with its time");
  app.add_flag("-q,--quiet", quiet,
               "no warnings (what came back other than it was dumped, as rlimits above ours)");
  app.set_version_flag("--version", std::string("crrestore ") + CR_TOOL_VERSION);
  CLI11_PARSE(app, argc, argv);

  cr::restore::RestoreContext ctx;
  ctx.opts.detach = detach;
  ctx.opts.lazy = lazy;
  ctx.opts.shell_job = shell_job;
  ctx.opts.tcp_close = tcp_close;
  ctx.opts.ignore_cgroups = manage_cgroups == "ignore";
  ctx.opts.allow_changed_files = allow_changed;
  ctx.opts.verbose = verbose;
  static const std::regex kInherit(R"(fd\[(\d+)\]:(.+))");
  for (const auto& spec : inherit) {
    std::smatch m;
    if (!std::regex_match(spec, m, kInherit))
      die("--inherit-fd wants fd[N]:KEY, not '" + spec + "'");
    int fd = std::stoi(m[1].str());
    if (::fcntl(fd, F_GETFD) < 0)
      die("--inherit-fd " + spec + ": fd " + m[1].str() + " is not open");
    ctx.opts.inherit_fds[m[2].str()] = fd;
  }
  static const std::regex kExternalMount(R"(mnt\[(/.*)\]:(/.*))");
  static const std::regex kExternalVeth(
      R"(veth\[([^\]/: ]{1,15})\]:([^@/: ]{1,15})(@([^/: ]{1,15}))?)");
  for (const auto& spec : external) {
    std::smatch m;
    if (std::regex_match(spec, m, kExternalVeth)) {
      if (!ctx.opts.external_veths
               .emplace(m[1].str(), cr::restore::ExternalVeth{m[2].str(), m[4].str()})
               .second)
        die("--external veth[" + m[1].str() + "] given twice");
      continue;
    }
    if (!std::regex_match(spec, m, kExternalMount))
      die("--external wants mnt[MOUNTPOINT]:PATH (both absolute) or veth[NAME]:OUTSIDE[@BRIDGE] "
          "(link names), not '" +
          spec + "'");
    if (!ctx.opts.external_mounts.emplace(m[1].str(), m[2].str()).second)
      die("--external mnt[" + m[1].str() + "] given twice");
  }
  raise_nofile();
  // Shell job: the terminal is the first of stdin, stdout, stderr that is one (`< img`, `2>log`
  // redirect the others). In the foreground of it, the restored process group takes it, and we
  // take it back after (with the modes we had if the job was killed, as a shell does).
  int tty = -1;
  termios saved_modes{};
  bool modes_saved = false;
  if (shell_job) {
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
      if (ctx.opts.terminal < 0 && ::isatty(fd) == 1) ctx.opts.terminal = fd;
    if (!detach && ctx.opts.terminal >= 0 && ::tcgetpgrp(ctx.opts.terminal) == ::getpgrp()) {
      tty = ctx.opts.terminal;
      modes_saved = ::tcgetattr(tty, &saved_modes) == 0;
      ::signal(SIGTTOU, SIG_IGN);  // tcsetpgrp and tcsetattr from the background, after
    }
  }
  ctx.opts.foreground_tty = tty;
  cr::ScopedFd owned;
  int fd = STDIN_FILENO;
  if (ack_fd >= 0 && ::fcntl(ack_fd, F_GETFD) < 0) {
    const int bad = ack_fd;
    ack_fd = -1;
    die("--ack-fd " + std::to_string(bad) + ": not an open fd");
  }
  if (!listen_at.empty()) {
    if (!input.empty()) die("--listen and -i both name the image");
    owned.reset(listen_once(listen_at));
    fd = owned.get();
    ::signal(SIGPIPE, SIG_IGN);
    if (ack_fd < 0) ack_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // the answer goes back on it
  } else if (!input.empty()) {
    owned.reset(::open(input.c_str(), O_RDONLY | O_CLOEXEC));
    if (!owned.valid()) die(cr::errno_error(input).message);
    fd = owned.get();
  }
  const std::string name = input.empty() ? std::string("stdin") : input;
  cr::format::ReaderOptions ropts;
  cr::ScopedFd buffered;
  if (!verify_key.empty()) {
    auto key = cr::format::read_key_file(verify_key);
    if (!key.ok()) die(key.error().message);
    ropts.mac_key = std::move(key).value();
    auto m = buffer_stream(fd);
    if (!m.ok()) die(name + ": " + m.error().message);
    buffered = std::move(m).value();
    fd = buffered.get();
    cr::Status st = verify_stream(fd, ropts);
    if (!st.ok()) die(name + ": " + st.error().message);
    ctx.opts.signed_image = true;
  }
  // --lazy from a plain image file: page records leave their bytes there until wanted.
  if (lazy) ropts.defer_tails = {cr::schema::Pages::kType};
  // Otherwise the pages of a plain image file are read there by the threads that place them,
  // each record into a buffer hot in its core's cache (restore/uffd_pages.cc), and the
  // pre-copy rounds stay there until their pages are placed (restore/precopy_store.h): a copy
  // of them in our own memory first cost more than the restore itself.
  else
    ropts.defer_tails = {cr::schema::Pages::kType, cr::schema::PrecopyPages::kType};
  auto reader = cr::format::RecordReader::open(fd, ropts);
  if (!reader.ok()) die(name + ": " + reader.error().message);
  ctx.reader = reader->get();

  // --pidns: from here on this process is either the launcher, waiting in the host's
  // namespaces, or the restorer inside the new one, which goes on below (the reader, and what
  // it has read, being its copy). A tree in a user namespace of its own says so in the first
  // record: the namespace is made with it.
  std::optional<cr::restore::PidNsLaunch> launch;
  if (pidns) {
    std::optional<cr::schema::UserNs> user_ns;
    auto more = ctx.reader->next();
    if (!more.ok()) die(name + ": " + more.error().message);
    if (*more && ctx.reader->type() == cr::schema::UserNs::kType) {
      auto u = ctx.reader->decode<cr::schema::UserNs>();
      if (!u.ok()) die(name + ": " + u.error().message);
      cr::Status sane = cr::restore::check_user_ns(*u);
      // What an image of a user's own namespace asks for must be that user's (its groups are
      // set here, before the namespace exists); other maps are checked against the image's
      // processes once they are read.
      if (sane.ok() && cr::restore::user_could_make(*u) && !ctx.opts.signed_image)
        sane = cr::restore::check_groups_of_user(*u);
      if (!sane.ok()) die(name + ": " + sane.error().message);
      user_ns = std::move(u).value();
    }
    if (*more) ctx.reader->unread();
    auto l = cr::restore::PidNsLaunch::start(!shell_job, user_ns ? &*user_ns : nullptr);
    if (!l.ok()) die(l.error().message);
    launch.emplace(std::move(l).value());
    if (!launch->restorer())
      return launcher_main(*launch, detach, pidfile, tty, modes_saved, saved_modes);
    // The launcher answers (with the root's host pid); a failure here is said by it too.
    if (ack_fd >= 0) ::close(ack_fd);
    ack_fd = -1;
    ctx.opts.pidns = true;
    ctx.opts.user_ns = std::move(user_ns);
  }

  cr::tools::Progress progress("crrestore", fd);
  ctx.opts.on_progress = [&progress](uint64_t bytes) { progress.update(bytes); };
  auto pid = cr::restore::restore(ctx);
  progress.finish();
  if (verbose) {
    double total = 0;
    uint64_t resumes = 0;
    for (const auto& f : ctx.pass_seconds) {
      if (f.resumes != 0)
        std::fprintf(stderr, "crrestore: %-16s %9.3f ms  %8llu stops\n", f.name.c_str(),
                     f.seconds * 1e3, static_cast<unsigned long long>(f.resumes));
      else
        std::fprintf(stderr, "crrestore: %-16s %9.3f ms\n", f.name.c_str(), f.seconds * 1e3);
      total += f.seconds;
      resumes += f.resumes;
    }
    std::fprintf(stderr, "crrestore: %-16s %9.3f ms  %8llu stops\n", "total", total * 1e3,
                 static_cast<unsigned long long>(resumes));
    if (ctx.page_bytes != 0 && lazy)
      std::fprintf(stderr, "crrestore: %.1f MiB of pages read in %.3f s (--lazy: most placed "
                   "behind the running tree, below)\n", ctx.page_bytes / 1048576.0,
                   ctx.pages_seconds);
    else if (ctx.page_bytes != 0)
      std::fprintf(stderr, "crrestore: %.1f MiB of pages in %.3f s (%.2f GB/s)\n",
                   ctx.page_bytes / 1048576.0, ctx.pages_seconds,
                   ctx.pages_seconds > 0 ? ctx.page_bytes / ctx.pages_seconds / 1e9 : 0.0);
  }
  // Warnings always: each says what came back other than it was dumped.
  if (!quiet)
    for (const auto& w : ctx.warnings) std::fprintf(stderr, "crrestore: warning: %s\n", w.c_str());
  if (!pid.ok()) {
    if (modes_saved) ::tcsetattr(tty, TCSADRAIN, &saved_modes);  // the job's are set late
    die(pid.error().message);
  }
  if (verbose)
    std::fprintf(stderr, "crrestore: restored pid %d%s\n", *pid,
                 launch ? " (in its pid namespace)" : "");
  if (!launch) ack("ok " + std::to_string(*pid));
  std::optional<cr::Status> told;
  if (launch) {
    // The launcher prints and writes the root's host pid (and answers); we wait for the root
    // as ever.
    told = launch->announce_root(*pid);
    if (!told->ok()) std::fprintf(stderr, "crrestore: %s\n", told->error().message.c_str());
  }
  // A pidfile that cannot be written fails -d, after a lazy restore's fill (killing the tree
  // for it would lose the program, as the restore has succeeded).
  const bool pidfile_failed = !launch && !pidfile.empty() && !write_pidfile(pidfile, *pid);
  if (lazy) {
    // The tree runs; its memory comes in behind it. crrestore stays until it is all in (its
    // guard kills the tree should crrestore die before).
    cr::Status filled = cr::restore::finish_lazy(ctx);
    if (verbose) {
      const auto& s = ctx.lazy_stats;
      std::fprintf(stderr,
                   "crrestore: lazy: %.1f MiB in the background in %.3f s, %llu faults (%.1f MiB), "
                   "%llu zero-page faults, %.1f MiB present before, %.1f MiB read from the "
                   "image file; %llu forks, %llu remaps, %llu removes, %llu unmaps followed\n",
                   s.fill_bytes / 1048576.0, s.fill_seconds,
                   static_cast<unsigned long long>(s.faults), s.fault_bytes / 1048576.0,
                   static_cast<unsigned long long>(s.zero_faults), s.present_bytes / 1048576.0,
                   s.file_bytes / 1048576.0,
                   static_cast<unsigned long long>(s.forks),
                   static_cast<unsigned long long>(s.remaps),
                   static_cast<unsigned long long>(s.removes),
                   static_cast<unsigned long long>(s.unmaps));
    }
    if (!filled.ok()) die("the tree was killed: " + filled.error().message);
  }
  if (launch && detach) return told->ok() ? 0 : 1;
  if (pidfile_failed && detach) return 1;
  if (detach) {
    // For `pid=$(crrestore -d ...)`; a reader gone is no failure of the restore.
    ::signal(SIGPIPE, SIG_IGN);
    std::printf("%d\n", *pid);
    std::fflush(stdout);
    return 0;
  }
  int st = 0;
  while (::waitpid(*pid, &st, 0) < 0) {
    if (errno != EINTR) die(cr::errno_error("waitpid " + std::to_string(*pid)).message);
  }
  if (tty >= 0) ::tcsetpgrp(tty, ::getpgrp());
  // A job that exited put its terminal modes back itself (or meant to leave them); one killed
  // by a signal could not.
  if (modes_saved && WIFSIGNALED(st)) ::tcsetattr(tty, TCSADRAIN, &saved_modes);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}
