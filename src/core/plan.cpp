#include "core/plan.hpp"

#include <algorithm>
#include <set>

#include "core/holder_advice.hpp"

namespace vfio_hook {
namespace {

std::vector<const Holder*> holders_of(const std::vector<Holder>& holders, const std::string& node) {
    std::vector<const Holder*> found;
    for (const auto& holder : holders) {
        if (holder.node == node) found.push_back(&holder);
    }
    return found;
}

// Who uses a device through VFIO: its group's /dev/vfio/N, or its own iommufd cdev.
std::vector<const Holder*> vfio_users(const std::vector<Holder>& holders, const PciDevice& device,
                                      GroupId group) {
    auto users = holders_of(holders, vfio_group_node(group));
    for (const auto& node : device.device_nodes) {
        if (!node.starts_with("/dev/vfio/")) continue;
        for (const Holder* holder : holders_of(holders, node)) users.push_back(holder);
    }
    return users;
}

const StateRecord* owner_of(const std::vector<StateRecord>& records, const PciAddress& address) {
    for (const auto& record : records) {
        if (record.find(address)) return &record;
    }
    return nullptr;
}

class PreparePlanner {
public:
    explicit PreparePlanner(const PrepareInput& input) : in_(input) {}

    PreparePlan plan() {
        if (!in_.bus.iommu_enabled && !in_.domain.pci_devices.empty()) {
            plan_.refusals.push_back(
                {std::nullopt,
                 "the IOMMU is off: /sys/kernel/iommu_groups is empty, so no device can be given "
                 "to a VM",
                 std::string(iommu_fix)});
            // Every other problem too, so one fix-and-retry cycle shows them all.
            for (const auto& wanted : in_.domain.pci_devices) {
                const PciDevice* device = in_.bus.find(wanted.address);
                if (!device) refuse_missing(wanted);
                else if (device->is_bridge()) refuse_bridge(*device);
            }
            return plan_;
        }
        std::set<GroupId> groups;
        for (const auto& wanted : in_.domain.pci_devices) {
            if (auto group = check_requested(wanted)) groups.insert(*group);
        }
        for (GroupId group : groups) plan_group(group);
        order_moves();
        return plan_;
    }

private:
    std::optional<GroupId> check_requested(const HostPciDevice& wanted) {
        const PciDevice* device = in_.bus.find(wanted.address);
        if (!device) {
            refuse_missing(wanted);
            return std::nullopt;
        }
        if (!device->iommu_group) {
            refuse(wanted.address, "has no IOMMU group, so it cannot be given to a VM",
                   "check that the IOMMU covers this slot (dmesg | grep -i -e DMAR -e IOMMU)");
            return std::nullopt;
        }
        if (device->is_bridge()) {
            refuse_bridge(*device);
            return std::nullopt;
        }
        requested_.insert(wanted.address);
        return device->iommu_group;
    }

    void refuse_missing(const HostPciDevice& wanted) {
        if (wanted.element.empty()) {  // a manual command: the address came from the command line
            refuse(wanted.address, "no such PCI device on this host (given on the command line)",
                   "check the address with `lspci -D`");
            return;
        }
        refuse(wanted.address,
               "no such PCI device on this host (domain '" + in_.domain.name + "' asks for it in <" +
                   wanted.element + ">)",
               "check the address with `lspci -D` and fix the <source><address> of the VM");
    }

    void refuse_bridge(const PciDevice& device) {
        refuse(device.address, "is a " + device.kind() + ", which cannot be passed through",
               "give the VM the devices behind it instead");
    }

    void plan_group(GroupId group) {
        auto members = in_.bus.groups.find(group);
        if (members == in_.bus.groups.end()) return;
        for (const auto& address : members->second) {
            const PciDevice* device = in_.bus.find(address);
            if (!device || device->is_bridge()) continue;  // bridges stay; vfio accepts them
            plan_member(*device, group);
        }
    }

