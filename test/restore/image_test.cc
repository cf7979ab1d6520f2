#include "restore/image.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>

#include "common/scoped_fd.h"
#include "format/record_writer.h"

namespace cr::restore {
namespace {

// Builds a stream in a memfd with the real writer, then reads it back with the real reader.
class Stream {
 public:
  Stream() : fd_(::memfd_create("image_test", MFD_CLOEXEC)) {
    schema::StreamHeader h{};
    h.arch = 62;
    h.page_size = 4096;
    h.root_pid = 4242;
    auto w = format::RecordWriter::create(fd_.get(), {}, h);
    EXPECT_TRUE(w.ok());
    writer_ = std::move(w).value();
  }
  template <class R>
  void add(const R& r) {
    ASSERT_TRUE(writer_->write(r).ok());
  }
  template <class R>
  void add(const R& r, std::span<const uint8_t> tail) {
    ASSERT_TRUE(writer_->write(r, tail).ok());
  }
  std::unique_ptr<format::RecordReader> finish() {
    EXPECT_TRUE(writer_->finish().ok());
    ::lseek(fd_.get(), 0, SEEK_SET);
    auto r = format::RecordReader::open(fd_.get());
    EXPECT_TRUE(r.ok()) << r.error().message;
    return std::move(r).value();
  }

 private:
  ScopedFd fd_;
  std::unique_ptr<format::RecordWriter> writer_;
};

schema::Vma anon(uint64_t start, uint64_t end) {
  schema::Vma v{};
  v.pid = 4242;
  v.start = start;
  v.end = end;
  v.prot = PROT_READ | PROT_WRITE;
  v.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  v.kind = schema::kVmaAnon;
  return v;
}

void add_process(Stream& s) {
  schema::Process p{};
  p.pid = 4242;
  p.comm = "victim";
  s.add(p);
}

void add_mm(Stream& s) {
  schema::Mm mm{};
  mm.pid = 4242;
  s.add(mm);
}

void add_basics(Stream& s) {
  add_process(s);
  add_mm(s);
}

struct TempFile {
  std::string path;
  TempFile() {
    char tmpl[] = "/tmp/crrestore_image_test_XXXXXX";
    int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, "hello", 5), 5);
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { ::unlink(path.c_str()); }
  struct stat stat() const {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st;
  }
};

TEST(Image, StashesHeadAndStopsAtPages) {
  Stream s;
  add_process(s);
  schema::Pipe pipe{};
  pipe.id = 1;
  pipe.capacity = 65536;
  s.add(pipe);
  schema::PipeData pd{};
  pd.pipe = 1;
  const uint8_t bytes[] = {'a', 'b', 'c'};
  s.add(pd, bytes);
  schema::File f{};
  f.id = 2;
  f.kind = schema::kFilePipe;
  f.pipe = 1;
  f.flags = O_RDONLY;
  s.add(f);
  schema::Fd fd{};
  fd.pid = 4242;
  fd.fd = 0;
  fd.file = 2;
  s.add(fd);
  add_mm(s);  // the memory section starts after every process's files
  s.add(anon(0x10000, 0x20000));
  schema::Pages pg{};
  pg.pid = 4242;
  pg.vaddr = 0x10000;
  pg.npages = 1;
  std::vector<uint8_t> page(4096, 7);
  s.add(pg, page);
  schema::Thread t{};
  t.pid = t.tid = 4242;
  s.add(t);
  auto reader = s.finish();

  ProcessImage img;
  auto r = load_head(*reader, img);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(reader->type(), schema::Pages::kType);
  ASSERT_TRUE(check_head(img).ok()) << check_head(img).error().message;
  EXPECT_EQ(img.process->comm, "victim");
  ASSERT_EQ(img.pipes.size(), 1u);
  EXPECT_EQ(img.pipes[1].data, std::vector<uint8_t>(bytes, bytes + 3));
  EXPECT_EQ(img.fds.size(), 1u);
  EXPECT_EQ(img.vmas.size(), 1u);
  // The tail records after the pages.
  ASSERT_TRUE(reader->next().value());
  ASSERT_TRUE(stash_tail_record(*reader, img).ok());
  EXPECT_EQ(img.threads.size(), 1u);
  EXPECT_FALSE(reader->next().value());
}

// Unix sockets and their queued messages are stashed by id, in order; a socket File must name
// a UnixSocket, and data must name one.
TEST(Image, UnixSocketsAndTheirQueues) {
  Stream s;
  add_process(s);
  schema::UnixSocket u{};
  u.id = 1;
  u.ino = 77;
  u.type = SOCK_DGRAM;
  u.state = schema::kUnixUnconnected;
  u.name = {'d', '.', 's'};
  s.add(u);
  schema::UnixSocketData d{};
  d.socket = 1;
  const uint8_t m1[] = {'a'}, m2[] = {'b', 'c'};
  s.add(d, m1);
  s.add(d, m2);
  schema::File f{};
  f.id = 2;
  f.kind = schema::kFileUnixSocket;
  f.object = 1;
  f.flags = O_RDWR;
  s.add(f);
  schema::Fd fd{};
  fd.pid = 4242;
  fd.fd = 5;
  fd.file = 2;
  s.add(fd);
  add_mm(s);
  auto reader = s.finish();
  ProcessImage img;
  auto r = load_head(*reader, img);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(check_files(img).ok()) << check_files(img).error().message;
  ASSERT_EQ(img.unix_sockets.size(), 1u);
  EXPECT_EQ(img.unix_sockets[1].sock.ino, 77u);
  ASSERT_EQ(img.unix_sockets[1].queue.size(), 2u);
  EXPECT_EQ(img.unix_sockets[1].queue[1], std::vector<uint8_t>(m2, m2 + 2));
  EXPECT_EQ(img.stashed_bytes, 3u);
  // The File pointing elsewhere is refused.
  img.files[2].object = 9;
  auto st = check_files(img);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("names object 9, not a unix socket"), std::string::npos)
      << st.error().message;
}

