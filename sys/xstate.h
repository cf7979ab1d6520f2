// The XSAVE area as ptrace's NT_X86_XSTATE regset shows it (standard, non-compacted format)
// differs between CPUs: its size, and where each state component sits (AVX-512 lives at other
// offsets on AMD than on Intel). An image records the dumping CPU's layout; restore moves each
// component to where this CPU keeps it, and refuses state this CPU cannot hold.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace cr::sys {

struct XstateComponent {
  uint32_t bit = 0;     // XCR0 bit: 2 AVX, 5 opmask, 6 ZMM_Hi256, 7 Hi16_ZMM, 9 PKRU, ...
  uint32_t offset = 0;  // in the standard format
  uint32_t size = 0;
};

struct XstateLayout {
  uint64_t features = 0;  // XCR0: the components this CPU and kernel enable
  std::vector<XstateComponent> components;  // bits >= 2 that are in `features`

  const XstateComponent* find(uint32_t bit) const;
  /// As stored in a Thread record: (bit, offset, size) triples.
  std::vector<uint64_t> encode() const;
  static Result<XstateLayout> decode(std::span<const uint64_t> words);
};

/// This machine's layout (CPUID leaf 0xD, XCR0).
const XstateLayout& host_xstate_layout();

/// Known layouts, for images written before the layout was recorded: which one wrote an area
/// is told by where its components fit.
XstateLayout intel_xstate_layout();
XstateLayout amd_xstate_layout();

/// Name of a component for messages ("AVX-512 opmask").
std::string xstate_component_name(uint32_t bit);

/// Moves an XSAVE area written under layout `from` (empty: unknown, guessed from its size) into
/// a `to_size`-byte area of layout `to`: the legacy x87/SSE part and the header as they are,
/// each component in use at its place in `to`. A component `to` lacks is dropped if it is in
/// its initial (all-zero) state; otherwise the area cannot be restored here: an error names it.
Result<std::vector<uint8_t>> translate_xstate(std::span<const uint8_t> area,
                                              std::span<const uint64_t> from,
                                              const XstateLayout& to, size_t to_size);

}  // namespace cr::sys
