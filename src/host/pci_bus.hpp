#pragma once
// Reads the PCI bus from sysfs into the core's snapshot types.

#include <optional>
#include <vector>

#include "core/pci_device.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// `kernel` does the reads whose handlers can block (the NVIDIA driver's proc files, vtconsole).
std::optional<PciDevice> read_device(const HostPaths& paths, KernelInterface& kernel,
                                     const PciAddress& address);
std::optional<DriverName> current_driver(const HostPaths& paths, const PciAddress& address);
std::vector<PciAddress> list_devices(const HostPaths& paths);
std::vector<PciAddress> group_members(const HostPaths& paths, GroupId group);
bool iommu_enabled(const HostPaths& paths);

// The wanted devices and every member of their IOMMU groups.
BusSnapshot read_bus(const HostPaths& paths, KernelInterface& kernel,
                     const std::vector<PciAddress>& wanted);
// Every device on the bus (for `status`).
BusSnapshot read_whole_bus(const HostPaths& paths, KernelInterface& kernel);

}  // namespace vfio_hook
