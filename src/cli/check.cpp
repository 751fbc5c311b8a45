// `vfio-hook check`: what prepare would do for a domain, and every refusal, changing nothing.
// It follows the hook's start in order: the hook.d prepare scripts (listed, never run; the
// holders they are there to clear counted as cleared), the holder and group checks, the console
// steps, the moves.

#include <algorithm>

#include "cli/commands.hpp"
#include "cli/json.hpp"
#include "core/domain_xml.hpp"
#include "core/script_clears.hpp"
#include "host/console.hpp"
#include "host/hook_slots.hpp"
#include "host/log.hpp"
#include "host/pci_names.hpp"
#include "host/reset_check.hpp"
#include "host/scripts.hpp"
#include "host/visibility.hpp"
#include "host/hand_over.hpp"

namespace vfio_hook {
namespace {

constexpr std::size_t max_script_bytes = 1 << 20;

// A hook.d prepare script that runs before vfio-hook looks at the devices.
struct PrepareScript {
    std::string path;     // as on the host (the fake root left out)
    std::string run_by;   // "vfio-hook", or the program in hooks/qemu that runs the qemu.d layout
    std::vector<ScriptClears> clears;
};

// A process that holds one of the devices now, and the script that takes it away.
struct ClearedHolder {
    PciAddress address;
    Holder holder;
    std::string script;
};

// Everything `check` found, rendered as text or as JSON.
struct CheckReport {
    Domain domain;
    bool uuid_given = true;
    std::vector<PrepareScript> scripts;
    std::vector<ClearedHolder> cleared;
    PreparePlan plan;
    std::vector<ConsoleStep> console;
    std::vector<std::string> warnings;
    std::vector<Refusal> refusals;  // the plan's and the scripts'
    HostView view;
    std::vector<std::string> details;  // issue 26: the VFIO driver each device gets, BAR resizes
    // What a run without root could not see ("" when it saw everything): never "ready" then.
    std::string partial_view;

