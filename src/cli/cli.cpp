#include "cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <optional>

#include "cli/commands.hpp"
#include "core/config_file.hpp"
#include "core/domain_xml.hpp"
#include "core/edit_distance.hpp"
#include "host/hook_slots.hpp"
#include "host/log.hpp"
#include "host/visibility.hpp"
#include "host/pci_names.hpp"

namespace vfio_hook {
namespace {

constexpr std::size_t max_config_bytes = 1 << 20;

std::filesystem::path default_config(const HostPaths& paths) {
    return paths.root / "etc/vfio-hook/vfio-hook.conf";
}

// What the command line says, over `settings`.
Expected<Settings> with_overrides(Settings settings, const std::map<std::string, std::string>& overrides) {
    for (const auto& [key, value] : overrides) {
        if (auto problem = apply_setting(settings, key, value)) return Error{"--" + key + " " + value + ": " + problem.message()};
    }
    return settings;
}

// Defaults, then the config file (if there is one), then what the command line says.
Expected<Settings> load_settings(const std::filesystem::path& config, bool config_required,
                                 const std::map<std::string, std::string>& overrides) {
    Settings settings;
    std::error_code missing;
    if (config_required || std::filesystem::exists(config, missing)) {
        auto text = read_user_file(config, max_config_bytes);
        if (!text) return Error{"cannot use the config file: " + text.error()};
        auto parsed = parse_config_file(*text, config.string(), settings);
        if (!parsed) return Error{parsed.error()};
        settings = *parsed;
    }
    return with_overrides(settings, overrides);
}

spdlog::level::level_enum log_level(const Settings& settings) {
    return spdlog::level::from_str(settings.log_level);
}

Expected<std::vector<PciAddress>> parse_addresses(const std::vector<std::string>& texts) {
    std::vector<PciAddress> addresses;
    for (const auto& text : texts) {
        auto address = PciAddress::parse(text);
        if (!address) {
            return Error{"'" + text + "' is not a PCI address; expected " + PciAddress::accepted_forms +
                         " (see `lspci -D`)"};
        }
        addresses.push_back(*address);
    }
    return addresses;
}

std::string basename_of(std::string_view path) {
    auto slash = path.find_last_of('/');
    return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// A config file that does not parse must not make the hook guess: prepare of a VM with host
// devices refuses (naming file:line); a VM without any starts as if there were no config; release
// still gives devices back with the defaults, the safe direction.
int run_hook_with_config(const HostPaths& paths, const std::filesystem::path& config, bool required,
                         const std::map<std::string, std::string>& overrides, const HookCall& call,
                         CliEnvironment& environment) {
    auto xml = environment.read_stdin();
    if (xml && hook_is_idle(paths, call, *xml)) return 0;
    auto settings = load_settings(config, required, overrides);
    setup_logging(paths, {true, settings ? log_level(*settings) : spdlog::level::info});
    if (!xml) {
        tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain + "': " + xml.error());
        if (call.operation == "prepare") return 1;
        xml = std::string();  // release still finds this domain's records by its name
    }
    if (!settings) {
        if (call.operation == "prepare") {
            auto domain = parse_domain_xml(*xml);
            if (domain && !domain_has_work(paths, *domain)) {
                logger().warn("{}; domain '{}' has no host PCI devices, so it starts all the same",
                              settings.error(), domain->name);
                return 0;
            }
            tell_user(spdlog::level::err, "vfio-hook: domain '" + call.domain +
                                              "' not started, nothing was changed: " + settings.error());
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

std::string nearest_command(std::string_view word) {
    std::string best;
    std::size_t best_distance = 3;  // suggest only what is close
    for (const auto& name : command_names()) {
        std::size_t distance = name.starts_with(word) ? 0 : edit_distance(word, name);
        if (distance < best_distance) {
            best = name;
            best_distance = distance;
        }
    }
    return best;
}

// Whether `word` is a value of the yes-or-no option `option` (--allow-boot-vga): what the config
// file takes for it (yes, no, true, off, 1, ...), nothing else.
bool is_value_of(const std::string& option, const std::string& word) {
    Settings scratch;
    return !apply_setting(scratch, std::string_view(option).substr(2), word);
}

// The options that take a value, asked of CLI11 (never kept by hand): `--root DIR` takes the
// next word; `--allow-boot-vga` takes it only when it is a yes or a no.
struct ValuedOptions {
    std::set<std::string> with_values;
    std::set<std::string> with_a_yes_or_no;
};

void collect_valued_options(CLI::App& app, ValuedOptions& options) {
    for (const CLI::Option* option : app.get_options()) {
        if (!option->nonpositional() || option->get_expected_max() == 0) continue;  // a word, or a flag
        auto& into = option->get_expected_min() == 0 ? options.with_a_yes_or_no : options.with_values;
        for (const auto& name : option->get_lnames()) into.insert("--" + name);
        for (const auto& name : option->get_snames()) into.insert("-" + name);
    }
    for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) collect_valued_options(*command, options);
}

// Where the first word that is not an option or an option's value stands: the command the user
// meant.
std::optional<std::size_t> command_index(const std::vector<std::string>& args, const ValuedOptions& options) {
    const auto& options_with_values = options.with_values;
    const auto& options_with_a_yes_or_no = options.with_a_yes_or_no;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") return std::nullopt;
        if (word.starts_with("-")) {
            bool inline_value = word.find('=') != std::string::npos;
            if (!inline_value && options_with_values.count(word)) ++i;
            // Its value is optional: the next word is it only when it is a yes or a no.
            if (!inline_value && options_with_a_yes_or_no.count(word) && i + 1 < args.size() &&
                is_value_of(word, args[i + 1]))
                ++i;
            continue;
        }
        return i;
    }
    return std::nullopt;
}

// `--allow-boot-vga` alone means yes, so a word after it that is not a yes or a no is the next
// argument (`bind --allow-boot-vga 01:00.0`), never its value: each such option is given its value
// inline here, so CLI11 never looks at the word after it.
void attach_yes_or_no_values(std::vector<std::string>& args, const ValuedOptions& options) {
    const auto& options_with_values = options.with_values;
    const auto& options_with_a_yes_or_no = options.with_a_yes_or_no;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") return;
        if (options_with_values.count(word)) {
            ++i;
            continue;
        }
        if (!options_with_a_yes_or_no.count(word)) continue;
        bool valued = i + 1 < args.size() && is_value_of(word, args[i + 1]);
        args[i] += "=" + (valued ? args[i + 1] : std::string("yes"));
        if (valued) args.erase(args.begin() + static_cast<std::ptrdiff_t>(i + 1));
    }
}

// The words libvirt passes after `hook` (DOMAIN OPERATION SUB-OP EXTRA) are data: a VM may be
// called `--version` or `-h`, and a CLI11 that took it for an option would print on stdout, which
// libvirt parses as a replacement domain XML on migrate and restore. So they are taken out
// before CLI11 sees the rest; options go before `hook` or after its four words.
constexpr std::size_t hook_words = 4;

std::vector<std::string> take_hook_words(std::vector<std::string>& args, std::size_t hook_index) {
    auto first = args.begin() + static_cast<std::ptrdiff_t>(hook_index + 1);
    auto last = first + static_cast<std::ptrdiff_t>(std::min(hook_words, args.size() - hook_index - 1));
    std::vector<std::string> words(first, last);
    args.erase(first, last);
    return words;
}

std::string help_of(CLI::App& app, const std::string& name) {
    // Not App::help(): it describes the command that was parsed (here: `help` itself).
    return app.get_formatter()->make_help(&app, name, CLI::AppFormatMode::Normal);
}

int usage_error(CliEnvironment& environment, const std::string& line) {
    environment.err << "vfio-hook: " << line << "\n";
    return 2;
}

std::string unknown_command(const std::string& word, const std::string& hint = "") {
    auto nearest = nearest_command(word);
    return "unknown command '" + word + "'" + (nearest.empty() ? "" : " (did you mean '" + nearest + "'?)") + hint +
           "; see `vfio-hook help`";
}

bool is_help_option(const std::string& word) { return word == "-h" || word == "--help"; }

// Which help the words ask for, decided before CLI11 parses them: CLI11 would read `help bind` as
// a `bind` without its required address and answer "address is required". `help` alone is the
// general help (""); `help NAME`, `NAME --help` and `NAME -h` are NAME's (`help --help` too).
// After `hook`, -h is help only alone: libvirt always passes three words or more, and a VM may
// be called `--help`.
std::optional<std::string> help_request(const std::vector<std::string>& args, std::size_t command_at,
                                        const ValuedOptions& options) {
    const std::string& command = args[command_at];
    if (command == "help") {
        std::vector<std::string> rest{args[0]};
        rest.insert(rest.end(), args.begin() + static_cast<std::ptrdiff_t>(command_at + 1), args.end());
        auto topic_at = command_index(rest, options);
        if (topic_at) return rest[*topic_at];
        return std::any_of(rest.begin(), rest.end(), is_help_option) ? command : std::string();
    }
    if (command == "hook") {
        if (args.size() == command_at + 2 && is_help_option(args.back())) return command;
        return std::nullopt;
    }
    for (std::size_t i = command_at + 1; i < args.size() && args[i] != "--"; ++i) {
        if (is_help_option(args[i])) return command;
    }
    return std::nullopt;
}

// Bare `vfio-hook`: a usage error, so stderr and exit 2 like every other one (stdout is for the
// answer a script asked for); short, because the whole help is one command away.
int short_usage(CliEnvironment& environment) {
    std::string names;
    for (const auto& name : command_names()) names += (names.empty() ? "" : ", ") + name;
    environment.err << "vfio-hook: a command is required\n"
                    << "  usage: vfio-hook [OPTIONS] COMMAND [ARGUMENTS]\n"
                    << "  commands: " << names << "\n"
                    << "  `vfio-hook help` shows every option, `vfio-hook help COMMAND` one command's\n";
    return 2;
}

// What the command line gave: each command's setup points CLI11 at the fields it fills.
struct Given {
    std::map<std::string, std::string> overrides;  // config keys given as options
    std::string root = "/";
    std::string config_path;
    std::string uri = default_libvirt_uri;
    std::vector<std::string> surplus;  // hook: a word after libvirt's four (take_hook_words())
    bool json = false;
    std::string file, check_domain;      // check
    std::vector<std::string> addresses;  // bind, restore, assign, unassign, persist, unpersist
    std::string domain, key, value;      // set, get, assign, unassign
    bool force = false, headless = false, dry_run = false, restore_display = false;
    std::string help_topic;  // for the help text: help_request() reads the topic before CLI11
    // check: why the config file was not used (the defaults were), for the refusal the hook
    // would give a VM with host devices; "" when it was fine.
    std::string config_problem;
};

// The addresses the command was given, or its usage error (exit 2).
Expected<std::vector<PciAddress>> addresses_for(Commands& commands, const std::string& command, const Given& given) {
    auto addresses = parse_addresses(given.addresses);
    if (!addresses) commands.err << "vfio-hook " << command << ": " << addresses.error() << "\n";
    return addresses;
}

// check reads one definition: a file, stdin, or libvirt's (--domain).
int check_command(Commands& commands, const Given& given, CliEnvironment& environment) {
    if (given.check_domain.empty() && given.file.empty()) {
        environment.err << "vfio-hook check: give a domain XML file, - for stdin, or --domain NAME\n";
        return 2;
    }
    // Either would be a silent choice of which definition the answer is about.
    if (!given.check_domain.empty() && !given.file.empty()) {
        environment.err << "vfio-hook check: give a domain XML file (" << given.file << ") or --domain NAME ("
                        << given.check_domain << "), not both\n";
        return 2;
    }
    Expected<std::string> xml = std::string();
    std::string source = given.file;
    if (!given.check_domain.empty()) {
        source = "domain '" + given.check_domain + "'";
        xml = environment.virsh({"-c", given.uri, "dumpxml", "--inactive", "--domain", given.check_domain});
    } else if (given.file == "-") {
        source = "stdin";
        xml = environment.read_stdin();
    } else {
        xml = read_user_file(given.file, max_domain_xml_bytes);
    }
    if (!xml) {
        environment.err << "vfio-hook check: " << xml.error() << "\n";
        // No libvirt is a failure of the host, as for every command that asks it; a file that
        // cannot be read, or a VM libvirt does not know, is bad input.
        return libvirt_unreachable(xml.error()) ? 1 : 2;
    }
    return run_check(commands, *xml, source, given.json, given.config_problem);
}

CLI::Option* address_option(CLI::App& command, Given& given, const char* meaning) {
    return command.add_option("address", given.addresses, meaning)->type_name("ADDRESS");
}

CLI::Option* domain_option(CLI::App& command, Given& given) {
    return command.add_option("domain", given.domain, "domain name or UUID")->required()->type_name("DOMAIN");
}

void setup_hook(CLI::App& command, Given& given) {
    // For the help text only: take_hook_words() gives these their values, so a word CLI11 puts
    // here is one too many. A name without spaces: CLI11 2.4 (Debian 13) throws at setup on
    // "DOMAIN OPERATION …", which made every command of a binary built there fail; 2.1 (Debian
    // 12) took it.
    command
        .add_option("words", given.surplus,
                    "the domain's name, prepare|start|started|stopped|release|…, begin|end, and what "
                    "libvirt passes last ('-', 'shutdown', …; given to hook.d scripts)")
        ->type_name("DOMAIN OPERATION SUB-OP [EXTRA]")
        ->expected(1);
}

void setup_check(CLI::App& command, Given& given) {
    command.add_option("file", given.file, "domain XML file (- for stdin)")->type_name("FILE");
    command.add_option("--domain", given.check_domain, "read the VM's definition from libvirt (virsh dumpxml)")
        ->type_name("NAME");
    command.add_flag("--json", given.json, "machine-readable output (keys in vfio-hook(8))");
}

void setup_restore(CLI::App& command, Given& given) {
    address_option(command, given, "PCI address")->required();
    command.add_flag("--force", given.force, "even while a process has the device's VFIO group open "
                                             "(the unbind then waits for it, up to the deadline)");
}

void setup_set(CLI::App& command, Given& given) {
    domain_option(command, given);
    command.add_option("key", given.key, "allow-boot-vga, firmware-errors, allow-host-critical, power-guard or rebar")
        ->required()
        ->type_name("KEY");
    command.add_option("value", given.value, "the value (for allow-host-critical: ADDRESS, or -ADDRESS to drop it; for rebar: smallest, largest, a size such as 8G, or no)")
        ->required()
        ->type_name("VALUE");
}

void setup_assign(CLI::App& command, Given& given) {
    domain_option(command, given);
    address_option(command, given, "PCI address")->required();
    command.add_flag("--headless", given.headless, "also remove the emulated display and sound (sound first, then "
                                                   "graphics, video, SPICE channels and USB redirection)");
    command.add_flag("--dry-run", given.dry_run, "print the change as a unified diff; change nothing");
}

void setup_unassign(CLI::App& command, Given& given) {
    domain_option(command, given);
    address_option(command, given, "PCI address");
    command.add_flag("--restore-display", given.restore_display,
                     "put back the display and sound from the latest backup (taken by assign)");
    command.add_flag("--dry-run", given.dry_run, "print the change as a unified diff; change nothing");
}

int bind_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "bind", given);
    return addresses ? run_bind(commands, *addresses) : 2;
}

