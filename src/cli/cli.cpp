#include "cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "host/log.hpp"

namespace vfio_hook {
namespace {

struct GlobalOptions {
    std::string root = "/";
    long write_deadline_ms = 5000;
    long settle_deadline_ms = 2000;
    long lock_deadline_ms = 60000;
    bool allow_boot_vga = false;
    std::string firmware_errors = "warn";
    std::string log_level = "info";
};

Settings settings_from(const GlobalOptions& options) {
    Settings settings;
    settings.write_deadline = std::chrono::milliseconds(options.write_deadline_ms);
    settings.settle_deadline = std::chrono::milliseconds(options.settle_deadline_ms);
    settings.lock_deadline = std::chrono::milliseconds(options.lock_deadline_ms);
    settings.allow_boot_vga = options.allow_boot_vga;
    settings.refuse_on_firmware_errors = options.firmware_errors == "refuse";
    return settings;
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

int run_cli(const std::vector<std::string>& args, CliEnvironment& environment) {
    GlobalOptions options;
    set_user_stream(&environment.err);

    // libvirt's call is positional and its domain name may look like an option: skip CLI11.
    if (!args.empty() && invoked_as_libvirt_hook(args[0])) {
        if (args.size() < 4 || !hook_acts_on(args[2], args[3])) return 0;
        Settings settings = settings_from(options);
        setup_logging(HostPaths{}, {true, spdlog::level::info});
        auto kernel = environment.make_kernel(settings);
        Host host{HostPaths{}, *kernel, settings};
        auto xml = environment.read_stdin();
        return run_hook(host, {args[1], args[2], args[3]}, xml ? *xml : std::string());
    }

    CLI::App app{"vfio-hook: hands a VM's PCI devices to vfio-pci while it runs, and gives them "
                 "back when it stops.\nInstalled as /etc/libvirt/hooks/qemu it is called by "
                 "libvirt; run by hand it is the admin tool."};
    app.set_version_flag("--version", std::string("vfio-hook ") + VFIO_HOOK_VERSION);
    app.require_subcommand(1);
    app.add_option("--write-deadline-ms", options.write_deadline_ms,
                   "how long one sysfs write (unbind, bind, drivers_probe) may block")
        ->check(CLI::Range(10L, 600000L))->capture_default_str();
    app.add_option("--settle-deadline-ms", options.settle_deadline_ms,
                   "how long to wait for a driver to appear on a device after a write")
        ->check(CLI::Range(1L, 600000L))->capture_default_str();
    app.add_option("--lock-deadline-ms", options.lock_deadline_ms,
                   "how long to wait for another vfio-hook run to finish")
        ->check(CLI::Range(1L, 3600000L))->capture_default_str();
    app.add_flag("--allow-boot-vga", options.allow_boot_vga,
                 "allow moving the host's boot display (single-GPU setups)");
    app.add_option("--firmware-errors", options.firmware_errors,
                   "what kernel-log firmware/probe errors for a device do at prepare")
        ->check(CLI::IsMember({"warn", "refuse"}))->capture_default_str();
    app.add_option("--log-level", options.log_level, "debug, info, warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}))->capture_default_str();
    app.add_option("--root", options.root, "treat DIR as / (for tests against a fake sysfs tree)")
        ->group("Testing");

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

    Settings settings = settings_from(options);
    HostPaths paths{options.root};
    setup_logging(paths, {hook->parsed(), spdlog::level::from_str(options.log_level)});
    auto kernel = environment.make_kernel(settings);
    Host host{paths, *kernel, settings};

    if (hook->parsed()) {
        if (!hook_acts_on(call.operation, call.sub_operation)) return 0;
        auto xml = environment.read_stdin();
        if (!xml) {
            tell_user(spdlog::level::err, xml.error());
            return call.operation == "prepare" ? 1 : 0;
        }
        return run_hook(host, call, *xml);
    }
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
    return run_recover(host, environment.out);
}

}  // namespace vfio_hook
