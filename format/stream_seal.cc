#include "format/stream_seal.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "format/crc32c.h"
#include "format/stream_format.h"

namespace cr::format {

namespace {

std::string openssl_error(const char* what) {
  char buf[256] = "unknown error";
  const unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, buf, sizeof buf);
  return std::string("HMAC-SHA256: ") + what + ": " + buf;
}

constexpr size_t kMaxKeyFile = 4096;

}  // namespace

struct HmacSha256::State {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  ~State() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

Result<std::unique_ptr<HmacSha256>> HmacSha256::create(std::span<const uint8_t> key) {
  std::unique_ptr<HmacSha256> h(new HmacSha256);
  h->s_ = std::make_unique<State>();
  h->s_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (h->s_->mac == nullptr) return make_error(openssl_error("EVP_MAC_fetch"));
  h->s_->ctx = EVP_MAC_CTX_new(h->s_->mac);
  if (h->s_->ctx == nullptr) return make_error(openssl_error("EVP_MAC_CTX_new"));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  if (EVP_MAC_init(h->s_->ctx, key.data(), key.size(), params) != 1)
    return make_error(openssl_error("EVP_MAC_init"));
  return h;
}

HmacSha256::~HmacSha256() = default;

std::unique_ptr<HmacSha256> HmacSha256::clone() const {
  std::unique_ptr<HmacSha256> h(new HmacSha256);
  if (!s_) return h;  // broken or final: the copy is too
  h->s_ = std::make_unique<State>();
  h->s_->mac = s_->mac;
  if (EVP_MAC_up_ref(s_->mac) != 1) {
    h->s_->mac = nullptr;
    return nullptr;
  }
  h->s_->ctx = EVP_MAC_CTX_dup(s_->ctx);
  if (h->s_->ctx == nullptr) return nullptr;
  return h;
}

void HmacSha256::update(std::span<const uint8_t> bytes) {
  // Fails only on a broken context; final() then reports it.
  if (s_ && !bytes.empty() && EVP_MAC_update(s_->ctx, bytes.data(), bytes.size()) != 1) s_.reset();
}

Result<std::vector<uint8_t>> HmacSha256::final() {
  if (!s_) return make_error("HMAC-SHA256: an update failed");
  std::vector<uint8_t> out(kSize);
  size_t n = 0;
  if (EVP_MAC_final(s_->ctx, out.data(), &n, out.size()) != 1 || n != kSize)
    return make_error(openssl_error("EVP_MAC_final"));
  s_.reset();
  return out;
}

Result<SealChain> SealChain::create(std::span<const uint8_t> key) {
  SealChain c;
  if (!key.empty()) {
    CR_TRY_ASSIGN(auto mac, HmacSha256::create(key));
    c.mac_ = std::move(mac);
  }
  return c;
}

SealChain::SealChain(SealChain&&) noexcept = default;
SealChain& SealChain::operator=(SealChain&&) noexcept = default;
SealChain::~SealChain() = default;

SealChain::SealChain(const SealChain& o)
    : chain_(o.chain_), records_(o.records_), byte_count_(o.byte_count_) {
  if (o.mac_) mac_ = o.mac_->clone();
}

SealChain& SealChain::operator=(const SealChain& o) {
  if (this != &o) *this = SealChain(o);
  return *this;
}

void SealChain::prefix(std::span<const uint8_t> p) { chain_ = crc32c(p); }

void SealChain::record(uint64_t offset, uint32_t type, uint32_t length, uint32_t payload_crc) {
  // The record's position and its payload CRC, not its header: a header ends with the CRC of its
  // own first bytes, which brings any CRC chained over it to a fixed residue.
  uint8_t b[20];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(offset >> (8 * i));
  store_le32(b + 8, type);
  store_le32(b + 12, length);
  store_le32(b + 16, payload_crc);
  chain_ = crc32c_extend(chain_, b, sizeof b);
  ++records_;
}

Result<schema::StreamSeal> SealChain::seal(bool checksums) {
  schema::StreamSeal s;
  s.record_count = records_;
  s.byte_count = byte_count_;
  s.chain = checksums ? chain_ : 0;
  if (mac_) {
    CR_TRY_ASSIGN(auto m, mac_->final());
    s.mac = std::move(m);
    mac_.reset();
  }
  return s;
}

Status SealChain::check(const schema::StreamSeal& s, uint64_t offset, bool checksums) {
  const std::string where = "stream seal at offset " + std::to_string(offset) + ": ";
  if (s.record_count != records_)
    return make_error(where + "record_count says " + std::to_string(s.record_count) +
                      ", the stream has " + std::to_string(records_) + " records before it");
  if (s.byte_count != offset)
    return make_error(where + "byte_count says " + std::to_string(s.byte_count) +
                      ", the seal is at byte " + std::to_string(offset));
  if (checksums && s.chain != chain_)
    return make_error(where +
                      "chain mismatch: records before it were reordered, replaced or damaged");
  if (mac_) {
    if (s.mac.empty()) return make_error(where + "the image is not signed");
    CR_TRY_ASSIGN(auto m, mac_->final());
    mac_.reset();
    if (s.mac.size() != m.size() || CRYPTO_memcmp(s.mac.data(), m.data(), m.size()) != 0)
      return make_error(where + "signature mismatch: not signed with this key, or altered");
  }
  return {};
}

Result<std::vector<uint8_t>> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_error("key file " + path);
  std::vector<uint8_t> key(kMaxKeyFile + 1);
  size_t got = 0;
  while (got < key.size()) {
    const ssize_t r = ::read(fd, key.data() + got, key.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      return errno_error("key file " + path + ": read", e);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  if (got == 0) return make_error("key file " + path + " is empty");
  if (got > kMaxKeyFile)
    return make_error("key file " + path + " is over " + std::to_string(kMaxKeyFile) + " bytes");
  key.resize(got);
  return key;
}

}  // namespace cr::format
