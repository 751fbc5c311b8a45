#pragma once
// The decisions, as pure functions of plain data: which devices a domain's start moves to
// vfio-pci and what forbids it; which devices a release gives back and which it must leave.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/domain_xml.hpp"
#include "core/kernel_log.hpp"
#include "core/pci_device.hpp"
#include "core/refusal.hpp"
#include "core/settings.hpp"
#include "core/state_record.hpp"
#include "core/systemd_unit.hpp"

namespace vfio_hook {

// A process with a device node open (/dev/dri/card1, /dev/snd/controlC0, /dev/vfio/6, ...).
struct Holder {
    Holder() = default;
    Holder(int pid_, std::string command_, std::string node_, SystemdUnit unit_ = {})
        : pid(pid_), command(std::move(command_)), node(std::move(node_)), unit(std::move(unit_)) {}

    int pid = 0;
    std::string command;
    std::string node;
    SystemdUnit unit;  // what runs it, from /proc/PID/cgroup: the fix names it
};

struct Move {
    PciAddress address;
    std::optional<DriverName> from;  // the driver to give it back to (nullopt: none)
    std::optional<GroupId> group;
    bool requested = false;          // named by the domain (false: a group companion)
    bool already_on_vfio = false;    // ours from an earlier, unfinished run: record, don't write
};

struct [[nodiscard]] PreparePlan {
    std::vector<Move> moves;                   // in execution order
    std::vector<PciAddress> left_on_vfio;      // on vfio-pci before us and nobody's: not recorded
    std::vector<PciAddress> takes_console;     // moves that take the host's console (allowed)
    std::vector<PciAddress> left_alone;        // driverless members of another slot: not moved
    std::vector<Refusal> refusals;
    std::vector<Refusal> warnings;
    // The kernel log's last sequence number when prepare looked: the power guard names the
    // stuck-device lines logged after it (core/stuck_device.hpp).
    std::uint64_t kernel_log_mark = 0;

    bool refused() const { return !refusals.empty(); }
    bool has_writes() const;
};

struct PrepareInput {
    const Domain& domain;
    const std::string& owner;  // whose record the moves go into: the domain UUID, or "manual"
    const BusSnapshot& bus;
    const std::vector<Holder>& holders;
    const std::vector<StateRecord>& records;  // every record on the host, this domain's included
    const std::vector<KernelLogLine>& kernel_log;
    const Settings& settings;
};

PreparePlan plan_prepare(const PrepareInput& input);

// The fix for an IOMMU that is off: the firmware, then the kernel parameter for each boot loader.
// AMD's IOMMU is on by default once the firmware enables it (the kernel takes no amd_iommu=on).
inline constexpr std::string_view iommu_fix =
    "enable VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup; on Intel also boot with intel_iommu=on "
    "(GRUB: add it to GRUB_CMDLINE_LINUX in /etc/default/grub, then `update-grub`; systemd-boot: add it to "
    "/etc/kernel/cmdline, then `kernel-install add $(uname -r) /boot/vmlinuz-$(uname -r)`); AMD needs no "
    "parameter; then reboot";

struct Restore {
    PciAddress address;
    std::optional<DriverName> to;
    std::optional<DriverName> override_to_restore;
};

struct [[nodiscard]] ReleasePlan {
    std::vector<Restore> restores;  // in execution order
    std::vector<Refusal> kept;      // left where they are, with why
    std::vector<PciAddress> gone;   // no longer on the bus: nothing to do, drop from the record
};

// `force` skips the in-use check (for the admin's `restore --force`; the unbind may then hang
// until the user of the device lets go, which the writer's deadline reports).
ReleasePlan plan_release(const StateRecord& record, const BusSnapshot& bus,
                         const std::vector<Holder>& holders, bool force = false);

std::string vfio_group_node(GroupId group);  // "/dev/vfio/6"

}  // namespace vfio_hook
