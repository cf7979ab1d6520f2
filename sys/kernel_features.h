// What this machine's kernel offers crtools (crdump --check, like `criu check`). Each probe
// tries the feature itself (on a child of its own, on a socket or mapping of its own, or on
// crdump's own process in a way that changes nothing), rather than guessing from the kernel
// release: a distribution kernel may lack a config option or carry a backport, and a
// container may filter a system call.
//
//   for (const auto& f : cr::sys::probe_kernel_features())
//     printf("%s %s %s\n", f.name.c_str(), f.ok ? "yes" : "no", f.detail.c_str());
#pragma once

#include <string>
#include <vector>

namespace cr::sys {

/// The answer of one probe.
struct KernelFeature {
  std::string name;       // short, for a column: "ptrace", "PAGEMAP_SCAN", "TCP_REPAIR"
  bool ok = false;        // the feature works here
  bool required = false;  // a plain dump or restore needs it (the others enable options)
  /// What it enables for crtools, or what is missing and what that limits (and why, errno
  /// included): one line, never empty.
  std::string detail;
};

// Each probe on its own, so a test can run one; all of them leave the machine as they found it.
KernelFeature probe_ptrace();            // PTRACE_SEIZE + INTERRUPT of a child, its registers
KernelFeature probe_process_vm_readv();  // a child's memory read by process_vm_readv
KernelFeature probe_pidfd();             // pidfd_open and pidfd_getfd of a child's fd
KernelFeature probe_clone3_set_tid();    // clone3 with set_tid, in a pid namespace of its own
KernelFeature probe_mm_map();            // prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)
KernelFeature probe_capabilities();      // CAP_CHECKPOINT_RESTORE / CAP_SYS_ADMIN in effect
KernelFeature probe_pagemap_scan();      // the PAGEMAP_SCAN ioctl on /proc/self/pagemap
KernelFeature probe_userfaultfd();       // userfaultfd and the features UFFDIO_API reports
KernelFeature probe_soft_dirty();        // clear_refs 4 and pagemap bit 55
KernelFeature probe_tcp_repair();        // TCP_REPAIR on a socket of its own
KernelFeature probe_nft();               // the nft tool and nf_tables (an empty transaction)
KernelFeature probe_time_namespace();    // /proc/self/ns/time
KernelFeature probe_vdso();              // a vDSO mapped, with its functions
KernelFeature probe_xsave();             // the xsave components this CPU and kernel enable
KernelFeature probe_seccomp_suspend();   // PTRACE_O_SUSPEND_SECCOMP on a child

/// Every probe above, in that order (required ones first).
std::vector<KernelFeature> probe_kernel_features();

}  // namespace cr::sys