int restore_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "restore", given);
    return addresses ? run_restore(commands, *addresses, given.force) : 2;
}

void setup_persist(CLI::App& command, Given& given, const char* dry_run) {
    address_option(command, given, "PCI address")->required();
    command.add_flag("--dry-run", given.dry_run, dry_run);
}

int persist_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "persist", given);
    return addresses ? run_persist(commands, *addresses, given.dry_run) : 2;
}

int unpersist_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "unpersist", given);
    return addresses ? run_unpersist(commands, *addresses, given.dry_run) : 2;
}

int persist_apply_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "persist-apply", given);
    return addresses ? run_persist_apply(commands, addresses->front()) : 2;
}

int assign_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "assign", given);
    return addresses ? run_assign(commands, given.domain, *addresses, given.headless, given.dry_run) : 2;
}

int unassign_command(Commands& commands, const Given& given, CliEnvironment&) {
    auto addresses = addresses_for(commands, "unassign", given);
    return addresses ? run_unassign(commands, given.domain, *addresses, given.restore_display, given.dry_run) : 2;
}

// One command: its name, its line in `vfio-hook help`, what it adds to CLI11, and what runs it
// once the settings are loaded (none for `hook` and `help`, which run_cli answers itself).
struct Command {
    const char* name;
    const char* summary;
    void (*setup)(CLI::App& command, Given& given);
    int (*run)(Commands& commands, const Given& given, CliEnvironment& environment);
};

