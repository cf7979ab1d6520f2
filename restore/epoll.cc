#include "restore/epoll.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "common/text.h"
#include "sys/proc_parse.h"

namespace cr::restore {

namespace {

constexpr uint32_t kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
// Every event a file can report: a disarmed watch is added with these so it fires at once.
constexpr uint32_t kAnyEvent = EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND |
                               EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG | EPOLLRDHUP;

bool disarmed_oneshot(uint32_t events) {
  return (events & EPOLLONESHOT) != 0 && (events & ~kPrivateBits) == 0;
}

// What the helper does, precomputed so that it only makes system calls (it is a fork of a
// process that may have other threads: no allocation after the fork).
struct Step {
  enum Op { kAdd, kDrain } op = kAdd;
  int epoll_fd = -1;   // in the helper's fd table
  int target_fd = -1;  // kAdd: where the helper holds the target
  int tfd = -1;        // kAdd: the fd number the watch is keyed by
  epoll_event ev{};
  const schema::EpollItem* item = nullptr;
};

struct Failure {
  int step = -1;
  int err = 0;
};

[[noreturn]] void run_helper(const std::vector<std::pair<int, int>>& lift,
                             const std::vector<Step>& steps, int report_fd) {
  auto fail = [report_fd](int step, int err) {
    Failure f{step, err};
    (void)!::write(report_fd, &f, sizeof f);
    ::_exit(1);
  };
  // Every carrier it needs goes above every fd number it will write to, so no dup2 below
  // closes one.
  for (const auto& [from, to] : lift)
    if (::dup2(from, to) < 0) fail(-1, errno);
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (s.op == Step::kDrain) {
      // The epoll holds only its disarmed watches so far: each reports once and keeps its flags.
      epoll_event evs[64];
      int n;
      do {
        n = ::epoll_wait(s.epoll_fd, evs, 64, 0);
      } while (n == 64 || (n < 0 && errno == EINTR));
      if (n < 0) fail(static_cast<int>(i), errno);
      continue;
    }
    if (::dup2(s.target_fd, s.tfd) < 0) fail(static_cast<int>(i), errno);
    epoll_event ev = s.ev;
    if (::epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, s.tfd, &ev) != 0) fail(static_cast<int>(i), errno);
  }
  ::_exit(0);
}

std::string describe(const schema::EpollItem& item) {
  return "epoll file " + std::to_string(item.epoll) + ": watch of fd " + std::to_string(item.tfd) +
         " (file " + std::to_string(item.target) + ")";
}

// The epolls in an order where one that another's watch targets comes first, so it has its
// watches (and its readiness) when the outer one's disarmed watches are fired.
Result<std::vector<uint32_t>> epoll_order(const ProcessImage& img) {
  std::vector<uint32_t> todo;
  for (const auto& item : img.epoll_items)
    if (std::find(todo.begin(), todo.end(), item.epoll) == todo.end()) todo.push_back(item.epoll);
  std::vector<uint32_t> order;
  std::set<uint32_t> done;
  while (!todo.empty()) {
    bool progress = false;
    for (size_t i = 0; i < todo.size();) {
      bool ready = true;
      for (const auto& item : img.epoll_items)
        if (item.epoll == todo[i] && item.target != todo[i] &&
            img.files.at(item.target).kind == schema::kFileEpoll &&
            std::find(todo.begin(), todo.end(), item.target) != todo.end())
          ready = false;
      if (!ready) {
        ++i;
        continue;
      }
      order.push_back(todo[i]);
      todo.erase(todo.begin() + static_cast<long>(i));
      progress = true;
    }
    if (!progress)
      return make_error("epoll files " + std::to_string(todo.front()) +
                        " and others watch each other in a loop");
  }
  return order;
}

// Reads the watches of the epoll at `fd` back from fdinfo and compares them with the image's.
Status check_watches(int fd, uint32_t epoll, const std::vector<const schema::EpollItem*>& want) {
  CR_TRY_ASSIGN(auto proc, sys::ProcDir::open(::getpid()));
  CR_TRY_ASSIGN(std::string text, proc.read("fdinfo/" + std::to_string(fd)));
  CR_TRY_ASSIGN(sys::Fdinfo info, sys::parse_fdinfo(text));
  std::vector<sys::EpollWatch> got = info.epoll_watches;
  for (const schema::EpollItem* item : want) {
    auto same_key = [&](const sys::EpollWatch& w) {
      return w.tfd == static_cast<int>(item->tfd) && w.data == item->data;
    };
    auto it = std::find_if(got.begin(), got.end(), [&](const sys::EpollWatch& w) {
      return same_key(w) && w.events == item->events;
    });
    if (it == got.end()) {
      auto near = std::find_if(got.begin(), got.end(), same_key);
      if (near == got.end()) return make_error(describe(*item) + ": not there after restore");
      return make_error(describe(*item) + ": events " + hex(near->events) + " after restore, " +
                        hex(item->events) + " dumped");
    }
    got.erase(it);
  }
  if (!got.empty())
    return make_error("epoll file " + std::to_string(epoll) + ": " + std::to_string(got.size()) +
                      " watches more than the image has after restore");
  return {};
}

}  // namespace

