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

// One BAR's size: `bit` as the kernel's resourceN_resize bitmap counts (2^bit MB).
struct BarSize {
    unsigned bar = 0;
    unsigned bit = 0;
    bool operator==(const BarSize&) const = default;
};

struct RecordedDevice {
    PciAddress address;
    std::optional<DriverName> original_driver;  // nullopt: it had none and stays driverless
    std::optional<GroupId> group;
    // A driver_override that was set before we came (driverctl's persistent override, say): put
    // back after the device is home. nullopt: there was none.
    std::optional<DriverName> original_override = std::nullopt;
    // Its runtime power settings before we came (`power/control` on|auto, `d3cold_allowed` 0|1),
    // put back after it is home (host/power_guard.hpp). nullopt: the kernel had no such file, or
    // the record was written before the power guard existed.
    std::optional<std::string> power_control = std::nullopt;
    std::optional<std::string> d3cold_allowed = std::nullopt;
    // The VFIO driver it was bound to when not vfio-pci: a variant (issue 26, point 6), so that a
    // failed give-back puts it back there. nullopt: vfio-pci.
    std::optional<DriverName> vfio_driver = std::nullopt;
    // Each resizable BAR the VM's `rebar` setting resized, with its size before (issue 26, point
    // 5): written back while it has no driver, before its host driver binds again.
    std::vector<BarSize> bar_sizes = {};

    DriverName vfio_driver_name() const { return vfio_driver.value_or(std::string(vfio_pci)); }
};

// A piece of the host's console taken away with a GPU (single-GPU setups), to be put back after
// the GPU is home: fbcon unbound from a virtual console, or a firmware framebuffer (efifb,
// simpledrm) detached from its platform driver.
struct ConsoleStep {
    enum class Kind { vtconsole, firmware_framebuffer };
    PciAddress gpu;      // the GPU whose console this was
    Kind kind = Kind::vtconsole;
    std::string name;    // "vtcon1", "efi-framebuffer.0"
    std::string driver;  // firmware framebuffer: the platform driver it was bound to (efifb)

    std::string describe() const;  // "fbcon on vtcon1", "efi-framebuffer.0 (efifb)"
};

struct StateRecord {
    std::string owner;        // a canonical domain UUID, or manual_owner; also the file name
    std::string domain_name;  // for messages only: never part of a path
    std::vector<RecordedDevice> devices;
    std::vector<ConsoleStep> console;  // in the order taken; given back in reverse
    // The kernel log's sequence number when the prepare began: release names the lines since
    // then that say a device is stuck. 0 (a record from before issue 26): only the release's own.
    std::uint64_t kernel_log_mark = 0;

    const RecordedDevice* find(const PciAddress& address) const;
    std::string owner_label() const;  // "domain 'win11' (uuid …)" or "manual bind"
};

std::string serialize_record(const StateRecord& record);
// `source` names the file in errors.
Expected<StateRecord> parse_record(std::string_view text, const std::string& source);
bool is_valid_owner(std::string_view owner);

}  // namespace vfio_hook
