// Streaming conversion of an image to the current format version (crconvert's core).
#pragma once

#include <cstdint>

#include "common/result.h"
#include "format/versioning.h"

namespace cr::format {

struct ConvertOptions {
  uint32_t to_version = kFormatVersion;  // only the current version can be written
  int zstd_level = 0;
};

struct ConvertStats {
  uint32_t from_version = 0;
  uint64_t records = 0, bytes_in = 0, bytes_out = 0;
};

/// Reads the image on `in_fd` (plain or zstd), brings it to opts.to_version and writes the
/// result on `out_fd`. One pass, bounded memory; records are copied byte for byte (page data
/// is never decoded). On failure the output ends with an error record, so it can never pass
/// for a complete image.
Status convert_stream(int in_fd, int out_fd, const ConvertOptions& opts, ConvertStats* stats);

}  // namespace cr::format
