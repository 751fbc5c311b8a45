#pragma once
// What to do about a process that holds a GPU's node: the fix a refusal prints, runnable as
// printed. A service is stopped through systemd (a `kill` would be undone by its restart), and a
// compositor on a secondary GPU is told the setting that makes it leave that GPU alone.

#include <optional>
#include <string>

#include "core/pci_device.hpp"
#include "core/plan.hpp"

namespace vfio_hook {

// The compositor a process name (/proc/PID/comm) belongs to, "" when none: kwin_wayland, gnome-shell
// (mutter), Xorg, Hyprland (aquamarine), niri, and the wlroots ones (sway, labwc, wayfire, river...).
std::string compositor_of(const std::string& command);

// The setting that makes that compositor leave `device` alone, with the value for it, and that
// it takes a new session (shared/notes/real-gpus.md); nullopt for a process that is no
// compositor and for the host's primary GPU (boot_vga, or the console's): that one is never
// to be taken from the compositor.
std::optional<std::string> compositor_advice(const std::string& command, const PciDevice& device);

// The fix for one holder of `device`'s node: its compositor setting, else its unit to stop
// (`systemctl stop nvidia-persistenced.service`), else the session to leave, else the program.
std::string holder_fix(const Holder& holder, const PciDevice& device);

}  // namespace vfio_hook
