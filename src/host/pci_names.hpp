#pragma once
// Human names for PCI devices, as lspci shows them: the NVIDIA driver's "Model:" line where it
// reports one, else the vendor and device lines of the system's pci.ids (pciutils'
// /usr/share/misc/pci.ids, or hwdata's /usr/share/hwdata/pci.ids) under the root.

#include <optional>
#include <string>

#include "core/pci_device.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// Where pci.ids is looked for: under this root. The admin commands set it once (as they set up
// logging); the hook never does, so it never reads a megabyte of names it does not print.
void use_pci_names_under(const HostPaths& paths);

// "NVIDIA Corporation AD102 [GeForce RTX 4090]"; nullopt when no source names it.
std::optional<std::string> device_name(const PciDevice& device);
// The name after two spaces, for a table row; "" when unnamed.
std::string name_column(const PciDevice& device);

}  // namespace vfio_hook
