#pragma once
// Reads what the AMD reset-bug warning needs: whether vendor-reset is loaded (core/reset_advice.hpp).

#include <string>
#include <vector>

#include "core/pci_device.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// One warning line per GPU of `devices` that vendor-reset covers but that is not set up for it.
std::vector<std::string> reset_bug_warnings(const HostPaths& paths, const std::vector<const PciDevice*>& devices);

}  // namespace vfio_hook
