#pragma once
// Makes sure the vfio-pci driver is there before anything moves to it.

#include <optional>
#include <string>

#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"
#include "core/problem.hpp"

namespace vfio_hook {

// None when vfio-pci is present (built in, already loaded, or loaded now), else the problem.
Problem ensure_vfio_pci(const HostPaths& paths, KernelInterface& kernel);

}  // namespace vfio_hook
