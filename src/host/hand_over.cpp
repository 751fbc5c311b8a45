#include "host/hand_over.hpp"

#include <algorithm>
#include <chrono>

#include "core/stuck_device.hpp"
#include "host/console.hpp"
#include "host/device_mover.hpp"
#include "host/holders.hpp"
#include "host/kernel_log_reader.hpp"
#include "host/liveness_check.hpp"
#include "host/log.hpp"
#include "host/modules.hpp"
#include "host/power_guard.hpp"
#include "host/pci_bus.hpp"

namespace vfio_hook {
namespace {

using Clock = std::chrono::steady_clock;

long elapsed_ms(Clock::time_point start) {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

std::vector<PciAddress> addresses_of(const Domain& domain) {
    std::vector<PciAddress> addresses;
    for (const auto& device : domain.pci_devices) addresses.push_back(device.address);
    return addresses;
}

std::uint64_t last_sequence(const std::vector<KernelLogLine>& lines) {
    return lines.empty() ? 0 : lines.back().sequence;
}

StateRecord merged_record(const StateRecord* existing, const Domain& domain,
                          const std::string& owner, const PreparePlan& plan) {
    StateRecord record{owner, domain.name, {}, {}};
    record.kernel_log_mark = plan.kernel_log_mark;  // issue 26
    if (existing) {
        record.devices = existing->devices;
        record.console = existing->console;
        if (existing->kernel_log_mark) record.kernel_log_mark = existing->kernel_log_mark;
    }
    for (const auto& move : plan.moves) {
        if (record.find(move.address)) continue;
        record.devices.push_back({move.address, move.from, move.group});
    }
    return record;
}

}  // namespace

HostView look_before_prepare(Host& host, const Domain& domain, ModuleLoading modules) {
    HostView view;
    view.bus = read_bus(host.paths, host.kernel, addresses_of(domain));
    view.holders = find_holders(host.paths, nodes_of(host.paths, view.bus));
    view.records = StateJournal(host.paths).load_all();
    view.kernel_log = read_kernel_log(host.paths);
    if (!domain.pci_devices.empty() && view.bus.iommu_enabled && modules == ModuleLoading::allowed)
        view.vfio_pci_problem = ensure_vfio_pci(host.paths, host.kernel);
    return view;
}

PreparePlan plan_with(const Host& host, const Domain& domain, const std::string& owner,
                      const HostView& view) {
    PreparePlan plan = plan_prepare(
        {domain, owner, view.bus, view.holders, view.records, view.kernel_log, host.settings});
    plan.kernel_log_mark = last_sequence(view.kernel_log);  // issue 26
    if (view.vfio_pci_problem && plan.has_writes())
        plan.refusals.push_back({std::nullopt, *view.vfio_pci_problem, ""});
    return plan;
}

namespace {

// Gives back, in reverse, the console steps taken; the ones that would not come back stay
// recorded (returned), each problem added to `lines`.
std::vector<ConsoleStep> give_back_console(Host& host, const std::vector<ConsoleStep>& taken,
                                           std::vector<std::string>& lines) {
    std::vector<ConsoleStep> not_back;
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
        if (auto problem = give_back_console_step(host.paths, host.kernel, *it)) {
            lines.push_back(*problem + "; `vfio-hook recover` tries again");
            not_back.insert(not_back.begin(), *it);
            continue;
        }
        logger().info("{}: gave back {}", it->gpu.str(), it->describe());
    }
    return not_back;
}

// The end of every run that may leave something behind (a failed start, a release): give back
// the console steps whose GPU is home (the GPU's driver brings the framebuffer fbcon needs), keep
// in `rest` the others and those that would not come back, then save `rest`, or remove the
// record when nothing is left. Problems go to `lines`; returns the save's (or removal's) own.
struct Settled {
    bool something_left = false;           // `rest` holds devices or console steps
    std::optional<std::string> problem;    // the record on disk was not updated: why
};

Settled settle_record(Host& host, const StateJournal& journal, StateRecord& rest,
                      const std::vector<ConsoleStep>& console, std::vector<std::string>& lines) {
    std::vector<ConsoleStep> ready;
    for (const auto& step : console) {
        if (rest.find(step.gpu)) {
            rest.console.push_back(step);
        } else {
            ready.push_back(step);
        }
    }
    auto not_back = give_back_console(host, ready, lines);
    rest.console.insert(rest.console.end(), not_back.begin(), not_back.end());
    Settled settled;
    settled.something_left = !rest.devices.empty() || !rest.console.empty();
    settled.problem = settled.something_left ? journal.save(rest) : journal.remove(rest.owner);
    return settled;
}

// A failed start's last word on its record. The record written before the first move is still
// on disk when its update fails: it lists everything the start was to move, which `recover`
// gives back.
std::string record_line(const Settled& settled, const StateJournal& journal, const std::string& owner) {
    if (settled.problem)
        return "cannot update the state record: " + *settled.problem + "; " + journal.file_of(owner).string() +
               " still lists every device this start was to move: run `vfio-hook recover` once the cause is fixed";
    if (settled.something_left)
        return "what is not yet home stays recorded in " + journal.file_of(owner).string() +
               "; run `vfio-hook recover` once the cause is fixed";
    return "";
}

}  // namespace

std::vector<std::string> carry_out_prepare(Host& host, const Domain& domain,
                                           const std::string& owner, const PreparePlan& plan) {
    StateJournal journal(host.paths);
    auto existing = journal.load(owner);
    if (!existing) return {"cannot read the state record: " + existing.error() + "; nothing was moved"};
    StateRecord record = merged_record(existing->has_value() ? &**existing : nullptr, domain, owner, plan);
    if (plan.moves.empty()) return {};
    DeviceMover mover(host.paths, host.kernel, host.settings);
    for (auto& device : record.devices) {
        auto move = std::find_if(plan.moves.begin(), plan.moves.end(),
                                 [&](const Move& m) { return m.address == device.address; });
        if (move == plan.moves.end() || move->already_on_vfio) continue;
        // An earlier unfinished run recorded what the override was before us: keep that.
        if (existing->has_value() && (**existing).find(device.address)) continue;
        auto override = mover.read_override(device.address);
        if (!override) return {override.error() + "; nothing was moved"};
        device.original_override = *override;
        record_power_settings(host.paths, device);  // Issue 26: the power guard restores these at release.
    }
    // Single GPU: the host's console, taken only now that every check has passed, so a refused
    // start never touches it (fbcon, once unbound, cannot simply be bound again).
    std::vector<ConsoleStep> console;
    for (const auto& gpu : plan.takes_console) {
        for (auto& step : console_on(host.paths, host.kernel, gpu)) console.push_back(step);
    }
    record.console.insert(record.console.end(), console.begin(), console.end());
    if (auto problem = journal.save(record)) return {"cannot write the state record: " + *problem + "; nothing was moved"};

    StateRecord rest = existing->value_or(StateRecord{owner, domain.name, {}, {}});
    std::vector<ConsoleStep> taken;
    for (const auto& step : console) {
        if (auto failure = take_console_step(host.paths, host.kernel, step)) {
            std::vector<std::string> lines{*failure};
            // `rest` may already hold an earlier run's console that did not come back: kept.
            auto settled = settle_record(host, journal, rest, taken, lines);
            if (auto line = record_line(settled, journal, owner); !line.empty()) lines.push_back(line);
            lines.push_back("nothing was moved");
            return lines;
        }
        logger().info("{}: took {}", step.gpu.str(), step.describe());
        taken.push_back(step);
    }

    std::vector<const Move*> moved;
    for (const auto& move : plan.moves) {
        if (move.already_on_vfio) continue;
        DeviceLogFields fields(move.address, move.from, std::string(vfio_pci));
        auto start = Clock::now();
        moved.push_back(&move);
        auto failure = mover.to_vfio(move.address);
        if (!failure) {
            // Issue 26: the power guard keeps it out of D3cold until QEMU opens it.
            if (auto problem = domain.settings.power_guard.value_or(true) ? keep_awake(host.paths, host.kernel, move.address) : std::nullopt) logger().warn("{}", *problem);
            long took = elapsed_ms(start);
            log_with_fields(spdlog::level::info,
                            move.address.str() + ": " + move.from.value_or("no driver") + " → vfio-pci in " +
                                std::to_string(took) + " ms",
                            {{"DURATION_MS", std::to_string(took)}});
            continue;
        }
        std::vector<std::string> lines{failure->message};
        // All or nothing: put back, in reverse, everything this run touched.
        std::vector<RecordedDevice> stranded;
        for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
            const Move& undo = **it;
            const RecordedDevice& where = *record.find(undo.address);
            if (failure->hung && undo.address == move.address) {
                stranded.push_back(where);
                continue;  // its write is still stuck in the kernel: more writes would block too
            }
            if (auto undo_failure = mover.home(undo.address, where.original_driver, where.original_override)) {
                lines.push_back("rollback: " + undo_failure->message);
                if (!undo_failure->device_home) stranded.push_back(where);
            } else if (auto problem = restore_power_settings(host.paths, host.kernel, &where)) {
                lines.push_back("rollback: " + *problem);  // issue 26
            }
        }
        for (const auto& device : stranded) {
            if (!rest.find(device.address)) rest.devices.push_back(device);
        }
        auto settled = settle_record(host, journal, rest, taken, lines);
        if (!settled.something_left) lines.push_back("every device was put back where it was");
        if (auto line = record_line(settled, journal, owner); !line.empty()) lines.push_back(line);
        return lines;
    }
    return {};
}

