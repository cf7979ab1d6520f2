// The process tree of an image: its head read into one RestoreContext per process, and the tree
// created before any memory is restored. crrestore opens every file once, then forks the root,
// which forks its children (each with its dumped pid) and so on down; each process keeps the
// open file descriptions its Fds name, so the ones processes share are shared again. When every
// process has reported ready, crrestore seizes them all and the per-process passes run.
#pragma once

#include <vector>

#include "common/result.h"
#include "restore/context.h"

namespace cr::restore {

/// Every live process of the tree, the root first (tree order); zombies are not in it.
std::vector<RestoreContext*> tree_order(RestoreContext& root);

/// Reads the image head: the root's records into `root`, the others' into `root.others`, the
/// shared files into `root.shared`; checks parents come before children. The reader is left on
/// the first process's Mm.
Status read_tree_head(RestoreContext& root);

/// Opens the files, forks the tree, waits for every process's report, seizes every process.
Status create_tree(RestoreContext& root);

/// The process group `p` goes back to: its dumped one when a process of the tree leads it (or a
/// helper remade it), else the root's (`root_pgrp`), where a group led from outside goes.
pid_t restored_group(const RestoreContext& root, const schema::Process& p, pid_t root_pgrp);

/// Host id `id` (a pid, process group or session the image names) as the tree's processes name
/// it: its id in the tree's own pid namespace, the same without one, 0 when the namespace has
/// no such id (a group led from outside it).
pid_t in_tree_ns(const RestoreContext& root, pid_t id);

/// Puts each process in its dumped process group, now that every group leader exists.
Status join_groups(RestoreContext& root);

/// Kills every process of the tree that was created (each reaped if it is ours to reap).
void kill_tree(RestoreContext& root);

}  // namespace cr::restore
