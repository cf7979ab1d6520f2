#include "format/convert.h"
#include "format/self_description.h"

#include <string>
#include <vector>

#include "format/record_reader.h"
#include "format/record_writer.h"

namespace cr::format {

namespace {

// What a conversion between adjacent versions does to the records. Version 1 -> 2 changes no
// record (a version 1 image is one process, written in the order version 2 keeps); 2 -> 1 is
// lossless only for an image of one process, and refuses the others, naming the processes that
// would be lost.
class Steps {
 public:
  Steps(uint32_t from, uint32_t to) : from_(from), to_(to) {}

  Status on_record(const RecordReader& r) {
    if (from_ >= 2 && to_ < 2 && r.type() == schema::Process::kType) {
      CR_TRY_ASSIGN(auto p, r.decode<schema::Process>());
      pids_.push_back(p.pid);
    } else if (pids_.size() > 1) {
      std::string lost;
      for (size_t i = 1; i < pids_.size() && i < 6; ++i)
        lost += (i > 1 ? ", " : "") + std::to_string(pids_[i]);
      if (pids_.size() > 6) lost += " and " + std::to_string(pids_.size() - 6) + " more";
      return make_error("format version 1 holds one process: the image's other processes (" +
                        lost + ") would be lost");
    }
    return {};
  }

 private:
  uint32_t from_, to_;
  std::vector<uint32_t> pids_;
};

}  // namespace

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
      if (from < kOldestFormatVersion)
        return make_error("no conversion step from format version " + std::to_string(from));
      break;
    case VersionCheck::kCurrent:
      break;
  }
  if (opts.to_version < kOldestFormatVersion || opts.to_version > kFormatVersion)
    return make_error("format version " + std::to_string(opts.to_version) +
                      " is unknown to this build (it writes " +
                      std::to_string(kOldestFormatVersion) + " to " +
                      std::to_string(kFormatVersion) + ")");

  WriterOptions wopts;
  wopts.zstd_level = opts.zstd_level;
  wopts.format_version = opts.to_version;
  // The output describes its records exactly as the input did (the same types, in the same
  // order): a record written before a field was appended lacks it, its description must say so,
  // and the bytes stay the same. A type the input describes and this build does not know is
  // carried along too.
  for (uint32_t id : reader->described_types())
    if (const StreamType* t = reader->describe(id)) wopts.extra_types.push_back(*t);
  wopts.describe_only = reader->described_types();
  CR_TRY_ASSIGN(auto writer, RecordWriter::create(out_fd, wopts, reader->header()));
  Steps steps(from, opts.to_version);
  auto run = [&]() -> Status {
    for (;;) {
      CR_TRY_ASSIGN(bool more, reader->next());
      if (!more) break;
      auto st = steps.on_record(*reader);
      if (!st.ok()) return std::move(st).error().wrap("offset " + std::to_string(reader->offset()));
      // Records no step touches go straight through, copied once.
      CR_TRY(writer->write_raw(reader->type(), reader->fields(), reader->tail()));
      if (opts.on_progress) opts.on_progress(reader->offset());
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
