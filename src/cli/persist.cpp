// `vfio-hook persist` and `unpersist`: a device that only ever serves VMs goes to vfio-pci at
// every boot, by its address, and comes back to its host driver in one command. The boot side
// is udev's (core/persist.hpp); now, the same moves and records as `bind` and `restore`.

#include <unistd.h>

#include <climits>

#include "cli/commands.hpp"
#include "core/domain_xml.hpp"
#include "host/device_mover.hpp"
#include "host/holders.hpp"
#include "host/log.hpp"
#include "host/modules.hpp"
#include "host/pci_bus.hpp"
#include "host/persisted.hpp"
#include "host/program.hpp"

namespace vfio_hook {
namespace {

// How long an initramfs rebuild of every installed kernel may take (dracut on a slow disk).
constexpr std::chrono::seconds initramfs_deadline{600};

// The boot VGA is allowed by the global `--allow-boot-vga`, as for `bind`.
Domain persist_domain(const std::vector<PciAddress>& addresses) {
    Domain domain{"persist", *DomainUuid::parse("00000000-0000-0000-0000-000000000000"), {}, {}, {}};
    for (const auto& address : addresses) domain.pci_devices.push_back({address, false, ""});
    return domain;
}

// The absolute path of this binary, for the udev rule's RUN (install.sh and the package put it
// in different places).
std::string this_binary() {
    char buffer[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof buffer - 1);
    if (n <= 0) return "/usr/sbin/vfio-hook";
    std::string path(buffer, static_cast<std::size_t>(n));
    if (path.ends_with(" (deleted)")) path.resize(path.size() - 10);
    return path;
}

// Rebuilds the initramfs so that the rules and vfio-pci are there when a GPU driver in it loads.
// A failure is a warning: the files are in place, and the command to run is named.
void update_initramfs(const HostPaths& paths, InitramfsTool tool, const std::string& command, std::ostream& out) {
    auto argv = initramfs_update_command(tool);
    if (argv.empty()) {
        out << "no initramfs tool found (update-initramfs, dracut, mkinitcpio): nothing to rebuild\n";
        return;
    }
    std::string shown;
    for (const auto& word : argv) shown += (shown.empty() ? "" : " ") + word;
    argv[0] = (paths.root / (tool == InitramfsTool::initramfs_tools ? "usr/sbin" : "usr/bin") / argv[0]).string();
    if (tool == InitramfsTool::dracut && ::access(argv[0].c_str(), X_OK) != 0) {
        argv[0] = (paths.root / "usr/sbin/dracut").string();
    }
    out << "running " << shown << " (the initramfs must carry the rules and vfio-pci)\n";
    auto ran = run_program(argv, initramfs_deadline);
    if (!ran) {
        tell_user(spdlog::level::warn, "vfio-hook " + command + ": warning: " + ran.error() +
                                           "; run `" + shown + "` yourself before the next boot");
    }
}

// Writes the manifest of each address first, then its rule, then the shared files: a crash
// leaves a manifest naming every file that may exist, which unpersist removes.
bool write_persist_files(const HostPaths& paths, const PreparePlan& plan, const BusSnapshot& bus,
                         InitramfsTool tool, std::ostream& out) {
    auto persisted = load_persisted(paths);
    std::vector<PciAddress> all;
    for (const auto& manifest : persisted.manifests) all.push_back(manifest.address);
    std::vector<PciAddress> group;
    for (const auto& move : plan.moves) group.push_back(move.address);
    group.insert(group.end(), plan.left_on_vfio.begin(), plan.left_on_vfio.end());
    const std::string binary = this_binary();
    for (const auto& address : group) {
        const PciDevice* device = bus.find(address);
        std::optional<std::string> before;
        if (const auto* old = persisted.find(address)) before = old->driver_before;
        else if (device && !device->on_vfio()) before = device->driver;
        PersistManifest manifest{address, before,
                                 {on_host(persist_manifest_path(address)), on_host(persist_rule_path(address))}};
        auto written = write_config_file(paths, persist_manifest_path(address), manifest.serialise());
        if (written) written = write_config_file(paths, persist_rule_path(address), persist_udev_rule(address, binary));
        if (!written) {
            tell_user(spdlog::level::err, "vfio-hook persist: " + written.error());
            return false;
        }
        out << address.str() << ": wrote " << on_host(persist_manifest_path(address)) << " and "
            << on_host(persist_rule_path(address)) << "\n";
        if (std::find(all.begin(), all.end(), address) == all.end()) all.push_back(address);
    }
    auto shared = write_shared_boot_files(paths, tool, all);
    if (!shared) {
        tell_user(spdlog::level::err, "vfio-hook persist: " + shared.error());
        return false;
    }
    for (const auto& line : *shared) out << line << "\n";
    return true;
}

// The same moves and record as `bind`: now, if the host driver lets go.
void bind_now(Host& host, const Domain& domain, std::ostream& out) {
    std::string owner(manual_owner);
    HostView view = look_before_prepare(host, domain);
    PreparePlan plan = plan_with(host, domain, owner, view);
    std::vector<std::string> failure;
    for (const auto& refusal : plan.refusals) failure.push_back(refusal.line());
    if (failure.empty()) {
        if (auto problem = carry_out_prepare(host, domain, owner, plan)) failure = problem.lines();
    }
    if (!failure.empty()) {
        for (const auto& line : failure) {
            tell_user(spdlog::level::warn, "vfio-hook persist: not moved now: " + line +
                                               "; it goes to vfio-pci at the next boot");
        }
        return;
    }
    for (const auto& move : plan.moves) {
        out << move.address.str() << ": " << move.from.value_or("no driver") << " -> vfio-pci now\n";
    }
}

}  // namespace

int run_persist(Commands& commands, const std::vector<PciAddress>& addresses, bool dry_run) {
    Host& host = commands.host;
    auto& out = commands.out;
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook persist: " + lock.error());
        return 1;
    }
    Domain domain = persist_domain(addresses);
    // What may be persisted is decided without holders or the kernel log: a program holding the
    // GPU now stops only today's move, never the boot-time binding.
    HostView view = look_before_prepare(host, domain, ModuleLoading::never);
    HostView lasting{view.bus, {}, view.records, {}, Problem::none()};
    PreparePlan plan = plan_with(host, domain, std::string(manual_owner), lasting);
    if (plan.refused()) {
        for (auto refusal : plan.refusals) {
            // The plan's fix for the display is a VM's setting; persist has no VM, only its option.
            const PciDevice* device = refusal.address ? view.bus.find(*refusal.address) : nullptr;
            if (device && (device->boot_vga || !device->console.empty())) {
                refusal.fix = "to persist it all the same (the host has no screen from the next boot until "
                              "`vfio-hook unpersist " + device->address.str() + "` and a reboot), run "
                              "`vfio-hook persist --allow-boot-vga " + device->address.str() + "`";
            }
            tell_user(spdlog::level::err, "vfio-hook persist: refused: " + refusal.line());
        }
        return 1;
    }
    if (!plan.takes_console.empty()) {
        tell_user(spdlog::level::warn,
                  "vfio-hook persist: warning: " + plan.takes_console.front().str() +
                      " carries the host's console: from the next boot the host has no screen on it until "
                      "`vfio-hook unpersist " + plan.takes_console.front().str() +
                      "` (over ssh, or from the recovery boot entry) and a reboot");
    }
    InitramfsTool tool = detect_initramfs_tool(host.paths);
    if (dry_run) {
        for (const auto& move : plan.moves) {
            out << "would persist " << move.address.str() << " (now on " << move.from.value_or("no driver")
                << "): " << on_host(persist_manifest_path(move.address)) << ", "
                << on_host(persist_rule_path(move.address)) << "\n";
        }
        for (const auto& address : plan.left_on_vfio) out << "would persist " << address.str() << " (on vfio-pci)\n";
        auto command = initramfs_update_command(tool);
        out << "would rebuild the initramfs: " << (command.empty() ? "no initramfs tool found" : command[0]) << "\n";
        return 0;
    }
    if (!write_persist_files(host.paths, plan, view.bus, tool, out)) return 1;
    update_initramfs(host.paths, tool, "persist", out);
    bind_now(host, domain, out);
    return 0;
}