    bool ready() const { return refusals.empty() && partial_view.empty(); }
};

std::string shown_path(const HostPaths& paths, const std::string& path) {
    if (paths.is_real_root()) return path;
    std::error_code error;
    std::string root = std::filesystem::absolute(paths.root, error).lexically_normal().string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    return path.starts_with(root + "/") ? path.substr(root.size()) : path;
}

std::string clears_word(ScriptClears what) {
    return what == ScriptClears::display_manager ? "display-manager" : "nvidia-persistenced";
}

// The scripts the hook's prepare/begin runs first (host/scripts.hpp), and those the program in
// hooks/qemu runs before it when that program (VFIO-Tools' dispatcher) runs the qemu.d layout.
// An unsafe script makes the hook refuse the start, so it is a refusal here too.
void find_prepare_scripts(Host& host, CheckReport& report) {
    const std::string& name = report.domain.name;
    MainHook main_hook = read_main_hook(host.paths);
    bool dispatcher = main_hook.kind == MainHookKind::other_program;
    auto own = find_scripts(host.paths, name, "prepare", "begin", !dispatcher);
    auto add = [&](const std::string& path, const std::string& run_by) {
        auto text = read_user_file(path, max_script_bytes);
        auto file_name = std::filesystem::path(path).filename().string();
        logger().debug("check: prepare script {} (run by {}); its text {}", path, run_by,
                       text ? "read" : "not readable (" + text.error() + "): judged by its name");
        report.scripts.push_back({shown_path(host.paths, path), run_by,
                                  what_script_clears(file_name, text ? *text : std::string())});
    };
    if (dispatcher) {
        // libvirt runs hooks/qemu first: its scripts come before vfio-hook's.
        auto all = find_scripts(host.paths, name, "prepare", "begin", true);
        for (const auto& path : all.scripts) {
            if (std::find(own.scripts.begin(), own.scripts.end(), path) == own.scripts.end())
                add(path, main_hook.path);
        }
    }
    for (const auto& path : own.scripts) add(path, "vfio-hook");
    for (const auto& refusal : own.refusals)
        report.refusals.push_back({std::nullopt, "hook.d script not run: " + refusal,
                                   "make it root's and not writable by group or others (chmod go-w), or remove it"});
}

// The device whose node a holder has open.
std::optional<PciAddress> device_held(const BusSnapshot& bus, const Holder& holder) {
    for (const auto& [address, device] : bus.devices) {
        const auto& nodes = device.device_nodes;
        if (std::find(nodes.begin(), nodes.end(), holder.node) != nodes.end()) return address;
    }
    return std::nullopt;
}

// Takes out of the view the holders a prepare script will have cleared by the time the hook looks.
void clear_holders(CheckReport& report) {
    std::vector<Holder> left;
    for (const auto& holder : report.view.holders) {
        const PrepareScript* by = nullptr;
        for (const auto& script : report.scripts) {
            if (std::any_of(script.clears.begin(), script.clears.end(),
                            [&](ScriptClears what) { return clears(what, holder); })) {
                by = &script;
                break;
            }
        }
        auto address = by ? device_held(report.view.bus, holder) : std::nullopt;
        if (!address) {
            left.push_back(holder);
            continue;
        }
        report.cleared.push_back({*address, holder, by->path});
    }
    report.view.holders = left;
}

std::string name_of(const PciDevice* device) {
    if (!device) return "?";
    auto name = device_name(*device);
    return name ? *name : device->vendor_device();
}

void render_text(const CheckReport& report, std::ostream& out) {
    const auto& plan = report.plan;
    const auto& view = report.view;
    if (!report.partial_view.empty())
        out << "partial view, needs root: " << report.partial_view << "; " << run_as_root << "\n";
    out << "domain '" << report.domain.name << "' ("
        << (report.uuid_given ? "uuid " + report.domain.uuid.str() : std::string("no uuid")) << "): "
        << report.domain.pci_devices.size() << " host PCI device(s)\n";
    if (!report.uuid_given) out << "  note: no <uuid>: fine for a dry run; libvirt adds one at `virsh define`\n";
    for (const auto& script : report.scripts) {
        out << "  script " << script.path
            << (script.run_by == "vfio-hook" ? "  [run first, by vfio-hook]"
                                             : "  [run first, by the VFIO-Tools dispatcher " + script.run_by + "]");
        for (auto what : script.clears) out << "  [stops " << clears_word(what) << "]";
        out << "\n";
    }
    for (const auto& cleared : report.cleared) {
        out << "  cleared " << cleared.address.str() << ": pid " << cleared.holder.pid << " ("
            << cleared.holder.command << ") on " << cleared.holder.node << ": cleared by hook.d script "
            << cleared.script << "\n";
    }
    for (const auto& move : plan.moves) {
        const PciDevice* device = view.bus.find(move.address);
        out << "  move  " << move.address.str() << " (" << (device ? device->kind() : "?") << ", "
            << name_of(device) << ", group "
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
    for (const auto& line : report.details) out << "  " << line << "\n";
    for (const auto& step : report.console) {
        out << "  console " << step.gpu.str() << ": take " << step.describe()
            << " before the moves; given back when the GPU is home\n";
    }
    for (const auto& warning : report.warnings) out << "  warning: " << warning << "\n";
    for (const auto& refusal : report.refusals) out << "  refused: " << refusal.line() << "\n";
    if (report.ready() && report.domain.pci_devices.empty()) {
        out << "ready to start (nothing to move)\n";
        return;
    }
    if (report.refusals.empty() && !report.partial_view.empty()) {
        out << "not known to be ready: a partial view (" << run_as_root << " for the whole answer)\n";
        return;
    }
    out << (report.ready() ? "ready to start\n" : "would refuse to start\n");
}


std::string json_strings(const std::vector<std::string>& items) { return json_array(items, json_string); }


// The keys are documented in man/vfio-hook.8 (check --json) and kept by a test.
void render_json(const CheckReport& report, std::ostream& out) {
    const auto& view = report.view;
    std::string json = "{\"schema\":1";
    json += ",\"domain\":{\"name\":" + json_string(report.domain.name) + ",\"uuid\":" +
            json_or_null(report.uuid_given ? std::optional(report.domain.uuid.str()) : std::nullopt) + "}";
    json += ",\"ready\":" + json_bool(report.ready());
    json += ",\"partial_view\":" + json_or_null(report.partial_view.empty() ? std::nullopt : std::optional(report.partial_view));
    json += ",\"scripts\":" + json_array(report.scripts, [](const PrepareScript& script) {
        std::vector<std::string> clears;
        for (auto what : script.clears) clears.push_back(clears_word(what));
        return "{\"path\":" + json_string(script.path) + ",\"run_by\":" + json_string(script.run_by) +
               ",\"stops\":" + json_strings(clears) + "}";
    });
    json += ",\"cleared\":" + json_array(report.cleared, [](const ClearedHolder& cleared) {
        return "{\"address\":" + json_string(cleared.address.str()) + ",\"pid\":" + std::to_string(cleared.holder.pid) +
               ",\"command\":" + json_string(cleared.holder.command) + ",\"node\":" + json_string(cleared.holder.node) +
               ",\"script\":" + json_string(cleared.script) + "}";
    });
    json += ",\"moves\":" + json_array(report.plan.moves, [&](const Move& move) {
        const PciDevice* device = view.bus.find(move.address);
        std::optional<std::string> name = device ? device_name(*device) : std::nullopt;
        std::vector<std::string> resets;
        if (device) {
            std::string methods = device->reset_methods;
            for (std::size_t at = 0; at < methods.size();) {
                auto space = methods.find(' ', at);
                if (space == std::string::npos) space = methods.size();
                if (space > at) resets.push_back(methods.substr(at, space - at));
                at = space + 1;
            }
        }
        return "{\"address\":" + json_string(move.address.str()) + ",\"name\":" + json_or_null(name) +
               ",\"kind\":" + json_or_null(device ? std::optional(device->kind()) : std::nullopt) +
               ",\"from\":" + json_or_null(move.from) +
               ",\"group\":" + (move.group ? std::to_string(*move.group) : std::string("null")) +
               ",\"requested\":" + json_bool(move.requested) + ",\"already_on_vfio\":" + json_bool(move.already_on_vfio) +
               ",\"reset_methods\":" + json_strings(resets) + "}";
    });
    std::vector<std::string> kept;
    for (const auto& address : report.plan.left_on_vfio) kept.push_back(address.str());
    for (const auto& address : report.plan.left_alone) kept.push_back(address.str());
    json += ",\"kept\":" + json_strings(kept);
    json += ",\"details\":" + json_strings(report.details);
    json += ",\"console_steps\":" + json_array(report.console, [](const ConsoleStep& step) {
        return "{\"gpu\":" + json_string(step.gpu.str()) + ",\"step\":" + json_string(step.describe()) + "}";
    });
    json += ",\"warnings\":" + json_strings(report.warnings);
    json += ",\"refusals\":" + json_array(report.refusals, [](const Refusal& refusal) {
        return "{\"address\":" + json_or_null(refusal.address ? std::optional(refusal.address->str()) : std::nullopt) +
               ",\"problem\":" + json_string(refusal.reason) +
               ",\"fix\":" + json_or_null(refusal.fix.empty() ? std::nullopt : std::optional(refusal.fix)) + "}";
    });
    out << json << "}\n";
}

}  // namespace

int run_check(Commands& commands, const std::string& domain_xml, const std::string& source, bool json,
              const std::string& config_problem) {
    auto parsed = parse_domain_xml_for_dry_run(domain_xml);
    if (!parsed) {
        commands.err << "vfio-hook check: " << source << ": " << parsed.error() << "\n";
        return 2;
    }
    Host& host = commands.host;
    CheckReport report{parsed->domain, parsed->uuid_given, {}, {}, {}, {}, parsed->domain.warnings, {}, {}, {}, {}};
    const Domain& domain = report.domain;
    // As the hook does (cli.cpp): a config it cannot read refuses only a VM with host devices.
    if (!config_problem.empty() && !domain.pci_devices.empty()) {
        report.refusals.push_back({std::nullopt, config_problem,
                                   "fix the config file: the hook refuses to start a VM with host PCI devices "
                                   "until it reads"});
    } else if (!config_problem.empty()) {
        report.warnings.push_back(config_problem + "; a VM without host PCI devices starts all the same");
    }
    // 1. The hook.d prepare scripts, which run before anything else (listed, never run).
    find_prepare_scripts(host, report);
    if (!domain.pci_devices.empty()) {
        // Without root the holders, the kernel log and the records may be closed to us: what
        // this run could not see comes first, and "ready" never follows it.
        if (Visibility visibility = survey_visibility(host.paths); visibility.partial())
            report.partial_view = visibility.summary();
        // 2. A dry run: it loads no module and moves no device.
        report.view = look_before_prepare(host, domain, ModuleLoading::never);
        clear_holders(report);
        report.plan = plan_with(host, domain, domain.uuid.str(), report.view);
        report.details = prepare_details(host, domain, report.plan);
        // 3. The console steps prepare takes on a GPU that carries the host's console.
        for (const auto& gpu : report.plan.takes_console) {
            for (auto& step : console_steps_on(host.paths, host.kernel, gpu)) report.console.push_back(step);
        }
        for (const auto& warning : report.plan.warnings) report.warnings.push_back(warning.line());
        std::vector<const PciDevice*> moving;  // issue 26: the AMD reset bug
        for (const auto& move : report.plan.moves) moving.push_back(report.view.bus.find(move.address));
        std::erase(moving, nullptr);
        for (const auto& warning : reset_bug_warnings(host.paths, moving)) report.warnings.push_back(warning);
        report.refusals.insert(report.refusals.begin(), report.plan.refusals.begin(), report.plan.refusals.end());
    }
    if (json) {
        render_json(report, commands.out);
    } else {
        render_text(report, commands.out);
    }
    return report.ready() ? 0 : 1;
}

}  // namespace vfio_hook
