#include "sys/vdso.h"

#include <elf.h>
#include <sys/auxv.h>

#include <cstring>
#include <fstream>

namespace cr::sys {

namespace {

template <class T>
bool read_at(std::span<const uint8_t> b, uint64_t off, T* out) {
  if (off > b.size() || b.size() - off < sizeof(T)) return false;
  std::memcpy(out, b.data() + off, sizeof(T));
  return true;
}

}  // namespace

Result<std::vector<VdsoFunction>> vdso_functions(std::span<const uint8_t> image) {
  Elf64_Ehdr eh{};
  if (!read_at(image, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return make_error("vdso: not an ELF64 little-endian object");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 256)
    return make_error("vdso: bad section header table");
  auto section = [&](uint32_t i, Elf64_Shdr* sh) {
    return i < eh.e_shnum && read_at(image, eh.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr), sh);
  };
  std::vector<VdsoFunction> out;
  for (uint32_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sym{}, str{};
    if (!section(i, &sym)) return make_error("vdso: section " + std::to_string(i) + " outside");
    if (sym.sh_type != SHT_DYNSYM) continue;
    if (!section(sym.sh_link, &str) || str.sh_offset > image.size() ||
        image.size() - str.sh_offset < str.sh_size || sym.sh_entsize != sizeof(Elf64_Sym))
      return make_error("vdso: bad dynamic symbol table");
    const uint64_t n = sym.sh_size / sizeof(Elf64_Sym);
    for (uint64_t k = 0; k < n && k < 4096; ++k) {
      Elf64_Sym s{};
      if (!read_at(image, sym.sh_offset + k * sizeof(Elf64_Sym), &s))
        return make_error("vdso: symbol " + std::to_string(k) + " outside");
      if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || s.st_name == 0)
        continue;
      if (s.st_name >= str.sh_size || s.st_value >= image.size()) continue;
      const char* name = reinterpret_cast<const char*>(image.data() + str.sh_offset + s.st_name);
      const size_t max = str.sh_size - s.st_name;
      out.push_back({std::string(name, strnlen(name, max)), s.st_value, s.st_size});
    }
    return out;
  }
  return make_error("vdso: no dynamic symbol table");
}

Result<std::span<const uint8_t>> own_vdso() {
  const uint64_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return std::span<const uint8_t>();
  // Its length is in maps: the ELF's own headers do not cover the whole mapping.
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("[vdso]") == std::string::npos) continue;
    uint64_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) != 2 || start != base || end <= start)
      break;
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(start), end - start);
  }
  return make_error("[vdso] of crrestore not found in /proc/self/maps at " + std::to_string(base));
}

void encode_jump(uint64_t target, uint8_t out[kJumpSize]) {
  const uint8_t jmp[6] = {0xff, 0x25, 0, 0, 0, 0};  // jmp *0(%rip): the address follows
  std::memcpy(out, jmp, sizeof jmp);
  std::memcpy(out + 6, &target, 8);
}

}  // namespace cr::sys
