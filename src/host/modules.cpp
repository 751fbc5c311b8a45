#include "host/modules.hpp"

#include <filesystem>

#include "core/pci_device.hpp"
#include "core/problem.hpp"

namespace vfio_hook {

Problem ensure_vfio_pci(const HostPaths& paths, KernelInterface& kernel) {
    std::error_code error;
    auto driver_dir = paths.pci_driver(std::string(vfio_pci));
    if (std::filesystem::exists(driver_dir, error)) return {};
    // driver_override + drivers_probe do not load modules, so load it as libvirt does.
    if (kernel.load_module("vfio-pci") && std::filesystem::exists(driver_dir, error))
        return {};
    return "the vfio-pci driver is not available and `modprobe vfio-pci` failed; install the "
           "kernel's vfio modules (or build CONFIG_VFIO_PCI) and check `modprobe vfio-pci`";
}

}  // namespace vfio_hook
