// The format version rule, as code with a test per branch (test/format/versioning_test.cc).
//
// - The stream prefix carries the writer's format version. This build writes kFormatVersion.
// - A record's layout or meaning never changes within a version: appending a field to a record
//   is the only change allowed without a bump (older readers ignore it, newer readers zero it).
//   A new record type, kind or flag is allowed too when a reader that does not know it
//   cannot restore wrong: it skips an unknown record type, but refuses an unknown File or Vma
//   kind and unknown Process flags (so new state is announced by one of those).
//   Any other change bumps kFormatVersion and adds a conversion step from the previous version
//   to format/convert.cc (1 -> 2: process trees), plus fixture images of the new version under
//   test/fixtures/vN/.
// - Readers (crrestore) take only the current version; crconvert upgrades older ones step by
//   step; crit shows any version, even a newer one, from the stream's own description.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"
#include "format/stream_format.h"

namespace cr::format {

enum class VersionCheck {
  kCurrent,  // restore it as it is
  kOlder,    // convert it first: crconvert upgrades it
  kNewer,    // written by a newer build: this one cannot restore or convert it
  kInvalid,  // 0 is never a valid version
};

/// What this build can do with an image of `version`.
VersionCheck check_version(uint32_t version, uint32_t current = kFormatVersion);

/// For a restorer: Ok for the current version, else an error saying what to do
/// ("image format version 1 is older than this build's 2: upgrade it with `crconvert`").
Status require_current_version(uint32_t version, uint32_t current = kFormatVersion);


}  // namespace cr::format
