// The one RecordReader: a forward-only parser of the framing in format/stream_format.h over an
// fd, with on-the-fly zstd decompression. It holds one window of stream bytes (at least the
// current record), so memory stays bounded by the largest record however long the stream is.
#include "format/record_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

#include "format/crc32c.h"
#include "format/record_writer.h"
#include "format/self_description.h"
#include "format/stream_format.h"
#include "format/stream_seal.h"

namespace cr::format {

namespace {

// Read-ahead beyond what the current record needs: small records come in big reads, while a
// big record's read stops shortly after it, so little is moved when the window slides.
constexpr size_t kReadAhead = 128 << 10;
constexpr size_t kInitialWindow = 64 << 10;
constexpr size_t kMaxSlack = 4 << 20;  // window room beyond the largest record, at most
constexpr int kPipeSize = 1 << 20;
constexpr int kMaxWindowLog = 25;
constexpr size_t kMaxSpares = 4;  // windows kept for reuse while tokens hold them
// defer_tails: records over this payload size are deferred; the first bytes read hold the fields.
constexpr uint32_t kDeferOver = 64 << 10;
constexpr size_t kDeferHead = 4096;

struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

std::string hex_type(uint32_t type) {
  char b[16];
  snprintf(b, sizeof b, "0x%04x", type);
  return b;
}

// A bookkeeping record kept from open() for include_bookkeeping callers.
struct SavedRecord {
  uint64_t offset;
  uint32_t type;
  std::vector<uint8_t> payload;
  size_t fields = SIZE_MAX;  // where the tail starts (unread records); all fields otherwise
};

class StreamReader final : public RecordReader {
 public:
  StreamReader(int fd, const ReaderOptions& opts) : fd_(fd), opts_(opts) {}

  Status open();

  Result<bool> next() override;
  Result<bool> advance();
  uint32_t type() const override { return cur_type_; }
  uint64_t offset() const override { return cur_offset_; }
  std::span<const uint8_t> payload() const override { return cur_payload_; }
  std::span<const uint8_t> fields() const override { return cur_payload_.first(cur_fields_); }
  std::span<const uint8_t> tail() const override { return cur_payload_.subspan(cur_fields_); }
  const schema::StreamHeader& header() const override { return header_; }
  uint32_t format_version() const override { return version_; }
  const StreamType* describe(uint32_t type_id) const override {
    auto it = types_.find(type_id);
    return it == types_.end() ? nullptr : &it->second;
  }
  std::vector<uint32_t> described_types() const override { return described_order_;
  }
  size_t buffer_capacity() const override {
    return cap_ * (1 + spares_.size()) + zin_.capacity() +
           (dctx_ ? ZSTD_sizeof_DCtx(dctx_.get()) : 0);
  }
  uint64_t records_read() const override { return records_; }
  std::optional<DeferredTail> deferred_tail() const override {
    if (!deferred_) return std::nullopt;
    DeferredTail d;
    d.fd = fd_;
    d.offset = deferred_->payload_offset + cur_fields_;
    d.len = deferred_->length - cur_fields_;
    d.fields_crc = crc32c(cur_payload_.first(cur_fields_));
    d.payload_crc = deferred_->payload_crc;
    d.checksums = checksums_;
    return d;
  }
  Status load_tail() override;
  void unread() override {
    if (deferred_) (void)load_tail();  // a replayed record is whole (or short: its user fails)
    replay_.push_front(
        {cur_offset_, cur_type_, {cur_payload_.begin(), cur_payload_.end()}, cur_fields_});
  }
  Status read_to_end(uint64_t max_bytes) override {
    // The current record may lie before pos_, where a slide would move bytes: keep a copy.
    unread();
    while (!eof_) {
      if (end_ - pos_ > max_bytes)
        return make_error("image reader: more than " + std::to_string(max_bytes >> 20) +
                          " MiB of stream to read ahead");
      // Twice what is there: the window doubles as it grows (one copy per doubling).
      CR_TRY_ASSIGN(size_t got, fill(2 * (end_ - pos_) + kReadAhead));
      (void)got;
    }
    return {};
  }
  std::shared_ptr<const void> hold() const override {
    const uint8_t* p = cur_payload_.data();
    if (p == nullptr || p < buf_.get() || p + cur_payload_.size() > buf_.get() + cap_) return nullptr;
    return buf_;
  }

