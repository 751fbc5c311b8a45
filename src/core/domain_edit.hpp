#pragma once
// `vfio-hook assign`/`unassign` as pure functions: a domain definition (XML) in, the new
// definition out, with the list of what was added and removed (the messages and the diff come
// from that). Nothing here talks to libvirt.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "core/pci_address.hpp"

namespace vfio_hook {

struct DomainEdit {
    std::string before;                 // the definition as given, laid out the way `xml` is
    std::string xml;                    // the new definition
    std::vector<std::string> added;     // "hostdev 0000:01:00.0"
    std::vector<std::string> removed;   // "sound ich9", "graphics spice", ...
    std::vector<std::string> warnings;  // "no way in once headless: ..."
};

// Adds a <hostdev mode='subsystem' type='pci' managed='no'> (marked ours with a user alias
// ua-vfio-hook-…) for each address the definition does not already hold. With `headless`, also
// removes the emulated display and sound in an order libvirt accepts: sound and audio first,
// then graphics, video, SPICE channels and SPICE USB redirection.
Expected<DomainEdit> assign_devices(std::string_view xml, const std::vector<PciAddress>& devices, bool headless);

// Removes our hostdevs (all of them, or those at `only`); with `restore_from`, puts back the
// display and sound devices of that earlier definition (a backup taken before --headless).
Expected<DomainEdit> unassign_devices(std::string_view xml, const std::optional<std::vector<PciAddress>>& only,
                                      const std::optional<std::string>& restore_from);

// Whether a definition holds any of the emulated display and sound parts --headless takes out.
bool has_display(std::string_view xml);

// A unified diff (as `diff -u` prints it) of two texts, line by line.
std::string unified_diff(std::string_view before, std::string_view after, const std::string& name_before,
                         const std::string& name_after);

}  // namespace vfio_hook
