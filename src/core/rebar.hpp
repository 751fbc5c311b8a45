#pragma once
// Resizable BAR per VM (issue 26, point 5): which size a BAR gets, from the VM's `rebar` setting
// and the sizes the device supports, as the kernel's sysfs shows them.
//
// Kernel facts (drivers/pci/pci-sysfs.c, 6.1+): `resourceN_resize` exists for each BAR with the
// Resizable BAR capability; reading it gives a hex bitmap of the supported sizes, bit n = 2^n MB;
// writing a bit number (kstrtoul, base 0) resizes the BAR, or fails with EBUSY while a driver is
// bound (or VFs exist); success is not guaranteed (ENOSPC when the bridge window is too small).
// The current size is the BAR's line in `resource` (start end flags), not this file. QEMU hides
// the capability from the guest: the guest gets whatever size the host set.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"

namespace vfio_hook {

struct RebarSetting {
    enum class Kind { smallest, largest, size };
    Kind kind = Kind::smallest;
    unsigned bit = 0;  // Kind::size: the size as a bit of the kernel's bitmap (2^bit MB)

    std::string str() const;  // "smallest", "largest", "256M", "16G"
    bool operator==(const RebarSetting&) const = default;
};

// "smallest", "largest", or a power-of-two size with its unit: 256M, 256MB, 8G, 8GiB (1M to 128T).
Expected<RebarSetting> parse_rebar_setting(std::string_view text);

// 2^bit MB for people: "256 MB", "16 GB".
std::string rebar_size_text(unsigned bit);

// The bit of the kernel's bitmap for a BAR of `bytes` (a power of two, at least 1 MB); nullopt
// otherwise (an unassigned BAR reads as 0).
std::optional<unsigned> rebar_bit_of_size(std::uint64_t bytes);

// The sizes a `resourceN_resize` bitmap lists, ascending, as bits.
std::vector<unsigned> rebar_supported_bits(std::uint64_t bitmap);

// The size the setting asks for, among those supported; nullopt when it is not one of them
// (a SIZE the BAR cannot take) or nothing is supported.
std::optional<unsigned> rebar_target(const RebarSetting& setting, std::uint64_t bitmap);

// The size in bytes of BAR `bar` from the text of a device's `resource` file (one
// "0xSTART 0xEND 0xFLAGS" line per resource); 0 when unassigned or unreadable.
std::uint64_t bar_size_from_resource(std::string_view resource, unsigned bar);

}  // namespace vfio_hook
