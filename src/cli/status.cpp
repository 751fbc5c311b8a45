// `vfio-hook status`: the host's readiness for GPU passthrough and the chain a VM start goes
// through (the hook libvirt runs, the daemon, the VMs naming each GPU, their last runs), as a
// table or JSON; exit 0 when ready, 1 when something needs fixing (each problem with its fix).

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "core/host_report.hpp"
#include "host/bar_resize.hpp"
#include "host/holders.hpp"
#include "host/hook_slots.hpp"
#include "host/kernel_log_reader.hpp"
#include "host/last_runs.hpp"
#include "host/liveness_check.hpp"
#include "host/reset_check.hpp"
#include "host/pci_bus.hpp"
#include "host/persisted.hpp"
#include "host/scripts.hpp"
#include "host/start_chain.hpp"
#include "host/visibility.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

// The version of `status --json`'s keys (documented in vfio-hook(8)): raised when one changes
// meaning or goes away; new keys may come without it.
constexpr int json_schema = 1;

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

// Everything status shows, read once.
struct StatusView {
    Visibility visibility;
    HostReport report;
    HookInstalled hook;
    LibvirtView libvirt;
    std::vector<VmVerdict> verdicts;
    std::vector<LastRun> last_runs;
    std::string script_layouts;
    BootBindings bindings;
    std::map<std::string, std::vector<ResizableBar>> resizable_bars;  // by address; issue 26's rebar
};

// ------------------------------------------------------------------------------------------ JSON

std::string quoted(const std::string& text) { return json_string(text); }

std::vector<std::string> words_of(const std::string& text) {
    std::istringstream stream(text);
    std::vector<std::string> words;
    for (std::string word; stream >> word;) words.push_back(word);
    return words;
}

// The one shape of a refusal or problem everywhere: {address, problem, fix}.
std::string json_refusal(const Refusal& refusal) {
    return "{\"address\":" + (refusal.address ? json_string(refusal.address->str()) : std::string("null")) +
           ",\"problem\":" + json_string(refusal.reason) + ",\"fix\":" + json_or_null(refusal.fix) + "}";
}

std::string json_resizable_bar(const ResizableBar& bar) {
    std::vector<std::string> sizes;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if (bar.supported >> bit & 1) sizes.push_back(std::to_string(std::uint64_t{1} << bit));
    }
    return "{\"bar\":" + std::to_string(bar.bar) + ",\"size_mb\":" +
           (bar.current ? std::to_string(std::uint64_t{1} << *bar.current) : std::string("null")) +
           ",\"sizes_mb\":" + (bar.sizes_read ? json_array(sizes, [](const std::string& size) { return size; }) : "null") + "}";
}

std::string json_unit_kind(SystemdUnit::Kind kind) {
    switch (kind) {
        case SystemdUnit::Kind::system_service: return "\"system_service\"";
        case SystemdUnit::Kind::user_service: return "\"user_service\"";
        case SystemdUnit::Kind::session: return "\"session\"";
        case SystemdUnit::Kind::none: break;
    }
    return "null";
}

std::string json_holder(const Holder& holder) {
    bool unit = holder.unit.kind != SystemdUnit::Kind::none;
    return "{\"pid\":" + std::to_string(holder.pid) + ",\"command\":" + json_string(holder.command) +
           ",\"node\":" + json_string(holder.node) + ",\"unit\":" + (unit ? json_or_null(holder.unit.name) : "null") +
           ",\"unit_kind\":" + json_unit_kind(holder.unit.kind) + "}";
}

// Every device, GPU or companion, in one shape.
struct JsonDevice {
    const StatusView& view;
    std::string operator()(const PciDevice& device) const {
        std::string out = "{";
        out += fields(device);
        return out + "}";
    }
    std::string fields(const PciDevice& device) const {
        auto bars = view.resizable_bars.find(device.address.str());
        return "\"address\":" + json_string(device.address.str()) + ",\"kind\":" + json_string(device.kind()) +
               ",\"vendor_device\":" + json_string(device.vendor_device()) +
               ",\"driver\":" + (device.driver ? json_string(*device.driver) : "null") +
               ",\"vfio_device\":" + json_bool(device.vfio_device) +
               ",\"iommu_group\":" + (device.iommu_group ? std::to_string(*device.iommu_group) : "null") +
               ",\"boot_vga\":" + json_bool(device.boot_vga) +
               ",\"console\":" + json_array(device.console.empty() ? std::vector<std::string>{}
                                                                   : std::vector<std::string>{device.console}, quoted) +
               ",\"power_state\":" + json_or_null(device.power_state) +
               ",\"reset_methods\":" + json_array(words_of(device.reset_methods), quoted) +
               ",\"resizable_bars\":" + (bars == view.resizable_bars.end() ? "[]" : json_array(bars->second, json_resizable_bar));
    }
};

