// An output path given with -o may be a device or a FIFO (/dev/null, a named pipe): such a path
// is written in place, never created under another name, renamed over or unlinked, which
// would replace /dev/null with a regular file.
#pragma once

#include <sys/stat.h>

#include <string>

namespace cr::tools {

/// True when `path` exists and is not a regular file.
inline bool is_special_output(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode);
}

}  // namespace cr::tools
