// crcriu: crtools behind CRIU's interface, for container runtimes that drive `criu`:
//
//   runc --criu /usr/bin/crcriu checkpoint ID     (runc runs `crcriu swrk 3`)
//   crcriu swrk FD      serve CRIU RPC requests on the SOCK_SEQPACKET socket FD
//   crcriu check        what `criu check` answers when c/r can work here
//   crcriu --version    "Version: 3.19", as `criu --version` prints it
//
// The image is one crtools stream, crtools.img, in the images directory the caller names
// (criu_rpc/session.h); what crcriu cannot do is refused back through the protocol, the
// container left running.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "criu_rpc/options.h"
#include "criu_rpc/session.h"

int main(int argc, char** argv) {
  CLI::App app{"crcriu: crtools behind CRIU's RPC interface (runc --criu crcriu)", "crcriu"};
  bool version = false;
  app.add_flag("-V,--version", version, "print the CRIU version whose interface crcriu offers");
  app.require_subcommand(0, 1);
  int fd = -1;
  auto* swrk = app.add_subcommand("swrk", "serve CRIU RPC requests on a socket (as runc calls it)");
  swrk->add_option("FD", fd, "the SOCK_SEQPACKET socket, an inherited fd")->required();
  auto* check = app.add_subcommand("check", "say whether checkpoint/restore can work here");
  app.footer(
      "Only CRIU's RPC mode is offered (swrk, as runc, crun and go-criu use it); for the command\n"
      "line, use crdump and crrestore. The image directory gets one file, crtools.img.");
  CLI11_PARSE(app, argc, argv);
  if (version) {
    std::printf("Version: %d.%d\nGitID: crcriu-%s (crtools)\n", cr::criu_rpc::kVersionMajor,
                cr::criu_rpc::kVersionMinor, CR_TOOL_VERSION);
    return 0;
  }
  if (check->parsed()) {
    std::printf("Looks good.\n");
    return 0;
  }
  if (!swrk->parsed()) {
    std::fprintf(stderr, "crcriu: a command is needed: swrk FD, check or --version\n");
    return 1;
  }
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    std::fprintf(stderr, "crcriu: swrk %d: not a SOCK_SEQPACKET socket\n", fd);
    return 1;
  }
  // A closed caller is an error on the socket (EPIPE), not a signal that kills us mid-dump.
  ::signal(SIGPIPE, SIG_IGN);
  // Cancel signals are taken between the passes of a dump (criu_rpc/session.cc), never in the
  // middle of one.
  sigset_t block;
  sigemptyset(&block);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&block, sig);
  ::sigprocmask(SIG_BLOCK, &block, nullptr);
  cr::criu_rpc::Session session(fd);
  return session.serve();
}
