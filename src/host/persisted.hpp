#pragma once
// The files of `vfio-hook persist` on the host: the manifests in /etc/vfio-hook/persist/, the
// udev rules, the modules-load.d entry and the initramfs tool's configuration (core/persist.hpp
// decides their text). Every file is written by a rename, so a crash leaves it whole or absent.

#include <filesystem>
#include <string>
#include <vector>

#include "core/persist.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

struct PersistedDevices {
    std::vector<PersistManifest> manifests;
    std::vector<std::string> unreadable;  // "FILE: why", one per manifest that does not parse
    const PersistManifest* find(const PciAddress& address) const;
};
PersistedDevices load_persisted(const HostPaths& paths);

// The initramfs tool this host has (its program under the root), or none.
InitramfsTool detect_initramfs_tool(const HostPaths& paths);

// Writes (or replaces) `relative` under the root with `text` and `mode`, through a rename.
// Creates the directories it needs. A one-line reason on failure, naming the file.
Expected<bool> write_config_file(const HostPaths& paths, const std::filesystem::path& relative,
                                 const std::string& text, unsigned mode = 0644);
// Removes `relative` under the root; absent is fine. A one-line reason on failure.
Expected<bool> remove_config_file(const HostPaths& paths, const std::filesystem::path& relative);

// Rewrites the files every persisted device shares (vfio-pci in modules-load.d, the initramfs
// configuration) for the addresses now persisted, or removes them when there are none. What it
// did, one line each.
Expected<std::vector<std::string>> write_shared_boot_files(const HostPaths& paths, InitramfsTool tool,
                                                           const std::vector<PciAddress>& persisted);

}  // namespace vfio_hook
