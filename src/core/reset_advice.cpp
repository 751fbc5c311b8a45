#include "core/reset_advice.hpp"

#include <algorithm>
#include <array>

namespace vfio_hook {
namespace {

constexpr std::uint16_t amd = 0x1002;

// gnif/vendor-reset src/device-db.h, as read in December 2026: the exact IDs, not ranges. An ID
// between two listed ones is not covered: vendor-reset does not take it, the kernel then offers
// no device_specific method for it, and the advice below could never be followed.
constexpr std::array<std::uint16_t, 75> vendor_reset_ids{
    // Polaris 10
    0x67C0, 0x67C1, 0x67C2, 0x67C4, 0x67C7, 0x67D0, 0x67DF, 0x67C8, 0x67C9, 0x67CA, 0x67CC, 0x67CF, 0x6FDF,
    // Polaris 11
    0x67E0, 0x67E3, 0x67E8, 0x67EB, 0x67EF, 0x67FF, 0x67E1, 0x67E7, 0x67E9,
    // Polaris 12
    0x6980, 0x6981, 0x6985, 0x6986, 0x6987, 0x6995, 0x6997, 0x699F,
    // Vega 10
    0x6860, 0x6861, 0x6862, 0x6863, 0x6864, 0x6867, 0x6868, 0x6869, 0x686A, 0x686B, 0x686C, 0x686D, 0x686E,
    0x686F, 0x687F,
    // Vega 20
    0x66A0, 0x66A1, 0x66A2, 0x66A3, 0x66A4, 0x66A7, 0x66AF, 0x164C,
    // Navi 10 (and the APUs device-db.h files with it)
    0x7310, 0x7312, 0x7318, 0x7319, 0x731A, 0x731B, 0x731E, 0x731F, 0x15BF, 0x15DD, 0x15DE, 0x15E7, 0x1636,
    0x1638,
    // Navi 14, Navi 12, Navi 23, MI100 (Arcturus)
    0x7340, 0x7341, 0x7347, 0x734F, 0x7360, 0x7362, 0x73FF, 0x738C,
};

}  // namespace

bool vendor_reset_covers(std::uint16_t vendor, std::uint16_t device) {
    if (vendor != amd || device == 0) return false;
    return std::find(vendor_reset_ids.begin(), vendor_reset_ids.end(), device) != vendor_reset_ids.end();
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
