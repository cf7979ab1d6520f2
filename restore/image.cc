#include "restore/image.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "common/text.h"
#include "restore/cgroups.h"
#include "restore/image_stash.h"
#include "restore/user_ns.h"
#include "sys/mount_tree.h"
#include "sys/rtnetlink.h"

namespace cr::restore {

Status add_stashed_bytes(ProcessImage& img, size_t n, const char* what) {
  img.stashed_bytes += n;
  if (img.stashed_bytes > kMaxStashedBytes)
    return make_error(std::string(what) + ": more than " + std::to_string(kMaxStashedBytes >> 20) +
                      " MiB of pipe and deleted-file data");
  return {};
}

namespace {

bool is_tail_type(uint32_t type) {
  return type == schema::Pages::kType || type == schema::PagesParent::kType ||
         type == schema::PagesPrecopied::kType ||
         type == schema::PagesPrefork::kType || type == schema::Sigaction::kType ||
         type == schema::Itimer::kType || type == schema::PosixTimer::kType ||
         type == schema::PendingSignal::kType || type == schema::Thread::kType;
}

template <class R>
Status set_once(std::optional<R>& slot, const format::RecordReader& reader) {
  if (slot) return make_error("second " + std::string(R::kName) + " record for the same process");
  CR_TRY_ASSIGN(slot, reader.decode<R>());
  return {};
}

// A record that is one more of its kind for the process.
template <class R, class V>
Status append(std::vector<V>& to, const format::RecordReader& reader) {
  CR_TRY_ASSIGN(auto r, reader.decode<R>());
  to.push_back(std::move(r));
  return {};
}

Status stash_head_record(const format::RecordReader& reader, ProcessImage& img) {
  switch (reader.type()) {
    case schema::Process::kType:
      return set_once(img.process, reader);
    case schema::Creds::kType:
      return set_once(img.creds, reader);
    case schema::Rlimits::kType:
      return set_once(img.rlimits, reader);
    case schema::FsInfo::kType:
      return set_once(img.fs, reader);
    case schema::ProcAttrs::kType:
      return set_once(img.attrs, reader);
    case schema::Mm::kType:
      return set_once(img.mm, reader);
    case schema::Pipe::kType: {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::Pipe>());
      img.pipes[p.id].pipe = p;
      return {};
    }
    case schema::PipeData::kType: {
      CR_TRY_ASSIGN(auto d, reader.decode<schema::PipeData>());
      auto it = img.pipes.find(d.pipe);
      if (it == img.pipes.end())
        return make_error("pipe_data names pipe " + std::to_string(d.pipe) + " not in the image");
      auto tail = reader.tail();
      CR_TRY(add_stashed_bytes(img, tail.size(), "pipe data"));
      it->second.data.insert(it->second.data.end(), tail.begin(), tail.end());
      return {};
    }
    case schema::ShellTty::kType:
      return set_once(img.shell_tty, reader);
    case schema::Pty::kType: {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::Pty>());
      img.ptys[p.id] = std::move(p);
      return {};
    }
    case schema::File::kType: {
      CR_TRY_ASSIGN(auto f, reader.decode<schema::File>());
      uint32_t id = f.id;
      img.files[id] = std::move(f);
      return {};
    }
    case schema::FileData::kType: {
      CR_TRY_ASSIGN(auto d, reader.decode<schema::FileData>());
      if (img.files.count(d.file) == 0)
        return make_error("file_data names file " + std::to_string(d.file) + " not in the image");
      auto tail = reader.tail();
      CR_TRY(add_stashed_bytes(img, tail.size(), "deleted file data"));
      img.file_data[d.file].chunks.emplace_back(d.offset,
                                                std::vector<uint8_t>(tail.begin(), tail.end()));
      return {};
    }
    case schema::InotifyWatch::kType:
      return append<schema::InotifyWatch>(img.inotify_watches, reader);
    case schema::Mount::kType:
      return append<schema::Mount>(img.mounts, reader);
    case schema::TmpfsEntry::kType: {
      CR_TRY_ASSIGN(auto e, reader.decode<schema::TmpfsEntry>());
      const auto tail = reader.tail();
      CR_TRY(add_stashed_bytes(img, tail.size(), "tmpfs contents"));
      img.tmpfs.emplace_back(std::move(e), std::vector<uint8_t>(tail.begin(), tail.end()));
      return {};
    }
    case schema::NetLink::kType:
      return append<schema::NetLink>(img.net_links, reader);
    case schema::NetAddr::kType:
      return append<schema::NetAddr>(img.net_addrs, reader);
    case schema::NetRoute::kType:
      return append<schema::NetRoute>(img.net_routes, reader);
    case schema::NetSysctl::kType:
      return append<schema::NetSysctl>(img.net_sysctls, reader);
    case schema::FanotifyGroup::kType: {
      CR_TRY_ASSIGN(auto g, reader.decode<schema::FanotifyGroup>());
      if (!img.fanotify_groups.emplace(g.file, g).second)
        return make_error("fanotify_group: two for file " + std::to_string(g.file));
      return {};
    }
    case schema::FanotifyMark::kType:
      return append<schema::FanotifyMark>(img.fanotify_marks, reader);
    case schema::Fd::kType:
      return append<schema::Fd>(img.fds, reader);
    case schema::EpollItem::kType:
      return append<schema::EpollItem>(img.epoll_items, reader);
    case schema::Vma::kType:
      return append<schema::Vma>(img.vmas, reader);
    default: {
      CR_TRY_ASSIGN(bool socket, stash_socket_record(reader, img));
      (void)socket;  // neither: a record type this build does not know, skipped by contract
      return {};
    }
  }
}

bool is_body_type(uint32_t type) {
  return type == schema::Mm::kType || type == schema::Vma::kType || is_tail_type(type);
}

// A record of one process's own (Creds, Rlimits, FsInfo), decoded once into its slot.
template <class R>
Status stash_own(const format::RecordReader& reader, TreeHead& head,
                 std::optional<R> ProcessImage::*slot) {
  CR_TRY_ASSIGN(R r, reader.decode<R>());
  ProcessImage* img = head.find(r.pid);
  if (img == nullptr)
    return make_error(std::string(R::kName) + " record for pid " + std::to_string(r.pid) +
                      " before its process");
  if (img->*slot)
    return make_error("second " + std::string(R::kName) + " record for pid " +
                      std::to_string(r.pid));
  img->*slot = std::move(r);
  return {};
}

