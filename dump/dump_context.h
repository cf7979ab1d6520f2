// DumpContext: everything the dump passes share, passed explicitly (no globals). Each pass
// fills its part; the writing passes turn it into records in the stream's fixed order.
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dump/dump.h"
#include "sys/proc_parse.h"
#include "format/record_writer.h"
#include "schema/records.h"
#include "sys/tracee.h"

namespace cr::dump {

// The /proc parsers live in sys/ (restore reads /proc too); dump uses them unqualified.
using namespace ::cr::sys;  // NOLINT(google-build-using-namespace)

/// State read from inside the task by injected system calls (remote_state.cc).
struct RemoteState {
  std::vector<schema::Sigaction> sigactions;  // non-SIG_DFL only
  uint64_t ss_sp = 0, ss_size = 0;
  uint32_t ss_flags = 0;
  std::vector<schema::Itimer> itimers;
  std::vector<schema::PosixTimer> posix_timers;
  uint64_t clear_child_tid = 0;
  uint32_t securebits = 0;
  uint64_t brk = 0;
};

/// Open files, ready to be written: objects first, then what points at them (files.cc).
struct FileTable {
  std::vector<schema::Pipe> pipes;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> pipe_data;  // pipe id, queued bytes
  std::vector<schema::File> files;
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> file_data;  // file id, contents
  std::vector<schema::Fd> fds;
};

struct DumpContext {
  DumpContext(pid_t p, const DumpOptions& o, format::RecordWriter& w) : pid(p), opts(o), out(w) {}

  pid_t pid;
  const DumpOptions& opts;
  format::RecordWriter& out;
  uint32_t next_obj_id = 1;  // objdef ids of Pipe and File records

  ProcDir proc;
  sys::Tracee tracee;
  ProcStatus status;
  ProcStat stat;

  // freeze.cc
  user_regs_struct raw_regs{};  // as the stop showed them
  user_regs_struct regs{};      // after sys::restart_fixup: what is saved and set back
  bool regs_valid = false;
  std::string restart_note;
  std::vector<uint8_t> xsave;
  uint64_t sigmask = 0;
  sys::Tracee::Rseq rseq;
  uint64_t robust_head = 0, robust_len = 0;
  bool group_stopped = false;
  std::vector<schema::PendingSignal> pending;

  // vmas.cc
  std::vector<MapEntry> maps;     // as smaps shows them, [vsyscall] included
  std::vector<schema::Vma> vmas;  // what is written, address order
  uint64_t syscall_insn = 0;      // a `syscall` in [vdso]

  RemoteState remote;
  FileTable files;

  // process_info.cc
  schema::Process process;
  schema::Creds creds;
  schema::Rlimits rlimits;
  schema::FsInfo fs;
  schema::Mm mm;

  // pages.cc statistics
  uint64_t pages_scanned = 0, pages_written = 0, pages_zero = 0;
};

}  // namespace cr::dump
