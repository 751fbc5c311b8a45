// `vfio-hook bind` and `vfio-hook restore`: the hook's moves by hand, with the same checks and the
// same records (bind records under the owner "manual").

#include <map>

#include "cli/commands.hpp"
#include "core/domain_xml.hpp"
#include "host/device_mover.hpp"
#include "host/holders.hpp"
#include "host/log.hpp"
#include "host/pci_bus.hpp"

namespace vfio_hook {
namespace {

Domain manual_domain(const std::vector<PciAddress>& addresses) {
    Domain domain{"manual bind", *DomainUuid::parse("00000000-0000-0000-0000-000000000000"), {}, {}, {}};
    for (const auto& address : addresses) domain.pci_devices.push_back({address, false, ""});
    return domain;
}

// Devices on vfio-pci that no record claims (vfio-pci.ids at boot, another tool): reprobe them.
int restore_unrecorded(Host& host, const PciAddress& address, bool force, std::ostream& out) {
    auto device = read_device(host.paths, host.kernel, address);
    if (!device) {
        tell_user(spdlog::level::err, "vfio-hook restore: " + address.str() + ": no such PCI device on this host");
        return 1;
    }
    if (!device->on_vfio()) {
        out << address.str() << ": on " << device->driver.value_or("no driver")
            << ", not on vfio-pci: nothing to do\n";
        return 0;
    }
    if (!force && device->iommu_group) {
        BusSnapshot alone;
        alone.devices.emplace(address, *device);
        for (const auto& holder : find_holders(host.paths, nodes_of(host.paths, alone))) {
            tell_user(spdlog::level::err,
                      "vfio-hook restore: " + address.str() + ": in use by pid " + std::to_string(holder.pid) + " (" +
                          holder.command + ") through " + holder.node +
                          "; stop that VM first (or use --force)");
            return 1;
        }
    }
    DeviceMover mover(host.paths, host.kernel, host.settings);
    if (auto failure = mover.reprobe(address)) {
        tell_user(spdlog::level::err, "vfio-hook restore: " + failure.message());
        return 1;
    }
    out << address.str() << ": no record of its driver; reprobed, now on "
        << current_driver(host.paths, address).value_or("no driver") << "\n";
    return 0;
}

}  // namespace

int run_bind(Commands& commands, const std::vector<PciAddress>& addresses) {
    Host& host = commands.host;
    auto& out = commands.out;
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook bind: " + lock.error());
        return 1;
    }
    Domain domain = manual_domain(addresses);
    std::string owner(manual_owner);
    HostView view = look_before_prepare(host, domain);
    PreparePlan plan = plan_with(host, domain, owner, view);
    for (const auto& warning : plan.warnings) tell_user(spdlog::level::warn, "vfio-hook bind: warning: " + warning.line());
    if (plan.refused()) {
        for (const auto& refusal : plan.refusals) tell_user(spdlog::level::err, "vfio-hook bind: refused: " + refusal.line());
        return 1;
    }
    auto failure = carry_out_prepare(host, domain, owner, plan);
    for (const auto& line : failure.lines()) tell_user(spdlog::level::err, "vfio-hook bind: " + line);
    if (failure) return 1;
    for (const auto& move : plan.moves) {
        out << move.address.str() << ": " << move.from.value_or("no driver") << " -> vfio-pci\n";
    }
    for (const auto& address : plan.left_on_vfio) out << address.str() << ": already on vfio-pci\n";
    return 0;
}

int run_restore(Commands& commands, const std::vector<PciAddress>& addresses, bool force) {
    Host& host = commands.host;
    auto& out = commands.out;
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook restore: " + lock.error());
        return 1;
    }
    std::map<std::string, std::set<PciAddress>> by_owner;
    std::vector<PciAddress> unrecorded;
    auto records = RecordStore(host.paths).load_all();
    for (const auto& address : addresses) {
        auto owner = std::find_if(records.begin(), records.end(),
                                  [&](const StateRecord& record) { return record.find(address); });
        if (owner == records.end()) {
            unrecorded.push_back(address);
        } else {
            // `bind 01:00.0` took the slot's other functions (its audio) with it: `restore
            // 01:00.0` gives back the same set, so no companion is left behind on vfio-pci.
            for (const auto& device : owner->devices) {
                if (same_slot(device.address, address)) by_owner[owner->owner].insert(device.address);
            }
        }
    }
    int status = 0;
    for (const auto& [owner, selected] : by_owner) {
        auto report = release_owner(host, owner, selected, force);
        for (const auto& line : report.restored) out << line << "\n";
        for (const auto& line : report.kept) tell_user(spdlog::level::warn, "vfio-hook restore: " + line);
        for (const auto& line : report.problems) tell_user(spdlog::level::err, "vfio-hook restore: " + line);
        if (!report.kept.empty() || !report.problems.empty()) status = 1;
    }
    for (const auto& address : unrecorded) status |= restore_unrecorded(host, address, force, out);
    return status;
}

}  // namespace vfio_hook
