// `vfio-hook check`: what prepare would do for a domain, and every refusal, changing nothing.

#include "cli/commands.hpp"
#include "core/domain_xml.hpp"
#include "host/reset_check.hpp"
#include "host/visibility.hpp"

namespace vfio_hook {

int run_check(Commands& commands, const std::string& domain_xml, const std::string& source) {
    auto& out = commands.out;
    auto domain = parse_domain_xml(domain_xml);
    if (!domain) {
        commands.err << "vfio-hook check: " << source << ": " << domain.error() << "\n";
        return 2;
    }
    // Without root the holders, the kernel log and the records may be closed to us: what this
    // run could not see comes first, and "ready" never follows it.
    Visibility visibility = domain->pci_devices.empty() ? Visibility{} : survey_visibility(commands.host.paths);
    if (visibility.partial()) out << "partial view, needs root: " << visibility.summary() << "; " << run_as_root << "\n";
    out << "domain '" << domain->name << "' (uuid " << domain->uuid.str() << "): "
        << domain->pci_devices.size() << " host PCI device(s)\n";
    for (const auto& warning : domain->warnings) out << "  warning: " << warning << "\n";
    if (domain->pci_devices.empty()) {
        out << "ready to start (nothing to move)\n";
        return 0;
    }
    // A dry run: it loads no module and moves no device.
    Host& host = commands.host;
    HostView view = look_before_prepare(host, *domain, ModuleLoading::never);
    PreparePlan plan = plan_with(host, *domain, domain->uuid.str(), view);
    for (const auto& move : plan.moves) {
        const PciDevice* device = view.bus.find(move.address);
        out << "  move  " << move.address.str() << " (" << (device ? device->kind() : "?") << ", "
            << (device ? device->vendor_device() : "?") << ", group "
            << (move.group ? std::to_string(*move.group) : "?") << "): "
            << move.from.value_or("no driver") << " -> vfio-pci"
            << (move.requested ? "" : "  [group companion]")
            << (move.already_on_vfio ? "  [already there, ours]" : "")
            << (device ? "  reset: " + (device->reset_methods.empty() ? std::string("none") : device->reset_methods) : "") << "\n";
    }
    for (const auto& address : plan.left_on_vfio) {
        out << "  keep  " << address.str() << ": already on a VFIO driver before us; left alone\n";
    }
    for (const auto& address : plan.left_alone) {
        out << "  keep  " << address.str() << ": no driver, in another slot; left alone (it keeps the group viable)\n";
    }
    for (const auto& line : prepare_details(host, *domain, plan)) out << "  " << line << "\n";  // issue 26: variants, ReBAR
    for (const auto& warning : plan.warnings) out << "  warning: " << warning.line() << "\n";
    std::vector<const PciDevice*> moving;  // issue 26: the AMD reset bug
    for (const auto& move : plan.moves) moving.push_back(view.bus.find(move.address));
    std::erase(moving, nullptr);
    for (const auto& warning : reset_bug_warnings(host.paths, moving)) out << "  warning: " << warning << "\n";
    for (const auto& refusal : plan.refusals) out << "  refused: " << refusal.line() << "\n";
    if (visibility.partial() && !plan.refused()) {
        out << "not known to be ready: a partial view (" << run_as_root << " for the whole answer)\n";
        return 1;
    }
    out << (plan.refused() ? "would refuse to start\n" : "ready to start\n");
    return plan.refused() ? 1 : 0;
}

}  // namespace vfio_hook
