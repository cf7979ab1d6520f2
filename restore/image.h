// ProcessImage: the records of one process as crrestore stashes them before and after the page
// stream, and the checks that decide whether the image can be restored on this machine.
//
// The stream is read in one forward pass: everything before the first Pages record (or the
// first per-task record when there are no pages) is small metadata and is kept here; Pages are
// not kept, they go straight into the task; the records after them (signals, timers, Thread)
// are kept again.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <span>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/text.h"
#include "common/result.h"
#include "format/record_reader.h"
#include "schema/records.h"

namespace cr::restore {

/// Queued bytes of a pipe or FIFO, in stream order.
struct PipeImage {
  schema::Pipe pipe;
  std::vector<uint8_t> data;
};

/// Content of a deleted file, assembled from its FileData records.
struct FileContent {
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> chunks;  // (offset, bytes)
};

/// A unix socket and the messages queued on it (stream: runs of bytes), in stream order.
struct UnixSocketImage {
  schema::UnixSocket sock;
  std::vector<std::vector<uint8_t>> queue;
  std::vector<schema::bytes_t> senders;  // each message's sender name (empty: none)
  std::map<size_t, std::vector<uint32_t>> rights;  // message index -> File ids in flight with it
  std::map<size_t, schema::UnixSocketCreds> creds;  // message index -> SCM_CREDENTIALS it carries
};

/// An internet socket and, for an established TCP connection, its two queues.
struct InetSocketImage {
  schema::InetSocket sock;
  std::vector<schema::InetMcast> mcast;  // its multicast groups
  std::vector<uint8_t> recv_queue, send_queue;
  struct Datagram {
    std::vector<uint8_t> bytes;
    std::vector<uint8_t> from;  // the sender's address (4 or 16 bytes) and port
    uint32_t from_port = 0;
  };
  std::vector<Datagram> datagrams;  // a UDP socket's queue, oldest first
};

/// A cgroup directory of the image and the settings it gets if restore creates it.
struct CgroupImage {
  schema::Cgroup cg;
  std::vector<schema::CgroupProperty> props;  // stream order: the order they are written
};

struct ProcessImage {
  std::optional<schema::Process> process;
  std::optional<schema::Creds> creds;
  std::optional<schema::Rlimits> rlimits;
  std::optional<schema::FsInfo> fs;
  std::optional<schema::ProcAttrs> attrs;     // none in images before it existed
  std::optional<schema::PidNsIds> ns_ids;     // a tree that owns its pid namespace
  std::optional<schema::UtsNs> uts;           // shared image: the tree's own UTS namespace
  std::optional<schema::UserNs> user_ns;      // shared image: the tree's own user namespace
  std::optional<schema::TimeNs> time_ns;      // shared image: the tree's own time namespace
  std::optional<schema::CgroupNs> cgroup_ns;  // shared image: its own cgroup namespace's roots
  std::vector<schema::Mount> mounts;          // shared image: the tree's own mount namespace
  std::vector<std::pair<schema::TmpfsEntry, std::vector<uint8_t>>> tmpfs;  // its tmpfs files
  // shared image: the tree's own net namespace (stream order)
  std::vector<schema::NetLink> net_links;
  std::vector<schema::NetAddr> net_addrs;
  std::vector<schema::NetRoute> net_routes;
  std::vector<schema::NetSysctl> net_sysctls;
  std::optional<schema::Mm> mm;
  std::map<uint32_t, schema::Pty> ptys;       // by Pty id
  std::optional<schema::ShellTty> shell_tty;  // --shell-job images since it exists
  std::map<uint32_t, PipeImage> pipes;        // by Pipe id
  std::map<uint32_t, schema::File> files;     // by File id
  std::map<uint32_t, FileContent> file_data;  // by File id (deleted files)
  std::set<uint32_t> memfds;                  // ids of the memfd Shmem objects read so far
  std::map<uint32_t, UnixSocketImage> unix_sockets;  // by UnixSocket id
  std::map<uint32_t, InetSocketImage> inet_sockets;  // by InetSocket id
  std::map<uint32_t, schema::NetlinkSocket> netlink_sockets;  // by NetlinkSocket id
  std::string net_lock;  // the NetLock table crdump left (empty: none)
  std::map<uint32_t, CgroupImage> cgroups;           // by Cgroup id (none in older images)
  std::vector<schema::CgroupMember> cgroup_members;  // stream order
  // Indexes for the checks as they are read (an image may hold many: no quadratic walks).
  std::set<std::pair<std::string, std::string>> cgroup_paths;  // (controllers, path)
  std::set<std::pair<uint32_t, uint32_t>> cgroup_member_tasks;  // (pid, tid)
  size_t cgroup_properties = 0;
  std::vector<schema::Fd> fds;
  // seccomp: every filter of the tree (shared only; by id), a process's threads with seccomp.
  std::map<uint32_t, schema::SeccompFilter> seccomp_filters;
  std::vector<schema::SeccompThread> seccomp;
  std::vector<schema::EpollItem> epoll_items;  // stream order (none in older images)
  std::vector<schema::InotifyWatch> inotify_watches;  // stream order
  std::map<uint32_t, schema::FanotifyGroup> fanotify_groups;  // by kFileFanotify File id
  std::vector<schema::FanotifyMark> fanotify_marks;           // stream order (newest first)
  std::vector<schema::FileLock> file_locks;    // the locks taken through this process's fds
  std::vector<schema::FileOwner> file_owners;  // the owners set through its fds
  std::vector<schema::Vma> vmas;  // address order (checked)
  // After the pages:
  std::vector<schema::Sigaction> sigactions;
  std::vector<schema::Itimer> itimers;
  std::vector<schema::PosixTimer> posix_timers;
  std::vector<schema::PendingSignal> pending;
  std::vector<schema::Thread> threads;  // stream order: the leader (tid == pid) first

