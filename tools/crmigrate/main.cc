// crmigrate: moves a running process tree to a destination that restores it, without ever
// losing it: the stream goes one way (pre-copy rounds while the tree runs, then the frozen
// rest), one line comes back ("ok PID" once the tree runs there, from crrestore --ack-fd or
// --listen), and only then is the source killed. A destination that answers anything else,
// closes the channel or dies leaves the source to resume where it was.
//
//   crmigrate PID 'ssh host crrestore --pidns --ack-fd 1'    # a command: stdin/stdout
//   crmigrate PID host:port                                  # crrestore --listen port there
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "common/scoped_fd.h"
#include "dump/dump.h"
#include "dump/precopy.h"
#include "format/record_writer.h"
#include "tools/cancel.h"
#include "tools/precopy_run.h"

namespace {

int die(const std::string& what) {
  std::fprintf(stderr, "crmigrate: %s\n", what.c_str());
  return 1;
}

// The two ends crmigrate holds: where the stream goes and where the answer comes from.
struct Channel {
  cr::ScopedFd out, in;
  pid_t child = -1;  // the destination command, if DEST is one
  bool socket = false;
};

// DEST as a command: /bin/sh -c DEST with its stdin the stream and its stdout the answer.
cr::Result<Channel> spawn_command(const std::string& dest) {
  int to[2], from[2];
  if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0)
    return cr::errno_error("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return cr::errno_error("fork");
  if (pid == 0) {
    ::dup2(to[0], STDIN_FILENO);
    ::dup2(from[1], STDOUT_FILENO);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execl("/bin/sh", "sh", "-c", dest.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(to[0]);
  ::close(from[1]);
  Channel c;
  c.out.reset(to[1]);
  c.in.reset(from[0]);
  c.child = pid;
  return c;
}

// DEST as HOST:PORT: one TCP connection both ways.
cr::Result<Channel> connect_to(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0)
    return cr::make_error(host + ":" + port + ": " + ::gai_strerror(e));
  cr::Error last = cr::make_error(host + ":" + port + ": no address");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    cr::ScopedFd s(::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (s.valid() && ::connect(s.get(), a->ai_addr, a->ai_addrlen) == 0) {
      ::freeaddrinfo(res);
      Channel c;
      c.in.reset(::fcntl(s.get(), F_DUPFD_CLOEXEC, 0));
      c.out = std::move(s);
      c.socket = true;
      return c;
    }
    last = cr::errno_error("connect to " + host + ":" + port);
  }
  ::freeaddrinfo(res);
  return last;
}

// "host:port" (a numeric port after the last colon, no space): a connection; else a command.
bool is_host_port(const std::string& dest, std::string& host, std::string& port) {
  const size_t colon = dest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == dest.size() ||
      dest.find(' ') != std::string::npos)
    return false;
  port = dest.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos) return false;
  host = dest.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return true;
}

