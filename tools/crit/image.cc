// Opening images and reading fields by name: the parts every crit command shares.
#include <fcntl.h>

#include <cstdio>

#include "tools/crit/crit.h"

namespace cr::crit {

Image open_image(const std::string& path, bool bookkeeping, bool verify_checksums,
                 std::vector<uint8_t> mac_key) {
  Image img;
  int fd = 0;
  if (path != "-") {
    img.owned = ScopedFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!img.owned.valid()) fail(errno_error(path).message);
    fd = img.owned.get();
  }
  format::ReaderOptions opts;
  opts.include_bookkeeping = bookkeeping;
  opts.verify_checksums = verify_checksums;
  // crit shows any version from the image's own description.
  opts.allow_newer_version = true;
  opts.mac_key = std::move(mac_key);
  auto r = format::RecordReader::open(fd, opts);
  if (!r.ok()) fail((path == "-" ? std::string("stdin") : path) + ": " + r.error().message);
  img.reader = std::move(r).value();
  return img;
}

Fields::Fields(const format::StreamType& type, std::span<const uint8_t> fields) {
  auto end = format::walk_fields(type, fields, [&](const format::FieldView& f) {
    if (f.present) views_.push_back(f);
  });
  if (!end.ok()) {
    ok_ = false;
    error_ = end.error().message;
    views_.clear();
  }
}

const format::FieldView* Fields::get(std::string_view name) const {
  for (const auto& f : views_)
    if (f.name == name) return &f;
  return nullptr;
}

uint64_t Fields::u(std::string_view name) const {
  const auto* f = get(name);
  return f == nullptr ? 0 : f->u;
}

int64_t Fields::i(std::string_view name) const {
  const auto* f = get(name);
  return f == nullptr ? 0 : f->i();
}

std::string_view Fields::s(std::string_view name) const {
  const auto* f = get(name);
  return f == nullptr ? std::string_view{} : f->str();
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string field_text(const format::FieldView& f) {
  std::string v;
  switch (f.kind) {
    case schema::Kind::i32:
    case schema::Kind::i64:
      v = std::to_string(f.i());
      break;
    case schema::Kind::str:
      v = "\"" + printable(f.str(), 80) + "\"";
      break;
    case schema::Kind::bytes:
      v = "<" + std::to_string(f.bytes.size()) + " bytes>";
      break;
    case schema::Kind::u64s: {
      v = "[";
      for (size_t k = 0; k < f.count() && k < 8; ++k) v += (k ? "," : "") + std::to_string(f.at(k));
      if (f.count() > 8) v += ",... " + std::to_string(f.count()) + " items";
      v += "]";
      break;
    }
    case schema::Kind::objdef:
      v = "#" + std::to_string(f.u);
      break;
    case schema::Kind::objref:
      v = f.u == 0 ? "none" : "->#" + std::to_string(f.u);
      break;
    default:
      v = std::to_string(f.u);
  }
  return std::string(f.name) + "=" + v;
}

std::string type_name(const format::RecordReader& r) {
  if (const auto* t = r.describe(r.type())) return t->name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "type_0x%04x", r.type());
  return buf;
}

}  // namespace cr::crit
