#pragma once
// The host's console on a GPU that goes to a VM (single-GPU setups): what of it to take before the
// moves, and how to give it back after the GPU is home. Facts it relies on (measured on 6.1 and
// 7.2, see notes/libvirt-and-sysfs.md): once fbcon is unbound from a vtconsole, writing 1 to its
// `bind` succeeds and changes nothing; fbcon comes back when a framebuffer registers (the GPU's
// own driver binding back) or through the FBIOPUT_CON2FBMAP ioctl. A firmware framebuffer's
// platform device may be gone after a native driver took the GPU (sysfb_disable).

#include <optional>
#include <string>
#include <vector>

#include "core/state_record.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"
#include "core/problem.hpp"

namespace vfio_hook {

// What of the console this GPU carries now: every vtconsole fbcon serves, and the firmware
// framebuffer inside its BAR (found from /proc/iomem and the platform device's driver link).
std::vector<ConsoleStep> console_steps_on(const HostPaths& paths, KernelInterface& kernel, const PciAddress& gpu);

// Takes one step (unbinds fbcon from the vtconsole, detaches the firmware framebuffer); the
// problem, or none.
Problem take_console_step(const HostPaths& paths, KernelInterface& kernel, const ConsoleStep& step);

// Gives one step back and verifies it (fbcon's bind reads 1 again). The problem, or none.
Problem give_back_console_step(const HostPaths& paths, KernelInterface& kernel,
                               const ConsoleStep& step);

}  // namespace vfio_hook
