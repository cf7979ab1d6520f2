// crit: shows, checks, decodes and re-encodes image streams. Everything here works from the
// stream's own description (its schema_type records), so images of newer versions and record
// types this build does not know are shown too. Errors are thrown as Failure and printed by
// main() as one line, "crit: <what>".
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/scoped_fd.h"
#include "format/record_reader.h"
#include "format/self_description.h"

namespace cr::crit {

/// A command failed; main() prints "crit: <what>" and exits 1.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what) { throw Failure(what); }

template <class T>
T take(Result<T> r) {
  if (!r.ok()) fail(r.error().message);
  return std::move(r).value();
}
inline void take(Status s) {
  if (!s.ok()) fail(s.error().message);
}

/// An open image: the file (or stdin for "-") and its reader.
struct Image {
  ScopedFd owned;  // invalid for stdin
  std::unique_ptr<format::RecordReader> reader;
};

/// Opens `path` ("-": stdin) for reading; `bookkeeping` also returns stream_header,
/// schema_type and trailer records.
Image open_image(const std::string& path, bool bookkeeping, bool verify_checksums = true,
                 std::vector<uint8_t> mac_key = {});

/// The fields of one record, looked up by name (from the stream's description).
class Fields {
 public:
  /// Parses `fields` as `type` describes them; an undecodable record has no fields.
  Fields(const format::StreamType& type, std::span<const uint8_t> fields);
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::vector<format::FieldView>& all() const { return views_; }
  /// The field, or nullptr if the description lacks it or the payload does not hold it.
  const format::FieldView* get(std::string_view name) const;
  /// Integer value (0 when absent), string value ("" when absent).
  uint64_t u(std::string_view name) const;
  int64_t i(std::string_view name) const;
  std::string_view s(std::string_view name) const;

 private:
  std::vector<format::FieldView> views_;
  bool ok_ = true;
  std::string error_;
};

/// "name=value" for a field, value as show prints it (hex for addresses is the caller's job).
std::string field_text(const format::FieldView& f);

/// The type name of the current record ("type_0x9999" when the stream does not describe it).
std::string type_name(const format::RecordReader& r);

/// A string as show prints it: printable ASCII as is, anything else escaped, long ones cut.
std::string printable(std::string_view s, size_t max = 200);

/// `verify` false reads without checking checksums (--no-verify: benchmark streams written
/// without them, or a look past a damaged byte).
int cmd_show(const std::string& path, bool verify);
int cmd_info(const std::string& path, bool verify);
int cmd_check(const std::string& path, const std::string& verify_key = {});
int cmd_decode(const std::string& path, bool pages);
int cmd_encode(const std::string& in, const std::string& out);
int cmd_x(const std::string& what, const std::string& path, bool verify);

}  // namespace cr::crit