    void plan_member(const PciDevice& device, GroupId group) {
        bool requested = requested_.count(device.address) > 0;
        std::string via = requested ? "" : "shares IOMMU group " + std::to_string(group) +
                                               " with the VM's device and ";
        if ((device.boot_vga || !device.console.empty()) && !allow_boot_vga()) {
            std::string what = device.boot_vga ? "is the host's boot display (boot_vga=1)"
                                               : "drives the host's console (" + device.console + ")";
            refuse(device.address,
                   via + what + ": giving it to the VM would take the host's console and screen",
                   in_.owner == manual_owner
                       ? "give it only if the host may lose its screen: `vfio-hook --allow-boot-vga bind " +
                             device.address.str() + "`"
                       : "give the VM the other GPU; for a single-GPU setup allow it for this VM with "
                         "`vfio-hook set " + vm_word() + " allow-boot-vga yes` (that runs `virsh metadata " + vm_word() +
                             " --uri " + std::string(metadata_namespace) +
                             " --key vh --set '<vfio-hook><allow-boot-vga>yes</allow-boot-vga></vfio-hook>' --config`)");
            return;
        }
        const StateRecord* owner = owner_of(in_.records, device.address);
        bool ours = owner && owner->owner == in_.owner;
        // Parked: an admin's `vfio-hook bind` put it on vfio-pci for VMs to use; it stays theirs.
        bool parked = owner && owner->owner == manual_owner && device.on_vfio();
        if (owner && !ours && !parked) {
            refuse_recorded_elsewhere(device, group, *owner);
            return;
        }
        switch (may_take(device, group)) {
            case Verdict::take: break;
            case Verdict::leave: plan_.left_alone.push_back(device.address); return;
            case Verdict::refused: return;
        }
        if (device.on_vfio()) {
            plan_device_on_vfio(device, group, ours ? owner : nullptr);
            return;
        }
        for (const auto& problem : device.unreadable) {
            refuse(device.address, "its driver is not answering: " + problem,
                   "the driver may be stuck (see dmesg); an unbind would hang too");
        }
        check_holders(device, device.device_nodes);
        check_kernel_log(device);
        if (device.boot_vga || !device.console.empty()) plan_.takes_console.push_back(device.address);
        plan_.moves.push_back(Move{device.address, device.driver, group, requested, false});
    }

    // What may leave the host with the VM: a device the VM names, or another function of the
    // same slot as one it names (the GPU's HDMI audio, USB-C, UCSI). Another slot in the group
    // (behind a bridge without ACS) is an unrelated device: a NIC, a USB controller. And what
    // the host cannot run without never goes, named or not, unless the VM allows that address.
    enum class Verdict { take, leave, refused };

    Verdict may_take(const PciDevice& device, GroupId group) {
        if (device.on_vfio()) return Verdict::take;  // the host does not use it now
        bool requested = requested_.count(device.address) > 0;
        // "a network controller (e1000e)", and for a companion where it comes from.
        std::string what = device.kind() + " (" + device.driver.value_or("no driver") + ")";
        std::string a_what = (std::string("aeiouAEIOU").find(what[0]) == std::string::npos ? "a " : "an ") + what;
        std::string in_group = requested ? std::string()
                                         : ", in IOMMU group " + std::to_string(group) + " with the VM's " +
                                               requested_in_group(group).str();
        if (device.is_host_critical() && !in_.domain.settings.allowed_host_critical.count(device.address)) {
            refuse(device.address,
                   "is the host's " + what + in_group +
                       ": the host needs it, and giving it to the VM would take it from the host",
                   in_.owner == manual_owner
                       ? "`vfio-hook bind` never takes it; a VM may, once allowed with `vfio-hook set VM "
                         "allow-host-critical " + device.address.str() + "` (VM: its name)"
                       : "move the card to a slot with its own IOMMU group; to give it away all the same, "
                         "`vfio-hook set " + vm_word() + " allow-host-critical " + device.address.str() + "`");
            return Verdict::refused;
        }
        if (!device.virtual_functions.empty()) {
            std::string vfs;
            for (const auto& vf : device.virtual_functions) {
                vfs += (vfs.empty() ? "" : ", ") + vf.address.str() + " on " + vf.driver.value_or("no driver");
            }
            refuse(device.address,
                   "is " + a_what + in_group + " with " + std::to_string(device.virtual_functions.size()) +
                       " SR-IOV virtual function(s) enabled (" + vfs + "): unbinding its driver destroys them",
                   "give the VM a virtual function instead, or disable them first (echo 0 > "
                   "/sys/bus/pci/devices/" + device.address.str() + "/sriov_numvfs)");
            return Verdict::refused;
        }
        if (requested || in_slot_of_a_requested_gpu(device)) return Verdict::take;
        // Nothing on the host uses it, and a driverless member keeps a VFIO group viable.
        if (!device.driver) return Verdict::leave;
        bool same_slot = device.same_slot(requested_in_group(group));
        refuse(device.address,
               "is " + a_what + in_group + (same_slot ? "" : " but in another slot") +
                   ", and the VM does not name it: passing the group would take it from the host",
               in_.owner == manual_owner
                   ? "bind it too if it should go (`vfio-hook bind " + device.address.str() +
                         " ...`), or move the card to a slot with its own IOMMU group"
                   : "if it should go too, add it to the VM: `vfio-hook assign " + vm_word() + " " +
                         device.address.str() + "`; or move the card to a slot with its own IOMMU group");
        return Verdict::refused;
    }

