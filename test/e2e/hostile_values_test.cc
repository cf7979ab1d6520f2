// Hostile values and damaged order in real images: each gets a one-line refusal from crrestore
// (and crit), never a hang, an overflow, or a restore of the wrong thing. Images are real dumps,
// edited as JSON (crit decode --pages, crit encode) or moved record by record (issue 16 items
// 4 and 9). Privilege-related hostile images are in hostile_image_test.cc.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "e2e_common.h"
#include "format/record_reader.h"
#include "format/stream_format.h"

namespace cr::e2e {
namespace {

using Json = nlohmann::json;

void note(const std::string& what, const std::string& err) {
  std::cout << "  [" << what << "] " << err;
}

// Dumps a fresh zdtm program (kill path) into dir/img; returns its pid, or -1.
pid_t dumped(TempDir& dir, const std::vector<std::string>& argv) {
  Target t = Target::start(dir, argv);
  if (t.pid() <= 0) {
    ADD_FAILURE() << t.error();
    return -1;
  }
  const pid_t pid = t.pid();
  if (!dump_target(dir, t, Mode::kKill, dir.path("img"))) return -1;
  return pid;
}

bool crit_to_file(TempDir& dir, const std::vector<std::string>& args, const std::string& out) {
  ScopedFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return false;
  ToolRun r = run_tool(dir, "crit", args, -1, fd.get());
  EXPECT_TRUE(r.status.ok()) << "crit " << args.front() << ": " << r.describe();
  return r.status.ok();
}

// dir/img -> JSON -> edit(records) -> dir/bad. False if a step failed.
bool edited(TempDir& dir, const std::function<bool(Json& doc)>& edit) {
  if (!crit_to_file(dir, {"decode", "--pages", dir.path("img")}, dir.path("img.json")))
    return false;
  Json doc = Json::parse(read_file(dir.path("img.json")));
  if (!edit(doc)) {
    ADD_FAILURE() << "nothing to edit in the image";
    return false;
  }
  write_file(dir.path("bad.json"), doc.dump());
  ToolRun enc = run_tool(dir, "crit", {"encode", "-o", dir.path("bad"), dir.path("bad.json")});
  EXPECT_TRUE(enc.status.ok()) << enc.describe();
  return enc.status.ok();
}

// crrestore refuses dir/`img` in one line naming `needle`, and leaves no process behind.
void expect_refused(TempDir& dir, pid_t pid, const std::string& needle,
                    const std::string& img = "bad") {
  ToolRun r = run_tool(dir, "crrestore", {"-d", "-i", dir.path(img)});
  note(needle, r.err);
  EXPECT_FALSE(r.timed_out) << "crrestore hangs";
  EXPECT_EQ(r.status.code, 1) << r.describe();
  EXPECT_TRUE(r.one_line_error("crrestore")) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  reap_zombies();  // a tree killed by crrestore after a late refusal was handed to us
  if (pid_exists(pid)) {
    ADD_FAILURE() << "pid " << pid << " exists after a refused restore";
    kill_child(pid);
  }
}

// Sets field `name` of the first record of `type` that `pick` accepts.
bool set_field(
    Json& doc, const std::string& type, const std::string& name, const Json& value,
    const std::function<bool(const Json&)>& pick = [](const Json&) { return true; }) {
  for (auto& r : doc["records"])
    if (r["type"] == type && pick(r["fields"])) {
      r["fields"][name] = value;
      return true;
    }
  return false;
}

bool ready() { return tools_present() && tool_exists("crit"); }

TEST(HostileValues, ZombieWithAStopStatus) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("tree_zombie")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) {
    return set_field(doc, "process", "exit_status", 0x137f,
                     [](const Json& f) { return (f["flags"].get<uint32_t>() & 2) != 0; });
  }));
  expect_refused(dir, pid, "is neither an exit nor a death by signal");
}

TEST(HostileValues, PipeDataOverThePipesCapacity) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("pipe_data")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "pipe", "capacity", 4096); }));
  expect_refused(dir, pid, "more than the pipe's capacity of 4096");
}

TEST(HostileValues, FdNumberAtIntMax) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "fd", "fd", 2147483647); }));
  expect_refused(dir, pid, "is too high to restore");
}

TEST(HostileValues, ForeignArchAndPageSize) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "stream_header", "arch", 183); }));
  expect_refused(dir, pid, "machine type 183");
  ASSERT_TRUE(
      edited(dir, [](Json& doc) { return set_field(doc, "stream_header", "page_size", 65536); }));
  expect_refused(dir, pid, "page size 65536");
}

TEST(HostileValues, SigactionForAnOutOfRangeSignal) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "sigaction", "signo", 99); }));
  expect_refused(dir, pid, "sigaction for signal 99");
}

// A netlink socket of a protocol crdump never writes, a group the kernel cannot have given,
// a peer without a port id of its own.
TEST(HostileValues, NetlinkSocketOutOfRange) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {"/usr/bin/python3", "-I", "-c", R"py(
import os, signal, socket as S
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
n = S.socket(S.AF_NETLINK, S.SOCK_RAW, S.NETLINK_ROUTE); n.bind((0, 1))
os.close(3)
signal.sigwait([signal.SIGTERM])
)py"});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "netlink_socket", "protocol", 4); }));
  expect_refused(dir, pid, ": protocol 4");
  ASSERT_TRUE(edited(dir, [](Json& doc) {
    return set_field(doc, "netlink_socket", "groups", Json::array({0}));
  }));
  expect_refused(dir, pid, ": group 0");
  ASSERT_TRUE(edited(dir, [](Json& doc) { return set_field(doc, "netlink_socket", "flags", 2); }));
  expect_refused(dir, pid, "with flags 0x2");
}