// A process, then unix socket 1 (its peer gone) with one queued message.
void add_unix_with_a_message(Stream& s, uint32_t type) {
  add_process(s);
  schema::UnixSocket u{};
  u.id = 1;
  u.ino = 77;
  u.type = type;
  u.state = schema::kUnixPeerGone;
  s.add(u);
  schema::UnixSocketData d{};
  d.socket = 1;
  const uint8_t m[] = {'x'};
  s.add(d, m);
}

// Fds in flight: kept per message for a message the socket has and Files of the image; a
// message it does not have, or a File it does not have, is refused.
TEST(Image, UnixSocketRightsNameAMessageAndFiles) {
  for (int c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    Stream s;
    add_unix_with_a_message(s, SOCK_STREAM);
    schema::File f{};
    f.id = 2;
    f.kind = schema::kFileUnixSocket;
    f.object = 1;
    f.flags = O_RDWR;
    s.add(f);
    schema::UnixSocketRights r{};
    r.socket = 1;
    r.message = c == 1 ? 1 : 0;    // 1: past the one message
    r.files = {c == 2 ? 9u : 2u};  // 9: no such File
    s.add(r);
    add_mm(s);
    auto reader = s.finish();
    ProcessImage img;
    auto st = load_head(*reader, img);
    if (c == 0) {
      ASSERT_TRUE(st.ok()) << st.error().message;
      ASSERT_EQ(img.unix_sockets[1].rights.count(0), 1u);
      EXPECT_EQ(img.unix_sockets[1].rights[0], std::vector<uint32_t>{2});
      continue;
    }
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find(c == 1 ? "names no queued message" : "file 9 is not a file"),
              std::string::npos)
        << st.error().message;
  }
}

// Credentials in flight: kept per message the socket has, once each, with a pid; a message it
// does not have, a second record for one message or a pid of 0 is refused.
TEST(Image, UnixSocketCredsNameAMessageOnce) {
  for (int c = 0; c < 4; ++c) {
    SCOPED_TRACE(c);
    Stream s;
    add_unix_with_a_message(s, SOCK_DGRAM);
    schema::UnixSocketCreds r{1, c == 1 ? 1u : 0u, c == 3 ? 0u : 4242u, 1000, 1000};
    s.add(r);
    if (c == 2) s.add(r);
    add_mm(s);
    auto reader = s.finish();
    ProcessImage img;
    auto st = load_head(*reader, img);
    if (c == 0) {
      ASSERT_TRUE(st.ok()) << st.error().message;
      ASSERT_EQ(img.unix_sockets[1].creds.count(0), 1u);
      EXPECT_EQ(img.unix_sockets[1].creds[0].pid, 4242u);
      continue;
    }
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("unix_socket_creds names no queued message"),
              std::string::npos)
        << st.error().message;
  }
}

TEST(Image, UnixSocketDataNamingNoSocketIsRefused) {
  Stream s;
  add_process(s);
  schema::Pipe pipe{};
  pipe.id = 1;
  s.add(pipe);
  schema::UnixSocketData d{};
  d.socket = 1;  // a pipe, not a socket
  const uint8_t m[] = {'x'};
  s.add(d, m);
  add_mm(s);
  auto reader = s.finish();
  ProcessImage img;
  auto r = load_head(*reader, img);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unix_socket_data names object 1"), std::string::npos)
      << r.error().message;
}

TEST(Image, MissingProcessOrDanglingFdIsRefused) {
  ProcessImage img;
  EXPECT_FALSE(check_head(img).ok());
  img.process.emplace();
  img.process->pid = 5;
  img.mm = schema::Mm{};
  img.vmas.push_back(anon(0x1000, 0x2000));
  EXPECT_TRUE(check_head(img).ok());
  schema::Fd fd{};
  fd.fd = 3;
  fd.file = 9;
  img.fds.push_back(fd);
  auto st = check_head(img);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("file 9"), std::string::npos);
}

TEST(Image, PtyFilesMustNameAPty) {
  ProcessImage img;
  schema::File master{};
  master.id = 2;
  master.kind = schema::kFilePtyMaster;
  master.object = 1;
  img.files[2] = master;
  schema::Fd fd{};
  fd.fd = 4;
  fd.file = 2;
  img.fds.push_back(fd);
  auto st = check_files(img);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("names pty 1"), std::string::npos) << st.error().message;
  schema::Pty pty{};
  pty.id = 1;
  pty.index = 3;
  img.ptys[1] = pty;
  EXPECT_TRUE(check_files(img).ok());
  img.files[2].kind = 99;
  EXPECT_FALSE(check_files(img).ok());
}

// EpollItems must name an epoll File and a target File that Fds name (both are opened).
TEST(Image, EpollItemsNameOpenFiles) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 5;
  img.mm = schema::Mm{};
  img.vmas.push_back(anon(0x1000, 0x2000));
  schema::File ep{}, ev{}, other{};
  ep.id = 1;
  ep.kind = schema::kFileEpoll;
  ev.id = 2;
  ev.kind = schema::kFileEventfd;
  other.id = 3;
  other.kind = schema::kFileEventfd;
  img.files = {{1, ep}, {2, ev}, {3, other}};
  for (uint32_t file : {1u, 2u}) {
    schema::Fd fd{};
    fd.pid = 5;
    fd.fd = 3 + file;
    fd.file = file;
    img.fds.push_back(fd);
  }
  schema::EpollItem item{};
  item.epoll = 1;
  item.target = 2;
  item.tfd = 17;  // a number no Fd holds now: allowed, the watch keeps it
  item.events = 0x19;
  img.epoll_items = {item};
  EXPECT_TRUE(check_head(img).ok()) << check_head(img).error().message;

  auto refused = [&](schema::EpollItem bad, const char* want) {
    img.epoll_items = {bad};
    auto st = check_head(img);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
  };
  schema::EpollItem not_epoll = item;
  not_epoll.epoll = 2;  // an eventfd
  refused(not_epoll, "not an epoll file");
  schema::EpollItem unopened = item;
  unopened.target = 3;  // no Fd names it: crrestore would not open it
  refused(unopened, "not an open file");
  schema::EpollItem itself = item;
  itself.target = 1;
  refused(itself, "not an open file");
  schema::EpollItem missing = item;
  missing.epoll = 9;
  refused(missing, "not an epoll file");
}

