#include "core/host_report.hpp"

#include <algorithm>
#include <sstream>

namespace vfio_hook {
namespace {

std::vector<std::string> words(std::string_view text) {
    std::istringstream stream{std::string(text)};
    std::vector<std::string> result;
    std::string word;
    while (stream >> word) result.push_back(word);
    return result;
}

void add_comma_list(std::string_view list, std::set<std::string>& into) {
    std::string item;
    std::istringstream stream{std::string(list)};
    while (std::getline(stream, item, ',')) {
        if (!item.empty()) into.insert(item);
    }
}

std::string module_name(std::string name) {
    std::replace(name.begin(), name.end(), '-', '_');
    return name;
}

}  // namespace

const std::set<std::string>& gpu_modules() {
    static const std::set<std::string> modules = {"nouveau", "nvidia", "nvidia_drm", "nvidia_modeset",
                                                  "amdgpu", "radeon", "i915", "xe", "snd_hda_intel"};
    return modules;
}

void read_modprobe_config(std::string_view text, DriverHolds& holds) {
    std::istringstream lines{std::string(text)};
    std::string line;
    while (std::getline(lines, line)) {
        auto fields = words(line.substr(0, line.find('#')));
        if (fields.size() >= 2 && fields[0] == "blacklist") holds.blacklisted.insert(module_name(fields[1]));
        // "install nouveau /bin/false" is the other common way to keep a module out.
        if (fields.size() >= 3 && fields[0] == "install" &&
            (fields[2] == "/bin/false" || fields[2] == "/bin/true" || fields[2] == "/usr/bin/false"))
            holds.blacklisted.insert(module_name(fields[1]));
        if (fields.size() >= 3 && fields[0] == "options" && module_name(fields[1]) == "vfio_pci") {
            for (std::size_t i = 2; i < fields.size(); ++i) {
                if (fields[i].starts_with("ids=")) add_comma_list(fields[i].substr(4), holds.vfio_pci_ids);
            }
        }
    }
}

void read_kernel_cmdline(std::string_view cmdline, DriverHolds& holds) {
    for (const auto& word : words(cmdline)) {
        if (word.starts_with("vfio-pci.ids=") || word.starts_with("vfio_pci.ids="))
            add_comma_list(word.substr(13), holds.vfio_pci_ids);
        for (std::string_view key : {"modprobe.blacklist=", "module_blacklist=", "rd.driver.blacklist="}) {
            if (word.starts_with(key)) {
                std::set<std::string> names;
                add_comma_list(word.substr(key.size()), names);
                for (const auto& name : names) holds.blacklisted.insert(module_name(name));
            }
        }
    }
}

std::vector<std::string> iommu_parameters(std::string_view cmdline) {
    std::vector<std::string> found;
    for (const auto& word : words(cmdline)) {
        if (word.starts_with("intel_iommu=") || word.starts_with("amd_iommu=") ||
            word.starts_with("iommu=") || word.starts_with("iommu.") ||
            word.starts_with("pcie_acs_override=") || word.starts_with("vfio-pci.") ||
            word.starts_with("vfio_pci."))
            found.push_back(word);
    }
    return found;
}

HostReport assess_host(const HostFacts& facts) {
    HostReport report;
    report.iommu_enabled = facts.bus.iommu_enabled;
    report.group_count = facts.bus.groups.size();
    report.iommu_parameters = iommu_parameters(facts.cmdline);
    report.vfio_pci_present = facts.vfio_pci_present;
    report.vfio_pci_loadable = facts.vfio_pci_loadable;
    report.holds = facts.holds;
    std::erase_if(report.holds.blacklisted, [](const std::string& name) { return !gpu_modules().count(name); });
    if (!facts.bus.iommu_enabled) {
        report.problems.push_back(
            {std::nullopt, "the IOMMU is off: /sys/kernel/iommu_groups is empty",
             std::string(iommu_fix)});
    }
    if (!facts.vfio_pci_present && !facts.vfio_pci_loadable) {
        report.problems.push_back({std::nullopt, "the vfio-pci driver is neither loaded nor installed",
                                   "install the kernel's vfio modules (modprobe vfio-pci must work)"});
    }
    for (const auto& [address, device] : facts.bus.devices) {
        if (!device.is_display()) continue;
        GpuReport gpu{device, {}, "", {}, {}, {}};
        if (device.iommu_group) {
            auto members = facts.bus.groups.find(*device.iommu_group);
            if (members != facts.bus.groups.end()) {
                for (const auto& member : members->second) {
                    const PciDevice* companion = facts.bus.find(member);
                    if (companion && member != address) gpu.companions.push_back(*companion);
                }
            }
        }
        for (const auto& record : facts.records) {
            if (record.find(address)) gpu.owner = record.owner_label();
        }
        std::vector<const PciDevice*> group{&gpu.gpu};
        for (const auto& companion : gpu.companions) group.push_back(&companion);
        for (const auto& holder : facts.holders) {
            for (const PciDevice* function : group) {
                const auto& nodes = function->device_nodes;
                if (std::find(nodes.begin(), nodes.end(), holder.node) != nodes.end()) gpu.holders.push_back(holder);
            }
        }
        if (gpu.owner.empty() && facts.bus.iommu_enabled) {
            // The very checks a prepare would make, for a VM that asks for this GPU alone (no name:
            // the fixes say `VM`).
            Domain probe{"", *DomainUuid::parse("00000000-0000-0000-0000-000000000000"),
                         {{address, false, "hostdev"}}, {}, {}};
            const std::string owner = "status";
            std::vector<KernelLogLine> no_log;  // log lines are reported on their own below
            gpu.blockers = plan_prepare({probe, owner, facts.bus, facts.holders, facts.records, no_log,
                                         facts.settings}).refusals;
        }
        std::vector<const PciDevice*> functions{&gpu.gpu};
        for (const auto& companion : gpu.companions) functions.push_back(&companion);
        for (const PciDevice* function : functions) {
            for (const auto& line : problems_about(facts.kernel_log, function->address, function->driver)) {
                gpu.log_problems.push_back(function->address.str() + ": " + line.message);
                report.problems.push_back(
                    {function->address, "kernel log: \"" + line.message + "\"",
                     "the driver may fail to take the device back after a VM; check its firmware "
                     "package and `dmesg | grep " + function->address.str() + "`"});
            }
        }
        report.gpus.push_back(std::move(gpu));
    }
    bool any_usable = std::any_of(report.gpus.begin(), report.gpus.end(), [](const GpuReport& gpu) {
        return gpu.could_be_taken() || !gpu.owner.empty();
    });
    if (facts.bus.iommu_enabled && !any_usable) {
        report.problems.push_back(
            {std::nullopt,
             report.gpus.empty() ? "no GPU found" : "no GPU could be given to a VM now (see each GPU's reasons above)",
             "free one of them as its reasons say, or add a second GPU for the VMs"});
    }
    for (const auto& record : facts.records) {
        for (const auto& step : record.console) {
            if (record.find(step.gpu)) {
                report.consoles_given.push_back(step.describe() + " (" + step.gpu.str() + ") is given to " +
                                                record.owner_label());
                continue;
            }
            report.problems.push_back({step.gpu,
                                       "the host's console (" + step.describe() + ") did not come back after " +
                                           record.owner_label() + " gave the GPU back",
                                       "run `vfio-hook recover`"});
        }
        for (const auto& moved : record.devices) {
            const PciDevice* device = facts.bus.find(moved.address);
            if (device && !device->on_vfio() && device->driver != moved.original_driver) {
                report.problems.push_back(
                    {moved.address,
                     "recorded as moved by " + record.owner_label() + " but is on " +
                         device->driver.value_or("no driver"),
                     "run `vfio-hook recover`"});
            }
        }
    }
    return report;
}

}  // namespace vfio_hook
