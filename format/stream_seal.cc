#include "format/stream_seal.h"

#include <dlfcn.h>
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

// libcrypto is loaded the first time an image is signed or verified, not when a tool starts:
// linked in, its relocations, constructors and page faults cost every crdump, crrestore and
// crit run about 2 ms (a tenth of the dump of a small process), and most runs never sign.
// The headers still give every function's type.
struct Crypto {
  decltype(&EVP_MAC_fetch) mac_fetch;
  decltype(&EVP_MAC_free) mac_free;
  decltype(&EVP_MAC_up_ref) mac_up_ref;
  decltype(&EVP_MAC_CTX_new) ctx_new;
  decltype(&EVP_MAC_CTX_free) ctx_free;
  decltype(&EVP_MAC_CTX_dup) ctx_dup;
  decltype(&EVP_MAC_init) init;
  decltype(&EVP_MAC_update) update;
  decltype(&EVP_MAC_final) final;
  decltype(&OSSL_PARAM_construct_utf8_string) param_utf8;
  decltype(&OSSL_PARAM_construct_end) param_end;
  decltype(&ERR_get_error) err_get;
  decltype(&ERR_error_string_n) err_string;
  decltype(&CRYPTO_memcmp) memcmp;
};

Result<Crypto> load_crypto() {
  // Never unloaded: contexts made from it may live until exit.
  void* lib = ::dlopen(CR_LIBCRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr)
    return make_error(std::string("HMAC-SHA256: cannot load ") + CR_LIBCRYPTO_SONAME + ": " +
                      ::dlerror());
  Crypto c{};
  std::string missing;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
    if (fn == nullptr) missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  sym(c.mac_fetch, "EVP_MAC_fetch");
  sym(c.mac_free, "EVP_MAC_free");
  sym(c.mac_up_ref, "EVP_MAC_up_ref");
  sym(c.ctx_new, "EVP_MAC_CTX_new");
  sym(c.ctx_free, "EVP_MAC_CTX_free");
  sym(c.ctx_dup, "EVP_MAC_CTX_dup");
  sym(c.init, "EVP_MAC_init");
  sym(c.update, "EVP_MAC_update");
  sym(c.final, "EVP_MAC_final");
  sym(c.param_utf8, "OSSL_PARAM_construct_utf8_string");
  sym(c.param_end, "OSSL_PARAM_construct_end");
  sym(c.err_get, "ERR_get_error");
  sym(c.err_string, "ERR_error_string_n");
  sym(c.memcmp, "CRYPTO_memcmp");
  if (!missing.empty())
    return make_error(std::string("HMAC-SHA256: ") + CR_LIBCRYPTO_SONAME + " lacks " + missing);
  return c;
}

// Loaded once per process (a library is the process's anyway); the same answer every time.
const Result<Crypto>& crypto() {
  static const Result<Crypto> c = load_crypto();
  return c;
}

std::string openssl_error(const char* what) {
  char buf[256] = "unknown error";
  const Crypto& c = *crypto();
  const unsigned long e = c.err_get();
  if (e != 0) c.err_string(e, buf, sizeof buf);
  return std::string("HMAC-SHA256: ") + what + ": " + buf;
}

constexpr size_t kMaxKeyFile = 4096;

}  // namespace

struct HmacSha256::State {
  const Crypto& c;
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  explicit State(const Crypto& crypto) : c(crypto) {}
  ~State() {
    c.ctx_free(ctx);
    c.mac_free(mac);
  }
};

Result<std::unique_ptr<HmacSha256>> HmacSha256::create(std::span<const uint8_t> key) {
  const Result<Crypto>& loaded = crypto();
  if (!loaded.ok()) return loaded.error();
  const Crypto& c = *loaded;
  std::unique_ptr<HmacSha256> h(new HmacSha256);
  h->s_ = std::make_unique<State>(c);
  h->s_->mac = c.mac_fetch(nullptr, "HMAC", nullptr);
  if (h->s_->mac == nullptr) return make_error(openssl_error("EVP_MAC_fetch"));
  h->s_->ctx = c.ctx_new(h->s_->mac);
  if (h->s_->ctx == nullptr) return make_error(openssl_error("EVP_MAC_CTX_new"));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {c.param_utf8(OSSL_MAC_PARAM_DIGEST, digest, 0), c.param_end()};
  if (c.init(h->s_->ctx, key.data(), key.size(), params) != 1)
    return make_error(openssl_error("EVP_MAC_init"));
  return h;
}

HmacSha256::~HmacSha256() = default;

std::unique_ptr<HmacSha256> HmacSha256::clone() const {
  std::unique_ptr<HmacSha256> h(new HmacSha256);
  if (!s_) return h;  // broken or final: the copy is too
  const Crypto& c = s_->c;
  h->s_ = std::make_unique<State>(c);
  h->s_->mac = s_->mac;
  if (c.mac_up_ref(s_->mac) != 1) {
    h->s_->mac = nullptr;
    return nullptr;
  }
  h->s_->ctx = c.ctx_dup(s_->ctx);
  if (h->s_->ctx == nullptr) return nullptr;
  return h;
}

void HmacSha256::update(std::span<const uint8_t> bytes) {
  // Fails only on a broken context; final() then reports it.
  if (s_ && !bytes.empty() && s_->c.update(s_->ctx, bytes.data(), bytes.size()) != 1) s_.reset();
}

Result<std::vector<uint8_t>> HmacSha256::final() {
  if (!s_) return make_error("HMAC-SHA256: an update failed");
  std::vector<uint8_t> out(kSize);
  size_t n = 0;
  if (s_->c.final(s_->ctx, out.data(), &n, out.size()) != 1 || n != kSize)
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
    if (s.mac.size() != m.size() || crypto()->memcmp(s.mac.data(), m.data(), m.size()) != 0)
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