// The one list of commands (ninja's kTools): CLI11's setup, the lookup, "did you mean", `help
// COMMAND`, the short usage and the tests all go by it, in the order `vfio-hook help` shows.
const std::vector<Command>& command_table() {
    static const std::vector<Command> table = {
        {"status", "show the IOMMU, vfio modules, GPUs and their groups, who holds each GPU and whether a VM could "
                   "take it; exit 0 when ready",
         [](CLI::App& command, Given& given) { command.add_flag("--json", given.json, "machine-readable output"); },
         [](Commands& commands, const Given& given, CliEnvironment&) { return run_status(commands, given.json); }},
        {"check", "dry run: what prepare would move and every refusal, without changing anything", setup_check,
         check_command},
        {"bind", "move devices (and their IOMMU groups) to vfio-pci by hand, parked there for any VM (also for "
                 "hot-plug)",
         [](CLI::App& command, Given& given) { address_option(command, given, "PCI address, e.g. 0000:01:00.0")->required(); },
         bind_command},
        {"restore", "give devices on vfio-pci back to their recorded driver (or reprobe ones with no record)",
         setup_restore, restore_command},
        {"recover", "give back every recorded device whose VM is not running", [](CLI::App&, Given&) {},
         [](Commands& commands, const Given&, CliEnvironment&) { return run_recover(commands); }},
        {"persist", "bind devices (and their IOMMU groups) to vfio-pci at every boot, by address, and now; "
                    "`unpersist` undoes it",
         [](CLI::App& command, Given& given) {
             setup_persist(command, given, "say what would be written and run; change nothing");
         },
         persist_command},
        {"unpersist", "remove what `persist` wrote and give the devices back to their host drivers now",
         [](CLI::App& command, Given& given) { setup_persist(command, given, "say what would be removed; change nothing"); },
         unpersist_command},
        {"persist-apply", "run by persist's udev rule when the device appears: take it back to vfio-pci from a "
                          "driver that was first",
         [](CLI::App& command, Given& given) {
             command.add_option("address", given.addresses, "PCI address")->required()->expected(1)->type_name("ADDRESS");
         },
         persist_apply_command},
        {"set", "set a per-VM setting in the VM's definition (virsh metadata)", setup_set,
         [](Commands& commands, const Given& given, CliEnvironment&) {
             return run_set(commands, given.domain, given.key, given.value);
         }},
        {"get", "show a VM's per-VM settings", [](CLI::App& command, Given& given) { domain_option(command, given); },
         [](Commands& commands, const Given& given, CliEnvironment&) { return run_get(commands, given.domain); }},
        {"assign", "put a GPU (every endpoint of its IOMMU group) into a VM's definition as PCI hostdevs, through "
                   "libvirt",
         setup_assign, assign_command},
        {"unassign", "take hostdevs out of a VM's definition (all of vfio-hook's when no address is given)",
         setup_unassign, unassign_command},
        {"hook", "run as libvirt's QEMU hook: DOMAIN OPERATION SUB-OP [EXTRA], the domain XML on stdin; these words "
                 "are libvirt's, never options (options go before `hook` or after these words)",
         setup_hook, nullptr},
        {"help", "show this help, or a command's",
         [](CLI::App& command, Given& given) {
             command.add_option("command", given.help_topic, "a command")->type_name("COMMAND");
         },
         nullptr},
    };
    return table;
}

