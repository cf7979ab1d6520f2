// The crit binary, run as a user would: show, info, check, decode | encode, x.
#include <gtest/gtest.h>
#include <pty.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "test/common/devpts_lock.h"
#include "format/crc32c.h"
#include "format/stream_format.h"
#include "test/crit/crit_test_util.h"

namespace cr::crit::testing {
namespace {

bool has(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// Every failure is one line on stderr, "crit: ...", exit status 1, never a crash.
void expect_one_line_failure(const RunResult& r, const std::string& context) {
  EXPECT_EQ(r.signal, 0) << context << ": killed by signal";
  EXPECT_EQ(r.exit_code, 1) << context << ": " << r.err;
  EXPECT_EQ(line_count(r.err), 1u) << context << ": " << r.err;
  EXPECT_EQ(r.err.rfind("crit: ", 0), 0u) << context << ": " << r.err;
}

class Crit : public ::testing::Test {
 protected:
  void SetUp() override {
    ImageOptions o;
    o.unknown_types = true;
    write_test_image(dir / "img", o);
    o.zstd_level = 3;
    write_test_image(dir / "img.zst", o);
  }
  TempDir dir;
};

TEST_F(Crit, DecodeEncodeIsByteIdenticalPlain) {
  auto d = run_crit(dir, {"decode", "--pages", dir / "img"}, "/dev/null", dir / "img.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto e = run_crit(dir, {"encode", "-o", dir / "again", dir / "img.json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(read_file(dir / "again"), read_file(dir / "img"));
  // And through pipes-like stdin/stdout: decode from stdin, encode from stdin to stdout.
  d = run_crit(dir, {"decode", "--pages", "-"}, dir / "img", dir / "img2.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  e = run_crit(dir, {"encode"}, dir / "img2.json", dir / "again2");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(read_file(dir / "again2"), read_file(dir / "img"));
}

TEST_F(Crit, DecodeEncodeIsByteIdenticalToDecompressedZstd) {
  const auto compressed = read_file(dir / "img.zst");
  ASSERT_GE(compressed.size(), 4u);
  EXPECT_EQ(compressed[0], 0x28);  // really a zstd frame
  auto d = run_crit(dir, {"decode", "--pages", dir / "img.zst"}, "/dev/null", dir / "z.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto e = run_crit(dir, {"encode", "-o", dir / "again", dir / "z.json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const auto plain = unzstd(compressed);
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(read_file(dir / "again"), plain);
  EXPECT_EQ(plain, read_file(dir / "img"));
}

TEST_F(Crit, DecodeShapeHoldsEverything) {
  auto d = run_crit(dir, {"decode", dir / "img"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto doc = nlohmann::ordered_json::parse(d.out);
  EXPECT_EQ(doc["format_version"], cr::format::kFormatVersion);
  const auto& recs = doc["records"];
  EXPECT_EQ(recs[0]["type"], "stream_header");
  EXPECT_EQ(recs[0]["fields"]["hostname"], "testhost");
  EXPECT_EQ(recs[1]["type"], "schema_type");
  EXPECT_EQ(recs.back()["type"], "trailer");
  bool vma = false, pages = false, future = false, undescribed = false, cwd_hex = false;
  for (const auto& r : recs) {
    if (r.value("type", "") == "vma" && r["fields"]["start"] == 0x7f1200000000ull) vma = true;
    if (r.value("type", "") == "pages") {
      pages = true;
      EXPECT_TRUE(r.contains("tail_len"));
      EXPECT_FALSE(r.contains("tail_hex"));  // no --pages
    }
    if (r.value("type", "") == "future_thing") {
      future = r["fields"]["label"] == "hello" && r["fields"]["ref"] == 4;
    }
    if (r.contains("type_id"))
      undescribed = r["type_id"] == kUndescribedType && r["payload_hex"] == "010203fe";
    if (r.value("type", "") == "fs") cwd_hex = r["fields"]["cwd"].contains("hex");
  }
  EXPECT_TRUE(vma && pages && future && undescribed && cwd_hex);
}

TEST_F(Crit, EncodeWithoutPagesRefuses) {
  auto d = run_crit(dir, {"decode", dir / "img"}, "/dev/null", dir / "nopages.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  auto e = run_crit(dir, {"encode", "-o", dir / "out", dir / "nopages.json"});
  expect_one_line_failure(e, "encode without pages");
  EXPECT_TRUE(has(e.err, "--pages")) << e.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));  // no half image left behind
}

TEST_F(Crit, EncodeRefusesTerminalAndBadJson) {
  test::DevptsLock devpts;  // a pty index another test is restoring must stay free
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  ScopedFd m(master), s(slave);
  auto d = run_crit(dir, {"decode", "--pages", dir / "img"}, "/dev/null", dir / "img.json");
  ASSERT_EQ(d.exit_code, 0);
  auto e = run_crit(dir, {"encode", dir / "img.json"}, "/dev/null", ttyname(slave));
  expect_one_line_failure(e, "encode to a tty");
  EXPECT_TRUE(has(e.err, "terminal")) << e.err;

  const std::string bad = "{\"records\": [ {\"type\": ";
  write_file(dir / "bad.json", std::span(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()));
  e = run_crit(dir, {"encode", "-o", dir / "out", dir / "bad.json"});
  expect_one_line_failure(e, "truncated JSON");
}

// Damaged JSON (cut anywhere, or a character changed) is refused in one line or, when it is still
// a valid document, encoded: never a crash, never a half-written output file left behind.
TEST_F(Crit, DamagedJsonNeverCrashesEncode) {
  auto d = run_crit(dir, {"decode", "--pages", dir / "img"}, "/dev/null", dir / "img.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  const std::string text = read_text(dir / "img.json");
  auto as_bytes = [](const std::string& t) {
    return std::span(reinterpret_cast<const uint8_t*>(t.data()), t.size());
  };
  // Cut before the closing brace: a cut that drops only the trailing newline is still valid.
  const size_t body = text.find_last_not_of(" \n\r\t");
  for (size_t n = 0; n < body; n += body / 23) {
    write_file(dir / "cut.json", as_bytes(text.substr(0, n)));
    auto e = run_crit(dir, {"encode", "-o", dir / "out", dir / "cut.json"});
    expect_one_line_failure(e, "JSON cut at " + std::to_string(n));
    EXPECT_FALSE(std::filesystem::exists(dir / "out"));
  }
  uint64_t seed = 12345;
  const char replacements[] = "0{}[]\":,x-9";
  for (int i = 0; i < 30; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    std::string damaged = text;
    // Skip the big hex tails: damage lands in the structure and field values.
    const size_t at = (seed >> 33) % std::min<size_t>(damaged.size(), 8000);
    damaged[at] = replacements[(seed >> 20) % (sizeof replacements - 1)];
    write_file(dir / "bad.json", as_bytes(damaged));
    auto e = run_crit(dir, {"encode", "-o", dir / "out", dir / "bad.json"});
    EXPECT_EQ(e.signal, 0) << "damage at " << at;
    if (e.exit_code != 0) {
      expect_one_line_failure(e, "JSON damaged at " + std::to_string(at));
      EXPECT_FALSE(std::filesystem::exists(dir / "out"));
    }
    std::filesystem::remove(dir / "out");
  }
}

TEST_F(Crit, ShowListsRecordsAndTotals) {
  auto r = run_crit(dir, {"show", dir / "img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "stream_header")) << r.out;
  EXPECT_TRUE(has(r.out, "0x7f1200000000-0x7f1200021000 r-xp file /usr/lib/libfoo.so")) << r.out;
  EXPECT_TRUE(has(r.out, "0x600000-0x621000 rw-p heap [heap]")) << r.out;
  EXPECT_TRUE(has(r.out, "pages            0x600000 +3 pages")) << r.out;
  EXPECT_TRUE(has(r.out, "pid 4242 ppid 1 pgid 4242 sid 4200 comm \"counter\" threads 1"));
  EXPECT_TRUE(has(r.out, "rip 0x401234"));
  EXPECT_TRUE(has(r.out, "fd 3 -> file #3 cloexec"));
  EXPECT_TRUE(has(r.out, "#4 reg /var/log/app.log O_WRONLY|O_APPEND pos 12345"));
  // Unknown types: generic, from the stream's description or not at all.
  EXPECT_TRUE(has(r.out, "future_thing     count=7 label=\"hello\" ref=->#4")) << r.out;
  EXPECT_TRUE(has(r.out, "type_0x7f02      (not described) 4 bytes")) << r.out;
  // Totals: page bytes and the whole stream size.
  const auto size = read_file(dir / "img").size();
  EXPECT_TRUE(has(r.out, " bytes (uncompressed stream)")) << r.out;
  EXPECT_TRUE(has(r.out, std::to_string(size) + " bytes (uncompressed stream)")) << r.out;
  EXPECT_TRUE(has(r.out, "page data: 16384 bytes in 2 pages records")) << r.out;
}

TEST_F(Crit, InfoShowsHeaderAndCounts) {
  auto r = run_crit(dir, {"info", dir / "img.zst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "format version: " + std::to_string(cr::format::kFormatVersion)));
  EXPECT_TRUE(has(r.out, "page size: 4096"));
  EXPECT_TRUE(has(r.out, "kernel: 6.18.0-test"));
  EXPECT_TRUE(has(r.out, "root pid: 4242"));
  EXPECT_TRUE(has(r.out, "created: 2023-11-14 22:13:20 UTC")) << r.out;
  EXPECT_TRUE(has(r.out, "  vma                       4")) << r.out;
  EXPECT_TRUE(has(r.out, "  fd                        5")) << r.out;
}

TEST_F(Crit, CheckSaysOkWithCountAndSize) {
  const auto size = read_file(dir / "img").size();
  for (const char* name : {"img", "img.zst"}) {
    auto r = run_crit(dir, {"check", dir / name});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("OK: ", 0), 0u) << r.out;
    EXPECT_TRUE(has(r.out, " records, " + std::to_string(size) + " bytes")) << r.out;
  }
}

TEST_F(Crit, CheckFindsAFlippedByteWithItsOffset) {
  auto bytes = read_file(dir / "img");
  // Flip one byte in the payload of every 7th record-ish position: anywhere after the prefix
  // must be caught (header CRC, payload CRC or the trailer's chained CRC).
  for (size_t at : {size_t{25}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 3}) {
    auto copy = bytes;
    copy[at] ^= 0x10;
    write_file(dir / "flipped", copy);
    auto r = run_crit(dir, {"check", dir / "flipped"});
    expect_one_line_failure(r, "flip at " + std::to_string(at));
    EXPECT_TRUE(has(r.err, "offset")) << r.err;
  }
  // A payload byte: the message names the record's offset.
  auto copy = bytes;
  const size_t first_record = format::kPrefixSize;
  copy[first_record + format::kRecordHeaderSize + 2] ^= 1;  // inside stream_header's payload
  write_file(dir / "flipped", copy);
  auto r = run_crit(dir, {"check", dir / "flipped"});
  expect_one_line_failure(r, "flip in header payload");
  EXPECT_TRUE(has(r.err, "offset " + std::to_string(first_record))) << r.err;
}

TEST_F(Crit, TruncatedInputIsOneLineErrorNeverACrash) {
  const auto bytes = read_file(dir / "img");
  // The reader's own tests cut at every byte; here the point is crit's handling, so the prefix
  // and first record headers byte by byte, then a sample through the body, then the end.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 40; ++n) cuts.push_back(n);
  for (size_t n = 40; n < bytes.size(); n += 509) cuts.push_back(n);
  for (size_t n = bytes.size() - 20; n < bytes.size(); ++n) cuts.push_back(n);
  for (size_t i = 0; i < cuts.size(); ++i) {
    const size_t n = cuts[i];
    write_file(dir / "cut", std::span(bytes).first(n));
    // Every cut through check; every fourth also through show and decode (same reader path).
    for (const char* cmd : {"check", "show", "decode"}) {
      if (i % 4 != 0 && std::string(cmd) != "check") continue;
      auto r = run_crit(dir, {cmd, dir / "cut"});
      expect_one_line_failure(r, std::string(cmd) + " cut at " + std::to_string(n));
    }
  }
  // A cut zstd stream too.
  const auto z = read_file(dir / "img.zst");
  for (size_t n : {size_t{3}, z.size() / 2, z.size() - 1}) {
    write_file(dir / "cut.zst", std::span(z).first(n));
    expect_one_line_failure(run_crit(dir, {"check", dir / "cut.zst"}), "zstd cut");
  }
}

TEST_F(Crit, NewerFormatVersionIsShownAndRoundTrips) {
  auto bytes = read_file(dir / "img");
  // Rewrite the prefix as a version-2 writer would (the prefix CRC covers the version).
  const auto prefix = format::make_prefix(2, 0);
  std::copy(prefix.begin(), prefix.end(), bytes.begin());
  write_file(dir / "v2", bytes);
  auto r = run_crit(dir, {"info", dir / "v2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "format version: 2"));
  r = run_crit(dir, {"check", dir / "v2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_crit(dir, {"show", dir / "v2"});
  EXPECT_TRUE(has(r.out, "future_thing")) << r.out;
  auto d = run_crit(dir, {"decode", "--pages", dir / "v2"}, "/dev/null", dir / "v2.json");
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(nlohmann::ordered_json::parse(read_text(dir / "v2.json"))["format_version"], 2);
  auto e = run_crit(dir, {"encode", "-o", dir / "v2again", dir / "v2.json"});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(read_file(dir / "v2again"), bytes);
}

// An image whose writer failed: show lists what came before, then says why, exit 1.
TEST_F(Crit, ErrorRecordAndForwardObjrefAreReported) {
  {
    ScopedFd fd(::open((dir / "failed").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    schema::StreamHeader h;
    h.page_size = 4096;
    auto w = format::RecordWriter::create(fd.get(), {}, h);
    ASSERT_TRUE(w.ok());
    schema::Process p;
    p.pid = 77;
    p.comm = "victim";
    ASSERT_TRUE((*w)->write(p).ok());
    (*w)->fail("vma 0x1000: process_vm_readv: EFAULT");
  }
  auto r = run_crit(dir, {"show", dir / "failed"});
  expect_one_line_failure(r, "show of a failed image");
  EXPECT_TRUE(has(r.out, "comm \"victim\"")) << r.out;
  EXPECT_TRUE(has(r.err, "image incomplete: vma 0x1000: process_vm_readv: EFAULT")) << r.err;
  expect_one_line_failure(run_crit(dir, {"check", dir / "failed"}), "check of a failed image");

  uint64_t fd_offset = 0;
  {
    ScopedFd fd(::open((dir / "fwd").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    auto w = format::RecordWriter::create(fd.get(), {}, schema::StreamHeader{});
    ASSERT_TRUE(w.ok());
    fd_offset = format::kPrefixSize + (*w)->bytes_written() - format::kPrefixSize;
    schema::Fd f;
    f.pid = 1, f.fd = 3, f.file = 99;  // no file #99 before it
    ASSERT_TRUE((*w)->write(f).ok());
    ASSERT_TRUE((*w)->finish().ok());
  }
  r = run_crit(dir, {"check", dir / "fwd"});
  expect_one_line_failure(r, "forward objref");
  EXPECT_TRUE(has(r.err, "offset " + std::to_string(fd_offset))) << r.err;
  EXPECT_TRUE(has(r.err, "99")) << r.err;
}

// --no-verify reads what a damaged payload byte would otherwise stop at, and a stream written
// without checksums (benchmarks); check always verifies.
TEST_F(Crit, NoVerifyShowsPastADamagedPayloadAndUncheckedStreams) {
  auto bytes = read_file(dir / "img");
  auto r = run_crit(dir, {"show", dir / "img"});
  ASSERT_EQ(r.exit_code, 0);
  // Damage a byte of the libfoo path inside its vma payload.
  const std::string needle = "/usr/lib/libfoo.so";
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(it, bytes.end());
  it[5] = 'L';
  write_file(dir / "damaged", bytes);
  expect_one_line_failure(run_crit(dir, {"show", dir / "damaged"}), "show of damaged");
  r = run_crit(dir, {"show", "--no-verify", dir / "damaged"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "/usr/Lib/libfoo.so")) << r.out;
  r = run_crit(dir, {"x", "mems", "--no-verify", dir / "damaged"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_one_line_failure(run_crit(dir, {"check", dir / "damaged"}), "check of damaged");

  {
    ScopedFd fd(::open((dir / "nocrc").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    format::WriterOptions wo;
    wo.checksums = false;
    auto w = format::RecordWriter::create(fd.get(), wo, schema::StreamHeader{});
    ASSERT_TRUE(w.ok());
    schema::Process p;
    p.pid = 5;
    p.comm = "bench";
    ASSERT_TRUE((*w)->write(p).ok());
    ASSERT_TRUE((*w)->finish().ok());
  }
  expect_one_line_failure(run_crit(dir, {"info", dir / "nocrc"}), "info without --no-verify");
  r = run_crit(dir, {"info", "--no-verify", dir / "nocrc"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_crit(dir, {"x", "ps", "--no-verify", dir / "nocrc"});
  EXPECT_TRUE(has(r.out, "bench")) << r.out;
}

TEST_F(Crit, XPs) {
  auto r = run_crit(dir, {"x", "ps", dir / "img.zst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "PID      PPID     PGID     SID      THREADS  COMM")) << r.out;
  EXPECT_TRUE(has(r.out, "4242     1        4242     4200     1        counter")) << r.out;
}

TEST_F(Crit, XFds) {
  auto r = run_crit(dir, {"x", "fds", dir / "img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "pid 4242")) << r.out;
  EXPECT_TRUE(has(r.out, "0 -> #2 pipe r flags 0x0 pos 0 pipe #1 (12 bytes queued)")) << r.out;
  EXPECT_TRUE(has(r.out, "1 -> #4 reg /var/log/app.log w flags 0x401 pos 12345 [shared: 2 fds]"))
      << r.out;
  EXPECT_TRUE(has(r.out, "2 -> #4 reg /var/log/app.log")) << r.out;
  EXPECT_TRUE(has(r.out, "4 -> #5 deleted /tmp/gone (deleted) rw")) << r.out;
}

// An epoll's watches are listed under the first fd that shows it, flags by name; a fired
// one-shot is marked.
TEST_F(Crit, XFdsListsEpollWatches) {
  {
    ScopedFd fd(::open((dir / "epoll").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    auto w =
        format::RecordWriter::create(fd.get(), format::WriterOptions{}, schema::StreamHeader{});
    ASSERT_TRUE(w.ok());
    schema::Process p;
    p.pid = 7;
    ASSERT_TRUE((*w)->write(p).ok());
    schema::File ep, ev;
    ep.id = 1;
    ep.kind = schema::kFileEpoll;
    ep.path = "anon_inode:[eventpoll]";
    ev.id = 2;
    ev.kind = schema::kFileEventfd;
    ASSERT_TRUE((*w)->write(ep).ok());
    ASSERT_TRUE((*w)->write(ev).ok());
    for (uint32_t n : {3u, 4u, 5u}) {
      schema::Fd f;
      f.pid = 7;
      f.fd = n;
      f.file = n == 4 ? 2 : 1;
      ASSERT_TRUE((*w)->write(f).ok());
    }
    schema::EpollItem armed, fired;
    armed.epoll = fired.epoll = 1;
    armed.target = fired.target = 2;
    armed.tfd = 4;
    armed.events = 0x80000019;  // IN|ERR|HUP|ET
    armed.data = 0xbeef;
    fired.tfd = 9;
    fired.events = 0x40000000;  // ONESHOT, fired
    ASSERT_TRUE((*w)->write(armed).ok());
    ASSERT_TRUE((*w)->write(fired).ok());
    ASSERT_TRUE((*w)->finish().ok());
  }
  auto r = run_crit(dir, {"x", "fds", dir / "epoll"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "3 -> #1 epoll anon_inode:[eventpoll]")) << r.out;
  EXPECT_TRUE(has(r.out, "watch fd 4 -> #2 events IN|ERR|HUP|ET data 0xbeef\n")) << r.out;
  EXPECT_TRUE(has(r.out, "watch fd 9 -> #2 events ONESHOT data 0x0 (fired)")) << r.out;
  // Once, under fd 3, not again under fd 5.
  EXPECT_EQ(r.out.find("watch fd 4"), r.out.rfind("watch fd 4")) << r.out;
}

// A memfd: its File names the Shmem written before it, and x fds says what the memfd holds.
TEST(CritMemfd, XFdsShowsTheMemfdObject) {
  TempDir dir;
  {
    ScopedFd fd(::open((dir / "img").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    schema::StreamHeader h;
    h.arch = 62;
    h.page_size = 4096;
    h.root_pid = 4242;
    auto wr = format::RecordWriter::create(fd.get(), {}, h);
    ASSERT_TRUE(wr.ok());
    auto& w = **wr;
    schema::Process p;
    p.pid = 4242, p.nthreads = 1, p.comm = "m";
    ASSERT_TRUE(w.write(p).ok());
    schema::Shmem m;
    m.id = 1, m.ino = 99, m.size = 8192, m.kind = schema::kShmemMemfd, m.name = "ring buf";
    m.seals = 0x6, m.file_size = 5000, m.mode = 0640;
    ASSERT_TRUE(w.write(m).ok());
    schema::File f;
    f.id = 2, f.kind = schema::kFileMemfd, f.path = "/memfd:ring buf (deleted)", f.flags = O_RDWR;
    f.pos = 100, f.object = 1;
    ASSERT_TRUE(w.write(f).ok());
    for (uint32_t n : {3u, 4u}) {
      schema::Fd r;
      r.pid = 4242, r.fd = n, r.file = 2;
      ASSERT_TRUE(w.write(r).ok());
    }
    ASSERT_TRUE(w.finish().ok());
  }
  auto r = run_crit(dir, {"x", "fds", dir / "img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out,
                  "3 -> #2 memfd /memfd:ring buf (deleted) rw flags 0x2 pos 100 shmem #1 \"ring "
                  "buf\" size 5000 mode 0640 seals shrink,grow [shared: 2 fds]"))
      << r.out;
}

TEST_F(Crit, XMems) {
  auto r = run_crit(dir, {"x", "mems", dir / "img"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(
      has(r.out, "0000000000600000-0000000000621000 rw-p heap               3 pages  [heap]"))
      << r.out;
  EXPECT_TRUE(has(r.out, "00007ffc00000000-00007ffc00021000 rw-p stack              1 pages"))
      << r.out;
  EXPECT_TRUE(has(r.out,
                  "00007f1200000000-00007f1200021000 r-xp file               0 pages  "
                  "/usr/lib/libfoo.so"))
      << r.out;
  EXPECT_TRUE(has(r.out, "4 vmas, 4 pages stored")) << r.out;
}

TEST_F(Crit, HelpOnEverySubcommandAndBadUsage) {
  for (const char* cmd : {"show", "info", "check", "decode", "encode", "x"}) {
    auto r = run_crit(dir, {cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_TRUE(has(r.out, "Usage")) << cmd << ": " << r.out;
  }
  auto r = run_crit(dir, {"x", "nosuch", dir / "img"});
  expect_one_line_failure(r, "x nosuch");
  expect_one_line_failure(run_crit(dir, {}), "no subcommand");
  expect_one_line_failure(run_crit(dir, {"show", "--bogus"}), "unknown option");
  r = run_crit(dir, {"show", dir / "does-not-exist"});
  expect_one_line_failure(r, "missing file");
  EXPECT_TRUE(has(r.err, "No such file")) << r.err;
}

}  // namespace
}  // namespace cr::crit::testing
