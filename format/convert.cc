#include "format/convert.h"
#include "format/self_description.h"

#include <string>

#include "format/record_reader.h"
#include "format/record_writer.h"

namespace cr::format {

Status convert_stream(int in_fd, int out_fd, const ConvertOptions& opts, ConvertStats* stats) {
  ReaderOptions ropts;
  ropts.allow_newer_version = true;  // so a newer image gets the precise message below
  CR_TRY_ASSIGN(auto reader, RecordReader::open(in_fd, ropts));
  const uint32_t from = reader->format_version();
  if (stats != nullptr) stats->from_version = from;
  switch (check_version(from)) {
    case VersionCheck::kNewer:
      return make_error("image format version " + std::to_string(from) +
                        " is newer than this build's " + std::to_string(kFormatVersion) +
                        ": use a newer crconvert");
    case VersionCheck::kInvalid:
      return make_error("image format version 0 is not a valid version");
    case VersionCheck::kOlder:
      // Version 1 is the first frozen version; the first bump adds its step here.
      return make_error("no conversion step from format version " + std::to_string(from));
    case VersionCheck::kCurrent:
      break;
  }
  if (opts.to_version != kFormatVersion) {
    if (opts.to_version > kFormatVersion)
      return make_error("format version " + std::to_string(opts.to_version) +
                        " is unknown to this build (newest: " + std::to_string(kFormatVersion) +
                        ")");
    // Going down: every step between must be lossless for every record, which needs the older
    // version's layouts. Until a version 2 exists there is no older version to go to.
    return make_error("cannot write format version " + std::to_string(opts.to_version) +
                      ": this build writes version " + std::to_string(kFormatVersion) +
                      " only, and there is no older frozen version");
  }

  WriterOptions wopts;
  wopts.zstd_level = opts.zstd_level;
  // The output describes its records as the input did: a record written before a field was
  // appended lacks it, and its description must say so (and the bytes stay the same).
  for (const StreamType& c : compiled_types())
    if (const StreamType* t = reader->describe(c.type_id)) wopts.extra_types.push_back(*t);
  CR_TRY_ASSIGN(auto writer, RecordWriter::create(out_fd, wopts, reader->header()));
  auto run = [&]() -> Status {
    for (;;) {
      CR_TRY_ASSIGN(bool more, reader->next());
      if (!more) break;
      // Same version: the bytes go straight through, copied once.
      CR_TRY(writer->write_raw(reader->type(), reader->fields(), reader->tail()));
    }
    return writer->finish();
  };
  Status st = run();
  if (!st.ok()) {
    writer->fail(st.error().message);
    return st;
  }
  if (stats != nullptr) {
    stats->records = reader->records_read();
    stats->bytes_out = writer->bytes_written();
  }
  return {};
}

}  // namespace cr::format
