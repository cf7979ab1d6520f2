// A tree in a user namespace of its own (schema::UserNs): the namespace is made by the --pidns
// launcher (pidns_launch.cc) with the image's maps, and the whole restore runs inside it, so
// that every namespace and process made for the tree belongs to it, and crrestore has no more
// power there than the namespace gives. The image's ids are as crdump saw them from outside;
// inside, the kernel takes them through the maps: they are translated once, after the head is
// read.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "restore/image.h"
#include "schema/records.h"
#include "sys/proc_parse.h"

namespace cr::restore {

/// The record's own consistency: maps the kernel would take (at most 340 lines of non-empty
/// ranges), uid 0 and gid 0 mapped, setgroups allow or deny.
Status check_user_ns(const schema::UserNs& u);

/// True for a namespace any user could make for itself: one uid and one gid, its own, mapped,
/// setgroups denied (what `unshare --user --map-root-user` writes). Other maps only root may
/// write: crrestore writes them for an image with a root process, or a signed one.
bool user_could_make(const schema::UserNs& u);

/// For user_could_make maps: the gid mapped and the supplementary groups the tree keeps
/// (setgroups denied, they are set before the namespace is made) must be groups its user has
/// (groups_of_user).
Status check_groups_of_user(const schema::UserNs& u);

/// Writes the maps of the user namespace of `pid` (just made, nothing written yet): setgroups
/// first (the kernel takes it only before gid_map), then uid_map and gid_map.
Status write_id_maps(pid_t pid, const schema::UserNs& u);

/// Every uid and gid of the head (credentials, owners of files, terminals, tmpfs files,
/// credentials in flight) from outside to inside. An id the maps lack is an error naming it.
Status translate_ids(TreeHead& head, const schema::UserNs& u);

/// One id from outside to inside through the image's maps, or an error naming it and `where`.
class Translator {
 public:
  explicit Translator(const schema::UserNs& u);
  Status uid(uint32_t& id, const std::string& where) const {
    return inside(uids_, "uid", id, where);
  }
  Status gid(uint32_t& id, const std::string& where) const {
    return inside(gids_, "gid", id, where);
  }

 private:
  static Status inside(const sys::IdMap& map, const char* kind, uint32_t& id,
                       const std::string& where);
  sys::IdMap uids_, gids_;
};

/// Whether the process of these (translated) credentials is root outside the namespace.
bool root_outside(const schema::Creds& inside, const schema::UserNs& u);

}  // namespace cr::restore
