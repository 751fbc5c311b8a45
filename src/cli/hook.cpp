// libvirt's QEMU hook, as one sequence per event:
//   prepare begin:  hook.d prepare scripts → lock → checks (holders, groups, console) → record →
//                   moves to vfio-pci (host/hand_over.cpp → host/device_mover.cpp)
//   release end:    lock → devices home, verified → hook.d release scripts
//   anything else:  hook.d scripts for it, if any
// Nothing is ever printed on stdout: for migrate/restore libvirt would parse it as a
// replacement domain XML. Nothing here calls libvirt: that deadlocks it.

#include <chrono>
#include <ctime>
#include <optional>

#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "core/domain_xml.hpp"
#include "host/last_runs.hpp"
#include "host/log.hpp"
#include "host/scripts.hpp"

namespace vfio_hook {
namespace {

using Clock = std::chrono::steady_clock;

std::string since(Clock::time_point start) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

// Finishes what an earlier run for this domain left (a crash mid-move, a failed release).
void finish_unfinished(Host& host, const Domain& domain) {
    auto report = release_owner(host, domain.uuid.str());
    for (const auto& line : report.restored) logger().info("unfinished earlier run: {}", line);
    for (const auto& line : report.problems) logger().warn("unfinished earlier run: {}", line);
    for (const auto& line : report.kept) logger().warn("unfinished earlier run: {}", line);
}

// The user's hook.d scripts for this event. The problem has a line for each unsafe script or
// directory and each script that failed; none when all went well or there were none.
// An event that can refuse (`can_refuse`: prepare, start, started) runs nothing when anything is
// unsafe and stops at the first failure: a prepare script stops the display manager, and a start
// refused after it would leave the host without one. Any other event skips what is unsafe and
// runs the rest: release restarts the display manager, whatever else is wrong.
Problem run_user_scripts(Host& host, const HookCall& call, const std::string& uuid,
                         const std::vector<PciAddress>& addresses, const std::string& xml, bool can_refuse,
                         bool stop_at_first_failure) {
    if (!script_directory_exists(host.paths, call.domain, call.operation, call.sub_operation, call.runs_qemu_d_layout))
        return {};
    auto plan = find_scripts(host.paths, call.domain, call.operation, call.sub_operation, call.runs_qemu_d_layout);
    Problem problems;
    for (const auto& refusal : plan.refusals) problems.merge(Problem("hook.d script not run: " + refusal));
    if (can_refuse && problems) return problems;
    ScriptEvent event{call.domain, uuid, call.operation, call.sub_operation, call.extra, addresses};
    return problems.merge(run_scripts(plan.scripts, event, xml, host.settings.script_deadline, stop_at_first_failure));
}

// For `status`: how this VM's last prepare or release went (host/last_runs.hpp); the records
// say nothing once a release has given everything back.
void note_last_run(const Host& host, const std::string& uuid, const std::string& name, const char* operation,
                   const char* result, Clock::time_point start) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    save_last_run(host.paths, {uuid, name, operation, result, static_cast<std::int64_t>(ms),
                               static_cast<std::int64_t>(std::time(nullptr))});
}

std::vector<PciAddress> addresses_of(const Domain& domain) {
    std::vector<PciAddress> addresses;
    for (const auto& device : domain.pci_devices) addresses.push_back(device.address);
    return addresses;
}

int refuse_start(const Domain& domain, const std::vector<std::string>& reasons) {
    // One message in `virsh start`'s output: what happened, then each reason with its fix.
    std::string message = "vfio-hook: domain '" + domain.name + "' not started, nothing was changed:";
    for (const auto& reason : reasons) message += "\n  " + reason;
    tell_user(spdlog::level::err, message);
    return 1;
}

int prepare(Host& host, const HookCall& call, const Domain& domain, const std::string& xml) {
    // First the user's scripts: a single-GPU setup stops the display manager here, which holds
    // the card the holder check is about to look at.
    if (auto failed = run_user_scripts(host, call, domain.uuid.str(), addresses_of(domain), xml, true, true))
        return refuse_start(domain, failed.lines());

    // VMs without host PCI devices never wait on the lock.
    if (!domain_has_work(host.paths, domain)) return 0;
    auto start = Clock::now();
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, "vfio-hook: domain '" + domain.name + "': " + lock.error());
        return 1;
    }
    finish_unfinished(host, domain);
    if (domain.pci_devices.empty()) return 0;

    HostView view = look_before_prepare(host, domain);
    PreparePlan plan = plan_with(host, domain, domain.uuid.str(), view);
    for (const auto& warning : domain.warnings) logger().warn("{}", warning);
    for (const auto& warning : plan.warnings) {
        tell_user(spdlog::level::warn, "vfio-hook: warning: " + warning.line());
    }
    if (plan.refused()) {
        std::vector<std::string> reasons;
        for (const auto& refusal : plan.refusals) reasons.push_back(refusal.line());
        return refuse_start(domain, reasons);
    }
    auto failure = carry_out_prepare(host, domain, domain.uuid.str(), plan);
    if (failure) for (auto& line : stuck_since_prepare(host, plan)) failure.add_line(line);  // issue 26
    for (const auto& line : failure.lines()) tell_user(spdlog::level::err, "vfio-hook: " + line);
    log_with_fields(spdlog::level::info,
                    "prepare " + std::string(failure ? "failed" : "done") + ": " +
                        std::to_string(plan.moves.size()) + " device(s) in " + since(start) + " ms",
                    {{"DURATION_MS", since(start)}, {"DEVICE_COUNT", std::to_string(plan.moves.size())}});
    return failure ? 1 : 0;
}