const Command* find_command(std::string_view name) {
    for (const auto& command : command_table()) {
        if (name == command.name) return &command;
    }
    return nullptr;
}

// The global options (those of every command), then each command of the table.
void set_up(CLI::App& app, Given& given) {
    app.name("vfio-hook");
    app.set_version_flag("-V,--version", std::string("vfio-hook ") + VFIO_HOOK_VERSION);
    app.fallthrough();  // global options after the command too: `vfio-hook status --root DIR`
    for (const auto& key : config_keys()) {
        std::string name(key.name);
        if (key.is_flag) {
            // `--allow-boot-vga` alone means yes; `--allow-boot-vga no` says no.
            app.add_option_function<std::string>(
                   "--" + name, [&given, name](const std::string& value) {
                       given.overrides[name] = value.empty() ? "yes" : value;
                   },
                   std::string(key.meaning))
                ->expected(0, 1)
                ->type_name("yes|no");
            continue;
        }
        app.add_option_function<std::string>(
               "--" + name, [&given, name](const std::string& value) { given.overrides[name] = value; },
               std::string(key.meaning))
            ->type_name(name.ends_with("-ms") ? "MS" : "VALUE");
    }
    app.add_option("--config", given.config_path, "config file (default /etc/vfio-hook/vfio-hook.conf)")
        ->type_name("FILE");
    app.add_option("-c,--connect", given.uri, "libvirt URI for the commands that ask libvirt, as virsh's (default "
                                              "qemu:///system)")
        ->type_name("URI");
    app.add_option("--root", given.root, "treat DIR as / (for tests against a fake sysfs tree)")
        ->type_name("DIR")
        ->group("Testing");
    for (const auto& command : command_table()) command.setup(*app.add_subcommand(command.name, command.summary), given);
}

}  // namespace

