// This test process as a TCP client of a server in the tree, and the network lock an image
// names: shared by the network tests (network_test.cc) and the real servers
// (real_servers_test.cc).
#ifndef CR_TEST_E2E_TCP_CLIENT_H
#define CR_TEST_E2E_TCP_CLIENT_H

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/scoped_fd.h"

namespace cr::e2e {

/// A connection to 127.0.0.1:`port`, or an invalid fd.
ScopedFd connect_tcp(uint16_t port);
/// Connects, trying again while the connection is refused (a server starting up), for up to
/// `tries` rounds of 10 ms: the condition is re-checked each round, nothing waits blindly.
ScopedFd connect_tcp_when_listening(uint16_t port, int tries = 500);
bool send_all(int s, const std::string& data);
/// Reads until `n` bytes came, the peer closed or reset, or a generous guard ran out (a hang
/// is reported as a failure, not waited for).
std::string recv_n(int s, size_t n, std::string* error = nullptr);
/// `GET /path` on a kept-alive HTTP/1.1 connection: the body of the one response (headers up
/// to the blank line, then Content-Length bytes), or a sentence saying what went wrong.
std::string http_get(int s, const std::string& path);
/// A port nobody uses now (bound to 0, then released).
uint16_t free_port();

bool nft_present();
/// The stdout of a shell command ("?" if it cannot run).
std::string command_output(const std::string& cmd);
/// The network lock table an image names ("" if none) and whether nft has it now. Other tests
/// running at the same time have tables of their own: only this image's is looked at.
std::string lock_of(const std::string& img);
bool lock_present(const std::string& table);

}  // namespace cr::e2e

#endif