// A Shmem record as a restore can take it (images before memfd support have kind 0 and no
// memfd fields: anonymous memory).
Status check_shmem(const schema::Shmem& r) {
  const std::string what = "shmem " + std::to_string(r.id);
  if (r.kind != schema::kShmemAnon && r.kind != schema::kShmemMemfd)
    return make_error(what + ": unknown kind " + std::to_string(r.kind));
  // An empty memfd stores nothing; anonymous memory is at least a page.
  if ((r.size == 0 && r.kind == schema::kShmemAnon) || r.size % 4096 != 0)
    return make_error(what + " of " + std::to_string(r.size) +
                      " bytes is not a whole number of pages");
  if (r.kind == schema::kShmemMemfd) {
    if (r.file_size > r.size || r.size - r.file_size >= 4096)
      return make_error(what + ": memfd size " + std::to_string(r.file_size) + " does not fit " +
                        std::to_string(r.size) + " bytes of contents");
    if (r.name.size() > 249)  // NAME_MAX less "memfd:"
      return make_error(what + ": memfd name longer than 249 bytes");
  }
  return {};
}

// A filter the kernel could take: whole instructions, at most BPF_MAXINSNS of them, the one flag
// crdump records, and a filter before it that the image defined (an objref may name any kind of
// object). The chain's length is the kernel's to limit (MAX_INSNS_PER_PATH, ENOMEM).
Status check_seccomp_filter(const schema::SeccompFilter& f,
                            const std::map<uint32_t, schema::SeccompFilter>& defined) {
  const std::string what = "seccomp filter " + std::to_string(f.id) + ": ";
  constexpr size_t kInsn = 8, kMaxInsns = 4096;  // struct sock_filter, BPF_MAXINSNS
  if (f.program.empty() || f.program.size() % kInsn != 0 || f.program.size() > kMaxInsns * kInsn)
    return make_error(what + "program of " + std::to_string(f.program.size()) + " bytes");
  if ((f.flags & ~uint32_t{2}) != 0)  // SECCOMP_FILTER_FLAG_LOG
    return make_error(what + "flags " + hex(f.flags));
  if (f.prev != 0 && defined.count(f.prev) == 0)
    return make_error(what + "the filter before it, " + std::to_string(f.prev) +
                      ", is not a seccomp filter");
  return {};
}

// One head record of a tree: a Process starts a process; Creds, Rlimits, FsInfo go to theirs;
// file objects and every Fd to the shared image, each Fd also to its process.
Status stash_tree_record(const format::RecordReader& reader, TreeHead& head) {
  switch (reader.type()) {
    case schema::Process::kType: {
      CR_TRY_ASSIGN(auto p, reader.decode<schema::Process>());
      if (head.procs.size() >= kMaxProcesses)
        return make_error("more than " + std::to_string(kMaxProcesses) + " processes");
      if (p.pid == 0) return make_error("process pid is 0");
      if (head.find(p.pid) != nullptr)
        return make_error("two process records for pid " + std::to_string(p.pid));
      head.procs.emplace_back();
      head.procs.back().process = std::move(p);
      return {};
    }
    case schema::Creds::kType:
      return stash_own(reader, head, &ProcessImage::creds);
    case schema::Rlimits::kType:
      return stash_own(reader, head, &ProcessImage::rlimits);
    case schema::FsInfo::kType:
      return stash_own(reader, head, &ProcessImage::fs);
    case schema::ProcAttrs::kType:
      return stash_own(reader, head, &ProcessImage::attrs);
    case schema::PidNsIds::kType:
      return stash_own(reader, head, &ProcessImage::ns_ids);
    case schema::UserNs::kType: {
      if (head.shared.user_ns || !head.procs.empty())
        return make_error("a user_ns record that is not the first of the head");
      CR_TRY_ASSIGN(head.shared.user_ns, reader.decode<schema::UserNs>());
      return check_user_ns(*head.shared.user_ns);
    }
    case schema::UtsNs::kType: {
      if (head.shared.uts) return make_error("two uts_ns records");
      CR_TRY_ASSIGN(head.shared.uts, reader.decode<schema::UtsNs>());
      return {};
    }
    case schema::TimeNs::kType: {
      if (head.shared.time_ns) return make_error("two time_ns records");
      CR_TRY_ASSIGN(head.shared.time_ns, reader.decode<schema::TimeNs>());
      return {};
    }
    case schema::Fd::kType: {
      CR_TRY_ASSIGN(auto fd, reader.decode<schema::Fd>());
      ProcessImage* img = head.find(fd.pid);
      if (img == nullptr)
        return make_error("fd " + std::to_string(fd.fd) + " of pid " + std::to_string(fd.pid) +
                          ", which has no process record");
      img->fds.push_back(fd);
      head.shared.fds.push_back(fd);
      return {};
    }
    case schema::FileLock::kType: {
      CR_TRY_ASSIGN(auto l, reader.decode<schema::FileLock>());
      ProcessImage* img = head.find(l.pid);
      if (img == nullptr)
        return make_error("file lock of pid " + std::to_string(l.pid) +
                          ", which has no process record");
      img->file_locks.push_back(l);
      head.shared.file_locks.push_back(l);
      return {};
    }
    case schema::FileOwner::kType: {
      CR_TRY_ASSIGN(auto o, reader.decode<schema::FileOwner>());
      ProcessImage* img = head.find(o.pid);
      if (img == nullptr)
        return make_error("file owner of pid " + std::to_string(o.pid) +
                          ", which has no process record");
      img->file_owners.push_back(o);
      head.shared.file_owners.push_back(o);
      return {};
    }
    case schema::Shmem::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::Shmem>());
      CR_TRY(check_shmem(r));
      if (r.kind == schema::kShmemMemfd) head.shared.memfds.insert(r.id);
      return head.on_shmem ? head.on_shmem(r) : Status{};
    }
    case schema::ShmemData::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::ShmemData>());
      return head.on_shmem_data ? head.on_shmem_data(r, reader.tail()) : Status{};
    }
    case schema::Cgroup::kType:
    case schema::CgroupProperty::kType:
    case schema::CgroupMember::kType:
    case schema::CgroupNs::kType:
      return stash_cgroup_record(reader, head);
    case schema::SeccompFilter::kType: {
      CR_TRY_ASSIGN(auto f, reader.decode<schema::SeccompFilter>());
      CR_TRY(check_seccomp_filter(f, head.shared.seccomp_filters));
      const uint32_t id = f.id;
      head.shared.seccomp_filters.emplace(id, std::move(f));
      return {};
    }
    case schema::SeccompThread::kType: {
      CR_TRY_ASSIGN(auto t, reader.decode<schema::SeccompThread>());
      ProcessImage* img = head.find(t.pid);
      const std::string what =
          "seccomp of pid " + std::to_string(t.pid) + " thread " + std::to_string(t.tid);
      if (img == nullptr) return make_error(what + ": no process record");
      if (t.mode == 1 ? t.filter != 0
                      : t.mode != 2 || head.shared.seccomp_filters.count(t.filter) == 0)
        return make_error(what + ": mode " + std::to_string(t.mode) + " with filter " +
                          std::to_string(t.filter));
      for (const auto& other : img->seccomp)
        if (other.tid == t.tid) return make_error(what + ": two records");
      img->seccomp.push_back(t);
      return {};
    }
    case schema::PrecopyPages::kType: {
      // Before the tree: pre-copy rounds ran while it lived.
      if (!head.procs.empty()) return make_error("precopy_pages record after a process record");
      if (!head.on_precopy) return make_error("precopy_pages record where none is expected");
      CR_TRY_ASSIGN(auto p, reader.decode<schema::PrecopyPages>());
      if (auto d = reader.deferred_tail()) {
        // Left in the file (ReaderOptions::defer_tails): the store reads it when it is placed.
        if (!head.on_precopy_deferred || p.npages == 0 || d->len != uint64_t{p.npages} * 4096)
          return make_error("precopy_pages at " + hex(p.vaddr) + ": malformed run");
        return head.on_precopy_deferred(p, *d);
      }
      auto tail = reader.tail();
      if (p.npages == 0 || tail.size() != uint64_t{p.npages} * 4096)
        return make_error("precopy_pages at " + hex(p.vaddr) + ": " + std::to_string(tail.size()) +
                          " bytes for " + std::to_string(p.npages) + " pages");
      return head.on_precopy(p, tail);
    }
    case schema::PremapArea::kType: {
      if (head.premap_area) return make_error("two premap_area records");
      CR_TRY_ASSIGN(head.premap_area, reader.decode<schema::PremapArea>());
      return {};
    }
    case schema::Vdso::kType: {
      if (head.vdso) return make_error("two vdso records");
      CR_TRY_ASSIGN(head.vdso, reader.decode<schema::Vdso>());
      return {};
    }
    case schema::SysvLimits::kType:
    case schema::SysvShm::kType:
    case schema::SysvShmData::kType:
    case schema::SysvMsgQueue::kType:
    case schema::SysvMsg::kType:
    case schema::SysvSem::kType:
      return head.on_ipc ? head.on_ipc(reader) : Status{};
    default:
      return stash_head_record(reader, head.shared);
  }
}