// InotifyWatches must name an inotify File, with a wd restore can make and a mask and handle
// the kernel could have shown.
TEST(Image, InotifyWatchesAreChecked) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 5;
  img.mm = schema::Mm{};
  img.vmas.push_back(anon(0x1000, 0x2000));
  schema::File in{}, ev{};
  in.id = 1;
  in.kind = schema::kFileInotify;
  ev.id = 2;
  ev.kind = schema::kFileEventfd;
  img.files = {{1, in}, {2, ev}};
  schema::InotifyWatch w{};
  w.file = 1;
  w.wd = 3;
  w.mask = 0x4000002;  // IN_MODIFY | IN_EXCL_UNLINK
  w.handle = {1, 2, 3, 4, 5, 6, 7, 8};
  w.path = "/tmp/x";
  img.inotify_watches = {w};
  EXPECT_TRUE(check_head(img).ok()) << check_head(img).error().message;

  auto refused = [&](std::vector<schema::InotifyWatch> bad, const char* want) {
    img.inotify_watches = std::move(bad);
    auto st = check_head(img);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
  };
  schema::InotifyWatch b = w;
  b.file = 2;
  refused({b}, "not an inotify");
  b = w;
  b.wd = 0;
  refused({b}, "out of range");
  b.wd = schema::kMaxInotifyWd + 1;  // restore would add and remove watches that many times
  refused({b}, "out of range");
  refused({w, w}, "twice");
  b = w;
  b.mask = 0x04000000;  // no event
  refused({b}, "bad mask");
  b.mask = 0x01000002;  // IN_ONLYDIR is not kept by a watch
  refused({b}, "bad mask");
  b = w;
  b.handle.assign(129, 0);
  refused({b}, "bad file handle");
}

// A fanotify File needs its group; groups and marks must name a fanotify File, with flags,
// masks and targets the kernel could have shown (no permission class or events).
TEST(Image, FanotifyRecordsAreChecked) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 5;
  img.mm = schema::Mm{};
  img.vmas.push_back(anon(0x1000, 0x2000));
  schema::File fan{}, ev{};
  fan.id = 1;
  fan.kind = schema::kFileFanotify;
  ev.id = 2;
  ev.kind = schema::kFileEventfd;
  img.files = {{1, fan}, {2, ev}};
  schema::FanotifyGroup g{};
  g.file = 1;
  g.flags = 0x203;  // FAN_REPORT_FID | FAN_NONBLOCK | FAN_CLOEXEC
  schema::FanotifyMark m{};
  m.file = 1;
  m.type = schema::kFanMarkInode;
  m.mask = 0x2;  // FAN_MODIFY
  m.handle = {1, 2, 3, 4, 5, 6, 7, 8};
  m.path = "/tmp/x";
  auto check = [&](std::map<uint32_t, schema::FanotifyGroup> gs,
                   std::vector<schema::FanotifyMark> ms) {
    img.fanotify_groups = std::move(gs);
    img.fanotify_marks = std::move(ms);
    return check_head(img);
  };
  auto refused = [&](std::map<uint32_t, schema::FanotifyGroup> gs,
                     std::vector<schema::FanotifyMark> ms, const char* want) {
    auto st = check(std::move(gs), std::move(ms));
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
  };
  auto ok = check({{1, g}}, {m});
  EXPECT_TRUE(ok.ok()) << ok.error().message;
  refused({}, {}, "has no fanotify_group");
  schema::FanotifyGroup bg = g;
  bg.file = 2;
  refused({{1, g}, {2, bg}}, {m}, "not a fanotify");
  bg = g;
  bg.flags = 0x4;  // FAN_CLASS_CONTENT: permission events
  refused({{1, bg}}, {m}, "bad flags");
  schema::FanotifyMark b = m;
  b.file = 2;
  refused({{1, g}}, {b}, "not a fanotify");
  b = m;
  b.type = 4;
  refused({{1, g}}, {b}, "unknown type");
  b = m;
  b.mask = 0x10000;  // FAN_OPEN_PERM
  refused({{1, g}}, {b}, "bad flags or masks");
  b.mask = 0;  // neither mask nor ignored mask
  refused({{1, g}}, {b}, "bad flags or masks");
  b = m;
  b.handle.clear();
  refused({{1, g}}, {b}, "bad file handle");
  b = m;
  b.type = schema::kFanMarkMount;  // a mount mark without its root
  refused({{1, g}}, {b}, "bad file handle, path or root");
}

TEST(Image, OverlappingVmasAreRefused) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 5;
  img.mm = schema::Mm{};
  img.vmas = {anon(0x1000, 0x3000), anon(0x2000, 0x4000)};
  EXPECT_FALSE(check_head(img).ok());
}

// An image whose File 1 is `tf` open for writing at its end, as it is now.
ProcessImage image_holding(const TempFile& tf) {
  const struct stat st = tf.stat();
  ProcessImage img;
  img.process.emplace();
  img.mm = schema::Mm{};
  schema::File f{};
  f.id = 1;
  f.kind = schema::kFileRegular;
  f.path = tf.path;
  f.pos = static_cast<uint64_t>(st.st_size);
  f.flags = O_WRONLY;
  f.size = static_cast<uint64_t>(st.st_size);
  f.mtime_ns = mtime_ns(st);
  img.files[1] = f;
  return img;
}

