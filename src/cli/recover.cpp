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

// What recover knows when it judges the records: libvirt's answer, asked before the lock, and
// each record's version then and now (under the lock).
struct Judgement {
    std::map<std::string, std::string> versions_asked;
    std::map<std::string, std::string> versions_now;
    Expected<std::set<std::string>> active_domains = std::set<std::string>{};
    bool know_who_runs = true;
};

// libvirt first, the lock not held: `virsh list` waits for a domain whose prepare hook runs, and
// that hook waits for our lock, so asking under the lock made a start wait on recover for virsh's
// whole deadline. A VM that starts after libvirt answered is missing from the answer, but its
// prepare saves its record before it moves anything: so only records already on disk, unchanged,
// before libvirt was asked are judged by the answer.
Judgement ask_libvirt(Commands& commands, const RecordStore& store) {
    Judgement judgement;
    judgement.versions_asked = store.versions();
    if (!judgement.versions_asked.empty()) judgement.active_domains = active_domain_uuids(commands.virsh, commands.uri);
    judgement.know_who_runs = judgement.active_domains || libvirt_is_absent(judgement.active_domains.error());
    return judgement;
}

void say_why_libvirt_is_not_asked(const Judgement& judgement, std::ostream& out) {
    if (judgement.active_domains) return;
    out << "libvirt cannot say which VMs run (" << judgement.active_domains.error() << "); "
        << (judgement.know_who_runs ? "a VM counts as running only while a process holds its VFIO devices"
                                    : "no VM's devices are touched: run recover again once `virsh list` answers")
        << "\n";
}

// Parked on vfio-pci on purpose: said, and left; a bind that did not finish is given back.
std::set<PciAddress> unfinished_binds(Host& host, const StateRecord& record, std::ostream& out) {
    std::set<PciAddress> unfinished;
    for (const auto& device : record.devices) {
        if (current_driver(host.paths, device.address) == std::string(vfio_pci)) {
            out << "  parked: " << device.address.str() << " stays on vfio-pci (`vfio-hook restore "
                << device.address.str() << "` gives it back)\n";
        } else {
            unfinished.insert(device.address);
        }
    }
    return unfinished;
}

// One record: given back when its VM is surely gone, else said why not. 1 when something failed
// or libvirt could not tell.
int recover_record(Host& host, const StateRecord& record, Judgement& judgement, std::ostream& out) {
    out << record.owner_label() << ":\n";
    std::optional<std::set<PciAddress>> only;
    auto& asked = judgement.versions_asked;
    if (record.owner == manual_owner) {
        only = unfinished_binds(host, record, out);
        if (only->empty()) return 0;
    } else if (!asked.count(record.owner) || asked[record.owner] != judgement.versions_now[record.owner]) {
        out << "  left as is: its record changed while recover asked libvirt (a VM starting or stopping); "
               "run recover again if it is not running\n";
        return 0;
    } else if (!judgement.know_who_runs) {
        out << "  left as is: libvirt did not answer\n";
        return 1;
    } else if (judgement.active_domains && judgement.active_domains->count(record.owner)) {
        out << "  running: libvirt lists it as active; its devices stay with it\n";
        return 0;
    }
    auto report = release_owner(host, record.owner, only);
    for (const auto& line : report.restored) out << "  " << line << "\n";
    for (const auto& line : report.kept) out << "  kept: " << line << "\n";
    for (const auto& line : report.problems) out << "  problem: " << line << "\n";
    return report.problems.empty() ? 0 : 1;
}

}  // namespace

int run_recover(Commands& commands) {
    Host& host = commands.host;
    auto& out = commands.out;
    RecordStore store(host.paths);
    // Who runs, asked before the lock (see ask_libvirt).
    Judgement judgement = ask_libvirt(commands, store);
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook recover: " + lock.error());
        return 1;
    }
    judgement.versions_now = store.versions();
    // Saves cut off before they counted are no records.
    for (const auto& file : store.discard_unfinished_saves()) {
        logger().info("recover: deleted {}, a record save that was cut off before it counted", file);
    }
    // The records, each unreadable one said.
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
    say_why_libvirt_is_not_asked(judgement, out);
    // Each record judged on its own.
    for (const auto& record : records) status |= recover_record(host, record, judgement, out);
    return status;
}

}  // namespace vfio_hook