Status check_fanotify(const ProcessImage& img) {
  for (const auto& [id, f] : img.files)
    if (f.kind == schema::kFileFanotify && img.fanotify_groups.count(id) == 0)
      return make_error("fanotify file " + std::to_string(id) + " has no fanotify_group");
  for (const auto& [file, g] : img.fanotify_groups) {
    auto it = img.files.find(file);
    if (it == img.files.end() || it->second.kind != schema::kFileFanotify)
      return make_error("fanotify_group names file " + std::to_string(file) +
                        ", not a fanotify of the image");
    if ((g.flags & ~schema::kFanotifyInitBits) != 0)
      return make_error("fanotify_group of file " + std::to_string(file) + ": bad flags " +
                        std::to_string(g.flags));
  }
  for (const auto& m : img.fanotify_marks) {
    const std::string what = "fanotify_mark of file " + std::to_string(m.file);
    if (img.fanotify_groups.count(m.file) == 0)
      return make_error(what + ": not a fanotify of the image");
    if (m.type < schema::kFanMarkInode || m.type > schema::kFanMarkFilesystem)
      return make_error(what + ": unknown type " + std::to_string(m.type));
    if ((m.mflags & ~schema::kFanotifyMarkFlagBits) != 0 ||
        ((m.mask | m.ignored_mask) & ~schema::kFanotifyMaskBits) != 0 ||
        (m.mask | m.ignored_mask) == 0)
      return make_error(what + ": bad flags or masks");
    if (m.path.empty() ||
        (m.type == schema::kFanMarkInode && (m.handle.empty() || m.handle.size() > 128)) ||
        (m.type == schema::kFanMarkMount && m.root.empty()))
      return make_error(what + ": bad file handle, path or root");
  }
  return {};
}

}  // namespace

ProcessImage* TreeHead::find(uint32_t pid) {
  for (auto& p : procs)
    if (p.process->pid == pid) return &p;
  return nullptr;
}

Status check_stream_header(const schema::StreamHeader& h) {
  constexpr uint32_t kEmX86_64 = 62;
  if (h.arch != kEmX86_64)
    return make_error("image is for machine type " + std::to_string(h.arch) +
                      " (ELF e_machine), this one is x86_64 (62)");
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0 && h.page_size != static_cast<uint64_t>(page))
    return make_error("image has page size " + std::to_string(h.page_size) + ", this machine " +
                      std::to_string(page));
  return {};
}

Result<bool> load_tree_head(format::RecordReader& reader, TreeHead& head) {
  CR_TRY(check_stream_header(reader.header()));
  head.kernel_release = reader.header().kernel_release;
  for (;;) {
    CR_TRY_ASSIGN(bool more, reader.next());
    if (!more) return false;
    if (is_body_type(reader.type())) break;
    auto st = stash_tree_record(reader, head);
    if (!st.ok()) return std::move(st).error().wrap("offset " + std::to_string(reader.offset()));
  }
  if (head.procs.empty()) return make_error("image has no process record");
  return true;
}