    PciAddress requested_in_group(GroupId group) const {
        for (const auto& address : requested_) {
            const PciDevice* device = in_.bus.find(address);
            if (device && device->iommu_group == group) return address;
        }
        return *requested_.begin();
    }

    // A GPU's other functions (HDMI audio, USB-C, UCSI) go with it unnamed. A chipset slot's do
    // not: 00:1f.x holds the LPC bridge, the PMC, SMBus, the SPI flash and the onboard NIC.
    bool in_slot_of_a_requested_gpu(const PciDevice& device) const {
        return std::any_of(requested_.begin(), requested_.end(), [&](const PciAddress& wanted) {
            const PciDevice* gpu = in_.bus.find(wanted);
            return gpu && gpu->is_display() && device.same_slot(wanted);
        });
    }

    // Whatever its driver now: another owner's record says where it must go home to, and a second
    // record would write over that (a crashed start left the audio function driverless, say).
    void refuse_recorded_elsewhere(const PciDevice& device, GroupId group, const StateRecord& owner) {
        if (refuse_vfio_users(device, group, owner.owner_label())) return;
        if (device.on_vfio()) {
            refuse(device.address, "is already given to " + owner.owner_label(),
                   "stop that VM first, or run `vfio-hook recover` if it is not running");
        } else if (owner.owner == manual_owner) {
            refuse(device.address,
                   "is recorded by a `vfio-hook bind` that did not finish (now on " +
                       device.driver.value_or("no driver") + ")",
                   "run `vfio-hook restore " + device.address.str() + "` first");
        } else {
            refuse(device.address,
                   "is recorded for " + owner.owner_label() + ", whose start or stop did not finish (now on " +
                       device.driver.value_or("no driver") + ")",
                   "run `vfio-hook recover` (it gives back what that VM left, if it is not running)");
        }
    }

    // A QEMU (or anything) with the device's VFIO group open is using it.
    bool refuse_vfio_users(const PciDevice& device, GroupId group, const std::string& given_to) {
        auto users = vfio_users(in_.holders, device, group);
        for (const Holder* holder : users) {
            refuse(device.address,
                   "is in use by pid " + std::to_string(holder->pid) + " (" + holder->command +
                       ") through " + holder->node +
                       (given_to.empty() ? std::string() : ", given to " + given_to),
                   "stop that VM first");
        }
        return !users.empty();
    }

    void plan_device_on_vfio(const PciDevice& device, GroupId group, const StateRecord* ours) {
        if (refuse_vfio_users(device, group, "")) return;
        if (ours) {
            plan_.moves.push_back(Move{device.address, ours->find(device.address)->original_driver,
                                       group, requested_.count(device.address) > 0, true});
            return;
        }
        plan_.left_on_vfio.push_back(device.address);
    }

