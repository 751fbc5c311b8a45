// `vfio-hook assign` and `unassign`: put a GPU (every endpoint of its IOMMU group) into a VM's
// persistent definition, or take it out, through libvirt (virsh dumpxml / define). The admin
// tool's job, never the hook's. Every definition replaced is backed up first.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "cli/commands.hpp"
#include "core/domain_edit.hpp"
#include "core/domain_xml.hpp"
#include "host/pci_bus.hpp"
#include "core/problem.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

struct Definition {
    std::string xml;     // the persistent definition, with its secrets (--security-info)
    Domain domain;       // what the hook would read of it
    bool running = false;
};

// One line naming what is wrong, or the VM's persistent definition.
Expected<Definition> read_definition(Commands& commands, const std::string& name) {
    auto info = commands.virsh({"-c", commands.uri, "dominfo", "--domain", name});
    if (!info) return Error{"domain '" + name + "': " + info.error()};
    if (info->find("Persistent:") != std::string::npos && info->find("Persistent:     no") != std::string::npos)
        return Error{"domain '" + name + "' is transient (it has no definition to change): define it first"};
    // Without --security-info a VNC/SPICE password would be lost on the redefine.
    auto xml = commands.virsh({"-c", commands.uri, "dumpxml", "--inactive", "--security-info", "--domain", name});
    if (!xml) return Error{"domain '" + name + "': " + xml.error()};
    auto domain = parse_domain_xml(*xml);
    if (!domain) return Error{"domain '" + name + "': " + domain.error()};
    bool running = info->find("State:          running") != std::string::npos ||
                   info->find("State:          paused") != std::string::npos;
    return Definition{*xml, *domain, running};
}

fs::path backups_dir(const Host& host) { return host.paths.root / "var/lib/vfio-hook/backups"; }

// Definitions are dumped with --security-info (VNC/SPICE passwords): the directory and every
// file in it are root's alone, from their first byte.
Problem make_backups_dir(const Host& host) {
    std::error_code error;
    fs::create_directories(backups_dir(host), error);
    if (error) return "cannot create " + backups_dir(host).string() + ": " + error.message();
    fs::permissions(backups_dir(host), fs::perms::owner_all, error);
    return {};
}

// Keeps the definition about to be replaced: <uuid>-<UTC time, to the nanosecond>Z.xml, never
// over an earlier one (two changes within a second each keep theirs).
Expected<fs::path> back_up(const Host& host, const Definition& definition) {
    if (auto problem = make_backups_dir(host)) return Error{problem.message()};
    for (int attempt = 0; attempt < 100; ++attempt) {
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        std::tm utc{};
        ::gmtime_r(&now.tv_sec, &utc);
        char stamp[48];
        std::size_t length = std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &utc);
        std::snprintf(stamp + length, sizeof stamp - length, ".%09ldZ", static_cast<long>(now.tv_nsec));
        fs::path file = backups_dir(host) / (definition.domain.uuid.str() + "-" + stamp + ".xml");
        if (write_private_file(file, definition.xml, true)) return file;
        if (errno != EEXIST) return Error{"cannot write the backup " + file.string() + ": " + std::strerror(errno)};
    }
    return Error{"cannot find a free backup name in " + backups_dir(host).string()};
}

// The newest backup that still has the emulated display (the one `assign --headless` took):
// later changes back up headless definitions, which have nothing to put back.
std::optional<fs::path> latest_backup_with_display(const Host& host, const std::string& uuid) {
    std::vector<fs::path> backups;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(backups_dir(host), error)) {
        if (entry.path().filename().string().starts_with(uuid + "-")) backups.push_back(entry.path());
    }
    std::sort(backups.begin(), backups.end(), [](const fs::path& a, const fs::path& b) { return a.filename() > b.filename(); });
    for (const auto& backup : backups) {
        auto text = read_user_file(backup, max_domain_xml_bytes);
        if (text && has_display(*text)) return backup;
    }
    return std::nullopt;
}