TEST(Image, ChangedFileIsRefused) {
  TempFile tf;
  ProcessImage img = image_holding(tf);
  ASSERT_TRUE(verify_on_disk(img).ok()) << verify_on_disk(img).error().message;
  // Rewritten with the same size (only the mtime tells): refused.
  timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, tf.path.c_str(), times, 0), 0);
  auto same_size = verify_on_disk(img);
  ASSERT_FALSE(same_size.ok());
  EXPECT_NE(same_size.error().message.find("mtime differs"), std::string::npos);
  // Grow it: size differs.
  int fd = ::open(tf.path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_EQ(::write(fd, "!", 1), 1);
  ::close(fd);
  auto r = verify_on_disk(img);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("file changed since dump"), std::string::npos)
      << r.error().message;
}

// --allow-changed-files: the refusal names the option; with it, an fd's file that grew is a
// warning naming the file and what changed, a mapped file is still refused.
TEST(Image, AllowChangedFilesRelaxesFdsOnly) {
  TempFile tf;
  const auto st = tf.stat();
  ProcessImage img = image_holding(tf);
  const schema::File& f = img.files[1];
  int fd = ::open(tf.path.c_str(), O_WRONLY | O_APPEND);
  ASSERT_EQ(::write(fd, "grown", 5), 5);
  ::close(fd);
  auto refused = verify_on_disk(img);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--allow-changed-files"), std::string::npos)
      << refused.error().message;
  std::vector<std::string> warnings;
  auto allowed = verify_on_disk(img, &warnings);
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(tf.path), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("size " + std::to_string(st.st_size) + " -> " +
                             std::to_string(st.st_size + 5)),
            std::string::npos)
      << warnings[0];
  // The same file mapped: refused with or without the option.
  schema::Vma v = anon(0x1000, 0x2000);
  v.kind = schema::kVmaFilePrivate;
  v.path = tf.path;
  v.file_size = f.size;
  v.file_mtime_ns = f.mtime_ns;
  img.vmas.push_back(v);
  warnings.clear();
  auto mapped = verify_on_disk(img, &warnings);
  ASSERT_FALSE(mapped.ok());
  EXPECT_NE(mapped.error().message.find("mapped file " + tf.path), std::string::npos)
      << mapped.error().message;
}

TEST(Image, ChangedMappedFileIsRefusedNamingThePath) {
  TempFile tf;
  auto st = tf.stat();
  ProcessImage img;
  img.process.emplace();
  img.mm = schema::Mm{};
  schema::Vma v = anon(0x1000, 0x2000);
  v.kind = schema::kVmaFilePrivate;
  v.path = tf.path;
  v.file_size = static_cast<uint64_t>(st.st_size);
  v.file_mtime_ns = mtime_ns(st) + 1;  // a different mtime
  img.vmas.push_back(v);
  auto r = verify_on_disk(img);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(tf.path), std::string::npos);
  img.vmas[0].file_mtime_ns = mtime_ns(st);
  EXPECT_TRUE(verify_on_disk(img).ok());
}

TEST(Image, PagesMustLieInsideVmas) {
  std::vector<schema::Vma> vmas{anon(0x10000, 0x20000), anon(0x20000, 0x30000),
                                anon(0x40000, 0x50000)};
  EXPECT_TRUE(check_pages(vmas, 0x10000, 0x1000).ok());
  // Across two adjacent VMAs.
  auto r = check_pages(vmas, 0x1f000, 0x2000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(check_pages(vmas, 0x40000, 0x1000, 1).value(), 2u);
  // Outside, partly outside, across a hole.
  EXPECT_FALSE(check_pages(vmas, 0x30000, 0x1000).ok());
  EXPECT_FALSE(check_pages(vmas, 0x2f000, 0x2000).ok());
  EXPECT_FALSE(check_pages(vmas, 0x8000, 0x1000).ok());
  EXPECT_FALSE(check_pages(vmas, 0x50000, 0x1000).ok());
  // Shared file mappings never take pages.
  vmas[2].kind = schema::kVmaFileShared;
  vmas[2].path = "/x";
  EXPECT_FALSE(check_pages(vmas, 0x40000, 0x1000).ok());
}

TEST(Image, PagesOutsideVmasRefusedFromAStream) {
  Stream s;
  add_basics(s);
  s.add(anon(0x10000, 0x20000));
  schema::Pages pg{};
  pg.pid = 4242;
  pg.vaddr = 0x30000;
  pg.npages = 1;
  std::vector<uint8_t> page(4096, 1);
  s.add(pg, page);
  auto reader = s.finish();
  ProcessImage img;
  ASSERT_TRUE(load_head(*reader, img).value());
  auto p = reader->decode<schema::Pages>();
  ASSERT_TRUE(p.ok());
  auto r = check_pages(img.vmas, p->vaddr, uint64_t{p->npages} * 4096);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outside every dumped vma"), std::string::npos);
}

}  // namespace
}  // namespace cr::restore

namespace cr::restore {
namespace {

ProcessImage threaded_image(std::vector<uint32_t> tids, uint32_t nthreads) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 500;
  img.process->nthreads = nthreads;
  for (uint32_t tid : tids) {
    schema::Thread t;
    t.pid = 500;
    t.tid = tid;
    img.threads.push_back(t);
  }
  return img;
}

TEST(Image, ThreadRecordsAreChecked) {
  EXPECT_TRUE(check_threads(threaded_image({500, 501, 502}, 3)).ok());
  auto msg = [](const ProcessImage& img) {
    Status st = check_threads(img);
    return st.ok() ? std::string("ok") : st.error().message;
  };
  EXPECT_NE(msg(threaded_image({}, 0)).find("no thread record"), std::string::npos);
  EXPECT_NE(msg(threaded_image({500, 501}, 3)).find("its process record says 3"),
            std::string::npos);
  EXPECT_NE(msg(threaded_image({501, 500}, 2)).find("not the main thread 500"), std::string::npos);
  EXPECT_NE(msg(threaded_image({500, 501, 501}, 3)).find("two thread records for tid 501"),
            std::string::npos);
  ProcessImage other = threaded_image({500, 501}, 2);
  other.threads[1].pid = 77;
  EXPECT_NE(msg(other).find("does not belong to pid 500"), std::string::npos);
  ProcessImage stray = threaded_image({500, 501}, 2);
  schema::PendingSignal ps;
  ps.pid = 500;
  ps.tid = 999;
  stray.pending.push_back(ps);
  EXPECT_NE(msg(stray).find("pending signal for tid 999"), std::string::npos);
  ps.tid = 501;
  stray.pending.back() = ps;
  EXPECT_TRUE(check_threads(stray).ok());
}

}  // namespace
}  // namespace cr::restore