std::string json_gpu(const StatusView& view, const GpuReport& gpu) {
    JsonDevice device{view};
    std::string out = "{";
    out += device.fields(gpu.gpu);
    out += ",\"companions\":" + json_array(gpu.companions, device);
    out += ",\"vm\":" + json_or_null(gpu.owner) + ",\"vms\":" + json_array(gpu.vms, quoted);
    out += ",\"could_be_taken\":" + json_bool(gpu.could_be_taken());
    out += ",\"held_by\":" + json_array(gpu.holders, json_holder);
    out += ",\"blockers\":" + json_array(gpu.blockers, json_refusal);
    out += ",\"kernel_log_problems\":" + json_array(gpu.log_problems, quoted);
    return out + "}";
}

std::string json_last_run(const LastRun& run) {
    return "{\"uuid\":" + json_string(run.uuid) + ",\"name\":" + json_string(run.name) +
           ",\"operation\":" + json_string(run.operation) + ",\"result\":" + json_string(run.result) +
           ",\"duration_ms\":" + std::to_string(run.duration_ms) + ",\"finished\":" + std::to_string(run.finished) + "}";
}

std::string json_chain(const StatusView& view) {
    const auto& hook = view.hook;
    const auto& libvirt = view.libvirt;
    return ",\"hook\":{\"installed\":" + json_bool(!hook.path.empty()) + ",\"path\":" + json_or_null(hook.path) +
           ",\"version\":" + (hook.this_binary ? json_string(VFIO_HOOK_VERSION) : "null") +
           ",\"other_copy\":" + json_or_null(hook.resolved) + ",\"other_program\":" + json_or_null(hook.other_program) +
           "},\"libvirt\":{\"reachable\":" + json_bool(!libvirt.unreachable) + ",\"daemon\":" + json_or_null(libvirt.daemon) +
           ",\"error\":" + (libvirt.unreachable ? json_string(*libvirt.unreachable) : "null") +
           ",\"unreadable_definitions\":" + json_array(libvirt.unreadable, quoted) + "}" +
           ",\"hook_scripts\":" + json_string(view.script_layouts) +
           ",\"vms\":" + json_array(view.verdicts, [](const VmVerdict& verdict) {
               return "{\"name\":" + json_string(verdict.name) + ",\"uuid\":" + json_string(verdict.uuid) +
                      ",\"gpus\":" + json_array(verdict.gpus, [](const PciAddress& address) { return json_string(address.str()); }) +
                      ",\"could_start\":" + json_bool(verdict.could_start()) +
                      ",\"prepare_scripts\":" + json_bool(verdict.prepare_scripts) +
                      ",\"refusals\":" + json_array(verdict.refusals, json_refusal) + "}";
           }) +
           ",\"last_runs\":" + json_array(view.last_runs, json_last_run);
}

void render_json(const StatusView& view, std::ostream& out) {
    const HostReport& report = view.report;
    out << "{\"schema\":" << json_schema << ",\"ready\":" << json_bool(report.ready())
        << ",\"unseen\":" << json_array(view.visibility.unseen, [](const Unseen& unseen) {
               return "{\"what\":" + json_string(unseen.what) + ",\"path\":" + json_string(unseen.path) +
                      ",\"why\":" + json_string(unseen.why) + "}";
           })
        << ",\"iommu\":{\"enabled\":" << json_bool(report.iommu_enabled) << ",\"groups\":" << report.group_count
        << ",\"kernel_parameters\":" << json_array(report.iommu_parameters, quoted) << "}"
        << ",\"vfio_pci_loaded\":" << json_bool(report.vfio_pci_present) << json_chain(view)
        << ",\"blacklisted\":" << json_array(report.holds.blacklisted, quoted)
        << ",\"vfio_pci_ids\":" << json_array(report.holds.vfio_pci_ids, quoted)
        << ",\"persisted\":" << json_array(view.bindings.persisted, quoted)
        << ",\"driverctl_overrides\":" << json_array(view.bindings.driverctl, [](const auto& entry) {
               return "{\"address\":" + json_string(entry.first) + ",\"driver\":" + json_string(entry.second) + "}";
           })
        << ",\"gpus\":" << json_array(report.gpus, [&](const GpuReport& gpu) { return json_gpu(view, gpu); })
        << ",\"consoles_given\":" << json_array(report.consoles_given, quoted)
        << ",\"warnings\":" << json_array(report.warnings, quoted)
        << ",\"problems\":" << json_array(report.problems, json_refusal) << "}\n";
}

// ----------------------------------------------------------------------------------------- table

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

