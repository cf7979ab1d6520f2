// Tests that make pseudo-terminals take this lock: a pty comes back at its dumped /dev/pts index,
// so a test that allocates one (openpty) while another test's pty is between its dump and its
// restore could take that index ("pty /dev/pts/N is in use"). ctest runs tests in parallel.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace cr::test {

class DevptsLock {
 public:
  DevptsLock() : fd_(::open("/tmp/crtools-test-devpts.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666)) {
    if (fd_ >= 0)
      while (::flock(fd_, LOCK_EX) != 0) {
      }
  }
  ~DevptsLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  DevptsLock(DevptsLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DevptsLock(const DevptsLock&) = delete;
  DevptsLock& operator=(const DevptsLock&) = delete;
  DevptsLock& operator=(DevptsLock&&) = delete;

 private:
  int fd_;
};

}  // namespace cr::test
