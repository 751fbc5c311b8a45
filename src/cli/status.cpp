// `vfio-hook status`: the host's readiness for GPU passthrough, as a table or JSON; exit 0 when
// ready, 1 when something needs fixing (each problem printed with its fix).

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "core/host_report.hpp"
#include "host/holders.hpp"
#include "host/hook_slots.hpp"
#include "host/kernel_log_reader.hpp"
#include "host/liveness_check.hpp"
#include "host/reset_check.hpp"
#include "host/pci_bus.hpp"
#include "host/persisted.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& file) { return read_text_file(file, 16 << 20); }

DriverHolds read_driver_holds(const HostPaths& paths, const std::string& cmdline) {
    DriverHolds holds;
    for (const char* dir : {"etc/modprobe.d", "usr/lib/modprobe.d", "lib/modprobe.d", "run/modprobe.d"}) {
        std::error_code error;
        for (const auto& entry : fs::directory_iterator(paths.root / dir, error)) {
            if (entry.path().extension() == ".conf") read_modprobe_config(read_text(entry.path()), holds);
        }
    }
    read_kernel_cmdline(cmdline, holds);
    return holds;
}

bool vfio_pci_installed(const HostPaths& paths) {
    std::string release = read_small_file(paths.proc() / "sys/kernel/osrelease");
    fs::path modules = paths.root / "lib/modules" / release;
    for (const char* index : {"modules.dep", "modules.builtin"}) {
        if (read_text(modules / index).find("vfio-pci.ko") != std::string::npos) return true;
    }
    return false;
}

// Devices bound to a driver at every boot, by vfio-hook persist or by driverctl.
struct BootBindings {
    std::vector<std::string> persisted;            // "0000:01:00.0" or "0000:01:00.0 (incomplete: ...)"
    std::map<std::string, std::string> driverctl;  // address -> driver
};

BootBindings read_boot_bindings(const HostPaths& paths) {
    BootBindings bindings;
    auto persisted = load_persisted(paths);
    for (const auto& manifest : persisted.manifests) {
        bool complete = true;
        for (const auto& file : manifest.files) complete = complete && fs::exists(paths.root / file.relative_path());
        bindings.persisted.push_back(manifest.address.str() +
                                     (complete ? "" : " (incomplete: a persist was cut off; run `vfio-hook persist " +
                                                          manifest.address.str() + "` or `vfio-hook unpersist " +
                                                          manifest.address.str() + "`)"));
    }
    for (const auto& problem : persisted.unreadable) bindings.persisted.push_back("unreadable manifest " + problem);
    // driverctl keeps one file per device, /etc/driverctl.d/pci-ADDRESS, holding the driver.
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths.root / "etc/driverctl.d", error)) {
        std::string name = entry.path().filename().string();
        if (name.starts_with("pci-")) bindings.driverctl[name.substr(4)] = read_small_file(entry.path());
    }
    return bindings;
}

std::string json_device(const PciDevice& device) {
    std::ostringstream out;
    out << "{\"address\":" << json_string(device.address.str())
        << ",\"kind\":" << json_string(device.kind())
        << ",\"vendor_device\":" << json_string(device.vendor_device())
        << ",\"driver\":" << (device.driver ? json_string(*device.driver) : "null")
        << ",\"iommu_group\":" << (device.iommu_group ? std::to_string(*device.iommu_group) : "null")
        << ",\"boot_vga\":" << (device.boot_vga ? "true" : "false")
        << ",\"console\":" << json_string(device.console)
        << ",\"power_state\":" << json_string(device.power_state)
        << ",\"reset_methods\":" << json_string(device.reset_methods) << "}";
    return out.str();
}

void render_json(const HostReport& report, const std::string& script_layouts, const BootBindings& bindings,
                 std::ostream& out) {
    auto quoted = [](const std::string& text) { return json_string(text); };
    out << "{\"ready\":" << (report.ready() ? "true" : "false")
        << ",\"iommu\":{\"enabled\":" << (report.iommu_enabled ? "true" : "false")
        << ",\"groups\":" << report.group_count
        << ",\"kernel_parameters\":" << json_array(report.iommu_parameters, quoted) << "}"
        << ",\"vfio_pci_loaded\":" << (report.vfio_pci_present ? "true" : "false")
        << ",\"hook_scripts\":" << json_string(script_layouts)
        << ",\"blacklisted\":" << json_array(report.holds.blacklisted, quoted)
        << ",\"vfio_pci_ids\":" << json_array(report.holds.vfio_pci_ids, quoted)
        << ",\"persisted\":" << json_array(bindings.persisted, quoted)
        << ",\"driverctl_overrides\":" << json_array(bindings.driverctl, [](const auto& entry) {
               return "{\"address\":" + json_string(entry.first) + ",\"driver\":" + json_string(entry.second) + "}";
           })
        << ",\"gpus\":" << json_array(report.gpus, [&](const GpuReport& gpu) {
               std::string text = json_device(gpu.gpu);
               text.pop_back();
               return text + ",\"companions\":" + json_array(gpu.companions, json_device) +
                      ",\"vm\":" + json_string(gpu.owner) +
                      ",\"could_be_taken\":" + (gpu.could_be_taken() ? "true" : "false") +
                      ",\"held_by\":" + json_array(gpu.holders, [](const Holder& holder) {
                          return "{\"pid\":" + std::to_string(holder.pid) + ",\"command\":" +
                                 json_string(holder.command) + ",\"node\":" + json_string(holder.node) + "}";
                      }) +
                      ",\"blockers\":" + json_array(gpu.blockers, [](const Refusal& blocker) {
                          return json_string(blocker.line());
                      }) +
                      ",\"kernel_log_problems\":" + json_array(gpu.log_problems, quoted) + "}";
           })
        << ",\"consoles_given\":" << json_array(report.consoles_given, quoted)
        << ",\"warnings\":" << json_array(report.warnings, quoted)
        << ",\"problems\":" << json_array(report.problems, [&](const Refusal& problem) {
               return "{\"address\":" + (problem.address ? json_string(problem.address->str()) : std::string("null")) +
                      ",\"problem\":" + json_string(problem.reason) + ",\"fix\":" + json_string(problem.fix) + "}";
           })
        << "}\n";
}

