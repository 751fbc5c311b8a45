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
#include "host/bar_resize.hpp"
#include "host/power_guard.hpp"
#include "host/pci_bus.hpp"
#include "host/vfio_variant.hpp"

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
    view.records = RecordStore(host.paths).load_all();
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
        plan.refusals.push_back({std::nullopt, view.vfio_pci_problem.message(), ""});
    return plan;
}

namespace {

// Gives back, in reverse, the console steps taken; the ones that would not come back stay
// recorded (returned), each with its problem line in `problems`.
std::vector<ConsoleStep> give_back_console(Host& host, const std::vector<ConsoleStep>& taken, Problem& problems) {
    std::vector<ConsoleStep> not_back;
    for (auto it = taken.rbegin(); it != taken.rend(); ++it) {
        if (auto problem = give_back_console_step(host.paths, host.kernel, *it)) {
            problems.merge(Problem(problem.message() + "; `vfio-hook recover` tries again"));
            not_back.insert(not_back.begin(), *it);
            continue;
        }
        logger().info("{}: gave back {}", it->gpu.str(), it->describe());
    }
    return not_back;
}

// What the end of a run that may leave something behind (a failed start, a release) did.
struct [[nodiscard]] Settled {
    Problem console;              // console steps that would not come back (they stay recorded)
    Problem record;               // the record on disk was not updated: why
    bool something_left = false;  // `rest` holds devices or console steps
};

// The shared end of every run that may leave something behind: give back the console steps
// whose GPU is home (the GPU's driver brings the framebuffer fbcon needs), keep in `rest` the
// others and those that would not come back, then save `rest`, or remove the record when nothing
// is left.
Settled settle_record(Host& host, const RecordStore& store, StateRecord& rest,
                      const std::vector<ConsoleStep>& console) {
    Settled settled;
    std::vector<ConsoleStep> ready;
    for (const auto& step : console) {
        if (rest.find(step.gpu)) {
            rest.console.push_back(step);
        } else {
            ready.push_back(step);
        }
    }
    auto not_back = give_back_console(host, ready, settled.console);
    rest.console.insert(rest.console.end(), not_back.begin(), not_back.end());
    settled.something_left = !rest.devices.empty() || !rest.console.empty();
    settled.record = settled.something_left ? store.save(rest) : store.remove(rest.owner);
    return settled;
}

// A failed start's last words on its record. The record written before the first move is still
// on disk when its update fails: it lists everything the start was to move, which `recover`
// gives back.
Problem record_line(const Settled& settled, const RecordStore& store, const std::string& owner) {
    if (settled.record)
        return "cannot update the state record: " + settled.record.message() + "; " + store.file_of(owner).string() +
               " still lists every device this start was to move: run `vfio-hook recover` once the cause is fixed";
    if (settled.something_left)
        return "what is not yet home stays recorded in " + store.file_of(owner).string() +
               "; run `vfio-hook recover` once the cause is fixed";
    return {};
}

// Whether this start is the first to move `device` off its driver: not one already on vfio-pci,
// nor one an earlier unfinished run recorded (that record says how it was before us).
bool first_moved_here(const RecordedDevice& device, const StateRecord* earlier, const PreparePlan& plan) {
    auto move = std::find_if(plan.moves.begin(), plan.moves.end(),
                             [&](const Move& m) { return m.address == device.address; });
    if (move == plan.moves.end() || move->already_on_vfio) return false;
    return !(earlier && earlier->find(device.address));
}

// Notes the driver_override each device this start moves has now, written back when it comes
// home. An earlier unfinished run recorded what the override was before us: that is kept.
Problem note_overrides(DeviceMover& mover, StateRecord& record, const StateRecord* earlier, const PreparePlan& plan) {
    for (auto& device : record.devices) {
        if (!first_moved_here(device, earlier, plan)) continue;
        auto override = mover.read_override(device.address);
        if (!override) return override.error() + "; nothing was moved";
        device.original_override = *override;
    }
    return {};
}

// Notes each device's runtime power settings as this start finds them, for the power guard to
// put back at release (host/power_guard.hpp); as with the override, an earlier run's are kept.
void note_power_settings(Host& host, StateRecord& record, const StateRecord* earlier, const PreparePlan& plan) {
    for (auto& device : record.devices) {
        if (first_moved_here(device, earlier, plan)) record_power_settings(host.paths, device);
    }
}

// The hostdev's <driver model='…'/> for a device the domain names; nullopt for a group companion.
std::optional<std::string> driver_model_of(const Domain& domain, const PciAddress& address) {
    for (const auto& device : domain.pci_devices) {
        if (device.address == address) return device.driver_model;
    }
    return std::nullopt;
}

// Issue 26: the VFIO driver each device this start moves gets, loaded, noted in the record when
// it is a variant (release and a rollback then find it there). One that modules.alias chose but
// will not load falls back to vfio-pci, with a warning; one the domain names must load. A device
// parked by hand (`bind`, `persist`) goes to vfio-pci: that is what recover and restore know it by.
Problem note_vfio_drivers(Host& host, const Domain& domain, StateRecord& record, const PreparePlan& plan) {
    if (record.owner == manual_owner) return {};
    std::optional<std::string> aliases;  // read once, and only when something moves
    for (const auto& move : plan.moves) {
        if (move.already_on_vfio) continue;
        if (!aliases) aliases = read_modules_alias(host.paths);
        auto choice = vfio_driver_for(host.paths, move.address, driver_model_of(domain, move.address), *aliases);
        if (choice.is_vfio_pci()) continue;
        auto driver = load_vfio_driver(host.paths, host.kernel, choice);
        if (!driver && choice.source == VfioDriverChoice::Source::domain) return move.address.str() + ": " + driver.error();
        if (!driver) {
            tell_user(spdlog::level::warn, "vfio-hook: warning: " + move.address.str() + ": " + driver.error() + "; using vfio-pci");
            continue;
        }
        for (auto& device : record.devices) {
            if (device.address == move.address) device.vfio_driver = *driver;
        }
    }
    return {};
}

// Issue 26: with the VM's `rebar` setting, the BAR sizes each device this start moves gets (the
// VM's), their sizes now noted in the record for release to put back. Each problem is a warning.
std::map<PciAddress, std::vector<BarSize>> note_bar_sizes(Host& host, const Domain& domain, StateRecord& record,
                                                         const StateRecord* earlier, const PreparePlan& plan) {
    std::map<PciAddress, std::vector<BarSize>> sizes;
    if (!domain.settings.rebar) return sizes;
    bool any_resizable = false;
    for (auto& device : record.devices) {
        if (!first_moved_here(device, earlier, plan)) continue;
        auto bars = plan_bar_resizes(host.paths, device.address, *domain.settings.rebar);
        any_resizable |= bars.resizable;
        for (const auto& line : bars.warnings) tell_user(spdlog::level::warn, "vfio-hook: warning: " + line);
        for (const auto& resize : bars.resizes) {
            device.bar_sizes.push_back({resize.bar, resize.from});
            sizes[device.address].push_back({resize.bar, resize.to});
        }
    }
    if (!any_resizable)
        tell_user(spdlog::level::warn, "vfio-hook: warning: rebar " + domain.settings.rebar->str() +
                                           ": no device of this VM has a resizable BAR (no resourceN_resize: no ReBAR "
                                           "capability, or a kernel before 6.1); nothing resized");
    return sizes;
}

// What each device gets on its way to VFIO besides the move (issue 26).
struct OnTheWay {
    bool power_guard = true;                               // kept awake on vfio-pci (host/power_guard.hpp)
    std::map<PciAddress, std::vector<BarSize>> bar_sizes;  // the VM's BAR sizes, set while it has no driver
};

// The resize of one device's BARs, for the moment it has no driver: a failure is a warning.
WhileUnbound resize_while_unbound(Host& host, const PciAddress& address, const std::vector<BarSize>& sizes) {
    if (sizes.empty()) return {};
    return [&host, address, sizes] {
        if (auto problem = resize_bars(host.paths, host.kernel, address, sizes)) {
            tell_user(spdlog::level::warn, "vfio-hook: warning: " + problem.message() + "; the device moves all the same");
            return;
        }
        for (const auto& size : sizes)
            logger().info("{}: BAR {} resized to {}", address.str(), size.bar, rebar_size_text(size.bit));
    };
}

// Puts back the recorded BAR sizes of a device while it has no driver; a failure joins `problems`.
WhileUnbound restore_while_unbound(Host& host, const RecordedDevice& device, std::vector<std::string>& problems) {
    if (device.bar_sizes.empty()) return {};
    return [&host, &device, &problems] {
        if (auto problem = restore_bar_sizes(host.paths, host.kernel, device)) problems.push_back(problem.message());
    };
}

std::vector<ConsoleStep> console_steps_of(Host& host, const std::vector<PciAddress>& gpus) {
    std::vector<ConsoleStep> steps;
    for (const auto& gpu : gpus) {
        for (auto& step : console_steps_on(host.paths, host.kernel, gpu)) steps.push_back(step);
    }
    return steps;
}

// Takes the console steps in order, each one taken added to `taken`; stops at the first failure.
Problem take_console(Host& host, const std::vector<ConsoleStep>& steps, std::vector<ConsoleStep>& taken) {
    for (const auto& step : steps) {
        if (auto failure = take_console_step(host.paths, host.kernel, step)) return failure;
        logger().info("{}: took {}", step.gpu.str(), step.describe());
        taken.push_back(step);
    }
    return {};
}

// Puts back, in reverse, every device of `moved`; those that stay on vfio-pci go to `stranded`.
// The last one's write may still be stuck in the kernel (`hung`): more writes would block too.
Problem roll_back(Host& host, DeviceMover& mover, const StateRecord& record, const std::vector<const Move*>& moved,
                  bool hung, std::vector<RecordedDevice>& stranded) {
    Problem problems;
    std::vector<std::string> bar_problems;  // issue 26: sizes that would not go back (warnings)
    for (auto it = moved.rbegin(); it != moved.rend(); ++it) {
        const RecordedDevice& where = *record.find((*it)->address);
        if (hung && *it == moved.back()) {
            stranded.push_back(where);
            continue;
        }
        if (auto undo_failure = mover.send_home(where.address, where.original_driver, where.original_override,
                                                restore_while_unbound(host, where, bar_problems))) {
            problems.merge(Problem("rollback: " + undo_failure.message()));
            if (!undo_failure.device_home()) {
                stranded.push_back(where);
                continue;
            }
        }
        // Home (its old driver_override perhaps not): vfio-pci's unbind left `on` (issue 26).
        if (auto problem = restore_power_settings(host.paths, host.kernel, &where))
            problems.merge(Problem("rollback: " + problem.message()));
    }
    for (const auto& line : bar_problems) problems.merge(Problem("rollback: " + line));
    return problems;
}

// Moves each device of the plan to vfio-pci, logging how long each took. All or nothing: on a
// failure puts back everything this run moved, and returns the failure with the rollback's lines.
// Each goes to the VFIO driver its record names, gets `extras` on the way (issue 26).
Problem move_to_vfio(Host& host, DeviceMover& mover, const PreparePlan& plan, const StateRecord& record,
                     const OnTheWay& extras, std::vector<RecordedDevice>& stranded) {
    std::vector<const Move*> moved;
    for (const auto& move : plan.moves) {
        if (move.already_on_vfio) continue;
        DriverName vfio = record.find(move.address)->vfio_driver_name();
        DeviceLogFields fields(move.address, move.from, vfio);
        auto start = Clock::now();
        moved.push_back(&move);
        // Issue 26: no D3cold from the bind on; vfio-pci's idle suspend is faster than keep_awake.
        if (auto problem = extras.power_guard ? forbid_d3cold(host.paths, host.kernel, move.address) : Problem::none()) logger().warn("{}", problem.message());
        auto sizes = extras.bar_sizes.find(move.address);
        auto resize = resize_while_unbound(host, move.address, sizes == extras.bar_sizes.end() ? std::vector<BarSize>{} : sizes->second);
        if (auto failure = mover.to_vfio(move.address, vfio, resize))
            return failure.merge(roll_back(host, mover, record, moved, failure.hung(), stranded));
        // Issue 26: the power guard keeps it out of D3cold until QEMU opens it.
        if (auto problem = extras.power_guard ? keep_awake(host.paths, host.kernel, move.address) : Problem::none()) logger().warn("{}", problem.message());
        long took = elapsed_ms(start);
        log_with_fields(spdlog::level::info,
                        move.address.str() + ": " + move.from.value_or("no driver") + " → " + vfio + " in " +
                            std::to_string(took) + " ms",
                        {{"DURATION_MS", std::to_string(took)}});
    }
    return {};
}

}  // namespace

