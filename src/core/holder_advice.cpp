#include "core/holder_advice.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace vfio_hook {
namespace {

// /proc/PID/comm is cut at 15 characters; these all fit.
constexpr std::array<std::string_view, 7> wlroots_compositors{"sway", "labwc", "wayfire", "river", "cage", "dwl", "hikari"};

// A unit name as one shell word: systemd keeps its escapes (`\x2d`) in the names a cgroup path
// shows, and a shell would eat the backslash of a bare one. Plain names stay bare.
std::string unit_word(const std::string& name) {
    bool plain = std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '@' || c == '.' || c == '_' || c == '-' || c == ':';
    });
    if (plain && !name.empty()) return name;
    std::string quoted = "'";
    for (char c : name) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

std::string by_path_card(const PciDevice& device) { return "/dev/dri/by-path/pci-" + device.address.str() + "-card"; }

// KWin, wlroots and aquamarine take the GPUs to KEEP, as a colon-separated list (primary
// first): the by-path name holds colons itself, so the list names the others by /dev/dri/cardN.
std::string keep_list_advice(const std::string& who, const std::string& variable, const PciDevice& device) {
    return who + " drives this GPU: set " + variable +
           " in its session's environment to the GPUs it may keep (colon-separated /dev/dri/cardN, the "
           "primary first), leaving out this one (" + by_path_card(device) +
           "), then log out and in again (a running session keeps it)";
}

}  // namespace

std::string compositor_of(const std::string& command) {
    if (command == "kwin_wayland") return "KWin";
    if (command == "gnome-shell") return "GNOME Shell";
    if (command == "Xorg" || command == "X") return "Xorg";
    if (command == "Hyprland") return "Hyprland";
    if (command == "niri") return "niri";
    for (auto name : wlroots_compositors) {
        if (command == name) return command;
    }
    return "";
}

std::optional<std::string> compositor_advice(const std::string& command, const PciDevice& device) {
    std::string who = compositor_of(command);
    if (who.empty() || device.boot_vga || !device.console.empty()) return std::nullopt;
    if (who == "KWin") return keep_list_advice(who, "KWIN_DRM_DEVICES", device);
    if (who == "Hyprland") return keep_list_advice(who, "AQ_DRM_DEVICES", device);
    if (who == "GNOME Shell")
        return "GNOME Shell (mutter) drives this GPU: tag it for mutter to ignore with the udev rule "
               "`SUBSYSTEM==\"drm\", KERNELS==\"" + device.address.str() +
               "\", TAG+=\"mutter-device-ignore\"` in /etc/udev/rules.d/61-mutter-ignore-" +
               device.address.str() + ".rules and `udevadm trigger --subsystem-match=drm`, then log out and in "
               "again (a running session keeps it)";
    if (who == "niri")
        return "niri drives this GPU: add `debug { ignore-drm-device \"" + by_path_card(device) +
               "\"; }` to its config.kdl (niri 25.11 or later), then log out and in again";
    // Xorg: not in shared/notes/real-gpus.md. xorg.conf(5): with AutoAddGPU off the server adds
    // no GPU screens besides its own; whether its platform probe still keeps the card open is
    // unverified (a BusID-pinned Device section is the other known way).
    if (who == "Xorg")
        return "Xorg drives this GPU as a secondary one: add a file to /etc/X11/xorg.conf.d/ with `Section "
               "\"ServerFlags\"` `Option \"AutoAddGPU\" \"off\"` `EndSection` (X then adds no GPU besides its "
               "screen's), then restart the X session";
    return keep_list_advice(who + " (wlroots)", "WLR_DRM_DEVICES", device);
}

std::string holder_fix(const Holder& holder, const PciDevice& device) {
    if (auto advice = compositor_advice(holder.command, device)) return *advice + "; then start the VM again";
    const SystemdUnit& unit = holder.unit;
    switch (unit.kind) {
        case SystemdUnit::Kind::system_service:
            return "stop its service: `systemctl stop " + unit_word(unit.name) + "`, then start the VM again";
        case SystemdUnit::Kind::user_service:
            if (unit.user.empty())
                return "stop its user service as uid " + std::to_string(unit.uid) + ": `systemctl --user stop " +
                       unit_word(unit.name) + "`, then start the VM again";
            return "stop its user service (user " + unit.user + ", uid " + std::to_string(unit.uid) +
                   "): `systemctl --user -M " + unit_word(unit.user + "@") + " stop " + unit_word(unit.name) + "`, then start the VM again";
        case SystemdUnit::Kind::session:
            return "close that program, or log out of session " + unit.name + " (uid " + std::to_string(unit.uid) +
                   "; for the host's own display: stop the display manager), then start the VM again";
        case SystemdUnit::Kind::none: break;
    }
    return "close that program (or stop the display manager/sound server using it), then start the VM again";
}

}  // namespace vfio_hook