std::vector<std::string> stuck_since_prepare(Host& host, const PreparePlan& plan) {
    std::vector<PciAddress> moved;
    for (const auto& move : plan.moves) moved.push_back(move.address);
    return stuck_device_lines(read_kernel_log(host.paths), plan.kernel_log_mark, moved);
}

ReleaseReport release_owner(Host& host, const std::string& owner,
                            const std::optional<std::set<PciAddress>>& only, bool force,
                            ShutoffReason reason) {
    ReleaseReport report;
    StateJournal journal(host.paths);
    auto loaded = journal.load(owner);
    if (!loaded) {
        report.problems.push_back(loaded.error());
        return report;
    }
    if (!loaded->has_value()) return report;
    StateRecord record = **loaded;
    StateRecord selected{record.owner, record.domain_name, {}, {}};
    for (const auto& device : record.devices) {
        if (!only || only->count(device.address)) selected.devices.push_back(device);
    }
    std::vector<PciAddress> addresses;
    for (const auto& device : selected.devices) addresses.push_back(device.address);
    BusSnapshot bus = read_bus(host.paths, host.kernel, addresses);
    std::set<GroupId> groups;
    for (const auto& device : selected.devices) {
        if (device.group) groups.insert(*device.group);
    }
    auto nodes = nodes_of(host.paths, bus);
    nodes.merge(vfio_group_nodes(host.paths, groups));
    auto holders = find_holders(host.paths, nodes);
    ReleasePlan plan = plan_release(selected, bus, holders, force);
    auto log_before = last_sequence(read_kernel_log(host.paths));

    DeviceMover mover(host.paths, host.kernel, host.settings);
    std::set<PciAddress> still_ours;
    for (const auto& kept : plan.kept) {
        report.kept.push_back(kept.line());
        still_ours.insert(*kept.address);
    }
    for (const auto& restore : plan.restores) {
        DeviceLogFields fields(restore.address, std::string(vfio_pci), restore.to);
        // Issue 26: a device that does not answer is never probed by its host driver.
        if (auto dead = refuse_dead_device(host.paths, host.kernel, restore.address, restore.to, needs_proof_of_life(reason))) {
            still_ours.insert(restore.address);
            report.problems.push_back(*dead);
            continue;
        }
        auto start = Clock::now();
        auto failure = mover.home(restore.address, restore.to, restore.override_to_restore);
        if (!failure) {
            long took = elapsed_ms(start);
            log_with_fields(spdlog::level::info,
                            restore.address.str() + ": vfio-pci → " + restore.to.value_or("no driver") + " in " +
                                std::to_string(took) + " ms",
                            {{"DURATION_MS", std::to_string(took)}});
            report.addresses.push_back(restore.address);
            report.restored.push_back(restore.address.str() + ": back on " +
                                      restore.to.value_or("no driver"));
            // Issue 26: its runtime power settings as they were before the VM.
            if (auto problem = restore_power_settings(host.paths, host.kernel, selected.find(restore.address))) report.problems.push_back(*problem);
            continue;
        }
        if (failure->device_home) {
            // Home on its driver; only its old driver_override could not be written back.
            report.addresses.push_back(restore.address);
            report.problems.push_back(failure->message + "; the device is home: set it by hand");
            continue;
        }
        still_ours.insert(restore.address);
        std::string line = failure->message;
        // A device that did not come home goes back to vfio-pci, a known and safe state —
        // unless a write is stuck, when any further write would block as well.
        if (!failure->hung && !mover.to_vfio(restore.address)) line += "; left on vfio-pci";
        line += "; still recorded, retry with `vfio-hook recover`";
        report.problems.push_back(line);
    }
    for (const auto& gone : plan.gone) {
        logger().warn("{}: no longer on the bus; dropped from the record", gone.str());
    }
    // What the drivers said while taking the devices back.
    auto log_after = read_kernel_log(host.paths);
    // Issue 26: lines from while the VM had them that say a device was stuck (the release's own follow).
    auto stuck = stuck_device_lines(log_after, record.kernel_log_mark, addresses, record.kernel_log_mark ? log_before : 0);
    report.problems.insert(report.problems.end(), stuck.begin(), stuck.end());
    for (const auto& restore : plan.restores) {
        std::vector<KernelLogLine> fresh;
        std::copy_if(log_after.begin(), log_after.end(), std::back_inserter(fresh),
                     [&](const KernelLogLine& line) { return line.sequence > log_before; });
        for (const auto& line : problems_about(fresh, restore.address, restore.to)) {
            report.problems.push_back(restore.address.str() + ": kernel log after giving it back to " +
                                      restore.to.value_or("no driver") + ": \"" + line.message + "\"");
        }
    }

    StateRecord rest{record.owner, record.domain_name, {}, {}};
    rest.kernel_log_mark = record.kernel_log_mark;  // issue 26
    for (const auto& device : record.devices) {
        bool selected_device = !only || only->count(device.address);
        if (!selected_device || still_ours.count(device.address)) rest.devices.push_back(device);
    }
    if (auto problem = settle_record(host, journal, rest, record.console, report.problems).problem)
        report.problems.push_back(*problem);
    return report;
}

}  // namespace vfio_hook