Problem carry_out_prepare(Host& host, const Domain& domain, const std::string& owner, const PreparePlan& plan) {
    RecordStore store(host.paths);
    // The owner's record as it is: an earlier unfinished run's devices stay in what this one writes.
    auto existing = store.load(owner);
    if (!existing) return "cannot read the state record: " + existing.error() + "; nothing was moved";
    const StateRecord* earlier = existing->has_value() ? &**existing : nullptr;
    StateRecord record = merged_record(earlier, domain, owner, plan);
    if (plan.moves.empty()) return {};
    DeviceMover mover(host.paths, host.kernel, host.settings);
    // What each device's driver_override was before us, to write it back when it comes home.
    if (auto problem = note_overrides(mover, record, earlier, plan)) return problem;
    // Issue 26: their runtime power settings, which the power guard puts back at release.
    note_power_settings(host, record, earlier, plan);
    // Issue 26: the VFIO driver each gets (a variant where the domain or modules.alias says so), loaded.
    if (auto problem = note_vfio_drivers(host, domain, record, plan)) return problem.add_line("nothing was moved");
    // Issue 26: the BAR sizes the VM's `rebar` setting asks for; the sizes now, recorded for release.
    OnTheWay extras{domain.settings.power_guard.value_or(true), note_bar_sizes(host, domain, record, earlier, plan)};
    // Single GPU: the host's console, taken only now that every check has passed, so a refused
    // start never touches it (fbcon, once unbound, cannot simply be bound again).
    auto console = console_steps_of(host, plan.takes_console);
    record.console.insert(record.console.end(), console.begin(), console.end());
    // The record before the first write: whatever happens next, `recover` knows what to give back.
    if (auto problem = store.save(record))
        return "cannot write the state record: " + problem.message() + "; nothing was moved";
    // What stays recorded if this start fails: what an earlier run left (its console that did
    // not come back included).
    StateRecord rest = existing->value_or(StateRecord{owner, domain.name, {}, {}});
    std::vector<ConsoleStep> taken;
    // The console, step by step; a step that fails gives back those taken and moves nothing.
    if (auto failure = take_console(host, console, taken)) {
        auto settled = settle_record(host, store, rest, taken);
        return failure.merge(settled.console).merge(record_line(settled, store, owner)).add_line("nothing was moved");
    }
    // The devices, all or nothing; what would not come back stays recorded.
    std::vector<RecordedDevice> stranded;
    auto failure = move_to_vfio(host, mover, plan, record, extras, stranded);
    if (!failure) return {};
    for (const auto& device : stranded) {
        if (!rest.find(device.address)) rest.devices.push_back(device);
    }
    auto settled = settle_record(host, store, rest, taken);
    failure.merge(settled.console);
    if (!settled.something_left) failure.add_line("every device was put back where it was");
    return failure.merge(record_line(settled, store, owner));
}