namespace {

// The manifests the addresses name. Like restore: the GPU's address takes back the functions
// persisted with it.
Expected<std::vector<const PersistManifest*>> chosen_manifests(const PersistedDevices& persisted,
                                                               const std::vector<PciAddress>& addresses) {
    std::vector<const PersistManifest*> chosen;
    for (const auto& address : addresses) {
        bool found = false;
        for (const auto& manifest : persisted.manifests) {
            if (same_slot(manifest.address, address)) {
                found = true;
                if (std::find(chosen.begin(), chosen.end(), &manifest) == chosen.end()) chosen.push_back(&manifest);
            }
        }
        if (!found) return Error{address.str() + " is not persisted (`vfio-hook status` lists what is)"};
    }
    return chosen;
}

// A VM running on it keeps it: refused before anything changes, so that unpersist, run again
// once the VM stops, still finds the manifest (restore would only keep the device on vfio-pci,
// with the boot binding already gone and advice that no longer fits).
Problem refuse_if_a_vm_uses(Host& host, const std::vector<const PersistManifest*>& chosen,
                            const std::vector<PciAddress>& addresses) {
    std::vector<PciAddress> wanted;
    for (const auto* manifest : chosen) wanted.push_back(manifest->address);
    BusSnapshot bus = read_bus(host.paths, host.kernel, wanted), on_vfio;
    std::set<GroupId> groups;
    for (const auto& address : wanted) {
        const auto* device = bus.find(address);
        if (!device || !device->on_vfio()) continue;  // a host driver's own users are not a VM
        on_vfio.devices.emplace(address, *device);
        if (device->iommu_group) groups.insert(*device->iommu_group);
    }
    auto nodes = nodes_of(host.paths, on_vfio);
    nodes.merge(vfio_group_nodes(host.paths, groups));
    std::string again;
    for (const auto& address : addresses) again.append(" ").append(address.str());
    for (const auto& holder : find_holders(host.paths, nodes)) {
        return "in use by pid " + std::to_string(holder.pid) + " (" + holder.command + ") through " + holder.node +
               "; stop that VM, then run `vfio-hook unpersist" + again + "`";
    }
    return {};
}

// The rule now, the manifest only once the initramfs no longer carries the rule: a crash before
// that leaves the manifest to finish with. Gives the addresses whose rules are gone.
Expected<std::vector<PciAddress>> remove_rules(Host& host, const std::vector<const PersistManifest*>& chosen,
                                               std::ostream& out) {
    std::vector<PciAddress> give_back;
    for (const auto* manifest : chosen) {
        for (auto file = manifest->files.rbegin(); file != manifest->files.rend(); ++file) {
            if (*file == on_host(persist_manifest_path(manifest->address))) continue;
            auto removed = remove_config_file(host.paths, file->relative_path());
            if (!removed) return Error{removed.error()};
            out << manifest->address.str() << ": removed " << file->string() << "\n";
        }
        give_back.push_back(manifest->address);
    }
    return give_back;
}

// modules-load.d and the initramfs, rewritten for the devices that stay persisted.
Problem rebuild_for_the_rest(Host& host, const PersistedDevices& persisted, const std::vector<PciAddress>& give_back,
                             std::ostream& out) {
    std::vector<PciAddress> remaining;
    for (const auto& manifest : persisted.manifests) {
        if (std::find(give_back.begin(), give_back.end(), manifest.address) == give_back.end()) {
            remaining.push_back(manifest.address);
        }
    }
    InitramfsTool tool = detect_initramfs_tool(host.paths);
    auto shared = write_shared_boot_files(host.paths, tool, remaining);
    if (!shared) return shared.error();
    for (const auto& line : *shared) out << line << "\n";
    update_initramfs(host.paths, tool, "unpersist", out);
    return {};
}

Problem remove_manifests(Host& host, const std::vector<PciAddress>& give_back, std::ostream& out) {
    for (const auto& address : give_back) {
        auto removed = remove_config_file(host.paths, persist_manifest_path(address));
        if (!removed) return removed.error();
        out << address.str() << ": removed " << on_host(persist_manifest_path(address)) << "\n";
    }
    return {};
}

}  // namespace