std::string list_or_none(const std::set<std::string>& items) {
    std::string text;
    for (const auto& item : items) text += (text.empty() ? "" : ", ") + item;
    return text.empty() ? "none" : text;
}

void render_device_row(const PciDevice& device, const std::string& indent, std::ostream& out) {
    out << indent << device.address.str() << "  " << device.kind() << " [" << device.vendor_device() << "]" << name_column(device)
        << "  driver " << device.driver.value_or("none")
        << (device.boot_vga ? "  boot_vga" : "")
        << (device.console.empty() ? "" : "  console: " + device.console)
        << (device.power_state.empty() ? "" : "  " + device.power_state)
        << "  reset " << (device.reset_methods.empty() ? "none" : device.reset_methods) << "\n";
}

void render_table(const HostReport& report, const std::string& script_layouts, const BootBindings& bindings,
                  std::ostream& out) {
    out << "IOMMU:      " << (report.iommu_enabled ? "enabled, " + std::to_string(report.group_count) + " groups" : "OFF");
    std::string parameters;
    for (const auto& parameter : report.iommu_parameters) parameters += " " + parameter;
    out << (parameters.empty() ? "  (no IOMMU kernel parameters)" : "  (kernel:" + parameters + ")") << "\n";
    out << "vfio-pci:   " << (report.vfio_pci_present ? "loaded" : report.vfio_pci_loadable ? "not loaded (vfio-hook loads it on demand)" : "not loaded, and not installed") << "\n";
    out << "hook scripts: " << script_layouts << "\n";
    out << "blacklisted GPU drivers: " << list_or_none(report.holds.blacklisted)
        << "; vfio-pci.ids: " << list_or_none(report.holds.vfio_pci_ids) << "\n";
    std::set<std::string> persisted(bindings.persisted.begin(), bindings.persisted.end()), driverctl;
    for (const auto& [address, driver] : bindings.driverctl) driverctl.insert(address + " -> " + driver);
    out << "bound at boot: vfio-hook persist: " << list_or_none(persisted)
        << "; driverctl: " << list_or_none(driverctl) << "\n";
    out << "GPUs:\n";
    if (report.gpus.empty()) out << "  none found\n";
    for (const auto& gpu : report.gpus) {
        out << "  group " << (gpu.gpu.iommu_group ? std::to_string(*gpu.gpu.iommu_group) : "none")
            << (gpu.owner.empty() ? "" : "  given to " + gpu.owner) << "\n";
        render_device_row(gpu.gpu, "    ", out);
        for (const auto& companion : gpu.companions) render_device_row(companion, "    + ", out);
        for (const auto& line : gpu.log_problems) out << "    kernel log: " << line << "\n";
        for (const auto& holder : gpu.holders) {
            out << "    held by pid " << holder.pid << " (" << holder.command << ") on " << holder.node << "\n";
        }
        if (!gpu.owner.empty()) continue;
        if (gpu.blockers.empty()) {
            out << "    a VM could take it now\n";
            continue;
        }
        out << "    a VM could not take it now:\n";
        for (const auto& blocker : gpu.blockers) out << "      " << blocker.line() << "\n";
    }
    for (const auto& line : report.consoles_given) out << "host console: " << line << "\n";
    for (const auto& line : report.warnings) out << "warning: " << line << "\n";
    if (report.ready()) {
        out << "ready\n";
        return;
    }
    out << "not ready:\n";
    for (const auto& problem : report.problems) out << "  " << problem.line() << "\n";
}

}  // namespace

int run_status(Commands& commands, bool json) {
    Host& host = commands.host;
    auto& out = commands.out;
    BusSnapshot bus = read_whole_bus(host.paths, host.kernel);
    auto holders = find_holders(host.paths, nodes_of(host.paths, bus));
    auto records = RecordStore(host.paths).load_all();
    auto kernel_log = read_kernel_log(host.paths);
    std::string cmdline = read_small_file(host.paths.proc() / "cmdline");
    std::error_code error;
    HostReport report = assess_host({bus, holders, host.settings, records, kernel_log, cmdline, read_driver_holds(host.paths, cmdline),
                                     fs::exists(host.paths.pci_driver("vfio-pci"), error),
                                     vfio_pci_installed(host.paths)});
    // Issue 26: a recorded device that came back dead from its VM.
    for (auto& dead : recorded_devices_not_answering(host.paths, host.kernel, records)) report.problems.push_back(dead);
    std::vector<const PciDevice*> gpus;  // Issue 26: the AMD reset bug.
    for (const auto& gpu : report.gpus) gpus.push_back(&gpu.gpu);
    report.warnings = reset_bug_warnings(host.paths, gpus);
    // Which program runs which script layout: vfio-hook beside VFIO-Tools' dispatcher runs only its own.
    std::string script_layouts = describe_script_layouts(read_main_hook(host.paths), installed_as(host.paths));
    BootBindings bindings = read_boot_bindings(host.paths);
    if (json) {
        render_json(report, script_layouts, bindings, out);
    } else {
        render_table(report, script_layouts, bindings, out);
    }
    return report.ready() ? 0 : 1;
}

}  // namespace vfio_hook