std::vector<std::string> prepare_details(Host& host, const Domain& domain, const PreparePlan& plan) {
    std::vector<std::string> lines;
    std::optional<std::string> aliases;
    bool any_resizable = false;
    for (const auto& move : plan.moves) {
        if (move.already_on_vfio) continue;
        if (!aliases) aliases = read_modules_alias(host.paths);
        auto choice = vfio_driver_for(host.paths, move.address, driver_model_of(domain, move.address), *aliases);
        if (!choice.is_vfio_pci()) lines.push_back("vfio  " + move.address.str() + ": " + choice.module + " (" + choice.why() + ")");
        if (!domain.settings.rebar) continue;
        auto bars = plan_bar_resizes(host.paths, move.address, *domain.settings.rebar);
        any_resizable |= bars.resizable;
        for (const auto& resize : bars.resizes) lines.push_back("rebar " + describe(move.address, resize));
        for (const auto& warning : bars.warnings) lines.push_back("warning: " + warning);
    }
    if (domain.settings.rebar && !any_resizable)
        lines.push_back("warning: rebar " + domain.settings.rebar->str() + ": no device of this VM has a resizable BAR; nothing would be resized");
    return lines;
}

std::vector<std::string> stuck_since_prepare(Host& host, const PreparePlan& plan) {
    std::vector<PciAddress> moved;
    for (const auto& move : plan.moves) moved.push_back(move.address);
    return stuck_device_lines(read_kernel_log(host.paths), plan.kernel_log_mark, moved);
}