 private:
  // Makes `n` bytes available at buf_[pos_]; returns how many are (fewer only at end of input).
  Result<size_t> fill(size_t n);
  Result<size_t> read_some(uint8_t* dst, size_t room);
  // Reads and verifies one record into cur_*; false at a clean end of input (no more bytes).
  Result<bool> read_record();
  // defer_tails: whether a record of this type and length leaves its tail in the file.
  bool defers(uint32_t type, uint32_t length) const;
  Status check_objects();
  Status on_trailer();
  Status on_seal();
  std::string type_name(uint32_t type) const;
  std::string where() const {
    return "record at offset " + std::to_string(cur_offset_) + " (type " + type_name(cur_type_) +
           ")";
  }
  void set_current(uint64_t offset, uint32_t type, std::span<const uint8_t> payload);

  int fd_;
  ReaderOptions opts_;
  bool zstd_ = false;
  bool eof_ = false;
  // The window. Shared with hold()'s tokens: a held window is never written over where it
  // holds bytes; sliding moves to another buffer (a spare no token holds any more, or a new one).
  std::shared_ptr<uint8_t[]> buf_;
  std::vector<std::shared_ptr<uint8_t[]>> spares_;  // windows of cap_ bytes, maybe still held
  size_t cap_ = 0, pos_ = 0, end_ = 0;
  uint64_t stream_pos_ = 0;  // stream offset of buf_[pos_]
  std::vector<uint8_t> zin_;
  size_t zin_pos_ = 0;
  bool zin_eof_ = false;
  size_t zframe_left_ = 0;   // last ZSTD_decompressStream hint; nonzero: frame not complete
  uint64_t zin_offset_ = 0;  // compressed bytes consumed, for messages
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> dctx_;

  uint32_t version_ = 0;
  bool checksums_ = true;  // verify CRCs (option and the stream's flag)
  uint32_t stream_crc_ = 0;
  std::optional<SealChain> seal_;  // fed every record before the seal
  bool seal_described_ = false;    // the writer knew seals: the stream must have one
  bool sealed_ = false;            // the seal was read and checked
  uint64_t records_ = 0;
  bool done_ = false;
  std::optional<Error> failed_;
  schema::StreamHeader header_;
  std::unordered_map<uint32_t, StreamType> types_;
  std::vector<uint32_t> described_order_;  // every type the stream describes, in its order
  std::unordered_map<uint32_t, bool> has_obj_fields_;
  // Object id -> (offset, type) of the record that defined it.
  std::unordered_map<uint32_t, std::pair<uint64_t, uint32_t>> objects_;
  std::vector<uint32_t> defs_;  // objdefs of the current record

  std::deque<SavedRecord> replay_;  // bookkeeping records for include_bookkeeping
  bool pending_ = false;            // the first data record was read by open()
  uint64_t pending_offset_ = 0;
  uint32_t pending_type_ = 0;
  std::span<const uint8_t> pending_payload_;  // in buf_, untouched until next() reads on
  SavedRecord current_saved_;                 // backing store while replaying

  uint32_t cur_type_ = 0;
  uint64_t cur_offset_ = 0;
  std::span<const uint8_t> cur_payload_;
  size_t cur_fields_ = 0;

