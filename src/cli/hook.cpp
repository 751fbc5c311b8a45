// libvirt's QEMU hook: prepare begin moves the domain's devices to vfio-pci, release end gives
// them back. Nothing is ever printed on stdout: for migrate/restore libvirt would parse it as a
// replacement domain XML.

#include <optional>

#include "cli/commands.hpp"
#include "core/domain_xml.hpp"
#include "host/log.hpp"

namespace vfio_hook {
namespace {

// Finishes what an earlier run for this domain left (a crash mid-move, a failed release).
void finish_unfinished(Host& host, const Domain& domain) {
    auto report = release_owner(host, domain.uuid.str());
    for (const auto& line : report.restored) logger().info("unfinished earlier run: {}", line);
    for (const auto& line : report.problems) logger().warn("unfinished earlier run: {}", line);
    for (const auto& line : report.kept) logger().warn("unfinished earlier run: {}", line);
}

int prepare(Host& host, const Domain& domain) {
    StateJournal journal(host.paths);
    // VMs without host PCI devices never wait on the lock.
    if (domain.pci_devices.empty() && !journal.has_record(domain.uuid.str())) return 0;
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
        // One message in `virsh start`'s output: what happened, then each reason with its fix.
        std::string message = "vfio-hook: domain '" + domain.name + "' not started, nothing was changed:";
        for (const auto& refusal : plan.refusals) message += "\n  " + refusal.line();
        tell_user(spdlog::level::err, message);
        return 1;
    }
    auto failure = carry_out_prepare(host, domain, domain.uuid.str(), plan);
    for (const auto& line : failure) tell_user(spdlog::level::err, "vfio-hook: " + line);
    return failure.empty() ? 0 : 1;
}

// Whose records this release gives back. Only the domain's identity matters here: a setting
// that does not parse must not leave a GPU on vfio-pci for good (libvirt calls release once).
// Without even a UUID, the records that name this domain are the best witness there is.
std::vector<std::string> owners_to_release(Host& host, const HookCall& call, const std::string& xml) {
    auto identity = parse_domain_identity(xml);
    if (identity) {
        set_log_context({identity->name, identity->uuid.str(), call.operation});
        if (auto full = parse_domain_xml(xml); !full)
            logger().warn("ignoring what release cannot read: {}", full.error());
        return {identity->uuid.str()};
    }
    std::vector<std::string> owners;
    for (const auto& record : StateJournal(host.paths).load_all()) {
        if (record.owner != manual_owner && record.domain_name == call.domain) owners.push_back(record.owner);
    }
    logger().error("domain '{}': {}; releasing the {} record(s) that name this domain", call.domain,
                   identity.error(), owners.size());
    return owners;
}

int release(Host& host, const HookCall& call, const std::string& xml) {
    StateJournal journal(host.paths);
    for (const auto& owner : owners_to_release(host, call, xml)) {
        if (!journal.has_record(owner)) continue;  // nothing of this domain's moved
        auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
        if (!lock) {
            tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + lock.error() +
                                              "; its devices stay recorded for `vfio-hook recover`");
            continue;
        }
        auto report = release_owner(host, owner);
        for (const auto& line : report.kept) tell_user(spdlog::level::warn, "vfio-hook: " + line);
        for (const auto& line : report.problems) tell_user(spdlog::level::err, "vfio-hook: " + line);
    }
    // libvirt ignores release's exit status: the record keeps what failed for `recover`.
    return 0;
}

}  // namespace

int run_hook(Host& host, const HookCall& call, const std::string& domain_xml) {
    set_log_context({call.domain, "", call.operation});
    if (call.operation == "release") return release(host, call, domain_xml);
    if (call.operation != "prepare") return 0;
    auto domain = parse_domain_xml(domain_xml);
    if (!domain) {
        tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + domain.error());
        return 1;
    }
    set_log_context({domain->name, domain->uuid.str(), call.operation});
    return prepare(host, *domain);
}

}  // namespace vfio_hook