namespace {

// Every FileLock and FileOwner names an Fd of its process that is an open of its File.
Status check_lock_fds(const ProcessImage& shared) {
  auto has_fd = [&](uint32_t pid, uint32_t fd, uint32_t file) {
    for (const auto& f : shared.fds)
      if (f.pid == pid && f.fd == fd && f.file == file) return true;
    return false;
  };
  for (const auto& l : shared.file_locks)
    if (!has_fd(l.pid, l.fd, l.file))
      return make_error("file lock of pid " + std::to_string(l.pid) + " fd " +
                        std::to_string(l.fd) + ": no such fd on file " + std::to_string(l.file));
  for (const auto& o : shared.file_owners)
    if (!has_fd(o.pid, o.fd, o.file))
      return make_error("file owner of pid " + std::to_string(o.pid) + " fd " +
                        std::to_string(o.fd) + ": no such fd on file " + std::to_string(o.file));
  return {};
}

// Mount records only with the root's kProcessOwnMntNs, a root mount first that is a copy of
// crrestore's, each other one's parent before it, known kinds, absolute mount points, and tmpfs
// entries of a tmpfs of the list with paths that stay inside it (a hostile image's "../").
Status check_mount_records(const ProcessImage& shared, bool own_mnt) {
  if (own_mnt == shared.mounts.empty())
    return make_error("mount records and the root's kProcessOwnMntNs flag disagree");
  if (!own_mnt) return shared.tmpfs.empty() ? Status{} : make_error("tmpfs_entry without mounts");
  std::set<uint32_t> ids;
  std::set<uint32_t> tmpfs_ids;
  for (size_t i = 0; i < shared.mounts.size(); ++i) {
    const schema::Mount& m = shared.mounts[i];
    const std::string who = "mount " + std::to_string(m.id) + " (" + m.mount_point + ")";
    if (m.kind < schema::kMountHost || m.kind > schema::kMountMqueue)
      return make_error(who + ": unknown kind " + std::to_string(m.kind));
    // Absolute, and never above where they are made (a pivoted root's mounts are made below
    // its directory): no "." or ".." components.
    auto plain = [](const std::string& p) {
      return !p.empty() && p[0] == '/' && (p == "/" || sys::safe_relative_path(p.substr(1)));
    };
    const bool binds = m.kind == schema::kMountBind || m.kind == schema::kMountBindTree;
    if (!plain(m.mount_point) || (binds && !plain(m.bind_from)))
      return make_error(who + ": not an absolute path without . or ..");
    // The first is the root: a copy of crrestore's, or (pivoted) a bind of a directory.
    if (i == 0 ? (m.mount_point != "/" ||
                  (m.kind != schema::kMountHost && m.kind != schema::kMountBind))
               : ids.count(m.parent) == 0)
      return make_error(who + ": its parent is not before it (or the first is not the root)");
    if (!ids.insert(m.id).second) return make_error(who + ": id seen twice");
    if (m.kind == schema::kMountTmpfs) tmpfs_ids.insert(m.id);
  }
  for (const auto& [e, data] : shared.tmpfs)
    if (tmpfs_ids.count(e.mount) == 0 || !sys::safe_relative_path(e.path))
      return make_error("tmpfs_entry '" + e.path + "' of mount " + std::to_string(e.mount) +
                        ": no such tmpfs, or a path leaving it");
  return {};
}

// Net records only with the root's kProcessOwnNetNs, lo exactly once, addresses and routes of
// the links listed with addresses of their family's size, sysctls of crtools' list only (a
// hostile image's name would be a path below /proc/sys/net) with short numeric values.
Status check_net_records(const ProcessImage& shared, bool own_net) {
  if (!own_net)
    return shared.net_links.empty() && shared.net_addrs.empty() && shared.net_routes.empty() &&
                   shared.net_sysctls.empty()
               ? Status{}
               : make_error("net records without the root's kProcessOwnNetNs flag");
  if (!shared.net_lock.empty())
    return make_error("a network lock in an image whose tree owns its net namespace");
  std::set<uint32_t> links;
  bool lo = false;
  // A link name the kernel takes (IFNAMSIZ, no '/', ':' or space), or "" where allowed.
  auto name_ok = [](const std::string& n, bool may_be_empty) {
    if (n.empty()) return may_be_empty;
    return n.size() < 16 && n != "." && n != ".." &&
           n.find_first_of("/: \t\n") == std::string::npos;
  };
  std::map<std::string, const schema::NetLink*> by_name;
  for (const schema::NetLink& l : shared.net_links) {
    const bool loopback = l.kind == schema::kNetLinkLoopback && l.name == "lo" && !lo;
    const bool veth = l.kind == schema::kNetLinkVeth && name_ok(l.name, false) &&
                      l.peer != l.name && name_ok(l.peer, true) && name_ok(l.peer_master, true) &&
                      l.address.size() <= 32 && l.name != "lo";
    if ((!loopback && !veth) || l.ifindex == 0 || !links.insert(l.ifindex).second ||
        !by_name.emplace(l.name, &l).second || (l.flags & ~static_cast<uint32_t>(IFF_UP)) != 0 ||
        l.mtu > (1u << 24))
      return make_error("net_link '" + l.name + "': not a loopback or veth link this build makes");
    lo = lo || loopback;
  }
  if (!lo) return make_error("net namespace without its loopback link");
  // A veth whose peer is in the namespace too: that peer is a veth naming it back.
  for (const schema::NetLink& l : shared.net_links) {
    if (l.kind != schema::kNetLinkVeth) continue;
    auto p = by_name.find(l.peer);
    if (p == by_name.end()) continue;  // outside
    if (p->second->kind != schema::kNetLinkVeth || p->second->peer != l.name ||
        !l.peer_master.empty())
      return make_error("net_link '" + l.name + "': its peer '" + l.peer +
                        "' in the namespace is not a veth naming it back");
  }
  auto size_ok = [](uint32_t family, const schema::bytes_t& b, bool may_be_empty) {
    if (b.empty()) return may_be_empty;
    return b.size() == (family == AF_INET ? 4u : 16u);
  };
  for (const schema::NetAddr& a : shared.net_addrs)
    if (links.count(a.ifindex) == 0 || (a.family != AF_INET && a.family != AF_INET6) ||
        a.prefixlen > (a.family == AF_INET ? 32u : 128u) || a.scope > 255 ||
        !size_ok(a.family, a.address, false) || !size_ok(a.family, a.local, true))
      return make_error("net_addr of link " + std::to_string(a.ifindex) + ": not an address");
  for (const schema::NetRoute& r : shared.net_routes)
    if ((r.oif != 0 && links.count(r.oif) == 0) || (r.family != AF_INET && r.family != AF_INET6) ||
        r.dst_len > (r.family == AF_INET ? 32u : 128u) || r.type > 255 || r.scope > 255 ||
        r.protocol > 255 || r.protocol == RTPROT_KERNEL || !size_ok(r.family, r.dst, true) ||
        !size_ok(r.family, r.gateway, true) || !size_ok(r.family, r.prefsrc, true) ||
        r.metrics.size() > 512)
      return make_error("net_route: not a route of the namespace's links");
  for (const schema::NetSysctl& s : shared.net_sysctls)
    if (!sys::net_sysctl_known(s.name) || s.value.empty() || s.value.size() > 64 ||
        s.value.find_first_not_of("0123456789-\t ") != std::string::npos)
      return make_error("net_sysctl '" + s.name + "': not one crtools keeps, or not a number");
  return {};
}

// The namespace records match the root's flags; in a pid namespace of its own every process
// has its ids there, the root 1, each other one a different pid, each thread one.
Status check_namespaces(const TreeHead& head) {
  const uint32_t root_flags = head.procs.front().process->flags;
  for (size_t i = 1; i < head.procs.size(); ++i)
    if ((head.procs[i].process->flags &
         (schema::kProcessOwnPidNs | schema::kProcessOwnUtsNs | schema::kProcessOwnTimeNs |
          schema::kProcessOwnCgroupNs | schema::kProcessOwnMntNs | schema::kProcessOwnNetNs |
          schema::kProcessOwnUserNs)) != 0)
      return make_error("pid " + std::to_string(head.procs[i].process->pid) +
                        ": namespace flags on a process other than the root");
  if (((root_flags & schema::kProcessOwnUserNs) != 0) != head.shared.user_ns.has_value())
    return make_error("user_ns record and the root's kProcessOwnUserNs flag disagree");
  if (((root_flags & schema::kProcessOwnUtsNs) != 0) != head.shared.uts.has_value())
    return make_error("uts_ns record and the root's kProcessOwnUtsNs flag disagree");
  if (head.shared.uts &&
      (head.shared.uts->hostname.size() > 64 || head.shared.uts->domainname.size() > 64))
    return make_error("uts_ns: hostname or domainname longer than 64 bytes");
  CR_TRY(check_mount_records(head.shared, (root_flags & schema::kProcessOwnMntNs) != 0));
  CR_TRY(check_net_records(head.shared, (root_flags & schema::kProcessOwnNetNs) != 0));
  const bool own_pid = (root_flags & schema::kProcessOwnPidNs) != 0;
  if (((root_flags & schema::kProcessOwnTimeNs) != 0) != head.shared.time_ns.has_value())
    return make_error("time_ns record and the root's kProcessOwnTimeNs flag disagree");
  // What the kernel takes (timens_offsets): nanoseconds below a second; seconds it checks.
  if (head.shared.time_ns && (head.shared.time_ns->monotonic_nsec >= 1000000000 ||
                              head.shared.time_ns->boottime_nsec >= 1000000000))
    return make_error("time_ns: nanoseconds of an offset not below one second");
  if (((root_flags & schema::kProcessOwnCgroupNs) != 0) != head.shared.cgroup_ns.has_value())
    return make_error("cgroup_ns record and the root's kProcessOwnCgroupNs flag disagree");
  std::set<uint32_t> ns_pids;
  for (const ProcessImage& img : head.procs) {
    const std::string who = "pid " + std::to_string(img.process->pid);
    if (img.ns_ids.has_value() != own_pid)
      return make_error(who + ": pid_ns_ids record and the root's kProcessOwnPidNs flag disagree");
    if (!own_pid) continue;
    const schema::PidNsIds& ids = *img.ns_ids;
    const bool is_root = &img == &head.procs.front();
    // Beyond pid_max's ceiling (4M) no pid can be asked for.
    constexpr uint32_t kMaxPid = 1u << 22;
    if ((ids.ns_pid == 1) != is_root || ids.ns_pid == 0 || ids.ns_pid > kMaxPid ||
        ids.ns_pgid > kMaxPid || ids.ns_sid > kMaxPid || !ns_pids.insert(ids.ns_pid).second)
      return make_error(who + ": pid " + std::to_string(ids.ns_pid) +
                        " in its pid namespace is not one the tree can have");
    if (ids.tids.size() != ids.ns_tids.size() ||
        (!ids.tids.empty() && (ids.tids[0] != img.process->pid || ids.ns_tids[0] != ids.ns_pid)))
      return make_error(who + ": its threads' ids in its pid namespace do not match its own");
    for (size_t t = 1; t < ids.ns_tids.size(); ++t)
      if (ids.ns_tids[t] == 0 || ids.ns_tids[t] > kMaxPid ||
          !ns_pids.insert(static_cast<uint32_t>(ids.ns_tids[t])).second)
        return make_error(who + ": thread id " + std::to_string(ids.ns_tids[t]) +
                          " in its pid namespace is not one the tree can have");
  }
  return {};
}

}  // namespace