TEST(HostileValues, CritEncodeRefusesWhatItsReaderRejects) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(crit_to_file(dir, {"decode", "--pages", dir.path("img")}, dir.path("img.json")));
  Json doc = Json::parse(read_file(dir.path("img.json")));
  ASSERT_TRUE(set_field(doc, "fd", "file", 99999));  // an object nothing defines
  write_file(dir.path("bad.json"), doc.dump());
  ToolRun enc = run_tool(dir, "crit", {"encode", "-o", dir.path("bad"), dir.path("bad.json")});
  note("crit encode", enc.err);
  EXPECT_EQ(enc.status.code, 1) << enc.describe();
  EXPECT_NE(enc.err.find("does not read back"), std::string::npos) << enc.err;
  EXPECT_NE(::access(dir.path("bad").c_str(), F_OK), 0) << "a refused encode left its output";
}

// ---- Records moved as a whole (the seal's chain, docs/FORMAT.md section 4)

struct Rec {
  size_t offset, size;
  uint32_t type;
};

std::vector<Rec> records_of(const std::string& img) {
  std::vector<Rec> out;
  const auto* p = reinterpret_cast<const uint8_t*>(img.data());
  for (size_t off = format::kPrefixSize; off + format::kRecordHeaderSize <= img.size();) {
    auto h = format::parse_record_header(p + off);
    out.push_back({off, format::kRecordHeaderSize + h.length, h.type});
    off += format::kRecordHeaderSize + h.length;
  }
  return out;
}

std::string swapped(const std::string& img, const Rec& a, const Rec& b) {
  return img.substr(0, a.offset) + img.substr(b.offset, b.size) +
         img.substr(a.offset + a.size, b.offset - a.offset - a.size) +
         img.substr(a.offset, a.size) + img.substr(b.offset + b.size);
}

// Reads a whole image in process (the reader crit check and crrestore use).
bool reads_whole(const std::string& img) {
  ScopedFd fd(::memfd_create("img", MFD_CLOEXEC));
  if (::write(fd.get(), img.data(), img.size()) != static_cast<ssize_t>(img.size())) return false;
  ::lseek(fd.get(), 0, SEEK_SET);
  auto r = format::RecordReader::open(fd.get());
  if (!r.ok()) return false;
  for (;;) {
    auto more = (*r)->next();
    if (!more.ok()) return false;
    if (!*more) return true;
  }
}

TEST(HostileOrder, EverySwapOfTwoRecordsInARealImageIsRefused) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("counter_loop")});
  ASSERT_GT(pid, 0);
  const std::string img = read_file(dir.path("img"));
  auto recs = records_of(img);
  ASSERT_GT(recs.size(), 4u);
  ASSERT_EQ(recs[recs.size() - 2].type, schema::StreamSeal::kType);
  recs.resize(recs.size() - 2);  // the seal and trailer end the stream
  int pairs = 0, passed = 0;
  std::string sample_pages;  // one swap of two page runs, for the tools below
  for (size_t i = 0; i < recs.size(); ++i)
    for (size_t j = i + 1; j < recs.size(); ++j) {
      std::string bad = swapped(img, recs[i], recs[j]);
      if (bad == img) continue;
      ++pairs;
      if (reads_whole(bad)) {
        ++passed;
        ADD_FAILURE() << "records " << i << " and " << j << " swapped: read as good";
      }
      if (sample_pages.empty() && recs[i].type == schema::Pages::kType &&
          recs[j].type == schema::Pages::kType)
        sample_pages = bad;
    }
  std::cout << "  " << pairs << " swaps of two records, " << passed << " read as good\n";
  EXPECT_GT(pairs, 100);
  ASSERT_FALSE(sample_pages.empty()) << "no two page runs in the image";
  write_file(dir.path("bad"), sample_pages);
  ToolRun c = run_tool(dir, "crit", {"check", dir.path("bad")});
  EXPECT_EQ(c.status.code, 1) << c.describe();
  EXPECT_NE(c.err.find("chain mismatch"), std::string::npos) << c.err;
  expect_refused(dir, pid, "chain mismatch");
}

TEST(HostileOrder, PagesRecordReplacedByACopyOfAnother) {
  if (!ready()) return;
  TempDir dir;
  const pid_t pid = dumped(dir, {zdtm_path("mem_anon"), "4"});
  ASSERT_GT(pid, 0);
  std::string img = read_file(dir.path("img"));
  std::vector<Rec> pages;
  for (const auto& r : records_of(img))
    if (r.type == schema::Pages::kType) pages.push_back(r);
  // Two runs of the same length (the heap's 1 MiB runs): a copy fits without moving anything.
  bool done = false;
  for (size_t i = 0; i < pages.size() && !done; ++i)
    for (size_t j = i + 1; j < pages.size() && !done; ++j)
      if (pages[i].size == pages[j].size &&
          img.compare(pages[i].offset, pages[i].size, img, pages[j].offset, pages[j].size) != 0) {
        img.replace(pages[j].offset, pages[j].size, img, pages[i].offset, pages[i].size);
        done = true;
      }
  ASSERT_TRUE(done) << "no two page runs of one length";
  write_file(dir.path("bad"), img);
  ToolRun c = run_tool(dir, "crit", {"check", dir.path("bad")});
  EXPECT_EQ(c.status.code, 1) << c.describe();
  expect_refused(dir, pid, "chain mismatch");
}

}  // namespace
}  // namespace cr::e2e