namespace cr::restore {
namespace {

// The tree's shared part (files only, no process, no memory map) is verified on its own.
TEST(Image, VerifyingSharedFilesNeedsNoMemoryMap) {
  ProcessImage shared;
  schema::File f{};
  f.id = 1;
  f.kind = schema::kFileDevice;
  f.path = "/dev/null";
  shared.files[1] = f;
  Status st = verify_on_disk(shared);
  EXPECT_TRUE(st.ok()) << st.error().message;
}

// Locks and protection keys are announced by their process's flags (an older build refuses
// them); a lock or key without the flag, lock-on-fault without a lock, unknown mapping bits,
// keys beyond 15 and mlockall flags other than MCL_FUTURE[|MCL_ONFAULT] are refused.
TEST(Image, MemoryLocksAndProtectionKeysAreChecked) {
  ProcessImage img;
  img.process.emplace();
  img.process->pid = 4242;
  img.mm = schema::Mm{};
  img.attrs = schema::ProcAttrs{};
  img.vmas.push_back(anon(0x1000, 0x2000));
  img.vmas.push_back(anon(0x2000, 0x3000));
  EXPECT_TRUE(check_memory(img).ok());
  img.vmas[0].madv = schema::kMadvLocked;
  EXPECT_FALSE(check_memory(img).ok());  // not flagged
  img.process->flags = schema::kProcessMemLock;
  EXPECT_TRUE(check_memory(img).ok());
  img.vmas[1].madv = schema::kMadvLockOnFault;
  EXPECT_FALSE(check_memory(img).ok());  // on fault, but not locked
  img.vmas[1].madv = schema::kMadvLocked | schema::kMadvLockOnFault;
  EXPECT_TRUE(check_memory(img).ok());
  img.vmas[1].madv |= 0x100;
  auto unknown = check_memory(img);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown to this build"), std::string::npos);
  img.vmas[1].madv = 0;
  img.attrs->mlockall = MCL_FUTURE | MCL_ONFAULT;
  EXPECT_TRUE(check_memory(img).ok());
  img.attrs->mlockall = MCL_CURRENT | MCL_FUTURE;
  EXPECT_FALSE(check_memory(img).ok());
  img.attrs->mlockall = MCL_FUTURE;
  img.vmas[0].madv = 0;
  img.process->flags = 0;
  EXPECT_FALSE(check_memory(img).ok());  // MCL_FUTURE not flagged
  img.attrs->mlockall = 0;
  img.vmas[0].pkey = 3;
  EXPECT_FALSE(check_memory(img).ok());  // a key not flagged
  img.process->flags = schema::kProcessPkeys;
  EXPECT_TRUE(check_memory(img).ok());  // a key freed while on a mapping
  img.attrs->pkeys = 0x000a;
  EXPECT_TRUE(check_memory(img).ok());
  img.vmas[0].pkey = 16;
  EXPECT_FALSE(check_memory(img).ok());
  img.vmas[0].pkey = 0;
  img.attrs->pkeys = 1;  // key 0 is never listed
  EXPECT_FALSE(check_memory(img).ok());
  img.attrs->pkeys = 0x10000;
  EXPECT_FALSE(check_memory(img).ok());
}

// Process flags this build does not know stand for state it would not restore: refused.
TEST(Image, UnknownProcessFlagsAreRefused) {
  TreeHead head;
  head.procs.emplace_back();
  head.procs.back().process = schema::Process{};
  head.procs.back().process->pid = 4242;
  head.procs.back().process->flags = schema::kProcessOwnIpcNs;
  EXPECT_TRUE(check_tree_head(head).ok());
  head.procs.back().process->flags |= 0x200;  // a bit no build uses yet
  auto st = check_tree_head(head);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("unknown to this build"), std::string::npos)
      << st.error().message;
}

// A time or cgroup namespace of the root's own: its record and the root's flag go together,
// offsets the kernel would take, cgroup namespace roots that are Cgroups, one per hierarchy.
TEST(Image, TimeAndCgroupNamespaceRecordsAreChecked) {
  auto load = [](uint32_t flags, auto&& more) {
    Stream s;
    schema::Process p{};
    p.pid = 4242;
    p.flags = flags;
    s.add(p);
    more(s);
    add_mm(s);
    auto reader = s.finish();
    TreeHead head;
    auto more_records = load_tree_head(*reader, head);
    if (!more_records.ok()) return Status(more_records.error());
    return check_tree_head(head);
  };
  const schema::TimeNs offsets{86400, 5, -3, 999999999};
  Status st = load(schema::kProcessOwnTimeNs, [&](Stream& s) { s.add(offsets); });
  EXPECT_TRUE(st.ok()) << st.error().message;
  st = load(0, [&](Stream& s) { s.add(offsets); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("kProcessOwnTimeNs flag disagree"), std::string::npos);
  st = load(schema::kProcessOwnTimeNs, [](Stream&) {});
  EXPECT_FALSE(st.ok());
  st = load(schema::kProcessOwnTimeNs, [](Stream& s) {
    s.add(schema::TimeNs{0, 1000000000, 0, 0});
  });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("not below one second"), std::string::npos);

  auto cgroups = [](Stream& s) {
    s.add(schema::Cgroup{7, "", "/box"});
    s.add(schema::Cgroup{8, "memory", "/"});
    s.add(schema::CgroupMember{4242, 4242, {7, 8}});
  };
  st = load(schema::kProcessOwnCgroupNs, [&](Stream& s) {
    cgroups(s);
    s.add(schema::CgroupNs{{7, 8}});
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
  st = load(schema::kProcessOwnCgroupNs, [&](Stream& s) { cgroups(s); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("kProcessOwnCgroupNs flag disagree"), std::string::npos);
  st = load(schema::kProcessOwnCgroupNs, [&](Stream& s) {
    cgroups(s);
    s.add(schema::CgroupNs{{7, 9}});
  });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("is not a cgroup"), std::string::npos) << st.error().message;
  st = load(schema::kProcessOwnCgroupNs, [&](Stream& s) {
    cgroups(s);
    s.add(schema::Cgroup{9, "", "/other"});
    s.add(schema::CgroupNs{{7, 9}});
  });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("two roots in hierarchy"), std::string::npos)
      << st.error().message;
}

// Shared memory in the head: images written before memfd support have the Shmem objects after
// every Fd, newer ones before the files (a memfd File names its Shmem). Both are read.
struct ShmemSeen {
  std::vector<uint32_t> ids;
  uint64_t data_bytes = 0;
};

Result<bool> load_with_shmem(format::RecordReader& reader, TreeHead& head, ShmemSeen& seen) {
  head.on_shmem = [&seen](const schema::Shmem& s) {
    seen.ids.push_back(s.id);
    return Status{};
  };
  head.on_shmem_data = [&seen](const schema::ShmemData&, std::span<const uint8_t> b) {
    seen.data_bytes += b.size();
    return Status{};
  };
  return load_tree_head(reader, head);
}

schema::Shmem memfd_shmem(uint32_t id, uint64_t file_size) {
  schema::Shmem m{};
  m.id = id;
  m.kind = schema::kShmemMemfd;
  m.name = "buf";
  m.file_size = file_size;
  m.size = (file_size + 4095) & ~uint64_t{4095};
  m.seals = 0x6;
  return m;
}

TEST(Image, ShmemAfterTheFdsAsOlderImagesHaveIt) {
  Stream s;
  add_process(s);
  schema::File f{};
  f.id = 1;
  f.kind = schema::kFileDevice;
  f.path = "/dev/null";
  s.add(f);
  schema::Fd fd{};
  fd.pid = 4242;
  fd.file = 1;
  s.add(fd);
  schema::Shmem anon_shm{};
  anon_shm.id = 2;
  anon_shm.size = 4096;
  s.add(anon_shm);
  std::vector<uint8_t> page(4096, 9);
  s.add(schema::ShmemData{2, 0}, page);
  add_mm(s);
  auto reader = s.finish();
  TreeHead head;
  ShmemSeen seen;
  auto r = load_with_shmem(*reader, head, seen);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_EQ(seen.ids, std::vector<uint32_t>{2});
  EXPECT_EQ(seen.data_bytes, 4096u);
  EXPECT_TRUE(head.shared.memfds.empty());
  EXPECT_TRUE(check_tree_head(head).ok());
}

TEST(Image, MemfdShmemBeforeTheFileThatNamesIt) {
  Stream s;
  add_process(s);
  s.add(memfd_shmem(1, 5000));
  std::vector<uint8_t> pages(8192, 3);
  s.add(schema::ShmemData{1, 0}, pages);
  schema::File f{};
  f.id = 2;
  f.kind = schema::kFileMemfd;
  f.flags = O_RDWR;
  f.pos = 100;
  f.object = 1;
  s.add(f);
  schema::Fd fd{};
  fd.pid = 4242;
  fd.fd = 5;
  fd.file = 2;
  s.add(fd);
  add_mm(s);
  auto reader = s.finish();
  TreeHead head;
  ShmemSeen seen;
  auto r = load_with_shmem(*reader, head, seen);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(seen.ids, std::vector<uint32_t>{1});
  EXPECT_EQ(seen.data_bytes, 8192u);
  EXPECT_EQ(head.shared.memfds.count(1), 1u);
  auto c = check_tree_head(head);
  EXPECT_TRUE(c.ok()) << c.error().message;
}

TEST(Image, MemfdFileNamingNoMemfdIsRefused) {
  for (uint32_t object : {0u, 1u}) {  // nothing; an anonymous Shmem
    Stream s;
    add_process(s);
    schema::Shmem anon_shm{};
    anon_shm.id = 1;
    anon_shm.size = 4096;
    s.add(anon_shm);
    schema::File f{};
    f.id = 2;
    f.kind = schema::kFileMemfd;
    f.object = object;
    s.add(f);
    schema::Fd fd{};
    fd.pid = 4242;
    fd.file = 2;
    s.add(fd);
    add_mm(s);
    auto reader = s.finish();
    TreeHead head;
    ASSERT_TRUE(load_tree_head(*reader, head).ok());
    auto c = check_tree_head(head);
    ASSERT_FALSE(c.ok()) << "object " << object;
    EXPECT_NE(c.error().message.find("not a memfd"), std::string::npos) << c.error().message;
  }
}

schema::SeccompFilter filter(uint32_t id, uint32_t prev, size_t insns) {
  schema::SeccompFilter f{};
  f.id = id;
  f.prev = prev;
  f.program.assign(insns * 8, 0x06);  // BPF_RET | BPF_K
  return f;
}

// A chain of two filters and the threads naming it, read into the shared and per-process
// images.
TEST(Image, SeccompFiltersAndThreads) {
  Stream s;
  add_process(s);
  s.add(filter(1, 0, 4));
  s.add(filter(2, 1, 1));
  s.add(schema::SeccompThread{4242, 4242, 2, 2});
  s.add(schema::SeccompThread{4242, 4243, 1, 0});
  add_mm(s);
  auto reader = s.finish();
  TreeHead head;
  auto r = load_tree_head(*reader, head);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(head.shared.seccomp_filters.size(), 2u);
  EXPECT_EQ(head.shared.seccomp_filters.at(2).prev, 1u);
  ASSERT_EQ(head.procs.front().seccomp.size(), 2u);
  EXPECT_EQ(head.procs.front().seccomp[0].filter, 2u);
}

TEST(Image, MalformedSeccompIsRefused) {
  struct Bad {
    std::vector<schema::SeccompFilter> filters;
    std::vector<schema::SeccompThread> threads;
    std::string want;
  };
  schema::File f{};
  f.id = 9;
  f.kind = schema::kFileDevice;
  f.path = "/dev/null";
  std::vector<Bad> bad = {
      {{filter(1, 0, 0)}, {}, "program of 0 bytes"},
      {{filter(1, 0, 4097)}, {}, "program of 32776 bytes"},
      {{filter(1, 9, 1)}, {}, "is not a seccomp filter"},  // a File's id
      {{filter(1, 0, 1)}, {{4242, 4242, 2, 9}}, "mode 2 with filter 9"},
      {{filter(1, 0, 1)}, {{4242, 4242, 1, 1}}, "mode 1 with filter 1"},
      {{filter(1, 0, 1)}, {{4242, 4242, 3, 1}}, "mode 3"},
      {{filter(1, 0, 1)}, {{4242, 4242, 2, 1}, {4242, 4242, 2, 1}}, "two records"},
      {{filter(1, 0, 1)}, {{77, 77, 2, 1}}, "no process record"},
  };
  bad[1].filters[0].program.resize(4097 * 8);
  schema::SeccompFilter flagged = filter(1, 0, 1);
  flagged.flags = 1;  // TSYNC is no filter's own flag
  bad.push_back({{flagged}, {}, "flags 0x1"});
  for (const auto& b : bad) {
    Stream s;
    add_process(s);
    s.add(f);
    for (const auto& x : b.filters) s.add(x);
    for (const auto& t : b.threads) s.add(t);
    add_mm(s);
    auto reader = s.finish();
    TreeHead head;
    auto r = load_tree_head(*reader, head);
    ASSERT_FALSE(r.ok()) << b.want;
    EXPECT_NE(r.error().message.find(b.want), std::string::npos) << r.error().message;
  }
}

TEST(Image, MalformedShmemIsRefused) {
  std::vector<std::pair<schema::Shmem, std::string>> bad;
  bad.emplace_back(memfd_shmem(1, 5000), "");
  bad.back().first.kind = 7;
  bad.back().second = "unknown kind";
  bad.emplace_back(memfd_shmem(1, 5000), "does not fit");
  bad.back().first.size = 4096;  // contents smaller than the file
  bad.emplace_back(memfd_shmem(1, 100), "does not fit");
  bad.back().first.size = 8192;  // a whole page more than the file
  bad.emplace_back(memfd_shmem(1, 100), "249");
  bad.back().first.name = std::string(250, 'n');
  schema::Shmem empty_anon{};
  empty_anon.id = 1;
  bad.emplace_back(empty_anon, "whole number of pages");
  for (const auto& [rec, want] : bad) {
    Stream s;
    add_process(s);
    s.add(rec);
    add_mm(s);
    auto reader = s.finish();
    TreeHead head;
    auto r = load_tree_head(*reader, head);
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
  }
  // An empty memfd is fine.
  Stream s;
  add_process(s);
  s.add(memfd_shmem(1, 0));
  add_mm(s);
  auto reader = s.finish();
  TreeHead head;
  auto r = load_tree_head(*reader, head);
  EXPECT_TRUE(r.ok()) << r.error().message;
}

}  // namespace
}  // namespace cr::restore

