// The stream seal (schema::StreamSeal, docs/FORMAT.md section 4): what a reader needs to know it
// has all of a stream, in order, and (when signed) that the signer wrote it.
//
// One SealChain is fed every stream byte before the seal (the prefix, each record's header and
// payload) and each record's position and payload CRC, by the writer, the reader and crit's
// encoder alike, so the three compute one definition.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "schema/records.h"

namespace cr::format {

/// HMAC-SHA256 (OpenSSL libcrypto), fed piece by piece.
class HmacSha256 {
 public:
  static constexpr size_t kSize = 32;
  static Result<std::unique_ptr<HmacSha256>> create(std::span<const uint8_t> key);
  ~HmacSha256();
  void update(std::span<const uint8_t> bytes);
  /// The MAC of everything fed so far; the object takes no more bytes after it.
  Result<std::vector<uint8_t>> final();
  /// A copy of the state so far (EVP_MAC_CTX_dup); nullptr if that failed.
  std::unique_ptr<HmacSha256> clone() const;

 private:
  HmacSha256() = default;
  struct State;
  std::unique_ptr<State> s_;
};

class SealChain {
 public:
  /// `key` empty: the seal carries no MAC.
  static Result<SealChain> create(std::span<const uint8_t> key = {});
  SealChain(SealChain&&) noexcept;
  SealChain& operator=(SealChain&&) noexcept;
  SealChain(const SealChain& o);
  SealChain& operator=(const SealChain& o);
  ~SealChain();

  /// Stream bytes in order (the prefix, then each record's header, fields and tail).
  void bytes(std::span<const uint8_t> b) {
    byte_count_ += b.size();
    if (mac_) mac_->update(b);
  }
  /// `n` stream bytes not read (a deferred tail): counted; only a chain without a MAC may.
  void count(uint64_t n) { byte_count_ += n; }
  /// The prefix starts the chain (call before bytes() of the prefix or after: it is not fed).
  void prefix(std::span<const uint8_t> p);
  /// One record before the seal, at stream offset `offset`.
  void record(uint64_t offset, uint32_t type, uint32_t length, uint32_t payload_crc);

  uint64_t byte_count() const { return byte_count_; }
  uint64_t record_count() const { return records_; }
  bool signing() const { return mac_ != nullptr; }

  /// The seal for everything so far (`checksums` false: chain 0, as the writer's other CRCs).
  Result<schema::StreamSeal> seal(bool checksums);
  /// Checks a seal read at stream offset `offset` against everything before it. `checksums`:
  /// compare the chain; with a key the MAC must be there and match.
  Status check(const schema::StreamSeal& s, uint64_t offset, bool checksums);

 private:
  SealChain() = default;
  uint32_t chain_ = 0;
  uint64_t records_ = 0;
  uint64_t byte_count_ = 0;
  std::unique_ptr<HmacSha256> mac_;
};

/// Reads a signing key file (any bytes, 1 to 4096 of them).
Result<std::vector<uint8_t>> read_key_file(const std::string& path);

}  // namespace cr::format