std::string hook_line(const HookInstalled& hook) {
    if (hook.this_binary) return hook.path + " -> this vfio-hook " + VFIO_HOOK_VERSION;
    if (!hook.path.empty()) return hook.path + " -> another vfio-hook, " + hook.resolved;
    return "not installed" + (hook.other_program.empty() ? std::string()
                                                         : " (/etc/libvirt/hooks/qemu is another program, " +
                                                               hook.other_program + ")");
}

std::string libvirt_line(const LibvirtView& libvirt) {
    std::string daemon = libvirt.daemon.empty() ? "libvirt" : libvirt.daemon;
    if (libvirt.unreachable) {
        // virsh's own error already asks the question when it is a connection failure.
        bool asks = libvirt.unreachable->find(libvirt_unreachable_hint) != std::string::npos;
        return "not answering (" + *libvirt.unreachable + ")" + (asks ? "" : "; " + std::string(libvirt_unreachable_hint));
    }
    return daemon + " answers, " + std::to_string(libvirt.domains.size()) + " VM(s) defined";
}

std::string when(std::int64_t seconds) {
    std::time_t time = static_cast<std::time_t>(seconds);
    std::tm utc{};
    ::gmtime_r(&time, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
    return text;
}

void render_chain(const StatusView& view, std::ostream& out) {
    out << "hook:       " << hook_line(view.hook) << "\n";
    out << "libvirt:    " << libvirt_line(view.libvirt) << "\n";
    for (const auto& line : view.libvirt.unreadable) out << "  unreadable definition " << line << "\n";
    out << "hook scripts: " << view.script_layouts << "\n";
    for (const auto& verdict : view.verdicts) {
        std::string gpus;
        for (const auto& gpu : verdict.gpus) gpus += (gpus.empty() ? "" : ", ") + gpu.str();
        out << "VM " << verdict.name << " (" << gpus << "): ";
        if (verdict.refusals.empty()) {
            out << "could start now\n";
        } else if (verdict.could_start()) {
            out << "could start: its hook.d prepare scripts run first and must free the GPU from:\n";
        } else {
            out << "would be refused now:\n";
        }
        for (const auto& refusal : verdict.refusals) out << "    " << refusal.line() << "\n";
    }
    for (const auto& run : view.last_runs) {
        out << "last " << run.operation << " of " << run.name << ": " << run.result << " in " << run.duration_ms
            << " ms, " << when(run.finished) << "\n";
    }
}

void render_gpu(const GpuReport& gpu, std::ostream& out) {
    out << "  group " << (gpu.gpu.iommu_group ? std::to_string(*gpu.gpu.iommu_group) : "none")
        << (gpu.owner.empty() ? "" : "  given to " + gpu.owner) << "\n";
    render_device_row(gpu.gpu, "    ", out);
    for (const auto& companion : gpu.companions) render_device_row(companion, "    + ", out);
    for (const auto& line : gpu.log_problems) out << "    kernel log: " << line << "\n";
    for (const auto& holder : gpu.holders) {
        out << "    held by pid " << holder.pid << " (" << holder.command << ") on " << holder.node << "\n";
    }
    if (!gpu.vms.empty()) {
        std::set<std::string> vms(gpu.vms.begin(), gpu.vms.end());
        out << "    named by VM(s): " << list_or_none(vms) << "\n";
    }
    if (!gpu.owner.empty()) return;
    if (gpu.blockers.empty()) {
        out << "    a VM could take it now\n";
        return;
    }
    out << "    a VM could not take it now:\n";
    for (const auto& blocker : gpu.blockers) out << "      " << blocker.line() << "\n";
}

void render_table(const StatusView& view, std::ostream& out) {
    const HostReport& report = view.report;
    if (view.visibility.partial())
        out << "partial view, needs root: " << view.visibility.summary() << "; " << run_as_root << "\n";
    out << "IOMMU:      " << (report.iommu_enabled ? "enabled, " + std::to_string(report.group_count) + " groups" : "OFF");
    std::string parameters;
    for (const auto& parameter : report.iommu_parameters) parameters += " " + parameter;
    out << (parameters.empty() ? "  (no IOMMU kernel parameters)" : "  (kernel:" + parameters + ")") << "\n";
    out << "vfio-pci:   " << (report.vfio_pci_present ? "loaded" : report.vfio_pci_loadable ? "not loaded (vfio-hook loads it on demand)" : "not loaded, and not installed") << "\n";
    render_chain(view, out);
    out << "blacklisted GPU drivers: " << list_or_none(report.holds.blacklisted)
        << "; vfio-pci.ids: " << list_or_none(report.holds.vfio_pci_ids) << "\n";
    std::set<std::string> persisted(view.bindings.persisted.begin(), view.bindings.persisted.end()), driverctl;
    for (const auto& [address, driver] : view.bindings.driverctl) driverctl.insert(address + " -> " + driver);
    out << "bound at boot: vfio-hook persist: " << list_or_none(persisted)
        << "; driverctl: " << list_or_none(driverctl) << "\n";
    out << "GPUs:\n";
    if (report.gpus.empty()) out << "  none found\n";
    for (const auto& gpu : report.gpus) render_gpu(gpu, out);
    for (const auto& line : report.consoles_given) out << "host console: " << line << "\n";
    for (const auto& line : report.warnings) out << "warning: " << line << "\n";
    if (report.ready()) {
        out << "ready\n";
        return;
    }
    out << "not ready:\n";
    for (const auto& problem : report.problems) out << "  " << problem.line() << "\n";
}

// ---------------------------------------------------------------------------------- the reading

HostReport read_host_report(const Host& host, std::vector<Holder>& holders, std::vector<StateRecord>& records,
                            BusSnapshot& bus) {
    bus = read_whole_bus(host.paths, host.kernel);
    holders = find_holders(host.paths, nodes_of(host.paths, bus));
    records = RecordStore(host.paths).load_all();
    auto kernel_log = read_kernel_log(host.paths);
    std::string cmdline = read_small_file(host.paths.proc() / "cmdline");
    std::error_code error;
    HostReport report = assess_host({bus, holders, host.settings, records, kernel_log, cmdline,
                                     read_driver_holds(host.paths, cmdline),
                                     fs::exists(host.paths.pci_driver("vfio-pci"), error), vfio_pci_installed(host.paths)});
    // Issue 26: a recorded device that came back dead from its VM.
    for (auto& dead : recorded_devices_not_answering(host.paths, host.kernel, records)) report.problems.push_back(dead);
    std::vector<const PciDevice*> gpus;  // Issue 26: the AMD reset bug.
    for (const auto& gpu : report.gpus) gpus.push_back(&gpu.gpu);
    report.warnings = reset_bug_warnings(host.paths, gpus);
    return report;
}

// The VMs libvirt defines with a GPU, judged as their prepare would judge them now.
std::vector<VmVerdict> judge_libvirt_vms(const Host& host, const StatusView& view, const HostFacts& facts) {
    bool qemu_d = runs_qemu_d_layout(host.paths, view.hook.path);
    std::set<std::string> with_scripts;
    for (const auto& domain : view.libvirt.domains) {
        if (script_directory_exists(host.paths, domain.name, "prepare", "begin", qemu_d)) with_scripts.insert(domain.name);
    }
    return judge_vms(facts, view.libvirt.domains, with_scripts);
}

// What stands between the user and a start, beyond the host itself: the hook and our own view.
void add_chain_problems(StatusView& view) {
    auto& problems = view.report.problems;
    if (view.hook.path.empty()) {
        problems.push_back({std::nullopt,
                            "libvirt runs no vfio-hook: neither /etc/libvirt/hooks/qemu nor "
                            "/etc/libvirt/hooks/qemu.d/vfio-hook is one",
                            "run install.sh as root (sudo ./install.sh), or install the vfio-hook package"});
    }
    if (view.visibility.partial())
        problems.insert(problems.begin(), Refusal{std::nullopt, "a partial view: " + view.visibility.summary(), run_as_root});
}

}  // namespace

