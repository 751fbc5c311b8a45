#pragma once
// A reason not to do something, as data: what, about which device, and how the user fixes it.
// Rendered to one line at the edge.

#include <optional>
#include <string>
#include <vector>

#include "core/pci_address.hpp"

namespace vfio_hook {

struct Refusal {
    std::optional<PciAddress> address;
    std::string reason;
    std::string fix;  // may be empty

    std::string line() const;  // "0000:01:00.0: <reason>; <fix>"
};

std::string render_lines(const std::vector<Refusal>& refusals);

}  // namespace vfio_hook
