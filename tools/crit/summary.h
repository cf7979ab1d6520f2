// One-line summaries of records for `crit show`, by type name (from the stream's description,
// so they work for any format version that keeps the field names); unknown types get a generic
// "field=value ..." list.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/text.h"

#include "tools/crit/crit.h"

namespace cr::crit {

/// The summary of one record: its key fields, briefly.
std::string summarize(const format::StreamType& type, const Fields& f,
                      std::span<const uint8_t> tail, uint32_t page_size);

/// "r-xp" from PROT_* and MAP_* bits.
std::string prot_text(uint64_t prot, uint64_t map_flags);
/// Name of a VmaKind / FileKind value ("anon", "file", "heap"...; the number when unknown).
std::string vma_kind_text(uint64_t kind);
std::string file_kind_text(uint64_t kind);
/// A unix_socket record in a few words: "stream connected peer ino 42 name 'x' shutdown wr".
std::string unix_socket_text(const Fields& f);
using ::cr::hex;

}  // namespace cr::crit