Status check_tree_head(const TreeHead& head) {
  // A flag this build does not know means state it would not restore: refuse, never ignore.
  constexpr uint32_t kKnownFlags =
      schema::kProcessShellJob | schema::kProcessZombie | schema::kProcessOwnIpcNs |
      schema::kProcessChildSubreaper | schema::kProcessSessionLeaderGone |
      schema::kProcessGroupLeaderGone | schema::kProcessGuardRegions | schema::kProcessCwdDeleted |
      schema::kProcessFileLocks | schema::kProcessExtUnix | schema::kProcessCgroups |
      schema::kProcessParentPages | schema::kProcessMcast | schema::kProcessUnixPending |
      schema::kProcessTcpHalfClosed | schema::kProcessUnixRights | schema::kProcessOwnPidNs |
      schema::kProcessOwnUtsNs | schema::kProcessSeccomp | schema::kProcessOwnTimeNs |
      schema::kProcessOwnCgroupNs | schema::kProcessOwnMntNs | schema::kProcessMemLock |
      schema::kProcessPkeys | schema::kProcessOwnNetNs | schema::kProcessOwnUserNs |
      schema::kProcessPrecopied | schema::kProcessLiveUpdate;
  for (const auto& img : head.procs)
    if ((img.process->flags & ~kKnownFlags) != 0)
      return make_error("pid " + std::to_string(img.process->pid) + ": process flags " +
                        hex(img.process->flags) + " unknown to this build (a newer crdump?)");
  for (const auto& img : head.procs) {
    // A zombie is remade by exiting as it did: only an exit or a death by signal can be
    // replayed (a stop code would leave the child running, and the restore waiting for it).
    const uint32_t st = img.process->exit_status;
    const uint32_t sig = st & 0x7f;
    const bool exited = sig == 0 && (st & ~0xff00u) == 0;
    const bool signaled = sig != 0 && sig <= 64 && (st & ~0xffu) == 0;
    if ((img.process->flags & schema::kProcessZombie) != 0 && !exited && !signaled)
      return make_error("pid " + std::to_string(img.process->pid) + ": zombie exit status " +
                        hex(st) + " is neither an exit nor a death by signal");
  }
  if ((head.procs.front().process->flags & schema::kProcessParentPages) != 0)
    return make_error("the root process has pages shared with a parent the image does not hold");
  for (size_t i = 1; i < head.procs.size(); ++i) {
    const auto& p = *head.procs[i].process;
    const schema::Process* parent = nullptr;
    for (size_t j = 0; j < i; ++j)
      if (head.procs[j].process->pid == p.ppid) parent = &*head.procs[j].process;
    if (parent == nullptr)
      return make_error("pid " + std::to_string(p.pid) + ": its parent " + std::to_string(p.ppid) +
                        " is not an earlier process of the image");
    // Its pages come from the parent's restored memory: there must be some.
    if ((p.flags & schema::kProcessParentPages) != 0 &&
        ((p.flags | parent->flags) & schema::kProcessZombie) != 0)
      return make_error("pid " + std::to_string(p.pid) +
                        ": pages shared with its parent, but one of them is a zombie");
  }
  CR_TRY(check_namespaces(head));
  CR_TRY(check_files(head.shared));
  return check_lock_fds(head.shared);
}

