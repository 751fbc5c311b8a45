// `vfio-hook recover`: gives back every recorded device whose VM is gone — after a crash, a hung
// write, or a release that failed — and reports the rest. A VM is gone when libvirt does not
// count it as active (it does from before its prepare hook runs, so a VM still starting is safe)
// and no process holds its VFIO devices. Devices an admin parked with `bind` are never touched.

#include "cli/commands.hpp"
#include "host/log.hpp"

namespace vfio_hook {

int run_recover(Commands& commands) {
    Host& host = commands.host;
    auto& out = commands.out;
    auto active_domains = active_domain_uuids(commands.virsh, commands.uri);
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook recover: " + lock.error());
        return 1;
    }
    StateJournal journal(host.paths);
    std::vector<std::string> unreadable;
    auto records = journal.load_all(&unreadable);
    int status = 0;
    for (const auto& problem : unreadable) {
        tell_user(spdlog::level::err, "vfio-hook recover: unreadable record: " + problem);
        status = 1;
    }
    if (records.empty() && unreadable.empty()) out << "nothing to recover: no device is recorded as moved\n";
    if (!active_domains && !records.empty()) {
        out << "libvirt cannot say which VMs run (" << active_domains.error()
            << "); a VM counts as running only while a process holds its VFIO devices\n";
    }
    for (const auto& record : records) {
        out << record.owner_label() << ":\n";
        if (record.owner == manual_owner) {
            for (const auto& device : record.devices) {
                out << "  parked: " << device.address.str()
                    << " stays on vfio-pci (`vfio-hook restore " << device.address.str()
                    << "` gives it back)\n";
            }
            continue;
        }
        if (active_domains && active_domains->count(record.owner)) {
            out << "  running: libvirt lists it as active; its devices stay with it\n";
            continue;
        }
        auto report = release_owner(host, record.owner);
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