    void check_holders(const PciDevice& device, const std::vector<std::string>& nodes) {
        for (const auto& node : nodes) {
            for (const Holder* holder : holders_of(in_.holders, node)) {
                refuse(device.address,
                       "is held open by pid " + std::to_string(holder->pid) + " (" +
                           holder->command + ") on " + node,
                       holder_fix(*holder, device));
            }
        }
    }

    void check_kernel_log(const PciDevice& device) {
        auto problems = problems_about(in_.kernel_log, device.address, device.driver);
        if (problems.empty()) return;
        bool refuse_it = in_.domain.settings.refuse_on_firmware_errors.value_or(
            in_.settings.refuse_on_firmware_errors);
        Refusal problem{device.address,
                        "the kernel log shows " + device.driver.value_or("driver") +
                            " errors for it: \"" + problems.back().message + "\"",
                        "the device may not come back after the VM stops; check the driver's "
                        "firmware package (dmesg | grep " + device.address.str() + ")"};
        (refuse_it ? plan_.refusals : plan_.warnings).push_back(problem);
    }

    // The VM as one shell word for a fix's command line: its name, quoted; `VM` for a plan made
    // for no VM in particular (status asks what any VM would meet: an empty name).
    std::string vm_word() const {
        if (in_.domain.name.empty()) return "VM";
        std::string quoted = "'";
        for (char c : in_.domain.name) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return quoted + "'";
    }

    bool allow_boot_vga() const {
        return in_.domain.settings.allow_boot_vga.value_or(in_.settings.allow_boot_vga);
    }

    void refuse(const PciAddress& address, std::string reason, std::string fix) {
        plan_.refusals.push_back({address, std::move(reason), std::move(fix)});
    }

    // The GPU's audio (and USB) functions are runtime-PM consumers of the GPU function: they
    // leave their drivers before it does.
    void order_moves() {
        auto is_display = [&](const Move& move) {
            const PciDevice* device = in_.bus.find(move.address);
            return device && device->is_display();
        };
        std::stable_sort(plan_.moves.begin(), plan_.moves.end(),
                         [&](const Move& a, const Move& b) {
                             return !is_display(a) && is_display(b);
                         });
    }

    const PrepareInput& in_;
    std::set<PciAddress> requested_;
    PreparePlan plan_;
};

}  // namespace

bool PreparePlan::has_writes() const {
    return std::any_of(moves.begin(), moves.end(),
                       [](const Move& move) { return !move.already_on_vfio; });
}

std::string vfio_group_node(GroupId group) { return "/dev/vfio/" + std::to_string(group); }

PreparePlan plan_prepare(const PrepareInput& input) { return PreparePlanner(input).plan(); }

ReleasePlan plan_release(const StateRecord& record, const BusSnapshot& bus,
                         const std::vector<Holder>& holders, bool force) {
    ReleasePlan plan;
    for (const auto& recorded : record.devices) {
        const PciDevice* device = bus.find(recorded.address);
        if (!device) {
            plan.gone.push_back(recorded.address);
            continue;
        }
        auto group = device->iommu_group ? device->iommu_group : recorded.group;
        if (!force && group && device->on_vfio()) {
            auto users = vfio_users(holders, *device, *group);
            if (!users.empty()) {
                plan.kept.push_back(
                    {recorded.address,
                     "still in use by pid " + std::to_string(users.front()->pid) + " (" +
                         users.front()->command + ") through " + users.front()->node +
                         "; left on vfio-pci",
                     "stop that VM, then run `vfio-hook recover`"});
                continue;
            }
        }
        plan.restores.push_back({recorded.address, recorded.original_driver, recorded.original_override});
    }
    // The GPU function comes back first: its audio function's driver resumes through it.
    std::stable_sort(plan.restores.begin(), plan.restores.end(), [&](const Restore& a, const Restore& b) {
        const PciDevice* da = bus.find(a.address);
        const PciDevice* db = bus.find(b.address);
        return (da && da->is_display()) && !(db && db->is_display());
    });
    return plan;
}

}  // namespace vfio_hook
