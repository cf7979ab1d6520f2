// Streaming conversion of an image between format versions (crconvert's core): up to the
// current one from any older one, or down where nothing is lost.
#pragma once

#include <cstdint>
#include <functional>

#include "common/result.h"
#include "format/versioning.h"

namespace cr::format {

struct ConvertOptions {
  uint32_t to_version = kFormatVersion;  // kOldestFormatVersion .. kFormatVersion
  int zstd_level = 0;
  /// Called after each record with the stream bytes read so far (for a progress line).
  std::function<void(uint64_t bytes)> on_progress;
};

struct ConvertStats {
  uint32_t from_version = 0;
  uint64_t records = 0, bytes_in = 0, bytes_out = 0;
};

/// Reads the image on `in_fd` (plain or zstd), brings it to opts.to_version step by step and
/// writes the result on `out_fd`; a downgrade that would lose state is refused naming it. One pass, bounded memory; records are copied byte for byte (page data
/// is never decoded). On failure the output ends with an error record, so it can never pass
/// for a complete image.
Status convert_stream(int in_fd, int out_fd, const ConvertOptions& opts, ConvertStats* stats);

}  // namespace cr::format
