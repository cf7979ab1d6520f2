// What processes of the tree share beyond open files: an fd table (CLONE_FILES) or an fs context
// (CLONE_FS) shared with the parent is recorded, and restore clones the child the same way;
// sharing them any other way (two siblings still sharing after their parent unshared), and
// sharing memory or signal handlers between processes (CLONE_VM, CLONE_SIGHAND), is refused.
//
// kcmp(2) orders the kernel objects, so sorting the processes with it puts every group that
// shares one object side by side: O(N log N) calls instead of one per pair.
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "dump/passes.h"

namespace cr::dump {

namespace {

int kcmp(pid_t a, pid_t b, int type) {
  return static_cast<int>(::syscall(SYS_kcmp, a, b, type, 0, 0));
}

// Groups the live processes by the object of `type` they hold; groups of one are left out.
std::vector<std::vector<DumpContext*>> sharing_groups(DumpTree& tree, int type) {
  std::vector<DumpContext*> live;
  for (auto& p : tree.procs)
    if (!p->zombie) live.push_back(p.get());
  // Tree order first, so the top of each group (the one the others cloned from) comes first.
  std::stable_sort(live.begin(), live.end(), [type](const DumpContext* a, const DumpContext* b) {
    return kcmp(a->pid, b->pid, type) == 1;  // 1: a's object sorts before b's
  });
  std::vector<std::vector<DumpContext*>> groups;
  for (size_t i = 0; i < live.size();) {
    size_t j = i + 1;
    while (j < live.size() && kcmp(live[i]->pid, live[j]->pid, type) == 0) ++j;
    if (j - i > 1) groups.emplace_back(live.begin() + static_cast<long>(i),
                                       live.begin() + static_cast<long>(j));
    i = j;
  }
  return groups;
}

// Every member but the first must share with its parent, which is in the group too.
Status record_with_parents(DumpTree& tree, int type, const char* what, pid_t DumpContext::*of) {
  for (auto& group : sharing_groups(tree, type)) {
    for (size_t k = 1; k < group.size(); ++k) {
      DumpContext* c = group[k];
      const bool parent_in =
          std::any_of(group.begin(), group.end(), [c](const DumpContext* g) { return g->pid == c->parent; });
      if (!parent_in) {
        CR_TRY(tree.refuse(c->pid, make_error("pid " + std::to_string(c->pid) + " shares " + what +
                                              " with pid " + std::to_string(group[0]->pid) +
                                              ", not through its parent: not supported yet")));
        continue;
      }
      c->*of = c->parent;
    }
  }
  return {};
}

}  // namespace

Status check_sharing(DumpTree& tree) {
  CR_TRY(record_with_parents(tree, KCMP_FILES, "its fd table (CLONE_FILES)", &DumpContext::files_of));
  CR_TRY(record_with_parents(tree, KCMP_FS, "its cwd, root and umask (CLONE_FS)", &DumpContext::fs_of));
  static constexpr struct {
    int type;
    const char* what;
  } kRefused[] = {{KCMP_VM, "its memory (CLONE_VM, a vfork child)"},
                  {KCMP_SIGHAND, "its signal handlers (CLONE_SIGHAND)"}};
  for (const auto& k : kRefused)
    for (auto& group : sharing_groups(tree, k.type))
      for (size_t i = 1; i < group.size(); ++i)
        CR_TRY(tree.refuse(
            group[i]->pid,
            make_error("pid " + std::to_string(group[i]->pid) + " shares " + k.what + " with pid " +
                       std::to_string(group[0]->pid) + ": not supported yet")));
  return {};
}

}  // namespace cr::dump
