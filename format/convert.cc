#include "format/convert.h"

#include <string>
#include <vector>

#include "format/record_reader.h"
#include "format/record_writer.h"

namespace cr::format {

namespace {

// Runs one record through the steps from `from` to `to`, writing what comes out.
Status convert_record(RawRecord rec, uint32_t from, uint32_t to,
                      std::span<const ConvertStep> steps, RecordWriter& out) {
  std::vector<RawRecord> cur, next;
  cur.push_back(std::move(rec));
  for (uint32_t v = from; v < to; ++v) {
    const ConvertStep* step = nullptr;
    for (const auto& s : steps)
      if (s.from == v) step = &s;
    if (step == nullptr)
      return make_error("no conversion step from version " + std::to_string(v) + " to " +
                        std::to_string(v + 1));
    next.clear();
    for (auto& r : cur) CR_TRY_CTX(step->up(std::move(r), next), step->summary);
    std::swap(cur, next);
  }
  for (const auto& r : cur) CR_TRY(out.write_raw(r.type, r.fields, r.tail));
  return {};
}

}  // namespace

Status convert_stream(int in_fd, int out_fd, const ConvertOptions& opts, ConvertStats* stats,
                      std::span<const ConvertStep> steps) {
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
    default:
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
  CR_TRY_ASSIGN(auto writer, RecordWriter::create(out_fd, wopts, reader->header()));
  auto run = [&]() -> Status {
    for (;;) {
      CR_TRY_ASSIGN(bool more, reader->next());
      if (!more) break;
      RawRecord rec;
      rec.type = reader->type();
      auto f = reader->fields();
      auto t = reader->tail();
      if (from == opts.to_version) {
        // Nothing to convert: pass the bytes straight through without copying them twice.
        CR_TRY(writer->write_raw(rec.type, f, t));
        continue;
      }
      rec.fields.assign(f.begin(), f.end());
      rec.tail.assign(t.begin(), t.end());
      CR_TRY(convert_record(std::move(rec), from, opts.to_version, steps, *writer));
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
