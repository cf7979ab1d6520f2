// crit show, info and check: one pass over the image with the verifying reader.
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>

#include "format/stream_format.h"
#include "format/stream_seal.h"
#include "tools/crit/crit.h"
#include "tools/crit/summary.h"

namespace cr::crit {

namespace {

// Counts and bytes per record type, in the order types first appear.
struct Totals {
  struct Row {
    std::string name;
    uint64_t count = 0, bytes = 0;
  };
  std::vector<Row> rows;
  std::map<uint32_t, size_t> index;
  uint64_t records = 0;
  uint64_t bytes = format::kPrefixSize;
  uint64_t page_records = 0, pages = 0, page_bytes = 0;

  void add(const format::RecordReader& r) {
    auto [it, fresh] = index.emplace(r.type(), rows.size());
    if (fresh) rows.push_back({type_name(r), 0, 0});
    const uint64_t size = format::kRecordHeaderSize + r.payload().size();
    rows[it->second].count++;
    rows[it->second].bytes += size;
    ++records;
    bytes += size;
    if (r.type() == schema::Pages::kType) {
      ++page_records;
      page_bytes += r.tail().size();
    }
  }

  void print() const {
    std::printf("%" PRIu64 " records, %" PRIu64 " bytes (uncompressed stream)\n", records, bytes);
    std::printf("  %-16s %10s %14s\n", "TYPE", "RECORDS", "BYTES");
    for (const auto& row : rows)
      std::printf("  %-16s %10" PRIu64 " %14" PRIu64 "\n", row.name.c_str(), row.count, row.bytes);
    std::printf("page data: %" PRIu64 " bytes in %" PRIu64 " pages records\n", page_bytes,
                page_records);
  }
};

// A record that the reader accepted but whose fields do not parse as the stream describes
// them, or a pages record whose tail is not npages pages: what check adds to the reader.
std::string record_problem(const format::RecordReader& r) {
  const auto* t = r.describe(r.type());
  if (t == nullptr) return {};
  Fields f(*t, r.fields());
  if (!f.ok()) return f.error();
  if (r.type() == schema::Pages::kType || r.type() == schema::PrecopyPages::kType) {
    const uint64_t want = f.u("npages") * r.header().page_size;
    if (r.tail().size() != want)
      return "pages: tail is " + std::to_string(r.tail().size()) + " bytes, npages says " +
             std::to_string(want);
  }
  return {};
}

// Pre-copy (crdump --pre-copy): every page a pages_precopied run names must have been sent by
// some precopy_pages record before, and those come before the first process record.
class PrecopyCheck {
 public:
  std::string add(const format::RecordReader& r) {
    if (r.type() == schema::Process::kType) seen_process_ = true;
    if (r.type() != schema::PrecopyPages::kType && r.type() != schema::PagesPrecopied::kType)
      return {};
    const auto* t = r.describe(r.type());
    if (t == nullptr) return {};
    Fields f(*t, r.fields());
    const uint64_t pid = f.u("pid"), start = f.u("vaddr");
    const uint64_t len = f.u("npages") * r.header().page_size;
    if (len == 0 || start + len < start) return "a run of no pages, or past the address space";
    auto& m = sent_[pid];
    if (r.type() == schema::PrecopyPages::kType) {
      if (seen_process_) return "precopy_pages after a process record";
      // Merged intervals: [start, end) per pid.
      uint64_t s = start, e = start + len;
      auto it = m.upper_bound(s);
      if (it != m.begin() && std::prev(it)->second >= s) --it;
      while (it != m.end() && it->first <= e) {
        s = std::min(s, it->first);
        e = std::max(e, it->second);
        it = m.erase(it);
      }
      m.emplace(s, e);
      return {};
    }
    auto it = m.upper_bound(start);
    if (it == m.begin() || std::prev(it)->second < start + len)
      return "pages_precopied of pid " + std::to_string(pid) + " at 0x" + hex(start) +
             " names pages no precopy_pages record sent";
    return {};
  }

 private:
  static std::string hex(uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "%" PRIx64, v);
    return b;
  }
  bool seen_process_ = false;
  std::map<uint64_t, std::map<uint64_t, uint64_t>> sent_;
};

}  // namespace

int cmd_show(const std::string& path, bool verify) {
  Image img = open_image(path, /*bookkeeping=*/true, verify);
  auto& r = *img.reader;
  Totals totals;
  std::printf("%10s  %-16s %s\n", "OFFSET", "TYPE", "SUMMARY");
  while (take(r.next())) {
    totals.add(r);
    std::string summary;
    if (const auto* t = r.describe(r.type())) {
      summary = summarize(*t, Fields(*t, r.fields()), r.tail(), r.header().page_size);
    } else {
      summary = "(not described) " + std::to_string(r.payload().size()) + " bytes";
    }
    std::printf("%10" PRIu64 "  %-16s %s\n", r.offset(), type_name(r).c_str(), summary.c_str());
  }
  std::printf("\n");
  totals.print();
  return 0;
}

int cmd_info(const std::string& path, bool verify) {
  Image img = open_image(path, /*bookkeeping=*/true, verify);
  auto& r = *img.reader;
  const auto& h = r.header();
  std::printf("format version: %u\n", r.format_version());
  std::printf("arch: %u%s\n", h.arch, h.arch == 62 ? " (x86_64)" : "");
  std::printf("page size: %u\n", h.page_size);
  std::printf("kernel: %s\n", printable(h.kernel_release).c_str());
  std::printf("tool version: %s\n", printable(h.tool_version).c_str());
  std::printf("hostname: %s\n", printable(h.hostname).c_str());
  const time_t secs = static_cast<time_t>(h.created_unix_ns / 1000000000ull);
  char when[64] = "?";
  struct tm tm {};
  if (gmtime_r(&secs, &tm) != nullptr)
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  std::printf("created: %s\n", when);
  std::printf("root pid: %u\n", h.root_pid);
  Totals totals;
  uint64_t described = 0;
  while (take(r.next())) {
    totals.add(r);
    if (r.type() == schema::SchemaType::kType) ++described;
  }
  std::printf("described record types: %" PRIu64 "\n", described);
  totals.print();
  return 0;
}

int cmd_check(const std::string& path, const std::string& verify_key) {
  std::vector<uint8_t> key;
  if (!verify_key.empty()) key = take(format::read_key_file(verify_key));
  Image img = open_image(path, /*bookkeeping=*/true, /*verify_checksums=*/true, std::move(key));
  auto& r = *img.reader;
  Totals totals;
  PrecopyCheck precopy;
  while (take(r.next())) {
    std::string problem = record_problem(r);
    if (problem.empty()) problem = precopy.add(r);
    if (!problem.empty())
      fail("record at offset " + std::to_string(r.offset()) + " (type " + type_name(r) +
           "): " + problem);
    totals.add(r);
  }
  std::printf("OK: %" PRIu64 " records, %" PRIu64 " bytes\n", totals.records, totals.bytes);
  return 0;
}

}  // namespace cr::crit