  /// The leader's Thread record (check_threads guarantees it exists).
  const schema::Thread& leader() const { return threads.front(); }

  /// Bytes held for pipes and deleted files (bounded by kMaxStashedBytes).
  uint64_t stashed_bytes = 0;
};

/// Upper bound on pipe data plus deleted-file content kept in memory.
inline constexpr uint64_t kMaxStashedBytes = 256ull << 20;

/// Upper bound on the processes of one image.
inline constexpr size_t kMaxProcesses = 32768;

/// The head of an image: every process's own records (Process, Creds, Rlimits, FsInfo, its
/// Fds) in `procs`, tree order (parents first); the file objects and all Fds in `shared`.
struct TreeHead {
  ProcessImage shared;
  std::vector<ProcessImage> procs;
  std::optional<schema::Vdso> vdso;  // none in images of older builds
  std::optional<schema::PremapArea> premap_area;
  std::string kernel_release;        // of the kernel that wrote the image
  ProcessImage* find(uint32_t pid);
  /// Shared memory objects and their contents, handed over as they are read (they can be
  /// large: nothing is kept here). Without a handler they are skipped.
  std::function<Status(const schema::Shmem&)> on_shmem;
  std::function<Status(const schema::ShmemData&, std::span<const uint8_t>)> on_shmem_data;
  /// SysV IPC records (a tree with its own IPC namespace), handed over as they are read.
  std::function<Status(const format::RecordReader&)> on_ipc;
  /// PrecopyPages (crdump --pre-copy), handed over as they are read; they come before the
  /// first Process record. Without a handler they are refused.
  std::function<Status(const schema::PrecopyPages&, std::span<const uint8_t>)> on_precopy;
  /// The same for a record whose tail the reader left in the image file.
  std::function<Status(const schema::PrecopyPages&, const format::DeferredTail&)>
      on_precopy_deferred;
};

/// Reads the head up to (not including) the first body record (Mm, Vma, Pages or per-task).
/// Returns true when the reader is positioned on it, false when the stream ended first.
Result<bool> load_tree_head(format::RecordReader& reader, TreeHead& head);
/// Parents before children, every Fd naming a File, every pipe File naming a Pipe.
Status check_tree_head(const TreeHead& head);

/// The machine the image was made for must be this one: arch (ELF e_machine) and page size.
Status check_stream_header(const schema::StreamHeader& h);
/// Reads one process's Mm and Vmas, the reader positioned on the Mm; returns true when the
/// reader is then positioned on the next record (Pages, per-task, or the next process's Mm).
Result<bool> load_body_head(format::RecordReader& reader, ProcessImage& img);

/// A single-process image's head and memory map in one ProcessImage (tests, tools): up to
/// the first Pages or per-task record. Refuses an image of several processes.
Result<bool> load_head(format::RecordReader& reader, ProcessImage& img);

/// Stashes one per-task record that follows the pages (the reader's current record). Unknown
/// record types are ignored (a newer writer); a Process record here is out of order, and a record
/// of another pid than the section's is refused.
Status stash_tail_record(const format::RecordReader& reader, ProcessImage& img);

/// Upper bound on Thread records (each holds an xsave area of a few KiB).
inline constexpr size_t kMaxThreads = 65536;

/// Checks the stashed Thread records once the stream has ended: as many as the Process record
/// says, distinct tids of this pid, the leader first.
Status check_threads(const ProcessImage& img);

/// Structural checks on the stashed head: one Process with Mm, Vmas sorted and disjoint, every
/// Fd naming a File, every pipe File naming a Pipe, every EpollItem naming an epoll File and a
/// target File that Fds name (both are opened), pid non-zero. check_memory and check_files
/// are its two halves.
Status check_head(const ProcessImage& img);
Status check_memory(const ProcessImage& img);
Status check_files(const ProcessImage& img);

/// Checks the machine against the image: file mappings unchanged (size and mtime), open
/// regular files unchanged (size and mtime), devices with the same rdev, the executable with
/// the same dev/ino. With `changed_ok` (crrestore --allow-changed-files), an open regular file
/// that changed is not refused: one line naming it and what changed is appended there instead.
/// Mapped files and the executable are refused whatever it says: the pages of a private
/// mapping that are not in the image come from the file. `mounts` (the tree's, or null): a
/// pivoted root's paths are looked at where crrestore's namespace has them (sys::host_path).
Status verify_on_disk(const ProcessImage& img, const std::vector<schema::Mount>* mounts,
                      std::vector<std::string>* changed_ok = nullptr);
/// The same for a tree whose root is crrestore's (no pivoted root: paths are ours).
inline Status verify_on_disk(const ProcessImage& img,
                             std::vector<std::string>* changed_ok = nullptr) {
  return verify_on_disk(img, nullptr, changed_ok);
}

/// Checks a Pages run against the dumped VMAs: it must lie inside VMAs that are contiguous
/// and hold pages (not shared file mappings). Returns the first VMA index it touches.
Result<size_t> check_pages(const std::vector<schema::Vma>& vmas, uint64_t vaddr, uint64_t len,
                           size_t hint = 0);

}  // namespace cr::restore
