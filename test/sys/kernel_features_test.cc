#include "sys/kernel_features.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <set>
#include <string>

namespace cr::sys {
namespace {

// Every probe answers with a name and a line saying what it found; names are unique (crdump
// --check prints them as a column).
TEST(KernelFeatures, EveryProbeSaysWhatItFound) {
  const auto all = probe_kernel_features();
  ASSERT_GE(all.size(), 14u);
  std::set<std::string> names;
  for (const KernelFeature& f : all) {
    SCOPED_TRACE(f.name);
    EXPECT_FALSE(f.name.empty());
    EXPECT_FALSE(f.detail.empty());
    EXPECT_EQ(f.detail.find('\n'), std::string::npos) << f.detail;
    EXPECT_TRUE(names.insert(f.name).second) << "twice: " << f.name;
  }
  // The required ones come first, so the report reads from the essentials down.
  bool optional_seen = false;
  for (const KernelFeature& f : all) {
    EXPECT_FALSE(f.required && optional_seen) << f.name << " is required but listed late";
    optional_seen = optional_seen || !f.required;
  }
}

// What any kernel crtools runs on (5.6+, root) has: a failure here is the probe's.
TEST(KernelFeatures, CertainOnesWork) {
  for (const KernelFeature& f : {probe_ptrace(), probe_process_vm_readv(), probe_pidfd(),
                                 probe_userfaultfd(), probe_mm_map()}) {
    SCOPED_TRACE(f.name);
    EXPECT_TRUE(f.ok) << f.detail;
    EXPECT_TRUE(f.required || f.name == "userfaultfd") << f.name;
  }
}

// The probes' children (ptrace, process_vm_readv, pidfd, the pid namespace of clone3) are all
// reaped: none is left for the caller to wait for.
TEST(KernelFeatures, LeaveNoChildBehind) {
  (void)probe_kernel_features();
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG | __WALL), -1);
  EXPECT_EQ(errno, ECHILD);
}

// userfaultfd's answer lists the features UFFDIO_API reported, by name.
TEST(KernelFeatures, UserfaultfdNamesItsFeatures) {
  const KernelFeature f = probe_userfaultfd();
  if (!f.ok) GTEST_SKIP() << f.detail;
  EXPECT_NE(f.detail.find("features "), std::string::npos) << f.detail;
  EXPECT_NE(f.detail.find("EVENT_FORK"), std::string::npos) << f.detail;
}

}  // namespace
}  // namespace cr::sys
