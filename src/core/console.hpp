#pragma once
// Which PCI device the host's console is drawn on, beyond boot_vga: the firmware framebuffer
// (efifb, vesafb, simplefb) lives inside a GPU's memory BAR, and fbcon draws the virtual
// consoles on /dev/fb0. Taking that GPU away blanks the host's console.

#include <map>
#include <string>
#include <string_view>

#include "core/pci_address.hpp"

namespace vfio_hook {

// From /proc/iomem: the devices whose BARs contain a firmware framebuffer, with its name.
std::map<PciAddress, std::string> firmware_framebuffers(std::string_view iomem);

}  // namespace vfio_hook
