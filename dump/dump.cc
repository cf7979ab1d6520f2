// The dump of a process tree as named, timed passes over its DumpContexts, and the end of the
// dump: kill or detach every process on success, resume them untouched on failure.
#include "dump/dump.h"
#include "dump/precopy.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "common/test_hook.h"
#include "dump/passes.h"

namespace cr::dump {

namespace {

// Runs `f`, reporting its wall time under `name` (crdump -v). A pass over every process of the
// tree is reported once, with the time summed.
template <class F>
Status timed(const DumpOptions& opts, const char* name, F&& f) {
  test_kill_point("pass");
  if (opts.checkpoint) CR_TRY(opts.checkpoint(name));
  auto t0 = std::chrono::steady_clock::now();
  Status st = f();
  if (opts.on_pass) {
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    opts.on_pass(name, dt.count());
  }
  return st;
}

// Runs `f`, adding its wall time to `seconds`.
template <class F>
Status summed(double& seconds, F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  Status st = f();
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return st;
}

// Runs a per-process pass over every live process (a zombie has nothing left to read).
Status each(DumpTree& tree, Status (*pass)(DumpContext&)) {
  for (auto& p : tree.procs)
    if (!p->zombie) CR_TRY(pass(*p));
  return {};
}

// A zombie child: exited, waiting for its frozen parent to reap it. It keeps its pid, its place
// in the tree and its exit status; restore recreates it by having it exit the same way.
Result<bool> as_zombie(DumpContext& c) {
  CR_TRY_ASSIGN(ProcDir proc, ProcDir::open(c.pid));
  CR_TRY_ASSIGN(std::string text, proc.read("stat"));
  CR_TRY_ASSIGN(ProcStat st, parse_stat(text));
  if (st.state != 'Z') return false;
  for (ThreadState& t : c.threads)
    if (t.tracee.attached()) (void)t.tracee.detach();
  c.threads.clear();
  c.zombie = true;
  schema::Process& p = c.process;
  p.pid = static_cast<uint32_t>(c.pid);
  p.ppid = static_cast<uint32_t>(st.ppid);
  p.pgid = static_cast<uint32_t>(st.pgrp);
  p.sid = static_cast<uint32_t>(st.session);
  p.nthreads = 0;
  p.comm = st.comm;
  p.flags = schema::kProcessZombie;
  p.exit_status = st.exit_code;
  // /proc/PID/status of a zombie still shows the dispositions it died with.
  CR_TRY_ASSIGN(std::string status, proc.read("status"));
  CR_TRY_ASSIGN(ProcStatus ps, parse_status(status));
  p.zombie_caught = ps.sig_cgt;
  p.zombie_ignored = ps.sig_ign;
  p.zombie_pending = ps.shd_pnd;
  p.zombie_blocked = ps.sig_blk;
  return true;
}

// The tree must not hold crdump: crdump cannot seize itself, and an ancestor of ours (the
// shell that waits for `crdump $$`) would stay frozen until the dump is over, or for good if it
// is killed after. Checked before anything is seized.
Status check_not_our_tree(pid_t root) {
  const pid_t me = ::getpid();
  if (root == me)
    return make_error("pid " + std::to_string(root) + " is crdump itself: it cannot dump itself");
  for (pid_t p = ::getppid(); p > 0;) {
    if (p == root)
      return make_error("pid " + std::to_string(root) +
                        " is an ancestor of crdump: its tree holds crdump, and would stay frozen "
                        "while crdump runs (dump it from outside the tree)");
    auto proc = ProcDir::open(p);
    if (!proc.ok()) break;  // gone meanwhile: nothing above it to find
    auto text = proc->read("stat");
    if (!text.ok()) break;
    auto st = parse_stat(*text);
    if (!st.ok() || st->ppid == p) break;
    p = st->ppid;
  }
  return {};
}

// The root and its descendants, each frozen before its children are listed (a stopped process
// cannot fork, so its list of children is final). Parents come before children.
Status freeze_tree(DumpTree& tree, pid_t root, const DumpOptions& opts, format::RecordWriter& out) {
  CR_TRY(check_not_our_tree(root));
  CR_TRY(check_root_namespaces(tree, root));
  std::vector<std::pair<pid_t, pid_t>> todo = {{root, 0}};  // (pid, parent)
  for (size_t i = 0; i < todo.size(); ++i) {
    auto ctx = std::make_unique<DumpContext>(todo[i].first, opts, out, tree);
    ctx->parent = todo[i].second;
    tree.procs.push_back(std::move(ctx));
    DumpContext& c = *tree.procs.back();
    // A child may exit at any moment until it is frozen (its parent being frozen does not stop
    // it): then it is a zombie, and dumped as one.
    if (c.pid != root) {
      auto z = as_zombie(c);
      if (z.ok() && *z) continue;
    }
    Status st = freeze(c);
    if (!st.ok()) {
      if (c.pid == root) return st;
      auto z = as_zombie(c);
      if (z.ok() && *z) continue;
      return std::move(st).error().wrap("child " + std::to_string(c.pid) + " of " +
                                        std::to_string(c.parent));
    }
    for (pid_t kid : c.children) todo.emplace_back(kid, c.pid);
  }
  return {};
}

// Whether a process with this pid exists (a zombie counts: its pid is not free).
bool alive(uint32_t pid) { return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }

// Whether a live process outside the tree is in session or group `id`: then restore cannot make
// it anew with that id (walks every process: only asked for a gone leader's session or group).
bool members_outside(const DumpTree& tree, uint32_t id) {
  return any_outside_process(tree, [id](const ProcDir& proc, const std::vector<int>&) {
    auto text = proc.read("stat");
    if (!text.ok()) return false;
    auto st = parse_stat(*text);
    return st.ok() && st->state != 'Z' && st->state != 'X' &&
           (static_cast<uint32_t>(st->pgrp) == id || static_cast<uint32_t>(st->session) == id);
  });
}

// A session or group restore can make anew: its leader has exited and nobody outside the tree
// is in it.
bool remakeable(const DumpTree& tree, uint32_t id) {
  return !alive(id) && !members_outside(tree, id);
}

// Sessions and process groups restore can rebuild: a process leads its session or shares its
// parent's; its group is its own, another one's in the tree (same session), or the root's.
Status check_tree(DumpTree& tree) {
  schema::Process& root = tree.procs.front()->process;
  std::set<uint32_t> remade;  // groups a helper remakes at restore (their leader has exited)
  // The root's session and group are its own, or the ones it joins at restore (crrestore's),
  // unless their leader has exited: then they are remade (a daemon whose session leader
  // exited after the double fork).
  if (root.sid != root.pid && root.pgid == root.sid && remakeable(tree, root.sid)) {
    root.flags |= schema::kProcessSessionLeaderGone;
    remade.insert(root.pgid);
  }
  for (size_t i = 1; i < tree.procs.size(); ++i) {
    schema::Process& p = tree.procs[i]->process;
    const DumpContext* parent = tree.find(tree.procs[i]->parent);
    const std::string who = "pid " + std::to_string(p.pid);
    if (tree.procs[i]->zombie) continue;  // shares nothing any more
    if (Status ns = check_namespaces(*tree.procs[i], *tree.procs.front()); !ns.ok()) {
      CR_TRY(tree.refuse(tree.procs[i]->pid, std::move(ns).error()));
      continue;
    }
    const bool parents_session = parent != nullptr && p.sid == parent->process.sid;
    const bool parents_group = parent != nullptr && p.pgid == parent->process.pgid;
    if (p.sid != p.pid && !parents_session) {
      // A session led from outside: remade if its leader is gone (and is its group's too).
      if (p.pgid != p.sid || !remakeable(tree, p.sid) || !remade.insert(p.pgid).second) {
        CR_TRY(tree.refuse(tree.procs[i]->pid,
                           make_error(who + " is in session " + std::to_string(p.sid) +
                                      ", not its parent's, led from outside the tree: not "
                                      "supported yet")));
        continue;
      }
      p.flags |= schema::kProcessSessionLeaderGone;
      continue;
    }
    if (p.pgid == p.pid || parents_group) continue;
    const DumpContext* leader = tree.find(static_cast<pid_t>(p.pgid));
    if (leader != nullptr && leader->process.sid == p.sid) continue;
    if (p.pgid == root.pgid && p.sid == root.sid) continue;
    if (remade.count(p.pgid) != 0) continue;  // joined once its first member has remade it
    if (p.sid != p.pgid && remakeable(tree, p.pgid)) {
      remade.insert(p.pgid);
      p.flags |= schema::kProcessGroupLeaderGone;
      continue;
    }
    CR_TRY(tree.refuse(tree.procs[i]->pid,
                       make_error(who + " is in process group " + std::to_string(p.pgid) +
                                  ", led from outside the tree: not supported yet")));
  }
  return {};
}

Status run_passes(DumpTree& tree, pid_t root, const DumpOptions& opts, format::RecordWriter& out) {
  CR_TRY(timed(opts, "freeze", [&] { return freeze_tree(tree, root, opts, out); }));
  if (opts.precopy != nullptr) {
    // Every thread is stopped: what pre-copy sent and nothing wrote since holds. The tracking
    // ends here, before the mappings are read (registered ones show `uw` in smaps).
    CR_TRY(timed(opts, "precopy-settle", [&]() -> Status {
      for (auto& p : tree.procs) {
        if (p->zombie) continue;
        CR_TRY_ASSIGN(p->precopied, opts.precopy->settle(*p));
      }
      opts.precopy->stop();
      return {};
    }));
  }
  // Every process is stopped: no lock of the tree changes from here. The read of /proc/locks
  // waits for an RCU grace period, so it runs alongside the passes (checked before finish).
  start_reading_proc_locks(tree);
  CR_TRY(timed(opts, "sharing", [&] { return check_sharing(tree); }));
  CR_TRY(timed(opts, "ipc", [&] { return collect_ipc(tree); }));
  CR_TRY(timed(opts, "vmas", [&] { return each(tree, collect_vmas); }));
  CR_TRY(timed(opts, "files", [&] { return collect_files(tree); }));
  CR_TRY(timed(opts, "remote", [&] { return each(tree, collect_remote_state); }));
  CR_TRY(timed(opts, "process", [&]() -> Status {
    CR_TRY(each(tree, collect_process_info));
    CR_TRY(check_tree(tree));
    // After check_tree: the ids of gone leaders' sessions and groups are needed then.
    return collect_namespaces(tree);
  }));
  CR_TRY(timed(opts, "cgroups", [&] { return collect_cgroups(tree); }));
  // What follows writes the stream and refuses nothing, but for locks no fd of the tree shows.
  if (tree.dry_run) return timed(opts, "locks", [&] { return check_unseen_posix_locks(tree); });
  CR_TRY(timed(opts, "cow", [&] { return find_parent_pages(tree); }));
  for (auto& p : tree.procs)
    if (!p->precopied.empty()) p->process.flags |= schema::kProcessPrecopied;
  if (opts.live_update) tree.procs.front()->process.flags |= schema::kProcessLiveUpdate;
  CR_TRY(timed(opts, "write-head", [&] { return write_tree_head(tree); }));
  // Per process: its memory map, its pages, its signals and threads.
  // Each reported once, summed over the processes.
  double pages_s = 0, tail_s = 0;
  for (auto& p : tree.procs) {
    if (p->zombie) continue;
    test_kill_point("pass");
    if (opts.checkpoint) CR_TRY(opts.checkpoint("pages"));
    CR_TRY(write_mm_records(*p));
    CR_TRY(summed(pages_s, [&] { return write_pages(*p); }));
    CR_TRY(summed(tail_s, [&] { return write_tail_records(*p); }));
  }
  if (opts.on_pass) {
    opts.on_pass("pages", pages_s);
    opts.on_pass("write-tail", tail_s);
  }
  CR_TRY(timed(opts, "locks", [&] { return check_unseen_posix_locks(tree); }));
  // A live update ends its stream after the kill (dump_process).
  if (opts.live_update) return {};
  return timed(opts, "finish", [&] { return out.finish(); });
}

// SIGKILL while still attached, so no thread can run a single instruction after its dump;
// then collect each exit as the tracer. Children before parents, and in each process the other
// threads first: the kernel reports a leader's exit only once its group has been reaped (by
// us, their tracer).
// A zombie of the tree whose parent was killed just before is reaped by init (or a subreaper)
// at any moment: ESRCH from kill, or ECHILD from a wait, means that process is already gone,
// which is what this pass wants; the dump itself has succeeded by then.
Status kill_tree(DumpTree& tree) {
  for (auto& p : tree.procs)
    if (::kill(p->pid, SIGKILL) != 0 && errno != ESRCH)
      return errno_error("kill " + std::to_string(p->pid));
  // The tree is going: should crdump die now, the connections stay in repair mode and the lock
  // stays, for crrestore, as after a complete dump.
  tree.undo.forget_all();
  for (size_t k = tree.procs.size(); k-- > 0;) {
    DumpContext& ctx = *tree.procs[k];
    for (size_t i = ctx.threads.size(); i-- > 0;) {
      ThreadState& t = ctx.threads[i];
      for (;;) {
        auto ws = sys::wait_for(t.tid);
        if (!ws.ok() && (ws.error().code == ECHILD || ws.error().code == ESRCH)) break;
        if (!ws.ok()) return ws.error();
        if (ws->exited() || ws->signaled()) break;
      }
      t.tracee.release();
    }
  }
  return {};
}

// After kill_tree: waits until no pid or tid of the tree is taken any more (each process's
// parent reaps it: the root's is outside the tree, the others' are reparented to a reaper).
// The kernel tells nobody when another process reaps, so this looks, every millisecond.
Status wait_pids_free(const DumpTree& tree) {
  std::vector<pid_t> ids;
  for (const auto& p : tree.procs) {
    ids.push_back(p->pid);
    for (const ThreadState& t : p->threads) ids.push_back(t.tid);
  }
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t id : ids) {
    while (::kill(id, 0) == 0 || errno != ESRCH) {
      if (std::chrono::steady_clock::now() > limit)
        return make_error("pid " + std::to_string(id) +
                          " is still taken 10 s after the kill (a zombie its parent does not "
                          "reap?): the tree is gone, the stream ends without tree_released");
      ::usleep(1000);
    }
  }
  return {};
}

// Detaches every thread of every process that is still attached (each resumes where it was).
Status detach_all(DumpTree& tree) {
  Status first;
  for (auto& p : tree.procs)
    for (ThreadState& t : p->threads) {
      if (!t.tracee.attached()) continue;
      // A wait that the freeze broke off with EINTR (epoll) waits again instead.
      Status st = t.epoll_rerun ? t.tracee.set_regs(t.regs) : Status{};
      if (st.ok()) st = t.tracee.detach();
      if (!st.ok() && first.ok()) first = std::move(st);
    }
  return first;
}

}  // namespace

