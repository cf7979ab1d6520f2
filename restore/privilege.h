// What an image may ask crrestore to do (README "Trust model").
//
// crrestore runs as root, but an image of processes that are not root must not get more than
// its own credentials could: everything done for such a process that touches the filesystem
// (files opened, deleted files recreated, sockets bound and connected, cwd, chroot, mapped
// files, the exe link) is done with that process's fsuid, fsgid and groups, and what needs no
// filesystem check (capabilities, hard rlimits, devices, set-id bits) is checked against what
// the user could do. An image with a root process (any uid 0) is restored without restriction:
// that process runs the image's code as root anyway.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <vector>

#include "common/result.h"
#include "restore/image.h"

namespace cr::restore {

/// The filesystem identity an operation is done with on behalf of a process of the image.
struct FsIdentity {
  uint32_t fsuid = 0, fsgid = 0;
  std::vector<gid_t> groups;
  static FsIdentity of(const schema::Creds& c);
};

/// True when a process of these credentials is root, or can become it (any uid 0).
bool root_creds(const schema::Creds& c);

/// The groups user `uid` has: its passwd entry's group and the group database's supplementary
/// groups for it; a uid without an entry has only the group of its own number (a private
/// group). What a user could give its own processes.
std::vector<gid_t> groups_of_user(uid_t uid);

/// The image's privileges: whether it is restricted, and as whom each file is opened.
class Privileges {
 public:
  /// From every process's Creds and Fds (head checked by check_tree_head).
  static Privileges of(const TreeHead& head);
  /// No process of the image is root: every operation is done as one of its processes.
  bool restricted() const { return restricted_; }
  /// The identity file `file_id` is opened with: the first process (tree order) holding it.
  /// nullptr when unrestricted (crrestore's own).
  const FsIdentity* for_file(uint32_t file_id) const;
  /// The identity a unix socket is made, bound and connected with (its File's holder).
  const FsIdentity* for_socket(uint32_t socket_id) const;
  /// The identity of process `pid` of the image (its cgroups are made and joined as it).
  /// nullptr when unrestricted.
  const FsIdentity* for_process(uint32_t pid) const;
  /// The image's root process's identity (shared memory objects are given to it).
  const FsIdentity* owner() const { return restricted_ ? &owner_ : nullptr; }

  /// Refuses, naming it, what a restricted image asks for that its user could not do:
  /// capabilities, hard rlimits above this environment's, devices outside the allowlist,
  /// deleted files with set-id bits, a root directory of its own without no_new_privs.
  /// A `signed_image` (its seal verified with --verify-key) is not refused anything.
  Status check(const TreeHead& head, bool signed_image = false) const;

 private:
  bool restricted_ = false;
  FsIdentity owner_;
  std::vector<FsIdentity> ids_;               // one per process, tree order
  std::map<uint32_t, size_t> file_holder_;    // File id -> index into ids_
  std::map<uint32_t, size_t> socket_holder_;  // UnixSocket id -> index into ids_
  std::map<uint32_t, size_t> process_;        // pid -> index into ids_
};

/// Acts as `id` on the filesystem in the calling thread until destroyed (raw syscalls: only
/// this thread's credentials change). fsuid != 0 takes the filesystem capabilities out of the
/// effective set, so permission checks are the user's. With `keep_caps` (an unrestricted
/// image) they are put back: files created get the owner without any check being the user's.
class FsCredsScope {
 public:
  static Result<FsCredsScope> enter(const FsIdentity& id, bool keep_caps = false);
  FsCredsScope(FsCredsScope&& o) noexcept;
  FsCredsScope& operator=(FsCredsScope&&) = delete;
  ~FsCredsScope();

 private:
  FsCredsScope() = default;
  bool active_ = false;
  uint32_t fsuid_ = 0, fsgid_ = 0;
  std::vector<gid_t> groups_;
  uint32_t caps_[2][3] = {};  // saved capget data: effective, permitted, inheritable
};

/// Sets the calling thread's fs identity for good (a restored process before it is driven:
/// every injected open, chdir and chroot then checks the user's rights). Raw syscalls.
Status become_fs_identity(const FsIdentity& id);

}  // namespace cr::restore