int apply(Commands& commands, const std::string& command, const std::string& name, const Definition& definition,
          const DomainEdit& edit, bool dry_run) {
    for (const auto& warning : edit.warnings) commands.err << "vfio-hook " << command << ": warning: " << warning << "\n";
    if (edit.added.empty() && edit.removed.empty()) {
        commands.out << "domain '" << name << "': nothing to change\n";
        return 0;
    }
    if (dry_run) {
        commands.out << unified_diff(edit.before, edit.xml, name + ".xml (now)", name + ".xml (after " + command + ")");
        return 0;
    }
    auto backup = back_up(commands.host, definition);
    if (!backup) {
        commands.err << "vfio-hook " << command << ": " << backup.error() << "; nothing was changed\n";
        return 1;
    }
    fs::path staged = backups_dir(commands.host) / (".new-" + definition.domain.uuid.str() + ".xml");
    std::error_code stale;
    fs::remove(staged, stale);
    if (!write_private_file(staged, edit.xml, true)) {
        commands.err << "vfio-hook " << command << ": cannot write " << staged.string() << ": " << std::strerror(errno)
                     << "; nothing was changed\n";
        return 1;
    }
    auto defined = commands.virsh({"-c", commands.uri, "define", staged.string()});
    std::error_code error;
    fs::remove(staged, error);
    if (!defined) {
        commands.err << "vfio-hook " << command << ": domain '" << name << "': " << defined.error()
                     << "; nothing was changed\n";
        return 1;
    }
    for (const auto& line : edit.removed) commands.out << "removed " << line << "\n";
    for (const auto& line : edit.added) commands.out << "added " << line << "\n";
    commands.out << "the earlier definition is kept in " << backup->string() << "\n";
    if (definition.running) commands.out << "domain '" << name << "' is running: the change applies at its next start\n";
    return 0;
}

}  // namespace

int run_assign(Commands& commands, const std::string& name, const std::vector<PciAddress>& addresses, bool headless,
               bool dry_run) {
    auto definition = read_definition(commands, name);
    if (!definition) {
        commands.err << "vfio-hook assign: " << definition.error() << "\n";
        return 1;
    }
    Host& host = commands.host;
    // Every endpoint of each address's IOMMU group (bridges and root ports stay with the host).
    BusSnapshot bus = read_bus(host.paths, host.kernel, addresses);
    std::vector<PciAddress> endpoints;
    auto add = [&](const PciAddress& address) {
        if (std::find(endpoints.begin(), endpoints.end(), address) == endpoints.end()) endpoints.push_back(address);
    };
    for (const auto& address : addresses) {
        const PciDevice* device = bus.find(address);
        if (!device || !device->iommu_group || !bus.groups.count(*device->iommu_group)) {
            add(address);  // the checks below say what is wrong with it
            continue;
        }
        for (const auto& member : bus.groups.at(*device->iommu_group)) {
            const PciDevice* each = bus.find(member);
            if (each && !each->is_bridge()) add(member);
        }
    }
    // The checks a start would make that do not depend on the moment: what runs now or which VM
    // holds the GPU today says nothing about the definition.
    Domain asked = definition->domain;
    asked.pci_devices.clear();
    for (const auto& address : endpoints) asked.pci_devices.push_back({address, false, ""});
    HostView view = look_before_prepare(host, asked, ModuleLoading::never);
    view.holders.clear();
    view.records.clear();
    PreparePlan plan = plan_with(host, asked, asked.uuid.str(), view);
    if (plan.refused()) {
        for (const auto& refusal : plan.refusals) commands.err << "vfio-hook assign: refused: " << refusal.line() << "\n";
        return 1;
    }
    auto edit = assign_devices(definition->xml, endpoints, headless);
    if (!edit) {
        commands.err << "vfio-hook assign: domain '" << name << "': " << edit.error() << "\n";
        return 1;
    }
    return apply(commands, "assign", name, *definition, *edit, dry_run);
}

int run_unassign(Commands& commands, const std::string& name, const std::vector<PciAddress>& addresses,
                 bool restore_display, bool dry_run) {
    auto definition = read_definition(commands, name);
    if (!definition) {
        commands.err << "vfio-hook unassign: " << definition.error() << "\n";
        return 1;
    }
    std::optional<std::string> backup_xml;
    if (restore_display) {
        auto backup = latest_backup_with_display(commands.host, definition->domain.uuid.str());
        if (!backup) {
            commands.err << "vfio-hook unassign: no backup of domain '" << name << "' with a display in "
                         << backups_dir(commands.host).string() << " to restore the display from\n";
            return 1;
        }
        auto text = read_user_file(*backup, max_domain_xml_bytes);
        if (!text) {
            commands.err << "vfio-hook unassign: " << text.error() << "\n";
            return 1;
        }
        backup_xml = *text;
    }
    auto only = addresses.empty() ? std::nullopt : std::optional<std::vector<PciAddress>>(addresses);
    auto edit = unassign_devices(definition->xml, only, backup_xml);
    if (!edit) {
        commands.err << "vfio-hook unassign: domain '" << name << "': " << edit.error() << "\n";
        return 1;
    }
    return apply(commands, "unassign", name, *definition, *edit, dry_run);
}

}  // namespace vfio_hook
