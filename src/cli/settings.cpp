// `vfio-hook set DOMAIN KEY VALUE` and `vfio-hook get DOMAIN`: the per-VM settings, written where
// libvirt keeps them (the definition's <metadata>, our namespace) through `virsh metadata`, so a
// user never has to type the namespace that virt-manager's editor silently drops without it.

#include "cli/commands.hpp"
#include "core/domain_xml.hpp"

namespace vfio_hook {
namespace {

// libvirt answers `virsh metadata` for a domain with none of ours with an error, not emptiness.
bool no_metadata_yet(const std::string& error) {
    return error.find("not present") != std::string::npos || error.find("metadata not found") != std::string::npos;
}

Expected<DomainSettings> read_settings(Commands& commands, const std::string& domain) {
    auto shown = commands.virsh({"-c", commands.uri, "metadata", "--domain", domain, "--uri",
                                 std::string(metadata_namespace), "--config"});
    if (!shown) {
        if (no_metadata_yet(shown.error())) return DomainSettings{};
        return Error{"domain '" + domain + "': " + shown.error()};
    }
    auto settings = parse_settings_element(*shown);
    if (!settings) return Error{"domain '" + domain + "': its vfio-hook metadata: " + settings.error()};
    return settings;
}

void print_settings(std::ostream& out, const DomainSettings& settings) {
    out << "allow-boot-vga = "
        << (settings.allow_boot_vga ? (*settings.allow_boot_vga ? "yes" : "no") : "(config file)") << "\n"
        << "firmware-errors = "
        << (settings.refuse_on_firmware_errors ? (*settings.refuse_on_firmware_errors ? "refuse" : "warn")
                                               : "(config file)")
        << "\n";
    out << "power-guard = " << (settings.power_guard ? (*settings.power_guard ? "yes" : "no") : "yes (default)") << "\n";
    out << "rebar = " << (settings.rebar ? settings.rebar->str() : "no (BAR sizes left as they are)") << "\n";
    for (const auto& address : settings.allowed_host_critical)
        out << "allow-host-critical = " << address.str() << "\n";
}

}  // namespace

int run_get(Commands& commands, const std::string& domain) {
    auto settings = read_settings(commands, domain);
    if (!settings) {
        commands.err << "vfio-hook get: " << settings.error() << "\n";
        return 1;
    }
    print_settings(commands.out, *settings);
    return 0;
}

int run_set(Commands& commands, const std::string& domain, const std::string& key, const std::string& value) {
    DomainSettings probe;
    if (auto problem = apply_domain_setting(probe, key, value)) {
        commands.err << "vfio-hook set: " << key << " " << value << ": " << problem.message() << "\n";
        return 2;
    }
    auto settings = read_settings(commands, domain);
    if (!settings) {
        commands.err << "vfio-hook set: " << settings.error() << "\n";
        return 1;
    }
    // Checked on `probe` above, before anything was read; said all the same should it ever differ.
    if (auto problem = apply_domain_setting(*settings, key, value)) {
        commands.err << "vfio-hook set: domain '" << domain << "': " << key << " " << value << ": " << problem.message() << "\n";
        return 2;
    }
    auto written = commands.virsh({"-c", commands.uri, "metadata", "--domain", domain, "--uri", std::string(metadata_namespace),
                                   "--key", "vh", "--set", serialize_settings(*settings), "--config"});
    if (!written) {
        commands.err << "vfio-hook set: domain '" << domain << "': " << written.error() << "\n";
        return 1;
    }
    commands.out << "domain '" << domain << "': " << key << " = " << value
                 << " (in its definition: a running VM sees it at its next start)\n";
    return 0;
}

}  // namespace vfio_hook
