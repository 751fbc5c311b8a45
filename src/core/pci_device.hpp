#pragma once
// What the host knows about one PCI function and its IOMMU group at one instant: a snapshot read
// from sysfs by the boundary, planned on by the core.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/pci_address.hpp"

namespace vfio_hook {

using DriverName = std::string;
using GroupId = unsigned;

inline constexpr std::string_view vfio_pci = "vfio-pci";

// A name the kernel could give a PCI driver: [A-Za-z0-9_.-], not starting with a dot. Names from
// records become path components (drivers/NAME/bind): nothing else may reach a path.
bool is_kernel_driver_name(std::string_view name);

struct VirtualFunction {
    PciAddress address;
    std::optional<DriverName> driver;
};

struct PciDevice {
    PciAddress address;
    std::uint16_t vendor = 0;
    std::uint16_t device = 0;
    std::uint32_t class_code = 0;  // 0xCCSSPP: class, subclass, programming interface
    std::optional<DriverName> driver;
    std::optional<GroupId> iommu_group;
    bool boot_vga = false;
    std::string console;  // what of the host's console it drives ("" when nothing): see console.hpp
    std::vector<std::string> device_nodes;  // /dev/dri/card1, /dev/snd/controlC0, /dev/nvidia0, ...
    // Each node's device number (makedev(major, minor)) where sysfs tells it: holders are found
    // by number, so a container that names the node otherwise is still seen.
    std::map<std::string, std::uint64_t> node_numbers;
    std::string power_state;                // D0, D3hot, ... (empty when the kernel has no file)
    std::string reset_methods;              // "flr bus", empty when the device has no reset
    std::string model;                      // the NVIDIA driver's "Model:" line ("" when it has none)
    std::vector<VirtualFunction> virtual_functions;  // SR-IOV VFs enabled on this function
    std::vector<std::string> unreadable;  // reads its driver did not answer in time ("FILE did not …")
    // `vfio-dev/vfioN` exists under it: any vfio_pci_core driver has it, vfio-pci or a variant
    // (nvgrace-gpu, mlx5, xe VFs …; drivers/vfio/vfio_main.c, 6.1+). libvirt's own test
    // (virpci.c): owned by VFIO is this, not a driver named vfio-pci.
    bool vfio_device = false;

    bool is_bridge() const;         // PCI-to-PCI / CardBus bridge, root port: never moved
    bool is_host_bridge() const;    // the CPU's host bridge: the host cannot live without it
    bool is_display() const;        // VGA, 3D or other display controller
    bool is_storage() const;        // mass-storage controller: the host's disks may hang off it
    // What the host cannot run without: its disks' controllers, the host bridge, the ISA/LPC
    // bridge (firmware, TPM, sensors), SMBus, the SPI flash controller (the firmware itself).
    bool is_host_critical() const;
    bool same_slot(const PciAddress& other) const;  // another function of this device's slot
    bool on_vfio() const { return (driver && *driver == vfio_pci) || vfio_device; }
    std::string kind() const;       // "VGA controller", "audio device", ... for messages
    std::string vendor_device() const;  // "10de:2684"
};

struct BusSnapshot {
    bool iommu_enabled = false;                          // any /sys/kernel/iommu_groups/N exists
    std::map<PciAddress, PciDevice> devices;             // the devices asked about and their groups
    std::map<GroupId, std::vector<PciAddress>> groups;   // members of each group read

    const PciDevice* find(const PciAddress& address) const;
};

}  // namespace vfio_hook
