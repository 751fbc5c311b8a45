#include "cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cli/commands.hpp"
#include "core/config_file.hpp"
#include "host/log.hpp"

namespace vfio_hook {
namespace {

std::filesystem::path default_config(const HostPaths& paths) {
    return paths.root / "etc/vfio-hook/vfio-hook.conf";
}

// Defaults, then the config file (if there is one), then what the command line says.
Expected<Settings> load_settings(const std::filesystem::path& config, bool config_required,
                                 const std::map<std::string, std::string>& overrides) {
    Settings settings;
    std::ifstream file(config, std::ios::binary);
    if (file) {
        std::string text(std::istreambuf_iterator<char>(file), {});
        auto parsed = parse_config_file(text, config.string(), settings);
        if (!parsed) return Error{parsed.error()};
        settings = *parsed;
    } else if (config_required) {
        return Error{"cannot read the config file " + config.string() + ": " + std::strerror(errno)};
    }
    for (const auto& [key, value] : overrides) {
        if (auto problem = apply_setting(settings, key, value)) return Error{"--" + key + " " + value + ": " + *problem};
    }
    return settings;
}

spdlog::level::level_enum log_level(const Settings& settings) {
    return spdlog::level::from_str(settings.log_level);
}

struct AddressList {
    std::vector<std::string> texts;
    Expected<std::vector<PciAddress>> parse() const {
        std::vector<PciAddress> addresses;
        for (const auto& text : texts) {
            auto address = PciAddress::parse(text);
            if (!address) {
                return Error{"'" + text + "' is not a PCI address; expected the form 0000:01:00.0 "
                             "(see `lspci -D`)"};
            }
            addresses.push_back(*address);
        }
        return addresses;
    }
};

std::string basename_of(std::string_view path) {
    auto slash = path.find_last_of('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

}  // namespace

bool invoked_as_libvirt_hook(std::string_view argv0) {
    if (basename_of(argv0) == "qemu") return true;
    auto slash = argv0.find_last_of('/');
    return slash != std::string_view::npos && argv0.substr(0, slash).ends_with("/qemu.d");
}

bool hook_acts_on(std::string_view operation, std::string_view sub_operation) {
    return (operation == "prepare" && sub_operation == "begin") ||
           (operation == "release" && sub_operation == "end");
}

Expected<std::string> read_all_stdin() {
    std::string text;
    char buffer[65536];
    ssize_t n;
    while ((n = ::read(0, buffer, sizeof buffer)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error{std::string("cannot read the domain XML from stdin: ") + std::strerror(errno)};
        }
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > max_domain_xml_bytes) {
            return Error{"domain XML on stdin is over the 64 MiB limit: refusing"};
        }
    }
    return text;
}

namespace {

// A config file that does not parse must not make the hook guess: prepare refuses (naming
// file:line); release still gives devices back with the defaults, the safe direction.
int run_hook_with_config(const HostPaths& paths, const std::filesystem::path& config, bool required,
                         const std::map<std::string, std::string>& overrides, const HookCall& call,
                         CliEnvironment& environment) {
    auto settings = load_settings(config, required, overrides);
    setup_logging(paths, {true, settings ? log_level(*settings) : spdlog::level::info});
    auto xml = environment.read_stdin();
    if (!xml) {
        tell_user(spdlog::level::err, "vfio-hook: " + xml.error());
        if (call.operation == "prepare") return 1;
        xml = std::string();  // release still finds this domain's records by its name
    }
    if (!settings) {
        if (call.operation == "prepare") {
            tell_user(spdlog::level::err, "vfio-hook: refusing to move any device: " + settings.error());
            return 1;
        }
        tell_user(spdlog::level::err, "vfio-hook: " + settings.error() + "; releasing with the defaults");
        settings = Settings{};
    }
    auto kernel = environment.make_kernel(*settings);
    Host host{paths, *kernel, *settings};
    int status = run_hook(host, call, *xml);
    if (auto dropped = dropped_log_lines())
        logger().warn("{} log line(s) were dropped: neither journald nor stderr would take them", dropped);
    return status;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, CliEnvironment& environment) {
    set_user_stream(&environment.err);

    // libvirt's call is positional and its domain name may look like an option: skip CLI11.
    if (!args.empty() && invoked_as_libvirt_hook(args[0])) {
        if (args.size() < 4 || !hook_acts_on(args[2], args[3])) return 0;
        return run_hook_with_config(HostPaths{}, default_config(HostPaths{}), false, {},
                                    {args[1], args[2], args[3]}, environment);
    }

    CLI::App app{"hands a VM's PCI devices to vfio-pci while it runs, and gives them "
                 "back when it stops.\nInstalled as /etc/libvirt/hooks/qemu it is called by "
                 "libvirt; run by hand it is the admin tool."};
    app.name("vfio-hook");
    app.set_version_flag("--version", std::string("vfio-hook ") + VFIO_HOOK_VERSION);
    app.require_subcommand(1);
    std::map<std::string, std::string> overrides;
    for (const auto& key : config_keys()) {
        std::string name(key.name);
        if (key.is_flag) {
            app.add_flag_callback("--" + name, [&overrides, name] { overrides[name] = "yes"; },
                                  std::string(key.meaning));
            continue;
        }
        app.add_option_function<std::string>(
            "--" + name, [&overrides, name](const std::string& value) { overrides[name] = value; },
            std::string(key.meaning));
    }
    std::string root = "/";
    std::string config_path;
    app.add_option("--config", config_path, "config file (default /etc/vfio-hook/vfio-hook.conf)");
    app.add_option("--root", root, "treat DIR as / (for tests against a fake sysfs tree)")->group("Testing");

    HookCall call;
    std::string extra;
    auto* hook = app.add_subcommand("hook", "run as libvirt's QEMU hook: DOMAIN OPERATION SUB-OP "
                                            "[EXTRA], the domain XML on stdin");
    hook->add_option("domain", call.domain, "domain name")->required();
    hook->add_option("operation", call.operation, "prepare, start, started, stopped, release, …")->required();
    hook->add_option("sub-operation", call.sub_operation, "begin or end")->required();
    hook->add_option("extra", extra, "ignored (libvirt passes '-' or 'shutdown')");

    bool json = false;
    auto* status = app.add_subcommand("status", "show the IOMMU, vfio modules, GPUs and their groups, "
                                                "and who has them; exit 0 when ready");
    status->add_flag("--json", json, "machine-readable output");

    std::string check_file, check_domain;
    auto* check = app.add_subcommand("check", "dry run: what prepare would move and every refusal, "
                                              "without changing anything");
    check->add_option("file", check_file, "domain XML file (- for stdin)");
    check->add_option("--domain", check_domain, "read /etc/libvirt/qemu/NAME.xml");

    AddressList bind_addresses;
    auto* bind = app.add_subcommand("bind", "move devices (and their IOMMU groups) to vfio-pci by hand");
    bind->add_option("address", bind_addresses.texts, "PCI address, e.g. 0000:01:00.0")->required();

    AddressList restore_addresses;
    bool force = false;
    auto* restore = app.add_subcommand("restore", "give devices on vfio-pci back to their recorded "
                                                  "driver (or reprobe ones with no record)");
    restore->add_option("address", restore_addresses.texts, "PCI address")->required();
    restore->add_flag("--force", force, "even while a process has the device's VFIO group open "
                                        "(the unbind then waits for it, up to the deadline)");

    app.add_subcommand("recover", "give back every recorded device whose VM is not running");

    try {
        std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
        app.parse(reversed);
    } catch (const CLI::ParseError& error) {
        return app.exit(error, environment.out, environment.err);
    }

    HostPaths paths{root};
    std::filesystem::path config = config_path.empty() ? default_config(paths) : std::filesystem::path(config_path);
    if (hook->parsed()) {
        if (!hook_acts_on(call.operation, call.sub_operation)) return 0;
        return run_hook_with_config(paths, config, !config_path.empty(), overrides, call, environment);
    }
    auto settings = load_settings(config, !config_path.empty(), overrides);
    if (!settings) {
        environment.err << "vfio-hook: " << settings.error() << "\n";
        return 2;
    }
    setup_logging(paths, {false, log_level(*settings)});
    auto kernel = environment.make_kernel(*settings);
    Host host{paths, *kernel, *settings};

    if (status->parsed()) return run_status(host, json, environment.out);
    if (check->parsed()) {
        std::string source = check_domain.empty() ? check_file : (paths.libvirt_domain_xml_dir() / (check_domain + ".xml")).string();
        if (source.empty()) {
            environment.err << "vfio-hook check: give a domain XML file, - for stdin, or --domain NAME\n";
            return 2;
        }
        Expected<std::string> xml = source == "-" ? environment.read_stdin() : Expected<std::string>(Error{""});
        if (source != "-") {
            std::ifstream file(source, std::ios::binary);
            if (!file) {
                environment.err << "vfio-hook check: cannot read " << source << ": " << std::strerror(errno) << "\n";
                return 2;
            }
            xml = std::string(std::istreambuf_iterator<char>(file), {});
        }
        if (!xml) {
            environment.err << "vfio-hook check: " << xml.error() << "\n";
            return 2;
        }
        return run_check(host, *xml, source, environment.out);
    }
    auto with_addresses = [&](const AddressList& list, auto&& command) {
        auto addresses = list.parse();
        if (!addresses) {
            environment.err << "vfio-hook: " << addresses.error() << "\n";
            return 2;
        }
        return command(*addresses);
    };
    if (bind->parsed())
        return with_addresses(bind_addresses, [&](const auto& a) { return run_bind(host, a, environment.out); });
    if (restore->parsed())
        return with_addresses(restore_addresses,
                              [&](const auto& a) { return run_restore(host, a, force, environment.out); });
    return run_recover(host, environment.active_domains(), environment.out);
}

}  // namespace vfio_hook
