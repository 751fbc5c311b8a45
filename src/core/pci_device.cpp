#include "core/pci_device.hpp"

#include <cstdio>

namespace vfio_hook {

bool PciDevice::is_bridge() const {
    unsigned class_subclass = class_code >> 8;
    return class_subclass == 0x0604 || class_subclass == 0x0607 || class_subclass == 0x0609;
}

bool PciDevice::is_host_bridge() const { return (class_code >> 8) == 0x0600; }
bool PciDevice::is_display() const { return (class_code >> 16) == 0x03; }
bool PciDevice::is_storage() const { return (class_code >> 16) == 0x01; }

std::string PciDevice::kind() const {
    switch (class_code >> 8) {
        case 0x0300: return "VGA controller";
        case 0x0302: return "3D controller";
        case 0x0380: return "display controller";
        case 0x0403: return "audio device";
        case 0x0c03: return "USB controller";
        case 0x0c80: return "serial bus controller";
        case 0x0600: return "host bridge";
        case 0x0604: return "PCI bridge";
        default: break;
    }
    switch (class_code >> 16) {
        case 0x01: return "storage controller";
        case 0x02: return "network controller";
        case 0x03: return "display controller";
        case 0x04: return "multimedia device";
        case 0x06: return "bridge";
        case 0x0c: return "serial bus controller";
        default: return "PCI device";
    }
}

std::string PciDevice::vendor_device() const {
    char text[16];
    std::snprintf(text, sizeof text, "%04x:%04x", vendor, device);
    return text;
}

const PciDevice* BusSnapshot::find(const PciAddress& address) const {
    auto it = devices.find(address);
    return it == devices.end() ? nullptr : &it->second;
}

}  // namespace vfio_hook
