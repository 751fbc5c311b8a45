#pragma once
// The AMD reset bug: GPUs that do not come back from a VM without gnif/vendor-reset, and the
// warning that names the fix (issue 26, point 4).

#include <cstdint>
#include <optional>
#include <string>

#include "core/pci_device.hpp"

namespace vfio_hook {

// Whether gnif/vendor-reset's device table (src/device-db.h: Polaris, Vega 10/20, Navi 10/12/14,
// Navi 23, MI100 and a few APUs) lists this AMD device.
bool vendor_reset_covers(std::uint16_t vendor, std::uint16_t device);

// A warning for a listed GPU when vendor-reset is not loaded or the device's `reset_method` does
// not start with device_specific (on 5.15+ kernels vendor-reset resets only through that method;
// its udev rule sets it). nullopt: nothing to say.
std::optional<std::string> reset_bug_warning(const PciDevice& device, bool vendor_reset_loaded);

}  // namespace vfio_hook
