#pragma once
// The record of which devices an owner (a domain, by UUID, or a manual `vfio-hook bind`) took
// from which driver: written before the first sysfs write, deleted once every device is home.
// It is what lets release, recover and the next prepare put a device back after a crash.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "core/pci_device.hpp"

namespace vfio_hook {

// Owner of the devices moved by `vfio-hook bind` rather than by a domain.
inline constexpr std::string_view manual_owner = "manual";

struct RecordedDevice {
    PciAddress address;
    std::optional<DriverName> original_driver;  // nullopt: it had none and stays driverless
    std::optional<GroupId> group;
    // A driver_override that was set before we came (driverctl's persistent override, say): put
    // back after the device is home. nullopt: there was none.
    std::optional<DriverName> original_override = std::nullopt;
};

struct StateRecord {
    std::string owner;        // a canonical domain UUID, or manual_owner; also the file name
    std::string domain_name;  // for messages only: never part of a path
    std::vector<RecordedDevice> devices;

    const RecordedDevice* find(const PciAddress& address) const;
    std::string owner_label() const;  // "domain 'win11' (uuid …)" or "manual bind"
};

std::string serialize_record(const StateRecord& record);
// `source` names the file in errors.
Expected<StateRecord> parse_record(std::string_view text, const std::string& source);
bool is_valid_owner(std::string_view owner);

}  // namespace vfio_hook
