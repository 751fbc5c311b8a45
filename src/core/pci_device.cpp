#include "core/pci_device.hpp"

#include <cstdio>

namespace vfio_hook {

bool is_kernel_driver_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '.') return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool PciDevice::is_bridge() const {
    unsigned class_subclass = class_code >> 8;
    return class_subclass == 0x0604 || class_subclass == 0x0607 || class_subclass == 0x0609;
}

bool PciDevice::is_host_bridge() const { return (class_code >> 8) == 0x0600; }
bool PciDevice::is_display() const { return (class_code >> 16) == 0x03; }
bool PciDevice::is_storage() const { return (class_code >> 16) == 0x01; }

bool PciDevice::is_host_critical() const {
    unsigned class_subclass = class_code >> 8;
    if (is_storage() || is_host_bridge() || class_subclass == 0x0601 || class_subclass == 0x0c05 ||
        class_subclass == 0x0580)  // 0x0580: the chipset's PMC / memory controller
        return true;
    // On the root bus, "other serial bus" (0x0c80) is the chipset's SPI flash controller, bound or
    // not (intel-spi is often not loaded); a GPU's UCSI function of that class sits behind a port.
    if (class_subclass == 0x0c80 && address.bus == 0) return true;
    // SPI flash controllers have no class of their own (0x0c80, "other serial bus"): their
    // drivers tell (intel-spi, intel_spi_pci, spi-intel-pci, …).
    return driver && driver->find("spi") != std::string::npos;
}

bool PciDevice::same_slot(const PciAddress& other) const {
    return vfio_hook::same_slot(address, other);
}

std::string PciDevice::kind() const {
    switch (class_code >> 8) {
        case 0x0300: return "VGA controller";
        case 0x0302: return "3D controller";
        case 0x0380: return "display controller";
        case 0x0403: return "audio device";
        case 0x0c03: return "USB controller";
        case 0x0c80: return "serial bus controller";
        case 0x0600: return "host bridge";
        case 0x0601: return "ISA bridge";
        case 0x0c05: return "SMBus controller";
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