  // defer_tails: the file offset of stream offset 0 (-1: not a plain regular file), and the
  // current record's tail left in the file, if it is.
  int64_t file_base_ = -1;
  struct Deferred {
    uint64_t payload_offset;  // in the file
    uint32_t length, payload_crc;
  };
  std::optional<Deferred> deferred_;
  std::vector<uint8_t> loaded_;  // a loaded deferred payload
};

Result<size_t> StreamReader::read_some(uint8_t* dst, size_t room) {
  if (!zstd_) {
    for (;;) {
      const ssize_t r = ::read(fd_, dst, room);
      if (r >= 0) {
        if (r == 0) eof_ = true;
        return static_cast<size_t>(r);
      }
      if (errno != EINTR) return errno_error("image reader: read");
    }
  }
  for (;;) {
    if (zin_pos_ == zin_.size() && !zin_eof_) {
      zin_.resize(zin_.capacity());
      ssize_t r;
      do {
        r = ::read(fd_, zin_.data(), zin_.size());
      } while (r < 0 && errno == EINTR);
      if (r < 0) return errno_error("image reader: read");
      zin_.resize(static_cast<size_t>(r));
      zin_pos_ = 0;
      if (r == 0) zin_eof_ = true;
    }
    ZSTD_inBuffer in = {zin_.data(), zin_.size(), zin_pos_};
    ZSTD_outBuffer out = {dst, room, 0};
    const size_t r = ZSTD_decompressStream(dctx_.get(), &out, &in);
    zin_offset_ += in.pos - zin_pos_;
    zin_pos_ = in.pos;
    if (ZSTD_isError(r))
      return make_error("image reader: zstd: " + std::string(ZSTD_getErrorName(r)) +
                        " near compressed offset " + std::to_string(zin_offset_) +
                        " (stream offset " + std::to_string(stream_pos_ + (end_ - pos_)) + ")");
    zframe_left_ = r;
    if (out.pos > 0) return out.pos;
    if (zin_pos_ == zin_.size() && zin_eof_) {
      // End of input; a frame cut short simply yields fewer bytes: the framing reports it.
      eof_ = true;
      return size_t{0};
    }
  }
}

Result<size_t> StreamReader::fill(size_t n) {
  if (end_ - pos_ >= n) return n;
  if (cap_ - pos_ < n && pos_ > 0) {
    // Slide the window so the record can be contiguous.
    const size_t have = end_ - pos_;
    if (buf_.use_count() > 1) {
      // A token holds bytes before pos_: continue in a window nobody holds.
      std::shared_ptr<uint8_t[]> next;
      for (auto& s : spares_) {
        if (s.use_count() == 1) {
          next = std::move(s);
          s = buf_;
          break;
        }
      }
      if (!next) {
        next.reset(new uint8_t[cap_]);
        if (spares_.size() < kMaxSpares) spares_.push_back(buf_);
      }
      if (have) std::memcpy(next.get(), buf_.get() + pos_, have);
      buf_ = std::move(next);
    } else if (have) {
      std::memmove(buf_.get(), buf_.get() + pos_, have);
    }
    pos_ = 0;
    end_ = have;
  }
  while (end_ - pos_ < n && !eof_) {
    if (end_ == cap_) {
      // Full and still short (so pos_ == 0 and n > cap_): grow as the data arrives, never on
      // the word of a length field alone, so a small damaged file cannot make us allocate a lot.
      // Aim for about two records of this size, so the window slides rarely.
      const size_t target = std::max(n + kReadAhead, std::min(2 * n + kReadAhead, kMaxSlack));
      const size_t ncap = std::min(std::max(cap_ * 2, kInitialWindow), target);
      std::shared_ptr<uint8_t[]> nbuf(new uint8_t[ncap]);
      if (end_) std::memcpy(nbuf.get(), buf_.get(), end_);
      buf_ = std::move(nbuf);
      cap_ = ncap;
      spares_.clear();  // of the old size
    }
    const size_t want = std::min(cap_ - end_, std::max(n - (end_ - pos_), kReadAhead));
    CR_TRY_ASSIGN(size_t got, read_some(buf_.get() + end_, want));
    end_ += got;
  }
  return std::min(n, end_ - pos_);
}

std::string StreamReader::type_name(uint32_t type) const {
  auto it = types_.find(type);
  if (it != types_.end() && !it->second.name.empty()) return it->second.name;
  return hex_type(type);
}

void StreamReader::set_current(uint64_t offset, uint32_t type, std::span<const uint8_t> payload) {
  cur_offset_ = offset;
  cur_type_ = type;
  cur_payload_ = payload;
  cur_fields_ = payload.size();
}

Result<bool> StreamReader::read_record() {
  // Consume the previous record.
  const uint64_t off = stream_pos_;
  CR_TRY_ASSIGN(size_t got, fill(kRecordHeaderSize));
  if (got == 0) {
    return make_error("truncated at offset " + std::to_string(off) +
                      ": the stream ends without a trailer");
  }
  if (got < kRecordHeaderSize)
    return make_error("truncated at offset " + std::to_string(off) + ": record header needs " +
                      std::to_string(kRecordHeaderSize) + " bytes, stream has " +
                      std::to_string(got));
  const RecordHeader h = parse_record_header(buf_.get() + pos_);
  cur_offset_ = off;
  cur_type_ = h.type;
  if (checksums_ && crc32c(buf_.get() + pos_, 12) != h.header_crc)
    return make_error("checksum mismatch in record header at offset " + std::to_string(off));
  if (h.length > kMaxRecordPayload)
    return make_error("record at offset " + std::to_string(off) + ": length " +
                      std::to_string(h.length) + " over the cap of " +
                      std::to_string(kMaxRecordPayload));
  const size_t total = kRecordHeaderSize + h.length;
  // defer_tails: only the header and the first bytes (the fields) are read; the rest is skipped.
  const bool defer = defers(h.type, h.length);
  const size_t want = defer ? kRecordHeaderSize + kDeferHead : total;
  CR_TRY_ASSIGN(got, fill(want));
  if (got < want)
    return make_error("truncated at offset " + std::to_string(off) + ": record (type " +
                      type_name(h.type) + ") needs " + std::to_string(h.length) +
                      " payload bytes, stream has " + std::to_string(got - kRecordHeaderSize));
  const uint8_t* hdr = buf_.get() + pos_;
  std::span<const uint8_t> payload(hdr + kRecordHeaderSize, want - kRecordHeaderSize);
  // A deferred payload is checked when it is loaded (load_tail, or its user).
  if (!defer && checksums_ && crc32c(payload) != h.payload_crc)
    return make_error("checksum mismatch in " + where());
  // Trailer's chain covers the headers before it; compute before advancing.
  if (h.type != schema::Trailer::kType && checksums_)
    stream_crc_ = crc32c_extend(stream_crc_, hdr, kRecordHeaderSize);
  if (sealed_ && h.type != schema::Trailer::kType)
    return make_error("record at offset " + std::to_string(off) + " (type " + type_name(h.type) +
                      ") after the stream seal: only the trailer may follow it");
  if (seal_ && h.type != schema::StreamSeal::kType && h.type != schema::Trailer::kType) {
    seal_->record(off, h.type, h.length, h.payload_crc);
    if (defer)
      seal_->count(total);  // no MAC (defers() checked): its bytes are only counted
    else
      seal_->bytes({hdr, total});
  }
  if (end_ - pos_ >= total) {
    pos_ += total;
  } else {
    // Deferred: what the window holds of it is passed, then the file's offset moves on.
    if (::lseek(fd_, static_cast<off_t>(total - (end_ - pos_)), SEEK_CUR) < 0)
      return errno_error("image reader: lseek past the record at offset " + std::to_string(off));
    pos_ = end_;
  }
  stream_pos_ += total;
  set_current(off, h.type, payload);
  deferred_.reset();
  if (defer)
    deferred_ = Deferred{static_cast<uint64_t>(file_base_) + off + kRecordHeaderSize, h.length,
                         h.payload_crc};
  ++records_;
  return true;
}

bool StreamReader::defers(uint32_t type, uint32_t length) const {
  if (file_base_ < 0 || length <= kDeferOver || (seal_ && seal_->signing())) return false;
  return std::find(opts_.defer_tails.begin(), opts_.defer_tails.end(), type) !=
         opts_.defer_tails.end();
}

Status StreamReader::load_tail() {
  if (!deferred_) return {};
  const Deferred d = *deferred_;
  loaded_.resize(d.length);
  for (size_t done = 0; done < d.length;) {
    const ssize_t n = ::pread(fd_, loaded_.data() + done, d.length - done,
                              static_cast<off_t>(d.payload_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("image reader: read the record at offset " + std::to_string(cur_offset_));
    if (n == 0)
      return make_error("truncated at offset " + std::to_string(cur_offset_) + ": record (type " +
                        type_name(cur_type_) + ") needs " + std::to_string(d.length) +
                        " payload bytes, the file has " + std::to_string(done));
    done += static_cast<size_t>(n);
  }
  if (checksums_ && crc32c(loaded_.data(), loaded_.size()) != d.payload_crc)
    return make_error("checksum mismatch in " + where());
  const size_t fields = cur_fields_;
  cur_payload_ = {loaded_.data(), loaded_.size()};
  cur_fields_ = fields;
  deferred_.reset();
  return {};
}

Status StreamReader::check_objects() {
  auto it = types_.find(cur_type_);
  if (it == types_.end()) return {};  // undescribed: no fields known
  const StreamType& t = it->second;
  // Walk the fields even without objects: a tail record's tail starts where they end.
  const bool objs = has_obj_fields_[cur_type_];
  if (!objs && !t.has_tail) return {};
  // Objdefs of this record are added after all its refs are checked.
  defs_.clear();
  auto end = walk_fields(t, cur_payload_, [&](const FieldView& f) -> Status {
    if (!f.present) return {};
    const uint32_t id = static_cast<uint32_t>(f.u);
    if (f.kind == schema::Kind::objref && id != 0 && !objects_.count(id))
      return make_error(std::string(f.name) + " refers to object " + std::to_string(id) +
                        ", which no earlier record defines");
    if (f.kind == schema::Kind::objdef) {
      if (id == 0) return make_error(std::string(f.name) + " defines object 0");
      auto prev = objects_.find(id);
      if (prev != objects_.end())
        return make_error(std::string(f.name) + " defines object " + std::to_string(id) +
                          ", already defined by the record at offset " +
                          std::to_string(prev->second.first) + " (type " +
                          type_name(prev->second.second) + ")");
      for (uint32_t d : defs_)
        if (d == id)
          return make_error(std::string(f.name) + " defines object " + std::to_string(id) +
                            " twice in one record");
      defs_.push_back(id);
    }
    return {};
  });
  if (!end.ok()) return std::move(end).error().wrap(where());
  for (uint32_t id : defs_) objects_.emplace(id, std::make_pair(cur_offset_, cur_type_));
  if (t.has_tail) cur_fields_ = *end;
  return {};
}

Status StreamReader::on_trailer() {
  auto t = decode_fields<schema::Trailer>(cur_payload_);
  if (!t.ok()) return std::move(t).error().wrap(where());
  const uint64_t before = records_ - 1;
  if (t->record_count != before)
    return make_error("trailer at offset " + std::to_string(cur_offset_) + ": record_count says " +
                      std::to_string(t->record_count) + ", the stream has " +
                      std::to_string(before) + " records before it");
  if (checksums_ && t->stream_crc != stream_crc_)
    return make_error("trailer at offset " + std::to_string(cur_offset_) +
                      ": stream checksum mismatch (the headers before it do not match)");
  if (!sealed_ && seal_described_)
    return make_error("trailer at offset " + std::to_string(cur_offset_) +
                      ": the stream seal is missing (the stream describes one)");
  if (!sealed_ && !opts_.mac_key.empty())
    return make_error("trailer at offset " + std::to_string(cur_offset_) +
                      ": the image is not signed (no stream seal)");
  done_ = true;
  return {};
}

Status StreamReader::on_seal() {
  if (sealed_ || !seal_) return make_error(where() + ": a second stream seal");
  auto s = decode_fields<schema::StreamSeal>(cur_payload_);
  if (!s.ok()) return std::move(s).error().wrap(where());
  CR_TRY(seal_->check(*s, cur_offset_, checksums_));
  sealed_ = true;
  return {};
}

Status StreamReader::open() {
  if (!opts_.defer_tails.empty()) {
    // Deferred tails are read back by offset: only from a regular file (not zstd, below).
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
      const off_t at = ::lseek(fd_, 0, SEEK_CUR);
      if (at >= 0) file_base_ = at;
    }
  }
  buf_.reset(new uint8_t[kInitialWindow]);
  cap_ = kInitialWindow;
  if (fcntl(fd_, F_GETPIPE_SZ) > 0 && fcntl(fd_, F_GETPIPE_SZ) < kPipeSize)
    (void)fcntl(fd_, F_SETPIPE_SZ, kPipeSize);

  // Plain or zstd? Look at the first 4 bytes (raw: nothing is decompressed yet).
  CR_TRY_ASSIGN(size_t got, fill(4));
  auto is_prefix_of = [&](const auto& magic) {
    return std::memcmp(buf_.get(), magic.data(), std::min(got, magic.size())) == 0;
  };
  if (got >= 4 && std::memcmp(buf_.get(), kZstdMagic.data(), 4) == 0) {
    zstd_ = true;
    file_base_ = -1;
    dctx_.reset(ZSTD_createDCtx());
    if (!dctx_) return make_error("image reader: cannot create a zstd context", ENOMEM);
    // Our writers use levels <= 19 (window <= 8 MiB); refuse frames that want more memory.
    (void)ZSTD_DCtx_setParameter(dctx_.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
    zin_.reserve(ZSTD_DStreamInSize());
    zin_.assign(buf_.get(), buf_.get() + end_);  // what we read so far is compressed input
    zin_pos_ = 0;
    pos_ = end_ = 0;
    eof_ = false;
    zin_eof_ = false;
  } else if (got < 4 && (is_prefix_of(kZstdMagic) || is_prefix_of(kStreamMagic))) {
    return make_error("truncated at offset 0: stream prefix needs " + std::to_string(kPrefixSize) +
                      " bytes, stream has " + std::to_string(got));
  }

  CR_TRY_ASSIGN(got, fill(kPrefixSize));
  const uint8_t* p = buf_.get() + pos_;
  if (std::memcmp(p, kStreamMagic.data(), std::min(got, kStreamMagic.size())) != 0)
    return make_error("not a crtools image (bad magic at offset 0)");
  if (got < kPrefixSize)
    return make_error("truncated at offset 0: stream prefix needs " + std::to_string(kPrefixSize) +
                      " bytes, stream has " + std::to_string(got));
  if (crc32c(p, 16) != load_le32(p + 16))
    return make_error("checksum mismatch in stream prefix at offset 0");
  version_ = load_le32(p + 8);
  const uint32_t flags = load_le32(p + 12);
  if (version_ == 0) return make_error("stream prefix at offset 0: format version 0 is invalid");
  if (version_ > kFormatVersion && !opts_.allow_newer_version)
    return make_error("image format version " + std::to_string(version_) +
                      " is newer than this build reads (" + std::to_string(kFormatVersion) +
                      "): use a newer crtools");
  if (version_ <= kFormatVersion && (flags & ~kKnownFlags) != 0)
    return make_error("stream prefix at offset 0: unknown flags " + hex_type(flags));
  checksums_ = opts_.verify_checksums;
  if ((flags & kFlagNoChecksums) && checksums_)
    return make_error(
        "image was written without checksums (a benchmark stream); open it with "
        "verify_checksums = false");
  stream_crc_ = crc32c(p, kPrefixSize);
  {
    CR_TRY_ASSIGN(auto chain, SealChain::create(opts_.mac_key));
    seal_.emplace(std::move(chain));
    seal_->prefix({p, kPrefixSize});
    seal_->bytes({p, kPrefixSize});
  }
  pos_ += kPrefixSize;
  stream_pos_ = kPrefixSize;

  // Bookkeeping types are read with their compiled layouts (frozen forever).
  const std::vector<StreamType> compiled = compiled_types();
  for (const StreamType& t : compiled)
    if (t.type_id <= schema::ErrorRecord::kType || t.type_id == schema::StreamSeal::kType)
      types_[t.type_id] = t;

  CR_TRY_ASSIGN(bool first, read_record());
  (void)first;
  if (cur_type_ != schema::StreamHeader::kType)
    return make_error("record at offset " + std::to_string(cur_offset_) +
                      ": the first record is type " + type_name(cur_type_) +
                      ", expected stream_header");
  {
    auto h = decode_fields<schema::StreamHeader>(cur_payload_);
    if (!h.ok()) return std::move(h).error().wrap(where());
    header_ = std::move(h).value();
  }
  if (opts_.include_bookkeeping)
    replay_.push_back({cur_offset_, cur_type_, {cur_payload_.begin(), cur_payload_.end()}});

  // The self-description, then the first data record (kept for next()).
  std::unordered_map<uint32_t, bool> described;
  for (;;) {
    CR_TRY_ASSIGN(bool more, read_record());
    (void)more;
    if (cur_type_ != schema::SchemaType::kType) break;
    auto st = decode_fields<schema::SchemaType>(cur_payload_);
    if (!st.ok()) return std::move(st).error().wrap(where());
    auto parsed = parse_schema_type(*st);
    if (!parsed.ok()) return std::move(parsed).error().wrap(where());
    StreamType t = std::move(parsed).value();
    if (described[t.type_id])
      return make_error(where() + ": type " + hex_type(t.type_id) + " described twice");
    described[t.type_id] = true;
    if (t.type_id == schema::StreamSeal::kType) seal_described_ = true;
    described_order_.push_back(t.type_id);
    // A type this build knows must agree with it field by field as far as both go (fields are
    // only ever appended); otherwise decoding it would misread every field after the change.
    for (const StreamType& c : compiled) {
      if (c.type_id != t.type_id) continue;
      const size_t n = std::min(c.fields.size(), t.fields.size());
      bool same = c.has_tail == t.has_tail;
      for (size_t i = 0; i < n && same; ++i) same = c.fields[i].second == t.fields[i].second;
      if (!same)
        return make_error(where() + ": the stream describes " + t.name + " as '" + fields_text(t) +
                          (t.has_tail ? "'+tail" : "'") + ", this build as '" + fields_text(c) +
                          (c.has_tail ? "'+tail" : "'") + ": incompatible");
    }
    if (t.type_id > schema::ErrorRecord::kType) types_[t.type_id] = std::move(t);
    if (opts_.include_bookkeeping)
      replay_.push_back({cur_offset_, cur_type_, {cur_payload_.begin(), cur_payload_.end()}});
  }
  for (const auto& [id, t] : types_) {
    bool objs = false;
    for (const auto& f : t.fields)
      objs |= f.second == schema::Kind::objdef || f.second == schema::Kind::objref;
    has_obj_fields_[id] = objs;
  }
  pending_ = true;
  pending_offset_ = cur_offset_;
  pending_type_ = cur_type_;
  pending_payload_ = cur_payload_;
  return {};
}

Result<bool> StreamReader::next() {
  if (!replay_.empty()) {
    current_saved_ = std::move(replay_.front());
    replay_.pop_front();
    deferred_.reset();
    set_current(current_saved_.offset, current_saved_.type, current_saved_.payload);
    cur_fields_ = std::min(current_saved_.fields, current_saved_.payload.size());
    return true;
  }
  // After an error the position is inside a damaged record: keep answering with that error.
  if (failed_) return *failed_;
  if (done_) return false;
  auto r = advance();
  if (!r.ok()) failed_ = r.error();
  return r;
}

Result<bool> StreamReader::advance() {
  if (pending_) {
    set_current(pending_offset_, pending_type_, pending_payload_);
    pending_ = false;
  } else {
    CR_TRY_ASSIGN(bool more, read_record());
    (void)more;
  }
  switch (cur_type_) {
    case schema::StreamHeader::kType:
      return make_error(where() + ": a second stream header");
    case schema::SchemaType::kType:
      return make_error(where() + ": self-description after the first data record");
    case schema::ErrorRecord::kType: {
      auto e = decode_fields<schema::ErrorRecord>(cur_payload_);
      if (!e.ok()) return std::move(e).error().wrap(where());
      return make_error("image incomplete: " + e->message);
    }
    case schema::Trailer::kType:
      CR_TRY(on_trailer());
      return opts_.include_bookkeeping;
    case schema::StreamSeal::kType:
      CR_TRY(on_seal());
      if (opts_.include_bookkeeping) return true;
      return advance();  // the trailer must follow
    default:
      break;
  }
  CR_TRY(check_objects());
  return true;
}

}  // namespace

Status read_deferred_tail(const DeferredTail& d, uint8_t* dst) {
  for (uint64_t done = 0; done < d.len;) {
    const ssize_t n = ::pread(d.fd, dst + done, d.len - done, static_cast<off_t>(d.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read the image at offset " + std::to_string(d.offset + done));
    if (n == 0)
      return make_error("the image ends inside the record whose bytes are at offset " +
                        std::to_string(d.offset));
    done += static_cast<uint64_t>(n);
  }
  if (d.checksums && crc32c_extend(d.fields_crc, dst, d.len) != d.payload_crc)
    return make_error("checksum mismatch in the record whose bytes are at offset " +
                      std::to_string(d.offset) + " of the image");
  return {};
}

Result<std::unique_ptr<RecordReader>> RecordReader::open(int fd, const ReaderOptions& opts) {
  auto r = std::make_unique<StreamReader>(fd, opts);
  CR_TRY(r->open());
  return std::unique_ptr<RecordReader>(std::move(r));
}

}  // namespace cr::format