int run_status(Commands& commands, bool json) {
    Host& host = commands.host;
    StatusView view;
    view.visibility = survey_visibility(host.paths);  // first: what a run without root misses
    BusSnapshot bus;
    std::vector<Holder> holders;
    std::vector<StateRecord> records;
    view.report = read_host_report(host, holders, records, bus);
    view.hook = read_hook_installed(host.paths);
    view.libvirt = read_libvirt(host.paths, commands.virsh, commands.uri);
    std::vector<KernelLogLine> no_log;
    view.verdicts = judge_libvirt_vms(host, view, {bus, holders, host.settings, records, no_log, "", {}, true, true});
    apply_vm_verdicts(view.report, view.verdicts);
    view.last_runs = load_last_runs(host.paths);
    // Which program runs which script layout: vfio-hook beside VFIO-Tools' dispatcher runs only its own.
    view.script_layouts = describe_script_layouts(read_main_hook(host.paths), installed_as(host.paths));
    view.bindings = read_boot_bindings(host.paths);
    for (const auto& gpu : view.report.gpus) {
        // Only looking: a GPU asleep in D3cold stays asleep (its sizes unread).
        view.resizable_bars[gpu.gpu.address.str()] = read_resizable_bars(host.paths, gpu.gpu.address, false);
        for (const auto& companion : gpu.companions)
            view.resizable_bars[companion.address.str()] = read_resizable_bars(host.paths, companion.address, false);
    }
    add_chain_problems(view);
    if (json) {
        render_json(view, commands.out);
    } else {
        render_table(view, commands.out);
    }
    return view.report.ready() ? 0 : 1;
}

}  // namespace vfio_hook
