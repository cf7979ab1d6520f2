// Kernel ABI newer than this machine's system headers (Linux 6.1), or that clashes with glibc's,
// defined once for dump and restore. Each definition is guarded so newer headers win.
#pragma once

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstdint>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434  // Linux 5.3
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438  // Linux 5.6
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010  // Linux 5.1
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020  // Linux 6.3
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U  // Linux 6.3
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux 6.3
#endif
// Process attributes (dump/remote_state.cc, restore/attrs.cc).
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)  // Linux 6.3: the mm's REGISTER_* bits
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)  // Linux 6.18: PR_SET_THP_DISABLE arg3 flag
#endif

namespace cr::sys {

/// struct termios2 as TCGETS2 fills it and TCSETS2 takes it (<asm/termbits.h> clashes with
/// <termios.h>, which crtools also needs).
struct KTermios2 {
  uint32_t c_iflag, c_oflag, c_cflag, c_lflag;
  uint8_t c_line;
  uint8_t c_cc[19];
  uint32_t c_ispeed, c_ospeed;
};
inline constexpr unsigned long kTcgets2 = _IOR('T', 0x2A, KTermios2);
inline constexpr unsigned long kTcsets2 = _IOW('T', 0x2B, KTermios2);

/// A terminal's modes and window size into a record with the fields iflag ... ospeed, rows,
/// cols, xpixel, ypixel (Pty, ShellTty), and back.
template <class Record>
void modes_to_record(const KTermios2& t, const winsize& ws, Record& r) {
  r.iflag = t.c_iflag;
  r.oflag = t.c_oflag;
  r.cflag = t.c_cflag;
  r.lflag = t.c_lflag;
  r.line = t.c_line;
  r.cc.assign(t.c_cc, t.c_cc + sizeof t.c_cc);
  r.ispeed = t.c_ispeed;
  r.ospeed = t.c_ospeed;
  r.rows = ws.ws_row;
  r.cols = ws.ws_col;
  r.xpixel = ws.ws_xpixel;
  r.ypixel = ws.ws_ypixel;
}
template <class Record>
KTermios2 termios_of_record(const Record& r) {
  KTermios2 t{};
  t.c_iflag = r.iflag;
  t.c_oflag = r.oflag;
  t.c_cflag = r.cflag;
  t.c_lflag = r.lflag;
  t.c_line = static_cast<uint8_t>(r.line);
  for (size_t i = 0; i < r.cc.size() && i < sizeof t.c_cc; ++i) t.c_cc[i] = r.cc[i];
  t.c_ispeed = r.ispeed;
  t.c_ospeed = r.ospeed;
  return t;
}

// PAGEMAP_SCAN (Linux 6.7): the kernel walks the page tables and returns only the ranges whose
// pages match, so sparse or huge reserved mappings cost nothing (dump/pages.cc; crdump
// --check probes it). <linux/fs.h> of 6.7+ has it as struct pm_scan_arg.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
      category_mask, category_anyof_mask, return_mask;
};
inline constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
#ifdef PAGEMAP_SCAN
static_assert(kPagemapScan == PAGEMAP_SCAN, "struct pm_scan_arg changed");
#endif
inline constexpr uint64_t kPageIsWritten = 1 << 1;  // no userfaultfd write-protection left
inline constexpr uint64_t kPageIsFile = 1 << 2;
inline constexpr uint64_t kPageIsPresent = 1 << 3;
inline constexpr uint64_t kPageIsSwapped = 1 << 4;
inline constexpr uint64_t kPageIsPfnZero = 1 << 5;
inline constexpr uint64_t kPageIsGuard = 1 << 8;  // Linux 6.15; a guard page is also "swapped"

}  // namespace cr::sys