// The stream is complete: ends it for the destination, then waits for its one line. A cancel
// signal stops the wait (the source resumes).
cr::Status await_answer(Channel& ch, std::string& line) {
  if (ch.socket)
    ::shutdown(ch.out.get(), SHUT_WR);
  else
    ch.out.reset();
  const sigset_t set = cr::tools::cancel_signals();
  cr::ScopedFd sig(::signalfd(-1, &set, SFD_CLOEXEC));
  for (;;) {
    pollfd p[2] = {{ch.in.get(), POLLIN, 0}, {sig.get(), POLLIN, 0}};
    if (::poll(p, sig.valid() ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return cr::errno_error("poll for the destination's answer");
    }
    if (sig.valid() && (p[1].revents & POLLIN) != 0) {
      signalfd_siginfo si{};
      (void)!::read(sig.get(), &si, sizeof si);
      return cr::tools::cancelled(static_cast<int>(si.ssi_signo));
    }
    char buf[256];
    const ssize_t n = ::read(ch.in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return {};  // closed: what came is the answer
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos || line.size() > 4096) return {};
  }
}

// After a failed dump: what the destination said, if it said something before it went (a
// destination that fails first makes the stream's write fail; its reason is the answer).
std::string late_answer(Channel& ch) {
  ch.out.reset();
  std::string line;
  for (;;) {
    pollfd p{ch.in.get(), POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(ch.in.get(), buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
    if (line.find('\n') != std::string::npos || line.size() > 4096) break;
  }
  line = line.substr(0, line.find('\n'));
  return line.empty() ? std::string() : "; the destination answered: " + line;
}

// Ends a failed migration: the destination's last word, its exit collected, one line.
int failed(Channel& ch, const std::string& why, bool answered) {
  const std::string said = answered ? std::string() : late_answer(ch);
  ch.out.reset();
  ch.in.reset();
  if (ch.child > 0) (void)::waitpid(ch.child, nullptr, WNOHANG);  // not for one that lingers
  return die(why + said + " (the tree carries on here)");
}

int run(int argc, char** argv) {
  CLI::App app{"crmigrate: move a running process tree to a destination that restores it; the "
               "source is killed only once the destination says the tree runs there",
               "crmigrate"};
  std::string pid_arg, dest;
  int rounds = 8;
  bool no_precopy = false, verbose = false;
  cr::dump::DumpOptions opts;
  app.add_option("--pre-copy", rounds, "pre-copy rounds at most (default 8)")
      ->check(CLI::Range(1, 1000));
  app.add_flag("--no-pre-copy", no_precopy, "freeze at once and send everything then");
  app.add_flag("--tcp-established", opts.tcp_established,
               "take established TCP connections along (as crdump --tcp-established)");
  app.add_flag("--ext-unix-sk", opts.ext_unix_sk, "as crdump --ext-unix-sk");
  app.add_flag("-v,--verbose", verbose, "print the rounds and passes on stderr");
  app.add_option("PID", pid_arg, "the root of the tree to move")->required();
  app.add_option("DEST", dest,
                 "a command that reads the stream on stdin and answers on stdout (crrestore "
                 "--ack-fd 1, through ssh or not), or HOST:PORT of a crrestore --listen")
      ->required();
  app.set_version_flag("--version", std::string("crmigrate ") + CR_TOOL_VERSION);
  app.footer(
      "The source is frozen from the end of the pre-copy until the destination answers: \"ok\" "
      "kills it, anything else (an error, the channel closed, SIGINT/SIGTERM/SIGHUP) resumes "
      "it where it was. Answer line: crrestore --ack-fd N (or --listen) writes it.");
  CLI11_PARSE(app, argc, argv);

  char* end = nullptr;
  const long pid = std::strtol(pid_arg.c_str(), &end, 10);
  if (*end != '\0' || pid <= 0 || pid > INT32_MAX || pid_arg.find_first_not_of("0123456789") != std::string::npos)
    return die("'" + pid_arg + "' is not a process id");
  if (no_precopy && app.count("--pre-copy") > 0) return die("--pre-copy and --no-pre-copy");

  ::signal(SIGPIPE, SIG_IGN);
  const sigset_t block = cr::tools::cancel_signals();
  ::sigprocmask(SIG_BLOCK, &block, nullptr);
  opts.checkpoint = [](std::string_view pass) { return cr::tools::checkpoint("crmigrate", pass); };
  if (verbose)
    opts.on_pass = [](std::string_view pass, double s) {
      std::fprintf(stderr, "crmigrate: %-14.*s %9.3f ms\n", static_cast<int>(pass.size()),
                   pass.data(), s * 1e3);
    };

  std::string host, port;
  auto ch = is_host_port(dest, host, port) ? connect_to(host, port) : spawn_command(dest);
  if (!ch.ok()) return die("destination: " + ch.error().message);
  auto header = cr::dump::stream_header(static_cast<pid_t>(pid));
  if (!header.ok()) return die(header.error().message);
  auto writer = cr::format::RecordWriter::create(ch->out.get(), {}, *header);
  if (!writer.ok()) return die(writer.error().message);

  std::unique_ptr<cr::dump::PreCopy> precopy;
  if (!no_precopy) {
    cr::dump::PrecopyPolicy policy;
    policy.max_rounds = static_cast<unsigned>(rounds);
    auto pc = cr::tools::run_precopy("crmigrate", static_cast<pid_t>(pid), opts, **writer, policy,
                                     verbose);
    if (!pc.ok()) return failed(*ch, pc.error().message, false);
    precopy = std::move(pc).value();
    opts.precopy = precopy.get();
  }
  std::string answer;
  bool answered = false;
  opts.before_kill = [&]() -> cr::Status {
    answered = true;
    CR_TRY(await_answer(*ch, answer));
    while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r')) answer.pop_back();
    if (answer.rfind("ok", 0) == 0) return {};
    return cr::make_error(answer.empty() ? "the destination closed the channel without answering"
                                         : "the destination answered: " + answer);
  };
  cr::Status st = cr::dump::dump_process(static_cast<pid_t>(pid), opts, **writer);
  precopy.reset();
  if (!st.ok()) return failed(*ch, st.error().message, answered);
  if (verbose) std::fprintf(stderr, "crmigrate: pid %ld runs at the destination (%s)\n", pid, answer.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return die(e.what());
  }
}
