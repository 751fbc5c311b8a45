#include "core/reset_advice.hpp"

#include <array>

namespace vfio_hook {
namespace {

constexpr std::uint16_t amd = 0x1002;

struct IdRange {
    std::uint16_t first;
    std::uint16_t last;
};

// gnif/vendor-reset src/device-db.h, as read in December 2026 (shared/notes/real-gpus.md).
constexpr std::array<IdRange, 19> vendor_reset_ids{{
    {0x67C0, 0x67FF}, {0x6FDF, 0x6FDF}, {0x6980, 0x699F},  // Polaris 10/11/12
    {0x6860, 0x687F},                                      // Vega 10
    {0x66A0, 0x66AF}, {0x164C, 0x164C},                    // Vega 20
    {0x7310, 0x731F},                                      // Navi 10
    {0x15BF, 0x15BF}, {0x15DD, 0x15DE}, {0x15E7, 0x15E7}, {0x1636, 0x1636}, {0x1638, 0x1638},  // APUs
    {0x7340, 0x7341}, {0x7347, 0x7347}, {0x734F, 0x734F},  // Navi 14
    {0x7360, 0x7360}, {0x7362, 0x7362},                    // Navi 12
    {0x73FF, 0x73FF},                                      // Navi 23
    {0x738C, 0x738C},                                      // MI100
}};

}  // namespace

bool vendor_reset_covers(std::uint16_t vendor, std::uint16_t device) {
    if (vendor != amd || device == 0) return false;
    for (const auto& range : vendor_reset_ids) {
        if (device >= range.first && device <= range.last) return true;
    }
    return false;
}

std::optional<std::string> reset_bug_warning(const PciDevice& device, bool vendor_reset_loaded) {
    if (!device.is_display() || !vendor_reset_covers(device.vendor, device.device)) return std::nullopt;
    bool device_specific_first = device.reset_methods.starts_with("device_specific");
    if (vendor_reset_loaded && device_specific_first) return std::nullopt;
    std::string missing = !vendor_reset_loaded ? "vendor-reset is not loaded" : "";
    if (!device_specific_first) {
        missing += (missing.empty() ? "" : " and ") + std::string("its reset_method is '") +
                   (device.reset_methods.empty() ? "" : device.reset_methods) + "', not device_specific";
    }
    return device.address.str() + ": this AMD GPU (" + device.vendor_device() +
           ") has the AMD reset bug and may not come back from a VM: " + missing +
           "; install gnif/vendor-reset, load it at boot (vendor-reset in /etc/modules-load.d/) and set "
           "`echo device_specific > /sys/bus/pci/devices/" + device.address.str() +
           "/reset_method` (its udev rule does)";
}

}  // namespace vfio_hook