Status with_frozen_tree(pid_t root, const DumpOptions& opts, format::RecordWriter& out,
                        const std::function<Status(DumpTree&)>& fn) {
  DumpTree tree;
  Status st = freeze_tree(tree, root, opts, out);
  if (st.ok()) st = each(tree, collect_vmas);
  if (st.ok()) st = fn(tree);
  // As after a failed dump: every process carries on where it was.
  Status detached = detach_all(tree);
  CR_TRY(std::move(st));
  return detached;
}

Status DumpTree::refuse(pid_t pid, Error err) {
  if (!dry_run) return err;
  // Messages about the root do not name it (crdump names it on the command line); a dry run
  // lists many processes, so each line does.
  const std::string who = "pid " + std::to_string(pid);
  std::string line = err.message.starts_with(who + ":") || err.message.starts_with(who + " ")
                         ? std::move(err.message)
                         : who + ": " + err.message;
  // An item seen twice (a description at two fds, a check made before and after the freeze)
  // is one blocker.
  if (std::find(blockers.begin(), blockers.end(), line) == blockers.end())
    blockers.push_back(std::move(line));
  return {};
}

Blockers find_blockers(pid_t pid, const DumpOptions& opts) {
  Blockers found;
  auto stopped = [&found](Error e) {
    found.lines.push_back(std::move(e.message));
    found.stopped = true;
    return std::move(found);
  };
  // The contexts hold a writer; a dry run writes nothing to it but the stream's prefix, which
  // goes nowhere.
  ScopedFd sink(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  if (!sink.valid()) return stopped(errno_error("open /dev/null"));
  auto header = stream_header(pid);
  if (!header.ok()) return stopped(std::move(header).error());
  auto out = format::RecordWriter::create(sink.get(), {}, *header);
  if (!out.ok()) return stopped(std::move(out).error());
  DumpTree tree;
  tree.dry_run = true;
  {
    auto guard = UndoGuard::start();  // queues are peeked as in a dump
    if (!guard.ok()) return stopped(std::move(guard).error());
    tree.undo = std::move(guard).value();
  }
  Status st = run_passes(tree, pid, opts, **out);
  // As after a failed dump: every process carries on where it was.
  (void)tree.net.resume();
  tree.undo.forget_all();
  Status detached = detach_all(tree);
  found.lines = std::move(tree.blockers);
  if (!st.ok()) return stopped(std::move(st).error());
  if (!detached.ok()) return stopped(std::move(detached).error());
  return found;
}

// A root in the foreground process group of our own controlling terminal is a job of the
// shell we run in (a pipeline with crdump, or what a script without job control starts):
// restored without --shell-job it would lose the terminal it was in the foreground of, and its
// fds on it. A background job on the same terminal is not refused here (an fd of it on the
// terminal is, by the files pass).
Status check_foreground_job(pid_t root) {
  // `crdump $$` from a script is both: being our ancestor is what it must hear.
  CR_TRY(check_not_our_tree(root));
  auto mine_text = ProcDir::open(::getpid());
  if (!mine_text.ok()) return {};
  auto mine = mine_text->read("stat");
  auto root_dir = ProcDir::open(root);
  if (!mine.ok() || !root_dir.ok()) return {};  // a root that is gone: freeze says so
  auto theirs = root_dir->read("stat");
  if (!theirs.ok()) return {};
  auto me = parse_stat(*mine);
  auto st = parse_stat(*theirs);
  if (!me.ok() || !st.ok()) return {};
  if (me->tty_nr == 0 || st->tty_nr != me->tty_nr || st->tpgid <= 0 || st->pgrp != st->tpgid)
    return {};
  // Only a job that uses the terminal (its stdin, stdout or stderr on it): one whose stdio go
  // elsewhere (a script's `prog </dev/null >log &`, in the script's foreground group as a shell
  // without job control leaves it) loses nothing restored without it.
  bool uses = false;
  for (int fd = 0; fd <= 2 && !uses; ++fd) {
    struct stat fs {};
    const std::string link = "/proc/" + std::to_string(root) + "/fd/" + std::to_string(fd);
    if (::stat(link.c_str(), &fs) != 0 || !S_ISCHR(fs.st_mode)) continue;
    const uint32_t ma = major(fs.st_rdev), mi = minor(fs.st_rdev);
    uses = ((mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12)) == me->tty_nr;
  }
  if (!uses) return {};
  return make_error("pid " + std::to_string(root) + " is in the foreground process group " +
                    std::to_string(st->pgrp) +
                    " of crdump's terminal (a job of crdump's shell): dump it with --shell-job");
}

Result<schema::StreamHeader> stream_header(pid_t pid) {
  schema::StreamHeader h;
  h.arch = 62;  // EM_X86_64
  h.page_size = static_cast<uint32_t>(::sysconf(_SC_PAGESIZE));
  utsname u{};
  if (::uname(&u) != 0) return errno_error("uname");
  h.kernel_release = u.release;
  h.tool_version = CR_TOOL_VERSION;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return errno_error("gethostname");
  h.hostname = host;
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  h.created_unix_ns =
      static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  h.root_pid = static_cast<uint32_t>(pid);
  return h;
}

Status dump_process(pid_t pid, const DumpOptions& opts, format::RecordWriter& out) {
  DumpTree tree;
  {
    // Before anything is changed, and before crdump has threads.
    auto guard = UndoGuard::start();
    if (!guard.ok()) {
      out.fail(guard.error().message);
      return guard.error();
    }
    tree.undo = std::move(guard).value();
  }
  Status st = run_passes(tree, pid, opts, out);
  if (!st.ok()) {
    // Registers and masks were put back by the injection scopes (remote_state.cc) if they ran;
    // detaching lets every process carry on where it was. Its TCP connections first leave
    // repair mode and the network lock.
    (void)tree.net.resume();
    tree.undo.forget_all();
    (void)detach_all(tree);
    out.fail(st.error().message);
    return st;
  }
  if (opts.before_kill) {
    // The image is not safe yet (an fsync or rename failed): the tree carries on.
    st = opts.before_kill();
    if (!st.ok()) {
      (void)tree.net.resume();
      tree.undo.forget_all();
      (void)detach_all(tree);
      return st;
    }
  }
  auto t0 = std::chrono::steady_clock::now();
  if (opts.leave_running) {
    Status net = tree.net.resume();
    tree.undo.forget_all();
    CR_TRY(detach_all(tree));
    CR_TRY(std::move(net));
  } else {
    CR_TRY(kill_tree(tree));
    tree.net.leave_for_restore();
    if (opts.live_update) {
      // The pids are free: the restore reading this stream may make them again now.
      st = wait_pids_free(tree);
      if (st.ok())
        st = out.write(schema::TreeReleased{static_cast<uint32_t>(tree.procs.front()->pid)});
      if (st.ok()) st = out.finish();
      if (!st.ok()) {
        out.fail(st.error().message);
        return st;
      }
    }
  }
  if (opts.on_pass) {
    std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    opts.on_pass(opts.leave_running ? "detach" : "kill", dt.count());
  }
  return {};
}

}  // namespace cr::dump
