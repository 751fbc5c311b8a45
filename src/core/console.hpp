#pragma once
// Which PCI device the host's console is drawn on, beyond boot_vga: the firmware framebuffer
// (efifb, vesafb, simplefb and their DRM successors) lives inside a GPU's memory BAR, and fbcon
// draws the virtual consoles on /dev/fb0. Taking that GPU away blanks the host's console.

#include <array>
#include <map>
#include <string>
#include <string_view>

#include "core/pci_address.hpp"

namespace vfio_hook {

// The one list of firmware framebuffers, as the kernel names them in three different places
// (read in drivers/firmware/sysfb.c and sysfb_simplefb.c, drivers/video/fbdev/efifb.c, vesafb.c
// and simplefb.c, drivers/gpu/drm/sysfb/{efidrm,vesadrm,simpledrm}.c of 7.x and
// drivers/gpu/drm/tiny/simpledrm.c of 6.1 and 6.12):
// - `platform_driver`: the platform driver's name, what /sys/bus/platform/drivers/ holds and
//   where `unbind` is written. Each fbdev driver and its DRM successor register the same name,
//   so only one of the two is loaded: efifb and efidrm are both "efi-framebuffer".
// - the platform device sysfb creates for it is that name with id 0: "efi-framebuffer.0"
//   (platform_device_alloc(name, 0)); the device's `driver` link names the platform driver.
// - `regions`: what the drivers call the framebuffer's memory in /proc/iomem, nested under the
//   GPU's BAR: their own names (request_mem_region(…, "efifb"), devm_request_mem_region(…,
//   drv->name) with the DRM driver's name "efidrm"), which are also their module names.
//   simple-framebuffer.0 also has a resource of its own, "BOOTFB" (sysfb_simplefb.c), with
//   simplefb's or simpledrm's region below it.
struct FirmwareFramebufferDriver {
    std::string_view platform_driver;
    std::array<std::string_view, 2> regions;  // fbdev driver, DRM driver
};
inline constexpr std::array<FirmwareFramebufferDriver, 3> firmware_framebuffer_drivers{{
    {"efi-framebuffer", {"efifb", "efidrm"}},
    {"vesa-framebuffer", {"vesafb", "vesadrm"}},
    {"simple-framebuffer", {"simplefb", "simpledrm"}},
}};

// A platform driver name (a `driver` link's target) that drives a firmware framebuffer.
bool is_firmware_framebuffer_driver(std::string_view platform_driver);

// A /proc/iomem region name that a firmware framebuffer owns: a driver's region, BOOTFB, or a
// resource that platform_device_add named after its device ("simple-framebuffer.0").
bool is_firmware_framebuffer_region(std::string_view name);

// From /proc/iomem: the devices whose BARs contain a firmware framebuffer, with its region name.
std::map<PciAddress, std::string> firmware_framebuffers(std::string_view iomem);

}  // namespace vfio_hook
