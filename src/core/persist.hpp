#pragma once
// `vfio-hook persist`: what it writes so that a device goes to vfio-pci at every boot, by its
// address (never by vendor:device ID, which would also take an identical second card), and how
// each write is undone. Pure: the text of every file, decided here; src/host/persisted.* writes.
//
// The mechanism is driverctl's: a udev rule sets the device's driver_override to vfio-pci when
// the device appears, before udev's 80-drivers.rules loads a driver for it. A driver that is
// already loaded when the device appears (a twin GPU's, or one loaded in the initramfs) binds it
// in the kernel before any rule runs, so the rule also runs `vfio-hook persist-apply ADDRESS`,
// which takes it off that driver again (unbind, then drivers_probe, as driverctl's
// set-override does). The initramfs carries the rules and vfio-pci, so that a GPU driver loaded
// there finds the device already claimed.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "core/pci_address.hpp"

namespace vfio_hook {

// One persisted device: the record persist writes first and unpersist removes last, so that a
// crash between the writes leaves a record naming every file that may exist.
struct PersistManifest {
    PciAddress address;
    std::optional<std::string> driver_before;  // where unpersist sends it when no record says
    std::vector<std::filesystem::path> files;  // absolute, as on the host (under the root)

    std::string serialise() const;
    static Expected<PersistManifest> parse(const std::string& text);
};

enum class InitramfsTool { none, initramfs_tools, dracut, mkinitcpio };
std::string initramfs_tool_name(InitramfsTool tool);

// Where each file goes, relative to the host's root.
std::filesystem::path persist_manifest_path(const PciAddress& address);
std::filesystem::path persist_rule_path(const PciAddress& address);
inline const std::filesystem::path persist_manifest_dir = "etc/vfio-hook/persist";
inline const std::filesystem::path persist_modules_load_path = "etc/modules-load.d/vfio-hook.conf";
std::optional<std::filesystem::path> initramfs_config_path(InitramfsTool tool);
// A root-relative path as the host names it: "etc/x" -> "/etc/x".
inline std::string on_host(const std::filesystem::path& relative) {
    return (std::filesystem::path("/") / relative).string();
}

// The udev rule for one address. `binary` is the absolute path of this vfio-hook.
std::string persist_udev_rule(const PciAddress& address, const std::string& binary);
// What makes vfio-pci load at boot (systemd-modules-load).
std::string persist_modules_load();
// The initramfs tool's configuration for every persisted address (empty: none to write).
std::string initramfs_config(InitramfsTool tool, const std::vector<PciAddress>& persisted);
// The command that rebuilds the initramfs of every installed kernel (empty for none).
std::vector<std::string> initramfs_update_command(InitramfsTool tool);

}  // namespace vfio_hook