int run_unpersist(Commands& commands, const std::vector<PciAddress>& addresses, bool dry_run) {
    Host& host = commands.host;
    auto& out = commands.out;
    auto refuse = [](const std::string& message) {
        tell_user(spdlog::level::err, "vfio-hook unpersist: " + message);
        return 1;
    };
    std::vector<PciAddress> give_back;
    {
        auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
        if (!lock) return refuse(lock.error());
        auto persisted = load_persisted(host.paths);
        // What to take back: every address must be persisted.
        auto chosen = chosen_manifests(persisted, addresses);
        if (!chosen) return refuse(chosen.error());
        // Nothing while a VM holds one of them.
        if (auto problem = refuse_if_a_vm_uses(host, *chosen, addresses)) return refuse(problem.message());
        if (dry_run) {
            for (const auto* manifest : *chosen) {
                for (const auto& file : manifest->files) out << "would remove " << file.string() << "\n";
            }
            return 0;
        }
        // Every file the manifests name but the manifests themselves (the udev rule).
        auto removed = remove_rules(host, *chosen, out);
        if (!removed) return refuse(removed.error());
        give_back = *removed;
        // The boot files and the initramfs, for the devices that stay persisted.
        if (auto problem = rebuild_for_the_rest(host, persisted, give_back, out)) return refuse(problem.message());
        // Only now the manifests.
        if (auto problem = remove_manifests(host, give_back, out)) return refuse(problem.message());
    }
    // Now: back to the host driver, the way `restore` gives back (the record, or a reprobe).
    return run_restore(commands, give_back, false);
}

