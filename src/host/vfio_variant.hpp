#pragma once
// VFIO variant drivers on the host (issue 26, point 6): reads what core/vfio_driver.hpp chooses
// from (the device's `modalias`, the running kernel's modules.alias) and gets the chosen driver
// loaded, as libvirt does before it binds by driver_override.

#include <optional>
#include <string>

#include "core/expected.hpp"
#include "core/vfio_driver.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// /lib/modules/$(uname -r)/modules.alias under the root; "" when absent.
std::string read_modules_alias(const HostPaths& paths);

// The choice for one device (`model`: its hostdev's <driver model>); `modules_alias` as read above.
VfioDriverChoice vfio_driver_for(const HostPaths& paths, const PciAddress& address,
                                 const std::optional<std::string>& model, const std::string& modules_alias);

// The chosen driver's name under /sys/bus/pci/drivers, its module loaded first when it is not
// there (modprobe, as libvirt does; names from modules.alias are module names, underscores, and
// the directory may spell them with dashes). An error naming the module and the fix otherwise.
Expected<DriverName> load_vfio_driver(const HostPaths& paths, KernelInterface& kernel, const VfioDriverChoice& choice);

}  // namespace vfio_hook
