#pragma once
// The judgement behind `vfio-hook status`: is this host ready to pass a GPU to a VM, and if not,
// what exactly to fix. Pure: it reads a snapshot, the records, the kernel log, the kernel
// command line and the modprobe configuration, all as plain data.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/kernel_log.hpp"
#include "core/plan.hpp"
#include "core/settings.hpp"
#include "core/pci_device.hpp"
#include "core/refusal.hpp"
#include "core/state_record.hpp"

namespace vfio_hook {

// What keeps host GPU drivers off the cards: blacklists and vfio-pci IDs, from modprobe.d and
// the kernel command line.
struct DriverHolds {
    std::set<std::string> blacklisted;   // module names (the report keeps only gpu_modules())
    std::set<std::string> vfio_pci_ids;  // "10de:2684"
};

// The GPU and GPU-audio driver modules whose blacklisting matters for passthrough.
const std::set<std::string>& gpu_modules();

void read_modprobe_config(std::string_view text, DriverHolds& holds);
void read_kernel_cmdline(std::string_view cmdline, DriverHolds& holds);
// The IOMMU-related kernel parameters in effect (intel_iommu=on, iommu=pt, ...).
std::vector<std::string> iommu_parameters(std::string_view cmdline);

struct GpuReport {
    PciDevice gpu;
    std::vector<PciDevice> companions;  // the rest of its IOMMU group
    std::string owner;                  // who has it per the records ("" when nobody)
    std::vector<std::string> log_problems;
    std::vector<Holder> holders;        // host processes with its (or its companions') nodes open
    std::vector<std::string> vms;       // the VMs whose definitions name it (when libvirt answered)
    // What a VM asking for it now would be refused for (prepare's own checks); empty: it could
    // take it now. Not judged while a VM has it.
    std::vector<Refusal> blockers;
    bool could_be_taken() const { return owner.empty() && blockers.empty(); }
};

struct HostReport {
    bool iommu_enabled = false;
    std::size_t group_count = 0;
    std::vector<std::string> iommu_parameters;
    bool vfio_pci_present = false;
    bool vfio_pci_loadable = false;  // modprobe would find it: "loads it on demand" is true only then
    DriverHolds holds;
    std::vector<GpuReport> gpus;
    std::vector<std::string> consoles_given;  // "fbcon on vtcon1 is given to domain 'win11' (uuid …)"
    std::vector<Refusal> problems;  // each with its fix; empty means ready
    std::vector<std::string> warnings;  // worth knowing, not in the way (the AMD reset bug)

    bool ready() const { return problems.empty(); }
};

struct HostFacts {
    const BusSnapshot& bus;
    const std::vector<Holder>& holders;
    const Settings& settings;
    const std::vector<StateRecord>& records;
    const std::vector<KernelLogLine>& kernel_log;
    std::string cmdline;
    DriverHolds holds;
    bool vfio_pci_present = false;
    bool vfio_pci_loadable = false;
};

HostReport assess_host(const HostFacts& facts);

// A VM that libvirt defines with a GPU: could it start now? On a single-GPU host this, not "add a
// second GPU", is the answer: the VM takes the host's only GPU, and its hook.d prepare scripts
// (stop the display manager) run before the checks, so holders are theirs to clear.
struct VmVerdict {
    std::string name;
    std::string uuid;
    std::vector<PciAddress> gpus;   // the GPUs (display functions) its definition names
    std::vector<Refusal> refusals;  // what its prepare would refuse now, scripts not yet run
    bool prepare_scripts = false;   // it has hook.d prepare scripts, which run before the checks
    bool only_holders = false;      // every refusal is a host process holding a node
    bool could_start() const { return refusals.empty() || (prepare_scripts && only_holders); }
};

// `with_prepare_scripts`: the names of the VMs that have hook.d prepare scripts.
std::vector<VmVerdict> judge_vms(const HostFacts& facts, const std::vector<Domain>& vms,
                                 const std::set<std::string>& with_prepare_scripts);
// Names each GPU's VMs, and lets a VM that could start answer "no GPU could be given to a VM now".
void apply_vm_verdicts(HostReport& report, const std::vector<VmVerdict>& verdicts);

}  // namespace vfio_hook