// The commands, for "unknown command" and its suggestion (CLI11 would only say "A subcommand is
// required" or "arguments were not expected"), `help COMMAND` and the short usage.
const std::vector<std::string>& command_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> all;
        for (const auto& command : command_table()) all.push_back(command.name);
        return all;
    }();
    return names;
}

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
            return Error{"the domain XML on stdin is over the 64 MiB limit: refusing"};
        }
    }
    return text;
}

namespace {

// Answers what needs no parse: an unknown command (with "did you mean") and every help request.
std::optional<int> answer_before_parsing(CLI::App& app, const std::vector<std::string>& args,
                                         std::optional<std::size_t> command_at, const ValuedOptions& options,
                                         CliEnvironment& environment) {
    if (!command_at) return std::nullopt;
    if (!find_command(args[*command_at])) {
        std::string hint;
        if (*command_at > 1 && options.with_a_yes_or_no.count(args[*command_at - 1])) {
            const std::string& option = args[*command_at - 1];
            hint = "; " + option + " takes only yes or no (" + option + " alone, or " + option + "=no)";
        }
        return usage_error(environment, unknown_command(args[*command_at], hint));
    }
    auto topic = help_request(args, *command_at, options);
    if (!topic) return std::nullopt;
    if (topic->empty()) {
        environment.out << help_of(app, "vfio-hook");
        return 0;
    }
    if (!find_command(*topic)) return usage_error(environment, unknown_command(*topic));
    environment.out << help_of(*app.get_subcommand(*topic), "vfio-hook " + *topic);
    return 0;
}

// CLI11's parse; what it answers itself (help, version, a usage error) is answered here.
std::optional<int> parse(CLI::App& app, const std::vector<std::string>& args, CliEnvironment& environment) {
    try {
        std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        environment.out << help_of(app, "vfio-hook");
        return 0;
    } catch (const CLI::CallForVersion&) {
        environment.out << "vfio-hook " << VFIO_HOOK_VERSION << "\n";
        return 0;
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == 0) {
            environment.out << help_of(app, "vfio-hook");
            return 0;
        }
        return usage_error(environment, std::string(error.what()) + "; see `vfio-hook help`");
    }
    return std::nullopt;
}

