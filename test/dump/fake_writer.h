// An in-memory RecordWriter for the dump tests: keeps every record's type, fields and tail.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/codec.h"
#include "format/record_writer.h"

namespace cr::dump::testing {

class FakeWriter : public format::RecordWriter {
 public:
  struct Rec {
    uint32_t type;
    std::vector<uint8_t> fields, tail;
  };

  Status write_raw(uint32_t type, std::span<const uint8_t> fields,
                   std::span<const uint8_t> tail) override {
    if (finished || failed) return make_error("write after the end of the stream");
    if (type == fail_on_type) return make_error("injected write failure", EPIPE);
    recs.push_back(Rec{type, {fields.begin(), fields.end()}, {tail.begin(), tail.end()}});
    bytes_ += fields.size() + tail.size();
    return {};
  }
  Status finish() override {
    finished = true;
    return {};
  }
  void fail(std::string_view message) override {
    failed = true;
    fail_message = std::string(message);
  }
  uint64_t bytes_written() const override { return bytes_; }
  uint64_t records_written() const override { return recs.size(); }

  /// Every record of type R, decoded.
  template <class R>
  std::vector<R> all() const {
    std::vector<R> out;
    for (const Rec& r : recs)
      if (r.type == R::kType) out.push_back(format::decode_fields<R>(r.fields).value());
    return out;
  }
  /// Records of type R with their tails (tail records).
  template <class R>
  std::vector<std::pair<R, std::vector<uint8_t>>> all_with_tail() const {
    std::vector<std::pair<R, std::vector<uint8_t>>> out;
    for (const Rec& r : recs)
      if (r.type == R::kType) out.emplace_back(format::decode_fields<R>(r.fields).value(), r.tail);
    return out;
  }

  std::vector<Rec> recs;
  uint32_t fail_on_type = 0;  // write_raw of this record type fails (EPIPE), for error paths
  bool finished = false, failed = false;
  std::string fail_message;

 private:
  uint64_t bytes_ = 0;
};

}  // namespace cr::dump::testing