Result<bool> load_body_head(format::RecordReader& reader, ProcessImage& img) {
  const std::string pid = std::to_string(img.process->pid);
  auto at = [&] { return "offset " + std::to_string(reader.offset()) + ": "; };
  if (reader.type() != schema::Mm::kType)
    return make_error(at() + "pid " + pid + "'s memory does not start with an mm record");
  CR_TRY_ASSIGN(img.mm, reader.decode<schema::Mm>());
  if (img.mm->pid != img.process->pid)
    return make_error(at() + "mm record of pid " + std::to_string(img.mm->pid) + " where pid " +
                      pid + "'s was due");
  for (;;) {
    CR_TRY_ASSIGN(bool more, reader.next());
    if (!more) return false;
    if (reader.type() != schema::Vma::kType) return true;
    CR_TRY_ASSIGN(auto v, reader.decode<schema::Vma>());
    if (v.pid != img.process->pid)
      return make_error(at() + "vma of pid " + std::to_string(v.pid) + " in pid " + pid +
                        "'s memory");
    img.vmas.push_back(std::move(v));
  }
}

Result<bool> load_head(format::RecordReader& reader, ProcessImage& img) {
  TreeHead head;
  CR_TRY_ASSIGN(bool positioned, load_tree_head(reader, head));
  if (head.procs.size() != 1)
    return make_error("image holds " + std::to_string(head.procs.size()) + " processes");
  img = std::move(head.procs.front());
  img.pipes = std::move(head.shared.pipes);
  img.files = std::move(head.shared.files);
  img.file_data = std::move(head.shared.file_data);
  img.epoll_items = std::move(head.shared.epoll_items);
  img.inotify_watches = std::move(head.shared.inotify_watches);
  img.fanotify_groups = std::move(head.shared.fanotify_groups);
  img.fanotify_marks = std::move(head.shared.fanotify_marks);
  img.memfds = std::move(head.shared.memfds);
  img.unix_sockets = std::move(head.shared.unix_sockets);
  img.inet_sockets = std::move(head.shared.inet_sockets);
  img.netlink_sockets = std::move(head.shared.netlink_sockets);
  img.net_lock = std::move(head.shared.net_lock);
  img.stashed_bytes = head.shared.stashed_bytes;
  if (!positioned) return false;
  return load_body_head(reader, img);
}

Status stash_tail_record(const format::RecordReader& reader, ProcessImage& img) {
  // Every per-task record names its pid: it must be the process whose section this is.
  auto mine = [&](uint32_t pid) -> Status {
    if (img.process && pid != img.process->pid)
      return make_error(std::string("record of pid ") + std::to_string(pid) + " in pid " +
                        std::to_string(img.process->pid) + "'s section");
    return {};
  };
  switch (reader.type()) {
    case schema::Sigaction::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::Sigaction>());
      CR_TRY(mine(r.pid));
      // The dumper never writes these (SIGKILL and SIGSTOP cannot be caught): such a record is
      // damage or a forgery, and dropping it would restore a different disposition table.
      if (r.signo == 0 || r.signo > 64 || r.signo == SIGKILL || r.signo == SIGSTOP)
        return make_error("sigaction for signal " + std::to_string(r.signo) +
                          ": not a signal whose action can be set");
      img.sigactions.push_back(r);
      return {};
    }
    case schema::Itimer::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::Itimer>());
      CR_TRY(mine(r.pid));
      img.itimers.push_back(r);
      return {};
    }
    case schema::PosixTimer::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::PosixTimer>());
      CR_TRY(mine(r.pid));
      img.posix_timers.push_back(r);
      return {};
    }
    case schema::PendingSignal::kType: {
      CR_TRY_ASSIGN(auto r, reader.decode<schema::PendingSignal>());
      CR_TRY(mine(r.pid));
      img.pending.push_back(std::move(r));
      return {};
    }
    case schema::Thread::kType: {
      if (img.threads.size() >= kMaxThreads)
        return make_error("more than " + std::to_string(kMaxThreads) + " thread records");
      CR_TRY_ASSIGN(auto r, reader.decode<schema::Thread>());
      img.threads.push_back(std::move(r));
      return {};
    }
    case schema::Process::kType:
      return make_error("process record out of order (after the memory of processes)");
    case schema::Pages::kType:
    case schema::PagesParent::kType:
    case schema::PagesPrefork::kType:
    case schema::PagesPrecopied::kType:
    case schema::PrecopyPages::kType:
      return make_error("pages record out of order");
    default:
      return {};
  }
}

Status check_threads(const ProcessImage& img) {
  if (img.threads.empty()) return make_error("image has no thread record");
  const uint32_t pid = img.process->pid;
  if (img.threads.size() != img.process->nthreads)
    return make_error("image has " + std::to_string(img.threads.size()) +
                      " thread records, its process record says " +
                      std::to_string(img.process->nthreads));
  if (img.threads.front().tid != pid)
    return make_error("first thread record is tid " + std::to_string(img.threads.front().tid) +
                      ", not the main thread " + std::to_string(pid));
  std::vector<uint32_t> tids;
  tids.reserve(img.threads.size());
  for (const auto& t : img.threads) {
    if (t.pid != pid || t.tid == 0)
      return make_error("thread record " + std::to_string(t.pid) + "/" + std::to_string(t.tid) +
                        " does not belong to pid " + std::to_string(pid));
    tids.push_back(t.tid);
  }
  std::sort(tids.begin(), tids.end());
  if (std::adjacent_find(tids.begin(), tids.end()) != tids.end())
    return make_error("two thread records for tid " +
                      std::to_string(*std::adjacent_find(tids.begin(), tids.end())));
  for (const auto& ps : img.pending)
    if (ps.tid != 0 && !std::binary_search(tids.begin(), tids.end(), ps.tid))
      return make_error("pending signal for tid " + std::to_string(ps.tid) +
                        ", which has no thread record");
  return {};
}

Status check_head(const ProcessImage& img) {
  if (!img.process) return make_error("image has no process record");
  if (img.process->pid == 0) return make_error("image: process pid is 0");
  CR_TRY(check_memory(img));
  return check_files(img);
}