namespace {

// The part of `record` this release gives back: all its devices, or those in `only`.
StateRecord selected_part(const StateRecord& record, const std::optional<std::set<PciAddress>>& only) {
    StateRecord selected{record.owner, record.domain_name, {}, {}};
    for (const auto& device : record.devices) {
        if (!only || only->count(device.address)) selected.devices.push_back(device);
    }
    return selected;
}

// Looks at the devices (the bus, and who holds them or their VFIO groups) and plans their way home.
ReleasePlan plan_release_with(Host& host, const StateRecord& selected, bool force) {
    std::vector<PciAddress> addresses;
    std::set<GroupId> groups;
    for (const auto& device : selected.devices) {
        addresses.push_back(device.address);
        if (device.group) groups.insert(*device.group);
    }
    BusSnapshot bus = read_bus(host.paths, host.kernel, addresses);
    auto nodes = nodes_of(host.paths, bus);
    nodes.merge(vfio_group_nodes(host.paths, groups));
    return plan_release(selected, bus, find_holders(host.paths, nodes), force);
}

// Gives one device back, logging how long it took; the BAR sizes `recorded` before the VM go back
// while it has no driver (issue 26). A device that did not come home goes back to its VFIO
// driver, a known and safe state, and stays in `still_ours`.
void give_back(Host& host, DeviceMover& mover, const Restore& restore, const RecordedDevice& recorded,
               ReleaseReport& report, std::set<PciAddress>& still_ours) {
    DeviceLogFields fields(restore.address, recorded.vfio_driver_name(), restore.to);
    auto start = Clock::now();
    auto failure = mover.send_home(restore.address, restore.to, restore.override_to_restore,
                                   restore_while_unbound(host, recorded, report.problems));
    if (!failure) {
        long took = elapsed_ms(start);
        log_with_fields(spdlog::level::info,
                        restore.address.str() + ": " + recorded.vfio_driver_name() + " → " + restore.to.value_or("no driver") + " in " +
                            std::to_string(took) + " ms",
                        {{"DURATION_MS", std::to_string(took)}});
        report.addresses.push_back(restore.address);
        report.restored.push_back(restore.address.str() + ": back on " + restore.to.value_or("no driver"));
        return;
    }
    if (failure.device_home()) {
        // Home on its driver; only its old driver_override could not be written back.
        report.addresses.push_back(restore.address);
        report.problems.push_back(failure.message() + "; the device is home: set it by hand");
        return;
    }
    still_ours.insert(restore.address);
    std::string line = failure.message();
    // Unless a write is stuck, when any further write would block as well.
    if (!failure.hung() && !mover.to_vfio(restore.address, recorded.vfio_driver_name())) line += "; left on " + recorded.vfio_driver_name();
    line += "; still recorded, retry with `vfio-hook recover`";
    report.problems.push_back(line);
}

// A device that does not answer is never probed by its host driver: it stays on vfio-pci, in
// `still_ours`, and the report says why and what to do (host/liveness_check.hpp). True then.
bool keep_if_not_answering(Host& host, const Restore& restore, bool strict, ReleaseReport& report,
                           std::set<PciAddress>& still_ours) {
    DeviceLogFields fields(restore.address, std::string(vfio_pci), restore.to);
    auto dead = refuse_dead_device(host.paths, host.kernel, restore.address, restore.to, strict);
    if (!dead) return false;
    still_ours.insert(restore.address);
    report.problems.push_back(dead.message());
    return true;
}

// The runtime power settings of each device back on its host driver, as they were before the VM.
void put_back_power_settings(Host& host, const StateRecord& record, ReleaseReport& report) {
    for (const auto& address : report.addresses) {
        if (auto problem = restore_power_settings(host.paths, host.kernel, record.find(address)))
            report.problems.push_back(problem.message());
    }
}

// The kernel log lines from while the VM had the devices that say one was stuck (a record from
// before issue 26 has no mark: none then). The release's own lines are add_kernel_log_problems'.
void add_stuck_lines(Host& host, const StateRecord& selected, std::uint64_t mark, std::uint64_t before,
                     ReleaseReport& report) {
    std::vector<PciAddress> addresses;
    for (const auto& device : selected.devices) addresses.push_back(device.address);
    auto stuck = stuck_device_lines(read_kernel_log(host.paths), mark, addresses, mark ? before : 0);
    report.problems.insert(report.problems.end(), stuck.begin(), stuck.end());
}

// What the drivers said while taking the devices back: the kernel log since `before`.
void add_kernel_log_problems(Host& host, const ReleasePlan& plan, std::uint64_t before, ReleaseReport& report) {
    auto log_after = read_kernel_log(host.paths);
    for (const auto& restore : plan.restores) {
        std::vector<KernelLogLine> fresh;
        std::copy_if(log_after.begin(), log_after.end(), std::back_inserter(fresh),
                     [&](const KernelLogLine& line) { return line.sequence > before; });
        for (const auto& line : problems_about(fresh, restore.address, restore.to)) {
            // The seed case: a driver without its firmware never takes the device cleanly.
            bool not_home = std::find(report.addresses.begin(), report.addresses.end(), restore.address) ==
                            report.addresses.end();
            bool fallback = not_home && reports_missing_firmware(line.message);
            report.problems.push_back(restore.address.str() + ": kernel log after giving it back to " +
                                      restore.to.value_or("no driver") + ": \"" + line.message + "\"" +
                                      (fallback ? "; for a GPU only VMs use, `vfio-hook persist " +
                                                      restore.address.str() + "` keeps it on vfio-pci from boot"
                                                : ""));
        }
    }
}

// What stays recorded: the devices this release was not asked for, and those still ours.
StateRecord what_stays(const StateRecord& record, const std::optional<std::set<PciAddress>>& only,
                       const std::set<PciAddress>& still_ours) {
    StateRecord rest{record.owner, record.domain_name, {}, {}};
    rest.kernel_log_mark = record.kernel_log_mark;  // issue 26
    for (const auto& device : record.devices) {
        bool selected_device = !only || only->count(device.address);
        if (!selected_device || still_ours.count(device.address)) rest.devices.push_back(device);
    }
    return rest;
}

}  // namespace

