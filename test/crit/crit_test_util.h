// Helpers for the crit tests: a test image with every record type (written with RecordWriter),
// files in a temp dir, and running the built crit binary with its output captured.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/scoped_fd.h"
#include "format/record_writer.h"
#include "format/self_description.h"
#include "format/stream_format.h"
#include "test/common/temp_dir.h"

extern char** environ;

namespace cr::crit::testing {

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_text(const std::string& path) {
  auto b = read_file(path);
  return std::string(b.begin(), b.end());
}

using TempDir = cr::test::TempDir;

/// Made-up record types: one the stream describes (a "newer writer" type), one it does not.
inline constexpr uint32_t kFutureType = 0x7f01;
inline constexpr uint32_t kUndescribedType = 0x7f02;

inline format::StreamType future_type() {
  format::StreamType t;
  t.type_id = kFutureType;
  t.name = "future_thing";
  t.doc = "a record type from a newer writer";
  t.fields = {
      {"count", schema::Kind::u32}, {"label", schema::Kind::str}, {"ref", schema::Kind::objref}};
  return t;
}

struct ImageOptions {
  int zstd_level = 0;
  bool unknown_types = false;  // add a future_thing record and an undescribed one
};

/// Writes a small image holding every record type, with tails and objrefs, to `path`.
/// Deterministic: the same options give the same bytes.
inline void write_test_image(const std::string& path, const ImageOptions& o = {}) {
  using namespace schema;
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  format::WriterOptions wo;
  wo.zstd_level = o.zstd_level;
  if (o.unknown_types) wo.extra_types.push_back(future_type());
  StreamHeader h;
  h.arch = 62;
  h.page_size = 4096;
  h.kernel_release = "6.18.0-test";
  h.tool_version = "0.1.0";
  h.hostname = "testhost";
  h.created_unix_ns = 1'700'000'000'000'000'000ull;
  h.root_pid = 4242;
  auto wr = format::RecordWriter::create(fd.get(), wo, h);
  if (!wr.ok()) std::abort();
  auto& w = **wr;
  auto ok = [](Status s) {
    if (!s.ok()) std::abort();
  };

  Process p;
  p.pid = 4242, p.ppid = 1, p.pgid = 4242, p.sid = 4200, p.nthreads = 1, p.comm = "counter";
  ok(w.write(p));
  Creds c;
  c.pid = 4242, c.uid = 1000, c.euid = 1000, c.gid = 100, c.groups = {100, 27};
  c.cap_eff = 0;
  ok(w.write(c));
  Rlimits rl;
  rl.pid = 4242, rl.limits = {1024, 4096, ~0ull, ~0ull};
  ok(w.write(rl));
  FsInfo fs;
  fs.pid = 4242, fs.cwd = "/home/t\xff\xfe", fs.root = "/";  // not UTF-8: JSON {"hex": ...}
  ok(w.write(fs));
  Mm mm;
  mm.pid = 4242, mm.start_brk = 0x600000, mm.brk = 0x621000, mm.exe_path = "/usr/bin/counter";
  mm.auxv = {6, 4096, 0, 0};
  ok(w.write(mm));

  auto vma = [&](uint64_t start, uint64_t end, uint32_t prot, uint32_t flags, uint32_t kind,
                 std::string path) {
    Vma v;
    v.pid = 4242, v.start = start, v.end = end, v.prot = prot, v.flags = flags, v.kind = kind;
    v.path = std::move(path);
    ok(w.write(v));
  };
  vma(0x400000, 0x401000, PROT_READ | PROT_EXEC, MAP_PRIVATE, kVmaFilePrivate, "/usr/bin/counter");
  vma(0x600000, 0x621000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, kVmaHeap, "[heap]");
  vma(0x7f1200000000, 0x7f1200021000, PROT_READ | PROT_EXEC, MAP_PRIVATE, kVmaFilePrivate,
      "/usr/lib/libfoo.so");
  vma(0x7ffc00000000, 0x7ffc00021000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN,
      kVmaStack, "[stack]");

  std::vector<uint8_t> page(3 * 4096);
  for (size_t i = 0; i < page.size(); ++i) page[i] = static_cast<uint8_t>(i * 7 + 3);
  Pages pg;
  pg.pid = 4242, pg.vaddr = 0x600000, pg.npages = 3;
  ok(w.write(pg, page));
  pg.vaddr = 0x7ffc00020000, pg.npages = 1;
  ok(w.write(pg, std::span<const uint8_t>(page).first(4096)));

  Thread t;
  t.pid = 4242, t.tid = 4242, t.comm = "counter", t.sigmask = 0x4000, t.nice = -5;
  t.regs.assign(27, 0);
  t.regs[16] = 0x401234;        // rip
  t.regs[19] = 0x7ffc00020ff0;  // rsp
  t.xsave.assign(64, 0xab);
  ok(w.write(t));
  Sigaction sa;
  sa.pid = 4242, sa.signo = 10, sa.handler = 0x401100, sa.flags = 0x4000000;
  ok(w.write(sa));
  PendingSignal ps;
  ps.pid = 4242, ps.tid = 0, ps.siginfo.assign(128, 0);
  ps.siginfo[0] = 12;
  ok(w.write(ps));
  Itimer it;
  it.pid = 4242, it.which = 0, it.interval_us = 1000, it.value_us = 500;
  ok(w.write(it));
  PosixTimer pt;
  pt.pid = 4242, pt.timer_id = 1, pt.signo = 14, pt.interval_ns = 1000000;
  ok(w.write(pt));

  Pipe pipe;
  pipe.id = 1, pipe.ino = 777, pipe.capacity = 65536;
  ok(w.write(pipe));
  PipeData pd;
  pd.pipe = 1;
  const std::string queued = "queued bytes";
  ok(w.write(pd, std::span(reinterpret_cast<const uint8_t*>(queued.data()), queued.size())));
  File f;
  f.id = 2, f.kind = kFilePipe, f.flags = O_RDONLY, f.pipe = 1;
  ok(w.write(f));
  f = File{};
  f.id = 3, f.kind = kFilePipe, f.flags = O_WRONLY, f.pipe = 1;
  ok(w.write(f));
  f = File{};
  f.id = 4, f.kind = kFileRegular, f.path = "/var/log/app.log", f.flags = O_WRONLY | O_APPEND;
  f.pos = 12345;
  ok(w.write(f));
  f = File{};
  f.id = 5, f.kind = kFileDeleted, f.path = "/tmp/gone (deleted)", f.flags = O_RDWR;
  ok(w.write(f));
  FileData fdata;
  fdata.file = 5, fdata.offset = 0;
  ok(w.write(fdata, std::span<const uint8_t>(page).first(100)));
  auto fd_rec = [&](uint32_t num, uint32_t file, uint32_t flags) {
    Fd r;
    r.pid = 4242, r.fd = num, r.file = file, r.fd_flags = flags;
    ok(w.write(r));
  };
  fd_rec(0, 2, 0);
  fd_rec(1, 4, 0);
  fd_rec(2, 4, 0);  // dup of fd 1: one shared File
  fd_rec(3, 3, FD_CLOEXEC);
  fd_rec(4, 5, 0);

  if (o.unknown_types) {
    std::vector<uint8_t> fields;
    format::put_le(fields, 7, 4);
    format::put_le(fields, 5, 4);
    fields.insert(fields.end(), {'h', 'e', 'l', 'l', 'o'});
    format::put_le(fields, 4, 4);  // ref -> file #4
    ok(w.write_raw(kFutureType, fields, {}));
    const uint8_t raw[] = {1, 2, 3, 0xfe};
    ok(w.write_raw(kUndescribedType, raw, {}));
  }
  ok(w.finish());
}

/// Decompresses a zstd stream (what `zstd -dc` gives).
inline std::vector<uint8_t> unzstd(const std::vector<uint8_t>& in) {
  std::vector<uint8_t> out;
  ZSTD_DStream* d = ZSTD_createDStream();
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  std::vector<uint8_t> buf(ZSTD_DStreamOutSize());
  while (ib.pos < ib.size) {
    ZSTD_outBuffer ob{buf.data(), buf.size(), 0};
    if (ZSTD_isError(ZSTD_decompressStream(d, &ob, &ib))) break;
    out.insert(out.end(), buf.data(), buf.data() + ob.pos);
  }
  ZSTD_freeDStream(d);
  return out;
}

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  std::string out, err;
};

/// Runs the built crit with `args`, stdin from `stdin_path` (or /dev/null), stdout and
/// stderr captured through files in `dir`.
inline RunResult run_crit(const TempDir& dir, std::vector<std::string> args,
                          const std::string& stdin_path = "/dev/null",
                          const std::string& stdout_path = "") {
  const std::string out = stdout_path.empty() ? dir / "stdout" : stdout_path;
  const std::string err = dir / "stderr";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const std::string bin = CR_BIN_DIR "/crit";
  args.insert(args.begin(), bin);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  RunResult r;
  pid_t pid = -1;
  if (posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0) {
    r.err = "spawn failed";
    posix_spawn_file_actions_destroy(&fa);
    return r;
  }
  posix_spawn_file_actions_destroy(&fa);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  if (stdout_path.empty()) r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

/// Number of lines in `s` ("a\n" is one, "a\nb" two).
inline size_t line_count(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n + (!s.empty() && s.back() != '\n');
}

}  // namespace cr::crit::testing