Status check_memory(const ProcessImage& img) {
  const std::string who = img.process ? "pid " + std::to_string(img.process->pid) + ": " : "";
  if (!img.mm) return make_error(who + "image has no mm record");
  if (img.vmas.empty()) return make_error(who + "image has no vma records");
  uint64_t prev_end = 0;
  int vdso_seen[3] = {0, 0, 0};
  const bool mem_lock = img.process && (img.process->flags & schema::kProcessMemLock) != 0;
  const bool own_pkeys = img.process && (img.process->flags & schema::kProcessPkeys) != 0;
  const uint32_t pkeys = img.attrs ? img.attrs->pkeys : 0;
  for (const auto& v : img.vmas) {
    if (v.start >= v.end || (v.start & 0xfff) != 0 || (v.end & 0xfff) != 0)
      return make_error("vma " + hex(v.start) + "-" + hex(v.end) + " is malformed");
    if (v.start < prev_end)
      return make_error("vma " + hex(v.start) + " overlaps or is out of address order");
    prev_end = v.end;
    switch (v.kind) {
      case schema::kVmaAnon:
      case schema::kVmaDroppable:
      case schema::kVmaFilePrivate:
      case schema::kVmaHeap:
      case schema::kVmaStack:
      case schema::kVmaFileShared:
        break;
      case schema::kVmaVdso:
      case schema::kVmaVvar:
      case schema::kVmaVvarVclock:
        if (++vdso_seen[v.kind - schema::kVmaVdso] > 1)
          return make_error("image has two vdso mappings of the same kind");
        break;
      case schema::kVmaAnonShared:
      case schema::kVmaShmemPrivate:
      case schema::kVmaSysvShm:
        if (v.shmem == 0)
          return make_error("vma " + hex(v.start) + ": shared memory mapping names no object");
        break;
      default:
        return make_error("vma " + hex(v.start) + ": unknown kind " + std::to_string(v.kind));
    }
    if ((v.kind == schema::kVmaFilePrivate || v.kind == schema::kVmaFileShared) && v.path.empty())
      return make_error("file vma " + hex(v.start) + " has no path");
    if ((v.madv & ~schema::kMadvKnown) != 0)
      return make_error("vma " + hex(v.start) + ": mapping flags " + hex(v.madv) +
                        " unknown to this build");
    if ((v.madv & schema::kMadvLockOnFault) != 0 && (v.madv & schema::kMadvLocked) == 0)
      return make_error("vma " + hex(v.start) + ": lock-on-fault without a lock");
    if ((v.madv & schema::kMadvLocked) != 0 && !mem_lock)
      return make_error("vma " + hex(v.start) + ": locked, but its process is not flagged so");
    if (v.pkey > 15 || (v.pkey != 0 && !own_pkeys))
      return make_error("vma " + hex(v.start) + ": protection key " + std::to_string(v.pkey) +
                        " out of range or not flagged");
  }
  if ((pkeys & ~0xfffeu) != 0 || (pkeys != 0 && !own_pkeys))
    return make_error(who + "protection keys " + hex(pkeys) + " malformed or not flagged");
  const uint32_t mlockall = img.attrs ? img.attrs->mlockall : 0;
  if (mlockall != 0 && mlockall != MCL_FUTURE && mlockall != (MCL_FUTURE | MCL_ONFAULT))
    return make_error(who + "mlockall flags " + hex(mlockall) +
                      " are not MCL_FUTURE[|MCL_ONFAULT]");
  if (mlockall != 0 && !mem_lock)
    return make_error(who + "mlockall(MCL_FUTURE), but the process is not flagged so");
  return {};
}

Status check_files(const ProcessImage& img) {
  for (const auto& fd : img.fds) {
    auto it = img.files.find(fd.file);
    if (it == img.files.end())
      return make_error("fd " + std::to_string(fd.fd) + " names file " + std::to_string(fd.file) +
                        " not in the image");
  }
  for (const auto& [id, f] : img.files) {
    if ((f.kind == schema::kFilePipe || f.kind == schema::kFileFifo) && f.pipe != 0 &&
        img.pipes.count(f.pipe) == 0)
      return make_error("file " + std::to_string(id) + " names pipe " + std::to_string(f.pipe) +
                        " not in the image");
    if (f.kind == schema::kFilePipe && f.pipe == 0)
      return make_error("pipe file " + std::to_string(id) + " names no pipe");
    if (f.kind == schema::kFileMemfd && img.memfds.count(f.object) == 0)
      return make_error("memfd file " + std::to_string(id) + " names shmem " +
                        std::to_string(f.object) + ", not a memfd before it in the image");
    if (f.kind == schema::kFileUnixSocket && img.unix_sockets.count(f.object) == 0)
      return make_error("socket file " + std::to_string(id) + " names object " +
                        std::to_string(f.object) + ", not a unix socket");
    if (f.kind == schema::kFileInetSocket && img.inet_sockets.count(f.object) == 0)
      return make_error("socket file " + std::to_string(id) + " names object " +
                        std::to_string(f.object) + ", not an inet socket");
    if (f.kind == schema::kFileNetlinkSocket && img.netlink_sockets.count(f.object) == 0)
      return make_error("socket file " + std::to_string(id) + " names object " +
                        std::to_string(f.object) + ", not a netlink socket");
    const bool pty = f.kind == schema::kFilePtyMaster || f.kind == schema::kFilePtySlave;
    if (!pty && f.kind != schema::kFileEpoll && f.kind != schema::kFileGhostNode &&
        f.kind != schema::kFileProcPid && f.kind != schema::kFileInetSocket &&
        f.kind != schema::kFileNetlinkSocket && f.kind != schema::kFileInotify &&
        f.kind != schema::kFilePath && f.kind != schema::kFilePidfd &&
        f.kind != schema::kFileFanotify &&
        (f.kind < schema::kFileRegular || f.kind > schema::kFileUnixSocket))
      return make_error("file " + std::to_string(id) + ": unknown kind " + std::to_string(f.kind));
    if (pty && img.ptys.count(f.object) == 0)
      return make_error("pty file " + std::to_string(id) + " names pty " +
                        std::to_string(f.object) + " not in the image");
  }
  std::set<uint32_t> opened;
  for (const auto& fd : img.fds) opened.insert(fd.file);
  for (const auto& item : img.epoll_items) {
    const std::string what = "epoll_item of file " + std::to_string(item.epoll) + " (fd " +
                             std::to_string(item.tfd) + ")";
    auto ep = img.files.find(item.epoll);
    if (ep == img.files.end() || ep->second.kind != schema::kFileEpoll)
      return make_error(what + ": not an epoll file of the image");
    if (item.target == item.epoll || opened.count(item.target) == 0 ||
        opened.count(item.epoll) == 0)
      return make_error(what + ": its target file " + std::to_string(item.target) +
                        " is not an open file of the image");
    if (item.tfd > 0x7fffffff) return make_error(what + ": fd number out of range");
  }
  std::set<std::pair<uint32_t, uint32_t>> wds;  // (inotify File, wd)
  for (const auto& w : img.inotify_watches) {
    const std::string what = "inotify_watch wd " + std::to_string(w.wd);
    auto it = img.files.find(w.file);
    if (it == img.files.end() || it->second.kind != schema::kFileInotify)
      return make_error(what + " names file " + std::to_string(w.file) +
                        ", not an inotify of the image");
    if (w.wd == 0 || w.wd > schema::kMaxInotifyWd)
      return make_error(what + ": out of range (1 to " + std::to_string(schema::kMaxInotifyWd) +
                        ")");
    if (!wds.insert({w.file, w.wd}).second) return make_error(what + ": twice in one inotify");
    if ((w.mask & ~schema::kInotifyMaskBits) != 0 || (w.mask & 0xfffu) == 0)
      return make_error(what + ": bad mask " + std::to_string(w.mask));
    if (w.handle.empty() || w.handle.size() > 128 || w.path.empty())
      return make_error(what + ": bad file handle or path");
  }
  CR_TRY(check_fanotify(img));
  return {};
}

