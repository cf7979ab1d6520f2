// The one RecordWriter: frames records (format/stream_format.h) into a bounded output buffer and
// writes it to the fd, plain or through a zstd stream compressor.
//
// Big tails (page runs) are not copied: they are checksummed where they lie, then either
// written with writev() together with the buffered bytes in front of them (plain), or handed
// to the compressor as its input buffer directly (zstd).
#include "format/record_writer.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>

#include "format/crc32c.h"
#include "format/self_description.h"
#include "format/stream_format.h"
#include "format/stream_seal.h"

namespace cr::format {

namespace {

// Plain output buffer. Bytes beyond it (a big tail) go straight to the fd.
constexpr size_t kOutBufSize = 1 << 20;
// A tail at least this big is written/compressed in place instead of copied into the buffer.
constexpr size_t kDirectTail = 64 << 10;
// Pipes are widened to this (best effort) so each write moves a whole page record.
constexpr int kPipeSize = 1 << 20;

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

class StreamWriter final : public RecordWriter {
 public:
  StreamWriter(int fd, const WriterOptions& opts) : fd_(fd), opts_(opts) {}
  // Without finish() or fail() the stream stays incomplete; what was buffered is still written
  // (best effort) so a reader reports it truncated where the writer stopped.
  ~StreamWriter() override {
    if (done_ || broken_) return;
    if (cctx_) {
      (void)compress({}, ZSTD_e_flush);
    } else {
      (void)write_plain({});
    }
  }

  Status init(const schema::StreamHeader& header);

  Status write_raw(uint32_t type, std::span<const uint8_t> fields,
                   std::span<const uint8_t> tail) override;
  bool wants_tail_crc() const override { return opts_.checksums; }
  Status write_raw_tail_crc(uint32_t type, std::span<const uint8_t> fields,
                            std::span<const uint8_t> tail, uint32_t tail_crc) override;
  Status finish() override;
  void fail(std::string_view message) noexcept override;
  uint64_t bytes_written() const override { return bytes_; }
  uint64_t records_written() const override { return records_; }
  size_t buffer_capacity() const override {
    return out_.capacity() + zout_.capacity() + scratch_.capacity() +
           (cctx_ ? ZSTD_sizeof_CCtx(cctx_.get()) : 0);
  }

 private:
  Status check_open() const;
  Status check_caller_record(uint32_t type) const;
  // tail_crc: CRC32C of the tail if the caller computed it.
  Status record(uint32_t type, std::span<const uint8_t> fields, std::span<const uint8_t> tail,
                std::optional<uint32_t> tail_crc = std::nullopt);
  // Appends stream bytes (uncompressed) in order.
  Status emit(std::span<const uint8_t> bytes);
  // Plain: writes the buffer, then `extra` (may be empty), with writev.
  Status write_plain(std::span<const uint8_t> extra);
  // Zstd: compresses the buffered bytes then `extra`; `end` finishes the frame.
  Status compress(std::span<const uint8_t> extra, ZSTD_EndDirective mode);
  Status write_all_fd(const uint8_t* p, size_t n);
  Status flush_zout();
  Status io_failed(Error e) {
    broken_ = true;
    return e;
  }

  int fd_;
  WriterOptions opts_;
  std::vector<uint8_t> out_;   // uncompressed stream bytes not yet written/compressed
  std::vector<uint8_t> zout_;  // compressed bytes not yet written
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> cctx_;
  uint32_t stream_crc_ = 0;        // chained over the prefix and every record header so far
  std::optional<SealChain> seal_;  // the stream describes stream_seal: finish() writes one
  uint64_t bytes_ = 0;
  uint64_t records_ = 0;
  bool done_ = false;    // finish() or fail() ran
  bool broken_ = false;  // an I/O error: nothing more can be written
};

Status StreamWriter::init(const schema::StreamHeader& header) {
  out_.reserve(kOutBufSize);
  // Levels above 19 want windows the reader refuses (bounded memory).
  if (opts_.zstd_level < 0 || opts_.zstd_level > 19)
    return make_error("zstd level " + std::to_string(opts_.zstd_level) + " out of range 0..19");
  if (opts_.zstd_level > 0) {
    cctx_.reset(ZSTD_createCCtx());
    if (!cctx_) return make_error("zstd: cannot create a compression context", ENOMEM);
    size_t r = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, opts_.zstd_level);
    if (!ZSTD_isError(r) && opts_.zstd_threads > 0)
      r = ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_nbWorkers, opts_.zstd_threads);
    if (ZSTD_isError(r)) return make_error(std::string("zstd: ") + ZSTD_getErrorName(r));
    zout_.reserve(ZSTD_CStreamOutSize());
  }
  // A wider pipe lets one write carry a whole page record (fewer wakeups on both sides).
  if (fcntl(fd_, F_GETPIPE_SZ) > 0 && fcntl(fd_, F_GETPIPE_SZ) < kPipeSize)
    (void)fcntl(fd_, F_SETPIPE_SZ, kPipeSize);

