#pragma once
// A PCI function's host address as the kernel names it in sysfs: 0000:01:00.0.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfio_hook {

struct PciAddress {
    std::uint32_t domain = 0;  // above 0xffff behind Intel VMD: 10000:e1:00.0
    std::uint8_t bus = 0;
    std::uint8_t slot = 0;
    std::uint8_t function = 0;

    // Accepts "0000:01:00.0", the short "01:00.0", virsh's node-device name "pci_0000_01_00_0",
    // and domains of up to 8 hex digits (VMD's "10000:e1:00.0"); any case; nothing else.
    static std::optional<PciAddress> parse(std::string_view text);
    // Range-checked construction from numbers (libvirt's domain/bus/slot/function attributes).
    static std::optional<PciAddress> from_parts(unsigned long domain, unsigned long bus,
                                                unsigned long slot, unsigned long function);

    std::string str() const;  // always the canonical, lower-case form, at least 4 domain digits

    // For messages about input that did not parse: the forms accepted.
    static constexpr const char* accepted_forms = "0000:01:00.0, 01:00.0 or pci_0000_01_00_0";
    auto operator<=>(const PciAddress&) const = default;
};

// Two functions of one device (01:00.0 and its audio 01:00.1).
bool same_slot(const PciAddress& a, const PciAddress& b);

}  // namespace vfio_hook