Status verify_on_disk(const ProcessImage& img, const std::vector<schema::Mount>* mounts,
                      std::vector<std::string>* changed_ok) {
  // Where crrestore sees a path of the tree; a device node may be the tree's own (looked at
  // in its namespace, by rdev, once it is rebuilt: reopen_in_namespace).
  const bool pivoted = mounts != nullptr && sys::pivoted_root(*mounts);
  auto here = [&](const std::string& path) -> std::string {
    if (!pivoted) return path;
    auto h = sys::host_path(*mounts, path);
    return h ? *h : std::string();
  };
  for (const auto& v : img.vmas) {
    if (v.kind != schema::kVmaFilePrivate && v.kind != schema::kVmaFileShared) continue;
    struct stat st {};
    if (::stat(here(v.path).c_str(), &st) != 0)
      return errno_error("mapped file " + v.path).wrap("cannot restore");
    // Never relaxed: pages of the mapping that are not in the image (clean file pages) would
    // be read from the new contents, under code that expects the old.
    if (static_cast<uint64_t>(st.st_size) != v.file_size || mtime_ns(st) != v.file_mtime_ns)
      return make_error("mapped file " + v.path +
                        " changed since dump (--allow-changed-files does not cover mapped files)");
  }
  for (const auto& [id, f] : img.files) {
    struct stat st {};
    switch (f.kind) {
      case schema::kFileRegular:
        if (::stat(here(f.path).c_str(), &st) != 0) return errno_error("open file " + f.path);
        // Size and mtime both: an offset past a shrunk file, or data the process never saw
        // (a rewrite of the same size), would restore wrong without a word.
        if (static_cast<uint64_t>(st.st_size) != f.size || mtime_ns(st) != f.mtime_ns) {
          const std::string what = f.path + ": file changed since dump (size " +
                                   std::to_string(f.size) + " -> " + std::to_string(st.st_size) +
                                   (mtime_ns(st) != f.mtime_ns ? ", mtime differs)" : ")");
          if (changed_ok == nullptr)
            return make_error(what + "; crrestore --allow-changed-files restores it anyway");
          // The log-file case: the fd goes back to its recorded offset (an O_APPEND one writes
          // at the end whatever it is), which the program's next write or read takes as it comes.
          changed_ok->push_back(
              what + ", restored at offset " + std::to_string(f.pos) +
              ((f.flags & O_APPEND) != 0 ? " (O_APPEND: writes go to the end)" : ""));
        }
        break;
      case schema::kFileDirectory:
        if (::stat(here(f.path).c_str(), &st) != 0) return errno_error("open directory " + f.path);
        if (!S_ISDIR(st.st_mode)) return make_error(f.path + ": no longer a directory");
        break;
      case schema::kFileDevice:
        if (pivoted) break;
        if (::stat(f.path.c_str(), &st) != 0) return errno_error("device " + f.path);
        if (f.rdev != 0 && static_cast<uint64_t>(st.st_rdev) != f.rdev)
          return make_error(f.path + ": device number differs from the dump");
        break;
      case schema::kFileFifo:
        if (::stat(f.path.c_str(), &st) != 0) return errno_error("fifo " + f.path);
        if (!S_ISFIFO(st.st_mode)) return make_error(f.path + ": no longer a FIFO");
        break;
      default:
        break;
    }
  }
  if (!img.mm) return {};  // the tree's shared files: no memory map of their own
  const auto& mm = *img.mm;
  if (!mm.exe_path.empty()) {
    struct stat st {};
    if (::stat(here(mm.exe_path).c_str(), &st) != 0) return errno_error("executable " + mm.exe_path);
    // Below a pivoted root only the inode number: a container's root filesystem may be
    // mounted anew for the restore (podman's overlay), with another device number each time
    // and the same inode numbers.
    const bool dev_differs = !pivoted && static_cast<uint64_t>(st.st_dev) != mm.exe_dev;
    if ((mm.exe_dev != 0 || mm.exe_ino != 0) &&
        (dev_differs || static_cast<uint64_t>(st.st_ino) != mm.exe_ino))
      return make_error("executable " + mm.exe_path + " changed since dump (dev/ino differ)");
  }
  return {};
}

Result<size_t> check_pages(const std::vector<schema::Vma>& vmas, uint64_t vaddr, uint64_t len,
                           size_t hint) {
  const uint64_t end = vaddr + len;
  if (len == 0 || end < vaddr || (vaddr & 0xfff) != 0)
    return make_error("pages at " + hex(vaddr) + ": malformed run");
  // Pages come in address order, so the VMA of the previous run is a good place to start.
  size_t i = hint < vmas.size() && vmas[hint].start <= vaddr ? hint : 0;
  while (i < vmas.size() && vmas[i].end <= vaddr) ++i;
  if (i == vmas.size() || vmas[i].start > vaddr)
    return make_error("pages at " + hex(vaddr) + " fall outside every dumped vma");
  const size_t first = i;
  uint64_t covered = vmas[i].start;
  for (; i < vmas.size() && covered < end; ++i) {
    if (vmas[i].start != covered) break;
    // Shared memory has its contents in the file or in its object's records, never in Pages.
    if (vmas[i].kind == schema::kVmaFileShared || vmas[i].kind == schema::kVmaAnonShared ||
        vmas[i].kind == schema::kVmaSysvShm)
      return make_error("pages at " + hex(vaddr) + " for the shared mapping " + hex(vmas[i].start) +
                        " " + vmas[i].path);
    covered = vmas[i].end;
  }
  if (covered < end)
    return make_error("pages " + hex(vaddr) + "-" + hex(end) + " run past the dumped vmas");
  return first;
}

}  // namespace cr::restore
