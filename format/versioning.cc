#include "format/versioning.h"

namespace cr::format {

VersionCheck check_version(uint32_t version, uint32_t current) {
  if (version == 0) return VersionCheck::kInvalid;
  if (version == current) return VersionCheck::kCurrent;
  return version < current ? VersionCheck::kOlder : VersionCheck::kNewer;
}

Status require_current_version(uint32_t version, uint32_t current) {
  const std::string v = std::to_string(version), c = std::to_string(current);
  switch (check_version(version, current)) {
    case VersionCheck::kCurrent:
      return {};
    case VersionCheck::kOlder:
      return make_error("image format version " + v + " is older than this build's " + c +
                        ": upgrade it first with `crconvert -i OLD -o NEW`");
    case VersionCheck::kNewer:
      return make_error("image format version " + v + " is newer than this build's " + c +
                        ": restore it with a newer crtools");
    case VersionCheck::kInvalid:
      break;
  }
  return make_error("image format version " + v + " is not a valid version");
}

}  // namespace cr::format
