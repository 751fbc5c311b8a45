// `vfio-hook recover`: gives back every recorded device whose VM is gone — after a crash, a hung
// write, or a release that failed — and reports the rest. A VM is gone when libvirt does not
// count it as active (it does from before its prepare hook runs) and no process holds its VFIO
// devices. Devices an admin parked with `bind` are never touched.

#include "cli/commands.hpp"
#include "host/log.hpp"
#include "host/pci_bus.hpp"

namespace vfio_hook {
namespace {

// libvirt not installed, or its daemon not running: then no VM can be starting, and a running
// QEMU shows itself by holding its VFIO devices. Any other failure (virsh timing out behind a
// hook that holds its domain's lock, say) says nothing: no domain's devices are touched then.
bool libvirt_is_absent(const std::string& error) {
    return error.starts_with("cannot run virsh") || error.find("ailed to connect") != std::string::npos;
}

}  // namespace

int run_recover(Commands& commands) {
    Host& host = commands.host;
    auto& out = commands.out;
    // libvirt first, the lock not held: `virsh list` waits for a domain whose prepare hook runs,
    // and that hook waits for our lock, so asking under the lock made a start wait on recover
    // for virsh's whole deadline. A VM that starts after libvirt answered is missing from the
    // answer, but its prepare saves its record before it moves anything: so only records
    // already on disk, unchanged, before libvirt was asked are judged by the answer.
    RecordStore store(host.paths);
    auto versions_asked = store.versions();
    auto active_domains = versions_asked.empty() ? Expected<std::set<std::string>>(std::set<std::string>{})
                                                 : active_domain_uuids(commands.virsh, commands.uri);
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook recover: " + lock.error());
        return 1;
    }
    auto versions_now = store.versions();
    for (const auto& file : store.discard_unfinished_saves()) {
        logger().info("recover: deleted {}, a record save that was cut off before it counted", file);
    }
    std::vector<std::string> unreadable;
    auto records = store.load_all(&unreadable);
    int status = 0;
    for (const auto& problem : unreadable) {
        tell_user(spdlog::level::err, "vfio-hook recover: unreadable record: " + problem);
        status = 1;
    }
    if (records.empty() && unreadable.empty()) {
        out << "nothing to recover: no device is recorded as moved\n";
        return status;
    }
    bool know_who_runs = active_domains || libvirt_is_absent(active_domains.error());
    if (!active_domains) {
        out << "libvirt cannot say which VMs run (" << active_domains.error() << "); "
            << (know_who_runs ? "a VM counts as running only while a process holds its VFIO devices"
                              : "no VM's devices are touched: run recover again once `virsh list` answers")
            << "\n";
    }
    for (const auto& record : records) {
        out << record.owner_label() << ":\n";
        std::optional<std::set<PciAddress>> only;
        if (record.owner == manual_owner) {
            // Parked on vfio-pci on purpose; a bind that did not finish is given back.
            only.emplace();
            for (const auto& device : record.devices) {
                if (current_driver(host.paths, device.address) == std::string(vfio_pci)) {
                    out << "  parked: " << device.address.str() << " stays on vfio-pci (`vfio-hook restore "
                        << device.address.str() << "` gives it back)\n";
                } else {
                    only->insert(device.address);
                }
            }
            if (only->empty()) continue;
        } else if (!versions_asked.count(record.owner) || versions_asked[record.owner] != versions_now[record.owner]) {
            out << "  left as is: its record changed while recover asked libvirt (a VM starting or stopping); "
                   "run recover again if it is not running\n";
            continue;
        } else if (!know_who_runs) {
            out << "  left as is: libvirt did not answer\n";
            status = 1;
            continue;
        } else if (active_domains && active_domains->count(record.owner)) {
            out << "  running: libvirt lists it as active; its devices stay with it\n";
            continue;
        }
        auto report = release_owner(host, record.owner, only);
        for (const auto& line : report.restored) out << "  " << line << "\n";
        for (const auto& line : report.kept) out << "  kept: " << line << "\n";
        for (const auto& line : report.problems) {
            out << "  problem: " << line << "\n";
            status = 1;
        }
    }
    return status;
}

}  // namespace vfio_hook