ReleaseReport release_owner(Host& host, const std::string& owner,
                            const std::optional<std::set<PciAddress>>& only, bool force, ShutoffReason reason) {
    ReleaseReport report;
    RecordStore store(host.paths);
    // The owner's record: what went to vfio-pci, from where.
    auto loaded = store.load(owner);
    if (!loaded) {
        report.problems.push_back(loaded.error());
        return report;
    }
    if (!loaded->has_value()) return report;
    const StateRecord& record = **loaded;
    // Look, then plan: which devices go home, which stay (held, refused), which are gone.
    StateRecord selected = selected_part(record, only);
    ReleasePlan plan = plan_release_with(host, selected, force);
    auto log_before = last_sequence(read_kernel_log(host.paths));
    std::set<PciAddress> still_ours;
    for (const auto& kept : plan.kept) {
        report.kept.push_back(kept.line());
        still_ours.insert(*kept.address);
    }
    // The devices home, one by one.
    DeviceMover mover(host.paths, host.kernel, host.settings);
    for (const auto& restore : plan.restores) {
        // Issue 26: a device that does not answer stays on vfio-pci (strict after a crash).
        if (keep_if_not_answering(host, restore, needs_proof_of_life(reason), report, still_ours)) continue;
        give_back(host, mover, restore, *record.find(restore.address), report, still_ours);
    }
    // Issue 26: their runtime power settings as they were before the VM.
    put_back_power_settings(host, record, report);
    for (const auto& gone : plan.gone) logger().warn("{}: no longer on the bus; dropped from the record", gone.str());
    // Issue 26: what the kernel said about them being stuck while the VM had them.
    add_stuck_lines(host, selected, record.kernel_log_mark, log_before, report);
    // What the drivers said while taking them back.
    add_kernel_log_problems(host, plan, log_before, report);
    // The console back, and the record rewritten to hold exactly what is not home.
    StateRecord rest = what_stays(record, only, still_ours);
    auto settled = settle_record(host, store, rest, record.console);
    report.problems.insert(report.problems.end(), settled.console.lines().begin(), settled.console.lines().end());
    if (settled.record) report.problems.push_back(settled.record.message());
    return report;
}

}  // namespace vfio_hook
