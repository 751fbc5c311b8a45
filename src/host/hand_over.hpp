#pragma once
// Carries out the core's plans on the host: look (snapshot, holders, records, kernel log), then
// record, move, verify — and roll back or keep the record when something fails. Shared by the
// hook and the admin commands.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "core/problem.hpp"
#include "core/settings.hpp"
#include "core/shutoff_reason.hpp"
#include "host/host.hpp"
#include "host/host_paths.hpp"
#include "host/record_store.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// Everything plan_prepare reads about the host.
struct [[nodiscard]] HostView {
    BusSnapshot bus;
    std::vector<Holder> holders;
    std::vector<StateRecord> records;
    std::vector<KernelLogLine> kernel_log;
    Problem vfio_pci_problem;
};

// What changes nothing (check, assign) reads only: `modprobe vfio-pci` is left to the moves.
enum class ModuleLoading { allowed, never };
HostView look_before_prepare(Host& host, const Domain& domain, ModuleLoading modules = ModuleLoading::allowed);
PreparePlan plan_with(const Host& host, const Domain& domain, const std::string& owner,
                      const HostView& view);

// Records the plan (merged with the owner's existing record) before the first write, then moves
// each device; on a failure puts back every device already moved. The problem: the failure, then
// a line for each thing that followed (rollback, console, record).
Problem carry_out_prepare(Host& host, const Domain& domain, const std::string& owner, const PreparePlan& plan);

// What the moves would get besides the move, for `check` (issue 26): each VFIO variant driver
// ("vfio  0009:01:00.0: nvgrace_gpu_vfio_pci (modules.alias)"), each BAR resize
// ("rebar 0000:03:00.0 BAR 0: 16 GB -> 256 MB") and its warnings ("warning: …"). Changes nothing.
std::vector<std::string> prepare_details(Host& host, const Domain& domain, const PreparePlan& plan);

// Kernel log lines since the prepare looked that say one of its devices is stuck (issue 26).
std::vector<std::string> stuck_since_prepare(Host& host, const PreparePlan& plan);

struct [[nodiscard]] ReleaseReport {
    std::vector<std::string> restored;  // "0000:01:00.0: vfio-pci → bochs-drm"
    std::vector<std::string> problems;  // one line each; devices involved are still recorded
    std::vector<std::string> kept;      // left on vfio-pci on purpose, with why
    std::vector<PciAddress> addresses;  // the devices that came home
};

// Logs each device it moves; returns failures for the caller to tell the user.
// Gives back the devices of `owner`'s record (all, or only those in `only`), verifies them, reads
// the kernel log about them, and rewrites the record to hold exactly what is not home.
// A device that does not answer stays on vfio-pci (host/liveness_check.hpp); `reason`, libvirt's
// shutoff reason, makes that check strict after a crash.
ReleaseReport release_owner(Host& host, const std::string& owner,
                            const std::optional<std::set<PciAddress>>& only = std::nullopt,
                            bool force = false, ShutoffReason reason = ShutoffReason::not_given);

}  // namespace vfio_hook