  // Self-description: compiled types, with extra_types replacing or adding.
  std::vector<StreamType> types = compiled_types();
  for (const StreamType& extra : opts_.extra_types) {
    bool replaced = false;
    for (StreamType& t : types) {
      if (t.type_id == extra.type_id) {
        t = extra;
        replaced = true;
      }
    }
    if (!replaced) types.push_back(extra);
  }
  if (!opts_.describe_only.empty()) {
    std::vector<StreamType> chosen;
    for (uint32_t id : opts_.describe_only) {
      auto it = std::find_if(types.begin(), types.end(),
                             [id](const StreamType& t) { return t.type_id == id; });
      if (it == types.end())
        return make_error("image writer: no description of record type " + std::to_string(id));
      chosen.push_back(*it);
    }
    types = std::move(chosen);
  }
  const bool sealed = std::any_of(types.begin(), types.end(), [](const StreamType& t) {
    return t.type_id == schema::StreamSeal::kType;
  });
  if (!opts_.mac_key.empty() && !sealed)
    return make_error("image writer: a signed stream must describe stream_seal");
  if (sealed) {
    CR_TRY_ASSIGN(auto chain, SealChain::create(opts_.mac_key));
    seal_.emplace(std::move(chain));
  }

  const auto prefix = make_prefix(opts_.format_version, opts_.checksums ? 0 : kFlagNoChecksums);
  stream_crc_ = crc32c(prefix.data(), prefix.size());
  if (seal_) seal_->prefix(prefix);
  CR_TRY(emit(prefix));

  scratch_.clear();
  encode_fields(header, scratch_);
  CR_TRY(record(schema::StreamHeader::kType, scratch_, {}));

  for (const StreamType& t : types) {
    scratch_.clear();
    encode_fields(to_schema_type(t), scratch_);
    CR_TRY(record(schema::SchemaType::kType, scratch_, {}));
  }
  return {};
}

Status StreamWriter::check_open() const {
  if (broken_) return make_error("image writer: an earlier write failed");
  if (done_) return make_error("image writer: stream already finished");
  return {};
}

// What write_raw() takes: an open stream, and not a record the writer itself writes.
Status StreamWriter::check_caller_record(uint32_t type) const {
  CR_TRY(check_open());
  if (type <= schema::ErrorRecord::kType || type == schema::StreamSeal::kType)
    return make_error("image writer: record type " + std::to_string(type) +
                      " is bookkeeping, written by create()/finish()/fail() only");
  return {};
}

Status StreamWriter::write_raw(uint32_t type, std::span<const uint8_t> fields,
                               std::span<const uint8_t> tail) {
  CR_TRY(check_caller_record(type));
  return record(type, fields, tail);
}

Status StreamWriter::write_raw_tail_crc(uint32_t type, std::span<const uint8_t> fields,
                                        std::span<const uint8_t> tail, uint32_t tail_crc) {
  CR_TRY(check_caller_record(type));
  return record(type, fields, tail, tail_crc);
}

Status StreamWriter::record(uint32_t type, std::span<const uint8_t> fields,
                            std::span<const uint8_t> tail, std::optional<uint32_t> tail_crc) {
  const uint64_t length = fields.size() + tail.size();
  if (length > kMaxRecordPayload)
    return make_error("image writer: record type " + std::to_string(type) + " payload of " +
                      std::to_string(length) + " bytes is over the cap of " +
                      std::to_string(kMaxRecordPayload));
  uint32_t crc = 0;
  if (opts_.checksums)
    crc = tail_crc ? crc32c_combine(crc32c(fields), *tail_crc, tail.size())
                   : crc32c_extend(crc32c(fields), tail.data(), tail.size());
  const auto hdr = make_record_header(type, static_cast<uint32_t>(length), crc, opts_.checksums);
  if (opts_.checksums) stream_crc_ = crc32c_extend(stream_crc_, hdr.data(), hdr.size());
  if (seal_ && type != schema::StreamSeal::kType && type != schema::Trailer::kType)
    seal_->record(bytes_, type, static_cast<uint32_t>(length), opts_.checksums ? crc : 0);
  CR_TRY(emit(hdr));
  CR_TRY(emit(fields));
  CR_TRY(emit(tail));
  ++records_;
  return {};
}

Status StreamWriter::emit(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return {};
  bytes_ += bytes.size();
  if (seal_) seal_->bytes(bytes);
  if (bytes.size() < kDirectTail && out_.size() + bytes.size() <= kOutBufSize) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return {};
  }
  if (bytes.size() < kDirectTail) {
    // Buffer full: drain it, then keep the small piece.
    CR_TRY(cctx_ ? compress({}, ZSTD_e_continue) : write_plain({}));
    out_.insert(out_.end(), bytes.begin(), bytes.end());
    return {};
  }
  return cctx_ ? compress(bytes, ZSTD_e_continue) : write_plain(bytes);
}