namespace cr::restore {
namespace {

// Mount records of a tree's own mount namespace: only with the root's flag, the first a copy
// of crrestore's, parents before children, tmpfs entries inside a tmpfs of the list (a hostile
// image's "../" never reaches the mkdir/open of the restore).
TEST(Image, MountRecordsAreChecked) {
  auto head_with = [](uint32_t flags, std::vector<schema::Mount> mounts,
                      std::vector<schema::TmpfsEntry> entries) {
    TreeHead head;
    head.procs.emplace_back();
    head.procs.back().process = schema::Process{};
    head.procs.back().process->pid = 4242;
    head.procs.back().process->flags = flags;
    head.shared.mounts = std::move(mounts);
    for (auto& e : entries) head.shared.tmpfs.emplace_back(std::move(e), std::vector<uint8_t>{});
    return check_tree_head(head);
  };
  auto mount = [](uint32_t id, uint32_t parent, uint32_t kind, std::string point) {
    schema::Mount m{};
    m.id = id;
    m.parent = parent;
    m.kind = kind;
    m.mount_point = std::move(point);
    m.fstype = kind == schema::kMountTmpfs ? "tmpfs" : "ext4";
    return m;
  };
  auto entry = [](uint32_t mount, std::string path) {
    schema::TmpfsEntry e{};
    e.mount = mount;
    e.path = std::move(path);
    e.mode = S_IFREG | 0644;
    return e;
  };
  const std::vector<schema::Mount> good = {mount(1, 0, schema::kMountHost, "/"),
                                           mount(2, 1, schema::kMountTmpfs, "/run/box")};
  EXPECT_TRUE(head_with(schema::kProcessOwnMntNs, good, {entry(2, "a/b")}).ok());
  auto no_flag = head_with(0, good, {});
  ASSERT_FALSE(no_flag.ok());
  EXPECT_NE(no_flag.error().message.find("disagree"), std::string::npos);
  EXPECT_FALSE(head_with(schema::kProcessOwnMntNs, {}, {}).ok());
  auto escape = head_with(schema::kProcessOwnMntNs, good, {entry(2, "../../etc/passwd")});
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.error().message.find("a path leaving it"), std::string::npos);
  EXPECT_FALSE(head_with(schema::kProcessOwnMntNs, good, {entry(1, "x")}).ok());  // not a tmpfs
  EXPECT_FALSE(
      head_with(schema::kProcessOwnMntNs,
                {mount(1, 0, schema::kMountHost, "/"), mount(2, 9, schema::kMountProc, "/p")}, {})
          .ok());  // parent unseen
  EXPECT_FALSE(head_with(schema::kProcessOwnMntNs, {mount(1, 0, schema::kMountTmpfs, "/")}, {})
                   .ok());  // the root is not a copy
  EXPECT_FALSE(head_with(schema::kProcessOwnMntNs,
                         {mount(1, 0, schema::kMountHost, "/"), mount(2, 1, 77, "/x")}, {})
                   .ok());  // unknown kind
  EXPECT_FALSE(
      head_with(schema::kProcessOwnMntNs,
                {mount(1, 0, schema::kMountHost, "/"), mount(2, 1, schema::kMountProc, "rel")}, {})
          .ok());
}

// Net records of a tree's own net namespace: only with the root's flag, lo once, addresses and
// routes of its links with addresses of their family's size, sysctls of crtools' list only (a
// hostile image's "../../kernel/core_pattern" is never opened), no network lock beside them.
TEST(Image, NetRecordsAreChecked) {
  auto head_with = [](uint32_t flags, const std::function<void(ProcessImage&)>& fill) {
    TreeHead head;
    head.procs.emplace_back();
    head.procs.back().process = schema::Process{};
    head.procs.back().process->pid = 4242;
    head.procs.back().process->flags = flags;
    fill(head.shared);
    return check_tree_head(head);
  };
  const uint32_t own = schema::kProcessOwnNetNs;
  auto good = [](ProcessImage& s) {
    s.net_links.push_back({1, "lo", schema::kNetLinkLoopback, IFF_UP, 65536});
    s.net_addrs.push_back({1, AF_INET, 8, 0x80, 254, {127, 0, 0, 1}, {127, 0, 0, 1}});
    s.net_addrs.push_back({1, AF_INET6, 128, 0x80, 254, std::vector<uint8_t>(16, 0), {}});
    s.net_routes.push_back({AF_INET, 16, 1, 0, 3, 1, 0, {10, 8, 0, 0}, {10, 7, 0, 2}, {}, {}});
    s.net_sysctls.push_back({"ipv4/ip_forward", "1"});
    s.net_sysctls.push_back({"ipv4/ping_group_range", "0\t100"});
  };
  EXPECT_TRUE(head_with(own, good).ok()) << head_with(own, good).error().message;
  auto no_flag = head_with(0, good);
  ASSERT_FALSE(no_flag.ok());
  EXPECT_NE(no_flag.error().message.find("kProcessOwnNetNs"), std::string::npos);
  EXPECT_FALSE(head_with(own, [](ProcessImage&) {}).ok());  // no lo
  auto with = [&](const std::function<void(ProcessImage&)>& change) {
    return head_with(own, [&](ProcessImage& s) {
      good(s);
      change(s);
    });
  };
  auto escape = with([](ProcessImage& s) {
    s.net_sysctls.push_back({"../../kernel/core_pattern", "1"});
  });
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.error().message.find("not one crtools keeps"), std::string::npos);
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_sysctls.back().value = "|/bin/sh"; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_links.push_back(s.net_links.back()); }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_links.back().name = "eth0"; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_addrs.back().ifindex = 7; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_addrs.back().address = {1, 2, 3}; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_addrs.back().prefixlen = 129; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_routes.back().oif = 9; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_routes.back().gateway = {1}; }).ok());
  EXPECT_FALSE(with([](ProcessImage& s) { s.net_lock = "crtools_lock_1"; }).ok());
  // Veths: one with its other end outside (named or not), a pair inside naming each other.
  auto veth = [](uint32_t ifindex, const char* name, const char* peer) {
    return schema::NetLink{ifindex, name, schema::kNetLinkVeth,
                           IFF_UP,  1500, {2, 0, 0, 0, 9, static_cast<uint8_t>(ifindex)},
                           peer,    ""};
  };
  EXPECT_TRUE(with([&](ProcessImage& s) {
                s.net_links.push_back(veth(2, "eth0", "vh0"));
                s.net_links.back().peer_master = "br0";
                s.net_links.push_back(veth(3, "eth1", ""));
                s.net_links.push_back(veth(4, "a", "b"));
                s.net_links.push_back(veth(5, "b", "a"));
                s.net_addrs.push_back({2, AF_INET, 24, 0x80, 0, {10, 9, 0, 2}, {10, 9, 0, 2}});
                s.net_routes.back().oif = 2;
              }).ok());
  for (const auto& bad : std::vector<std::function<void(schema::NetLink&)>>{
           [](schema::NetLink& l) { l.name = "../x"; },
           [](schema::NetLink& l) { l.name = "a-name-too-long-for-ifnamsiz"; },
           [](schema::NetLink& l) { l.peer = "eth0"; },          // itself
           [](schema::NetLink& l) { l.peer = "lo"; },            // not a veth inside
           [](schema::NetLink& l) { l.peer_master = "br 0"; },   // not a link name
           [](schema::NetLink& l) { l.address.assign(64, 1); },  // longer than MAX_ADDR_LEN
           [](schema::NetLink& l) { l.flags |= 0x100; },         // a flag restore does not set
           [](schema::NetLink& l) { l.kind = 9; }}) {
    EXPECT_FALSE(with([&](ProcessImage& s) {
                   s.net_links.push_back(veth(2, "eth0", "vh0"));
                   bad(s.net_links.back());
                 }).ok());
  }
  // A pair inside whose other end names a third link.
  EXPECT_FALSE(with([&](ProcessImage& s) {
                 s.net_links.push_back(veth(4, "a", "b"));
                 s.net_links.push_back(veth(5, "b", "c"));
               }).ok());
}

}  // namespace
}  // namespace cr::restore