// Whose records this release gives back. Only the domain's identity matters here: a setting
// that does not parse must not leave a GPU on vfio-pci for good (libvirt calls release once).
// Without even a UUID, the records that name this domain are the best witness there is.
std::vector<std::string> owners_to_release(Host& host, const HookCall& call, const std::string& xml) {
    // One parse when the document is whole (the usual case: the full parse names the domain
    // too); the identity alone only when the full parse fails.
    auto full = parse_domain_xml(xml);
    auto identity = full ? full : parse_domain_identity(xml);
    if (identity) {
        set_log_context({identity->name, identity->uuid.str(), call.operation});
        if (!full) logger().warn("ignoring what release cannot read: {}", full.error());
        return {identity->uuid.str()};
    }
    std::vector<std::string> owners;
    for (const auto& record : RecordStore(host.paths).load_all()) {
        if (record.owner != manual_owner && record.domain_name == call.domain) owners.push_back(record.owner);
    }
    logger().error("domain '{}': {}; releasing the {} record(s) that name this domain", call.domain,
                   identity.error(), owners.size());
    return owners;
}

int release(Host& host, const HookCall& call, const std::string& xml) {
    RecordStore store(host.paths);
    std::vector<PciAddress> released;
    auto owners = owners_to_release(host, call, xml);
    for (const auto& owner : owners) {
        if (!store.has_record(owner)) continue;  // nothing of this domain's moved
        auto start = Clock::now();
        auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
        if (!lock) {
            tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + lock.error() +
                                              "; its devices stay recorded for `vfio-hook recover`");
            continue;
        }
        auto report = release_owner(host, owner, std::nullopt, false, parse_shutoff_reason(call.extra));
        for (const auto& line : report.kept) tell_user(spdlog::level::warn, "vfio-hook: " + line);
        for (const auto& line : report.problems) tell_user(spdlog::level::err, "vfio-hook: " + line);
        released.insert(released.end(), report.addresses.begin(), report.addresses.end());
        note_last_run(host, owner, call.domain, "release",
                      report.problems.empty() && report.kept.empty() ? "done" : "failed", start);
        log_with_fields(spdlog::level::info,
                        "release done: " + std::to_string(report.addresses.size()) + " device(s) home in " +
                            since(start) + " ms (libvirt's shutoff reason: " + call.extra + ")",
                        {{"DURATION_MS", since(start)}, {"DEVICE_COUNT", std::to_string(report.addresses.size())},
                         {"SHUTOFF_REASON", call.extra}});
    }
    // After the devices are home: a single-GPU setup restarts its display manager here.
    auto problems = run_user_scripts(host, call, owners.size() == 1 ? owners.front() : "", released, xml, false, false);
    for (const auto& line : problems.lines())
        tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + line);
    // libvirt ignores release's exit status: the record keeps what failed for `recover`.
    return 0;
}

// start, started, stopped, migrate, restore, reconnect, …: only the user's scripts, if any.
int other_event(Host& host, const HookCall& call, const std::string& xml) {
    auto domain = parse_domain_xml(xml);
    auto identity = domain ? Expected<Domain>(*domain) : parse_domain_identity(xml);
    std::string uuid = identity ? identity->uuid.str() : "";
    // Only these can still stop a start; reconnect must never fail (libvirt would kill the VM).
    bool can_refuse = call.operation == "start" || call.operation == "started";
    auto failed = run_user_scripts(host, call, uuid, domain ? addresses_of(*domain) : std::vector<PciAddress>{},
                                   xml, can_refuse, true);
    for (const auto& line : failed.lines())
        tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + line);
    return !failed || !can_refuse ? 0 : 1;
}

}  // namespace

bool hook_has_work(const HostPaths& paths, const HookCall& call) {
    return hook_acts_on(call.operation, call.sub_operation) ||
           script_directory_exists(paths, call.domain, call.operation, call.sub_operation, call.runs_qemu_d_layout);
}

bool hook_is_idle(const HostPaths& paths, const HookCall& call, std::string_view domain_xml) {
    bool scripts = script_directory_exists(paths, call.domain, call.operation, call.sub_operation, call.runs_qemu_d_layout);
    if (!hook_acts_on(call.operation, call.sub_operation)) return !scripts;  // stage 1's answer
    if (scripts) return false;
    if (!RecordStore(paths).empty()) return false;
    if (call.operation == "release") return true;  // release only ever gives back what is recorded
    return call.operation == "prepare" && surely_without_pci_hostdevs(domain_xml);
}

bool domain_has_work(const HostPaths& paths, const Domain& domain) {
    return !domain.pci_devices.empty() || RecordStore(paths).has_record(domain.uuid.str());
}

int run_hook(Host& host, const HookCall& call, const std::string& domain_xml) {
    set_log_context({call.domain, "", call.operation});
    if (call.operation == "release" && call.sub_operation == "end") return release(host, call, domain_xml);
    if (call.operation != "prepare" || call.sub_operation != "begin") return other_event(host, call, domain_xml);
    auto domain = parse_domain_xml(domain_xml);
    if (!domain) {
        tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + domain.error());
        return 1;
    }
    set_log_context({domain->name, domain->uuid.str(), call.operation});
    auto start = Clock::now();
    int status = prepare(host, call, *domain, domain_xml);
    if (!domain->pci_devices.empty())
        note_last_run(host, domain->uuid.str(), domain->name, "prepare", status == 0 ? "done" : "not started", start);
    return status;
}

}  // namespace vfio_hook