std::filesystem::path config_of(const HostPaths& paths, const Given& given) {
    return given.config_path.empty() ? default_config(paths) : std::filesystem::path(given.config_path);
}

// `vfio-hook hook DOMAIN OPERATION SUB-OP [EXTRA]`: libvirt's words, then the path of libvirt's call.
int hook_command(const Given& given, const std::vector<std::string>& libvirt_words, const std::string& argv0,
                 CliEnvironment& environment) {
    if (!given.surplus.empty())
        return usage_error(environment, "hook: '" + given.surplus.front() + "' after libvirt's four words "
                                        "DOMAIN OPERATION SUB-OP EXTRA; see `vfio-hook help hook`");
    if (libvirt_words.size() < 3)
        return usage_error(environment, "hook needs libvirt's words DOMAIN OPERATION SUB-OP [EXTRA]; "
                                        "see `vfio-hook help hook`");
    HostPaths paths{given.root};
    HookCall call{libvirt_words[0], libvirt_words[1], libvirt_words[2],
                  libvirt_words.size() > 3 ? libvirt_words[3] : "-"};
    call.runs_qemu_d_layout = runs_qemu_d_layout(paths, argv0);
    if (!hook_has_work(paths, call)) return 0;
    return run_hook_with_config(paths, config_of(paths, given), !given.config_path.empty(), given.overrides, call,
                                environment);
}