Status restore_epoll_items(const ProcessImage& img, const Carriers& carriers) {
  if (img.epoll_items.empty()) return {};
  CR_TRY_ASSIGN(std::vector<uint32_t> order, epoll_order(img));

  // Where the helper holds each carrier: above every carrier and every tfd.
  int base = 0;
  for (const auto& [id, fd] : carriers) base = std::max(base, fd + 1);
  for (const auto& item : img.epoll_items) base = std::max(base, static_cast<int>(item.tfd) + 1);
  std::map<uint32_t, int> slot;
  std::vector<std::pair<int, int>> lift;
  auto place = [&](uint32_t file) -> Result<int> {
    auto it = slot.find(file);
    if (it != slot.end()) return it->second;
    auto c = carriers.find(file);
    if (c == carriers.end()) return make_error("file " + std::to_string(file) + " was not opened");
    const int to = base + static_cast<int>(slot.size());
    slot[file] = to;
    lift.emplace_back(c->second, to);
    return to;
  };
  std::vector<Step> steps;
  for (uint32_t ep : order) {
    CR_TRY_ASSIGN(int ep_fd, place(ep));
    for (int disarmed = 1; disarmed >= 0; --disarmed) {
      bool any = false;
      for (const auto& item : img.epoll_items) {
        if (item.epoll != ep || disarmed_oneshot(item.events) != (disarmed == 1)) continue;
        Step s;
        s.epoll_fd = ep_fd;
        CR_TRY_ASSIGN(s.target_fd, place(item.target));
        s.tfd = static_cast<int>(item.tfd);
        s.ev.events = item.events | (disarmed == 1 ? kAnyEvent : 0u);
        s.ev.data.u64 = item.data;
        s.item = &item;
        steps.push_back(s);
        any = true;
      }
      if (disarmed == 1 && any) {
        Step s;
        s.op = Step::kDrain;
        s.epoll_fd = ep_fd;
        steps.push_back(s);
      }
    }
  }
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
      static_cast<rlim_t>(base) + slot.size() > nofile.rlim_cur)
    return make_error("epoll watches need fd numbers up to " +
                      std::to_string(base + static_cast<int>(slot.size())) +
                      ", over crrestore's RLIMIT_NOFILE of " + std::to_string(nofile.rlim_cur));

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return errno_error("pipe2");
  ScopedFd rd(p[0]), wr(p[1]);
  const pid_t self = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return errno_error("fork the epoll helper");
  if (pid == 0) {
    // Dies with crrestore (a SIGKILL to crrestore leaves nothing behind).
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != self) ::_exit(126);
    run_helper(lift, steps, p[1]);
  }
  wr.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return errno_error("waitpid epoll helper " + std::to_string(pid));
  Failure f;
  ssize_t n = ::read(rd.get(), &f, sizeof f);
  if (n == static_cast<ssize_t>(sizeof f)) {
    if (f.step < 0)
      return make_error("epoll helper: dup2 a carrier: " + std::string(std::strerror(f.err)));
    const Step& s = steps[static_cast<size_t>(f.step)];
    if (s.op == Step::kDrain)
      return make_error("epoll helper: epoll_wait to disarm fired EPOLLONESHOT watches: " +
                        std::string(std::strerror(f.err)));
    return make_error(describe(*s.item) + ": epoll_ctl(EPOLL_CTL_ADD, events " + hex(s.ev.events) +
                      "): " + std::strerror(f.err));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return make_error("epoll helper " + std::to_string(pid) + " ended with status " +
                      std::to_string(status));

  for (uint32_t ep : order) {
    std::vector<const schema::EpollItem*> want;
    for (const auto& item : img.epoll_items)
      if (item.epoll == ep) want.push_back(&item);
    CR_TRY(check_watches(carriers.at(ep), ep, want));
  }
  return {};
}

}  // namespace cr::restore