// Run by the udev rule when a persisted device appears: if a driver loaded earlier took it
// before the rule set its override, take it back to vfio-pci.
int run_persist_apply(Commands& commands, const PciAddress& address) {
    Host& host = commands.host;
    // Both functions of a card appear at once and udev runs their rules in parallel.
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook persist-apply: " + lock.error());
        return 1;
    }
    if (!load_persisted(host.paths).find(address)) {
        tell_user(spdlog::level::err, "vfio-hook persist-apply: " + address.str() + " is not persisted: nothing to do");
        return 1;
    }
    if (auto problem = ensure_vfio_pci(host.paths, host.kernel)) {
        tell_user(spdlog::level::err, "vfio-hook persist-apply: " + address.str() + ": " + problem.message());
        return 1;
    }
    // At boot nothing holds it yet; a later `udevadm trigger --action=add` runs the rule again
    // while a desktop may hold it on its host driver, and an unbind under it can hang.
    BusSnapshot bus = read_bus(host.paths, host.kernel, {address});
    if (const auto* device = bus.find(address); device && !device->on_vfio()) {
        BusSnapshot alone;
        alone.devices.emplace(address, *device);
        for (const auto& holder : find_holders(host.paths, nodes_of(host.paths, alone))) {
            tell_user(spdlog::level::err, "vfio-hook persist-apply: " + address.str() + ": in use by pid " +
                                              std::to_string(holder.pid) + " (" + holder.command + ") through " +
                                              holder.node + "; left on " + device->driver.value_or("no driver") +
                                              " until the next boot");
            return 1;
        }
    }
    DeviceMover mover(host.paths, host.kernel, host.settings);
    if (auto failure = mover.to_vfio(address)) {
        tell_user(spdlog::level::err, "vfio-hook persist-apply: " + failure.message());
        return 1;
    }
    logger().info("persist-apply: {} is on vfio-pci", address.str());
    return 0;
}

}  // namespace vfio_hook