// The commands that change the host (a dry run changes nothing): without root they would fail
// late, on EACCES from the lock or virsh, or reach the wrong libvirt (qemu:///session).
bool changes_host(const std::string& name, const Given& given) {
    static const std::set<std::string> changing = {"bind", "restore", "recover", "persist", "unpersist",
                                                    "persist-apply", "set", "assign", "unassign"};
    return changing.count(name) > 0 && !given.dry_run;
}

// The commands that look and change nothing a VM start depends on, or that must work whatever
// the config says: like the hook's release, they go on with the defaults when the config file
// does not parse (and say so). check then reports what the hook would: a start it refuses only
// for a VM with host devices.
bool falls_back_to_defaults(std::string_view command) {
    return command == "status" || command == "recover" || command == "check";
}

// An admin command: its settings, logging and kernel, then the command's own run.
int admin_command(const Command& command, const Given& given, CliEnvironment& environment) {
    HostPaths paths{given.root};
    if (changes_host(command.name, given)) {
        if (auto problem = needs_root(paths)) {
            environment.err << "vfio-hook " << command.name << ": " << problem.message() << "\n";
            return 1;
        }
    }
    auto settings = load_settings(config_of(paths, given), !given.config_path.empty(), given.overrides);
    Given with_defaults = given;
    if (!settings && falls_back_to_defaults(command.name)) {
        // The command line's options still count: only the file is left out.
        auto defaults = with_overrides(Settings{}, given.overrides);
        if (defaults) {
            environment.err << "vfio-hook " << command.name << ": " << settings.error() << "; using the defaults\n";
            with_defaults.config_problem = settings.error();
            settings = defaults;
        }
    }
    if (!settings) {
        environment.err << "vfio-hook " << command.name << ": " << settings.error() << "\n";
        return 2;
    }
    setup_logging(paths, {false, log_level(*settings)});
    use_pci_names_under(paths);
    auto kernel = environment.make_kernel(*settings);
    Host host{paths, *kernel, *settings};
    Commands commands{host, environment.out, environment.err, environment.virsh, given.uri};
    return command.run(commands, with_defaults, environment);
}

}  // namespace

int run_cli(const std::vector<std::string>& given_args, CliEnvironment& environment) {
    std::vector<std::string> args = given_args;  // take_hook_words() takes libvirt's words out
    // The real stderr is written without ever waiting (see host/log.cpp); tests capture a stream.
    set_user_stream(&environment.err == &std::cerr ? nullptr : &environment.err);

    // libvirt's call is positional (`qemu DOMAIN OPERATION SUB-OP EXTRA`) and its domain name may
    // look like an option: skip CLI11. Called by that name with fewer words, it is a person asking
    // what is installed (`/etc/libvirt/hooks/qemu --version`): answer as the CLI does.
    if (!args.empty() && invoked_as_libvirt_hook(args[0]) && args.size() >= 4) {
        HookCall call{args[1], args[2], args[3], args.size() > 4 ? args[4] : "-", runs_qemu_d_layout(HostPaths{}, args[0])};
        if (!hook_has_work(HostPaths{}, call)) return 0;
        return run_hook_with_config(HostPaths{}, default_config(HostPaths{}), false, {}, call, environment);
    }

    CLI::App app{"hands a VM's PCI devices to vfio-pci while it runs, and gives them "
                 "back when it stops.\nInstalled as /etc/libvirt/hooks/qemu it is called by "
                 "libvirt; run by hand it is the admin tool.\nExit status: 0 success (or ready), "
                 "1 refused, not ready or failed, 2 bad usage or bad input."};
    Given given;
    set_up(app, given);
    ValuedOptions options;
    collect_valued_options(app, options);
    auto command_at = command_index(args, options);
    if (auto answered = answer_before_parsing(app, args, command_at, options, environment)) return *answered;
    std::vector<std::string> libvirt_words;
    if (command_at && args[*command_at] == "hook") libvirt_words = take_hook_words(args, *command_at);
    attach_yes_or_no_values(args, options);
    if (auto answered = parse(app, args, environment)) return *answered;
    // answer_before_parsing() answered every `help`; what is left here is no command at all.
    if (app.get_subcommands().empty() || app.get_subcommand("help")->parsed()) return short_usage(environment);
    const Command& command = *find_command(app.get_subcommands().front()->get_name());
    if (!command.run) return hook_command(given, libvirt_words, args.empty() ? "" : args[0], environment);
    return admin_command(command, given, environment);
}

}  // namespace vfio_hook
