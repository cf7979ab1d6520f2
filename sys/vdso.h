// The vDSO: the kernel's code page that libc calls for clock_gettime and friends. Its code
// differs between kernel builds (even of one release), and a program holds pointers into it
// (libc looks its functions up once, at start). crdump records the dumped vDSO's size, checksum
// and functions; crrestore compares them with its own and, when they differ, puts a jump to
// this kernel's function at each dumped function's address.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace cr::sys {

/// A function the vDSO exports: its name (as in the dynamic symbol table, unversioned) and
/// its offset from the vDSO's first byte.
struct VdsoFunction {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
};

/// The functions of a vDSO image (an ELF64 shared object, as mapped). Bytes are checked
/// before each use: an image that is not such an object is an error, never a crash.
Result<std::vector<VdsoFunction>> vdso_functions(std::span<const uint8_t> image);

/// This process's own vDSO, as mapped (empty when it has none).
Result<std::span<const uint8_t>> own_vdso();

/// x86_64 `jmp *0(%rip)` followed by the absolute target: the stub put at a dumped function's
/// address. kJumpSize bytes.
inline constexpr size_t kJumpSize = 14;
void encode_jump(uint64_t target, uint8_t out[kJumpSize]);

}  // namespace cr::sys
