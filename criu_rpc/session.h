// One `crcriu swrk FD` session: CRIU RPC requests read from a SOCK_SEQPACKET socket (one
// message per packet), each answered on it, with notifications ("post-dump", "setup-namespaces",
// "post-restore", ...) sent and acknowledged in between when the caller asked for them
// (notify_scripts). A dump writes one crtools stream, `crtools.img`, into the images directory
// the caller names by fd; a restore reads it back.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "criu_rpc/criu_rpc.pb.h"

namespace cr::criu_rpc {

/// The stream's name inside the images directory.
inline constexpr const char* kImageName = "crtools.img";

class Session {
 public:
  /// `sk`: the caller's end is the peer; its pid (SO_PEERCRED) resolves the directory fds it
  /// names in requests, which are its own fd numbers (as with CRIU).
  explicit Session(int sk);

  /// Serves requests until one without keep_open has been answered or the caller hangs up.
  /// 0 when the last request succeeded; 1 otherwise (its error went back in the response and
  /// to the log file).
  int serve();

 private:
  Result<crcriu::Request> receive();
  Status send(const crcriu::Response& resp);
  /// A notification, when the caller asked for them: sent, then its acknowledgement awaited
  /// (notify_success); a refusal or a hang-up is an error that ends the request.
  Status notify(const std::string& script, pid_t pid = 0);
  crcriu::Response handle(const crcriu::Request& req);
  Status dump(const crcriu::Opts& o, crcriu::Response& resp);
  Status restore(const crcriu::Opts& o, crcriu::Response& resp);
  /// The images directory of the request (images_dir_fd of the caller, or images_dir), the
  /// work directory (work_dir_fd, or the images one) and the log file in it.
  Status open_dirs(const crcriu::Opts& o);
  Result<ScopedFd> caller_fd(int fd, int flags) const;
  void log(const std::string& line);

  int sk_;
  pid_t peer_ = 0;
  bool notify_ = false;
  ScopedFd images_, work_, log_;
};

}  // namespace cr::criu_rpc
