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

namespace {

// The IOMMU and the vfio-pci driver: without either no GPU can go anywhere.
void assess_iommu_and_vfio(const HostFacts& facts, HostReport& report) {
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
}

// The rest of the GPU's IOMMU group: it goes to a VM with the GPU.
std::vector<PciDevice> companions_of(const HostFacts& facts, const PciDevice& gpu) {
    std::vector<PciDevice> companions;
    if (!gpu.iommu_group) return companions;
    auto members = facts.bus.groups.find(*gpu.iommu_group);
    if (members == facts.bus.groups.end()) return companions;
    for (const auto& member : members->second) {
        const PciDevice* companion = facts.bus.find(member);
        if (companion && member != gpu.address) companions.push_back(*companion);
    }
    return companions;
}

std::vector<const PciDevice*> functions_of(const GpuReport& gpu) {
    std::vector<const PciDevice*> functions{&gpu.gpu};
    for (const auto& companion : gpu.companions) functions.push_back(&companion);
    return functions;
}

// The host processes with any of the group's nodes open.
std::vector<Holder> holders_of(const HostFacts& facts, const GpuReport& gpu) {
    std::vector<Holder> holders;
    for (const auto& holder : facts.holders) {
        for (const PciDevice* function : functions_of(gpu)) {
            const auto& nodes = function->device_nodes;
            if (std::find(nodes.begin(), nodes.end(), holder.node) != nodes.end()) holders.push_back(holder);
        }
    }
    return holders;
}

// The very checks a prepare would make, for a VM that asks for this GPU alone (no name: the
// fixes say `VM`).
std::vector<Refusal> blockers_of(const HostFacts& facts, const PciAddress& address) {
    Domain probe{"", *DomainUuid::parse("00000000-0000-0000-0000-000000000000"),
                 {{address, false, "hostdev"}}, {}, {}};
    const std::string owner = "status";
    std::vector<KernelLogLine> no_log;  // log lines are reported on their own
    return plan_prepare({probe, owner, facts.bus, facts.holders, facts.records, no_log, facts.settings}).refusals;
}

// What the kernel logged about the group's functions: each a problem, the driver may not take
// the device back after a VM.
void note_log_problems(const HostFacts& facts, GpuReport& gpu, HostReport& report) {
    for (const PciDevice* function : functions_of(gpu)) {
        for (const auto& line : problems_about(facts.kernel_log, function->address, function->driver)) {
            gpu.log_problems.push_back(function->address.str() + ": " + line.message);
            report.problems.push_back(
                {function->address, "kernel log: \"" + line.message + "\"",
                 "the driver may fail to take the device back after a VM; check its firmware "
                 "package and `dmesg | grep " + function->address.str() + "`"});
        }
    }
}

GpuReport assess_gpu(const HostFacts& facts, const PciDevice& device, HostReport& report) {
    GpuReport gpu;
    gpu.gpu = device;
    gpu.companions = companions_of(facts, device);
    for (const auto& record : facts.records) {
        if (record.find(device.address)) gpu.owner = record.owner_label();
    }
    gpu.holders = holders_of(facts, gpu);
    if (gpu.owner.empty() && facts.bus.iommu_enabled) gpu.blockers = blockers_of(facts, device.address);
    note_log_problems(facts, gpu, report);
    return gpu;
}

// Not ready when no GPU could go to a VM now (nor has gone to one).
constexpr const char* no_usable_gpu = "no GPU could be given to a VM now";

void require_a_usable_gpu(const HostFacts& facts, HostReport& report) {
    bool any_usable = std::any_of(report.gpus.begin(), report.gpus.end(), [](const GpuReport& gpu) {
        return gpu.could_be_taken() || !gpu.owner.empty();
    });
    if (!facts.bus.iommu_enabled || any_usable) return;
    report.problems.push_back(
        {std::nullopt,
         report.gpus.empty() ? "no GPU found" : std::string(no_usable_gpu) + " (see each GPU's reasons above)",
         "free one of them as its reasons say, or add a second GPU for the VMs"});
}

// What the records say was given away: consoles still given, and devices not back where they were.
void assess_records(const HostFacts& facts, HostReport& report) {
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
}

}  // namespace

HostReport assess_host(const HostFacts& facts) {
    HostReport report;
    assess_iommu_and_vfio(facts, report);
    for (const auto& [address, device] : facts.bus.devices) {
        if (device.is_display()) report.gpus.push_back(assess_gpu(facts, device, report));
    }
    require_a_usable_gpu(facts, report);
    assess_records(facts, report);
    return report;
}

std::vector<VmVerdict> judge_vms(const HostFacts& facts, const std::vector<Domain>& vms,
                                 const std::set<std::string>& with_prepare_scripts) {
    std::vector<VmVerdict> verdicts;
    for (const auto& vm : vms) {
        VmVerdict verdict{vm.name, vm.uuid.str(), {}, {}, with_prepare_scripts.count(vm.name) > 0, false};
        for (const auto& device : vm.pci_devices) {
            const PciDevice* found = facts.bus.find(device.address);
            if (found && found->is_display()) verdict.gpus.push_back(device.address);
        }
        if (verdict.gpus.empty()) continue;
        std::vector<KernelLogLine> no_log;  // log lines are the host's problems, reported once
        verdict.refusals = plan_prepare({vm, vm.uuid.str(), facts.bus, facts.holders, facts.records, no_log,
                                         facts.settings}).refusals;
        verdict.only_holders = std::all_of(verdict.refusals.begin(), verdict.refusals.end(), [](const Refusal& refusal) {
            return refusal.reason.starts_with("is held open by pid ");
        });
        verdicts.push_back(std::move(verdict));
    }
    return verdicts;
}

void apply_vm_verdicts(HostReport& report, const std::vector<VmVerdict>& verdicts) {
    for (auto& gpu : report.gpus) {
        for (const auto& verdict : verdicts) {
            if (std::find(verdict.gpus.begin(), verdict.gpus.end(), gpu.gpu.address) != verdict.gpus.end())
                gpu.vms.push_back(verdict.name);
        }
    }
    bool some_vm_could_start = std::any_of(verdicts.begin(), verdicts.end(), [](const VmVerdict& verdict) {
        return verdict.could_start();
    });
    if (!some_vm_could_start) return;
    std::erase_if(report.problems, [](const Refusal& problem) {
        return problem.reason.starts_with(no_usable_gpu);
    });
}

}  // namespace vfio_hook