Status StreamWriter::write_all_fd(const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_failed(errno_error("image writer: write"));
    }
    if (w == 0) return io_failed(make_error("image writer: write returned 0", EIO));
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status StreamWriter::write_plain(std::span<const uint8_t> extra) {
  iovec iov[2];
  int cnt = 0;
  if (!out_.empty()) iov[cnt++] = {out_.data(), out_.size()};
  if (!extra.empty()) iov[cnt++] = {const_cast<uint8_t*>(extra.data()), extra.size()};
  int first = 0;
  while (first < cnt) {
    const ssize_t w = ::writev(fd_, iov + first, cnt - first);
    if (w < 0) {
      if (errno == EINTR) continue;
      return io_failed(errno_error("image writer: write"));
    }
    if (w == 0) return io_failed(make_error("image writer: write returned 0", EIO));
    size_t left = static_cast<size_t>(w);
    while (first < cnt && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < cnt) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  out_.clear();
  return {};
}

Status StreamWriter::flush_zout() {
  CR_TRY(write_all_fd(zout_.data(), zout_.size()));
  zout_.clear();
  return {};
}

Status StreamWriter::compress(std::span<const uint8_t> extra, ZSTD_EndDirective mode) {
  const size_t zcap = ZSTD_CStreamOutSize();
  size_t used = zout_.size();  // compressed bytes kept from the last call
  zout_.resize(zcap);
  // Two inputs in order: the buffered bytes, then `extra`. Only the last one may end the frame.
  std::span<const uint8_t> inputs[2] = {out_, extra};
  for (int i = 0; i < 2; ++i) {
    const bool last = i == 1;
    const ZSTD_EndDirective m = last ? mode : ZSTD_e_continue;
    if (inputs[i].empty() && m == ZSTD_e_continue) continue;
    ZSTD_inBuffer in = {inputs[i].data(), inputs[i].size(), 0};
    for (;;) {
      ZSTD_outBuffer out = {zout_.data(), zcap, used};
      const size_t r = ZSTD_compressStream2(cctx_.get(), &out, &in, m);
      if (ZSTD_isError(r))
        return io_failed(make_error(std::string("image writer: zstd: ") + ZSTD_getErrorName(r)));
      used = out.pos;
      if (used == zcap) {
        CR_TRY(write_all_fd(zout_.data(), used));
        used = 0;
      }
      // e_continue is done once the input is consumed; e_end/e_flush once r == 0.
      if (m == ZSTD_e_continue ? in.pos == in.size : r == 0) break;
    }
  }
  zout_.resize(used);
  out_.clear();
  if (!zout_.empty() && (mode != ZSTD_e_continue || zout_.size() >= zcap / 2)) {
    CR_TRY(flush_zout());
  }
  return {};
}

Status StreamWriter::finish() {
  CR_TRY(check_open());
  if (seal_) {
    auto s = seal_->seal(opts_.checksums);
    if (!s.ok()) return io_failed(std::move(s).error());
    seal_.reset();  // the seal itself and the trailer are not part of the chain
    scratch_.clear();
    encode_fields(*s, scratch_);
    CR_TRY(record(schema::StreamSeal::kType, scratch_, {}));
  }
  schema::Trailer t;
  t.record_count = records_;
  t.stream_crc = opts_.checksums ? stream_crc_ : 0;
  scratch_.clear();
  encode_fields(t, scratch_);
  CR_TRY(record(schema::Trailer::kType, scratch_, {}));
  done_ = true;
  if (cctx_) return compress({}, ZSTD_e_end);
  return write_plain({});
}

void StreamWriter::fail(std::string_view message) noexcept {
  if (done_ || broken_) return;
  done_ = true;
  try {
    schema::ErrorRecord e;
    e.message = std::string(message);
    scratch_.clear();
    encode_fields(e, scratch_);
    if (!record(schema::ErrorRecord::kType, scratch_, {}).ok()) return;
    if (cctx_) {
      (void)compress({}, ZSTD_e_end);
    } else {
      (void)write_plain({});
    }
  } catch (...) {
    // Out of memory while failing: the reader will see a truncated stream instead.
  }
}

}  // namespace

Result<std::unique_ptr<RecordWriter>> RecordWriter::create(int fd, const WriterOptions& opts,
                                                           const schema::StreamHeader& header) {
  auto w = std::make_unique<StreamWriter>(fd, opts);
  CR_TRY(w->init(header));
  return std::unique_ptr<RecordWriter>(std::move(w));
}

}  // namespace cr::format
