// Pieces of the image loader (image.cc) that live in files of their own: each takes the records
// of one area into a ProcessImage, checking what the rest of restore relies on.
#pragma once

#include <cstddef>

#include "common/result.h"
#include "format/record_reader.h"
#include "restore/image.h"

namespace cr::restore {

/// Counts `n` bytes of record data held for the restore (pipe, socket and deleted-file data)
/// against kMaxStashedBytes.
Status add_stashed_bytes(ProcessImage& img, size_t n, const char* what);

/// A socket record (unix, inet and netlink sockets, their queued data and groups, the net
/// lock) into `img`: false if `reader` holds a record of another kind.
Result<bool> stash_socket_record(const format::RecordReader& reader, ProcessImage& img);

}  // namespace cr::restore
