// The command line tells the truth: what a new user types first, through the real entry point.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

// Every line a command wrote to stderr starts with the program's name.
void every_line_is_ours(const std::string& err) {
    std::istringstream lines(err);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.starts_with("  ")) continue;  // a refusal's reasons, under its first line
        BOOST_TEST(line.starts_with("vfio-hook"), "stderr line without 'vfio-hook': " << line);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cli)

// 1.
BOOST_AUTO_TEST_CASE(a_config_typo_never_blocks_a_vm_without_host_devices) {
    Desktop host;
    fs::path bad = host.root() / "bad.conf";
    std::ofstream(bad) << "write-deadline-ms = soon\n";
    auto plain = host.run({"--config", bad.string(), "hook", "plain", "prepare", "begin", "-"},
                          domain_xml("plain", uuid_b, {}));
    BOOST_TEST(plain.status == 0, plain.err);
    auto gpu = host.run({"--config", bad.string(), "hook", "win11", "prepare", "begin", "-"}, gpu_only);
    BOOST_TEST(gpu.status == 1);
    BOOST_TEST(contains(gpu.err, "bad.conf:1: 'write-deadline-ms = soon'"), gpu.err);
    BOOST_TEST(host.kernel().writes() == 0);
    // Also past the null path, when a record of another VM makes the hook read its config.
    BOOST_TEST_REQUIRE(host.run({"bind", "0000:01:00.0"}).status == 0);
    auto plain_again = host.run({"--config", bad.string(), "hook", "plain", "prepare", "begin", "-"},
                                domain_xml("plain", uuid_b, {}));
    BOOST_TEST(plain_again.status == 0, plain_again.err);
    BOOST_TEST(contains(plain_again.err, "has no host PCI devices, so it starts all the same"), plain_again.err);
    BOOST_TEST_REQUIRE(host.run({"restore", "0000:01:00.0"}).status == 0);
}

// Issue 24: status, recover and check go on with the defaults, as the hook's release does, and
// say so; check refuses only what the hook would refuse: a VM with host devices.
BOOST_AUTO_TEST_CASE(a_bad_config_never_blocks_status_recover_or_a_plain_vm_check) {
    Desktop host;
    fs::create_directories(host.root() / "etc/vfio-hook");
    std::ofstream(host.root() / "etc/vfio-hook/vfio-hook.conf") << "write-deadline-ms = soon\n";
    for (const char* command : {"status", "recover"}) {
        auto run = host.run({command});
        BOOST_TEST(run.status != 2, command << ": " << run.err);
        BOOST_TEST(contains(run.err, "vfio-hook " + std::string(command) + ": "), run.err);
        BOOST_TEST(contains(run.err, "vfio-hook.conf:1"), run.err);
        BOOST_TEST(contains(run.err, "; using the defaults"), run.err);
    }
    auto plain = host.run({"check", "-"}, domain_xml("plain", uuid_b, {}));
    BOOST_TEST(plain.status == 0, plain.out + plain.err);
    BOOST_TEST(contains(plain.out, "a VM without host PCI devices starts all the same"), plain.out);
    auto gpu = host.run({"check", "-"}, gpu_only);
    BOOST_TEST(gpu.status == 1, gpu.out + gpu.err);
    BOOST_TEST(contains(gpu.out, "refused: /"), gpu.out);
    BOOST_TEST(contains(gpu.out, "vfio-hook.conf:1"), gpu.out);
    // The commands that change the host stay strict.
    BOOST_TEST(host.run({"bind", "0000:01:00.0"}).status == 2);
}

// Issue 24: no libvirt daemon gives every command that asks it the same exit status (1) and the
// same question, whatever virsh command it ran.
BOOST_AUTO_TEST_CASE(libvirt_unreachable_is_exit_1_with_the_same_question_everywhere) {
    const std::string why = explain_virsh_failure(
        "virsh failed: error: Failed to connect socket to '/var/run/libvirt/virtqemud-sock': No such file or directory");
    BOOST_TEST(contains(why, "(is libvirtd (or virtqemud) running?)"), why);
    BOOST_TEST(explain_virsh_failure("virsh failed: error: failed to get domain 'x'") ==
               "virsh failed: error: failed to get domain 'x'");
    Desktop host;
    host.libvirt_active = Error{why};
    for (const char* command : {"dumpxml", "dominfo", "metadata"}) host.virsh_answers[command] = {Error{why}, Error{why}};
    BOOST_TEST_REQUIRE(host.run({"bind", "0000:01:00.0"}).status == 0);  // a record, so recover asks libvirt
    for (const auto& args : std::vector<std::vector<std::string>>{{"check", "--domain", "win11"},
                                                                   {"assign", "win11", "0000:01:00.0"},
                                                                   {"unassign", "win11"},
                                                                   {"set", "win11", "allow-boot-vga", "yes"},
                                                                   {"get", "win11"}}) {
        auto run = host.run(args);
        BOOST_TEST(run.status == 1, args.front() << ": " << run.err);
        BOOST_TEST(contains(run.err, "is libvirtd (or virtqemud) running?"), args.front() << ": " << run.err);
    }
    // A VM libvirt does not know is still bad input for check.
    Desktop other;
    BOOST_TEST(other.run({"check", "--domain", "nope"}).status == 2);
}

// Issue 24: --log-level debug shows on the terminal what the log says (here each move of a bind,
// with its time), which an admin command otherwise leaves to the journal.
BOOST_AUTO_TEST_CASE(log_level_debug_shows_more_on_the_terminal) {
    Desktop quiet;
    auto plain = quiet.run({"bind", "0000:01:00.0"});
    BOOST_TEST(plain.status == 0, plain.err);
    BOOST_TEST(!contains(plain.err, "→ vfio-pci in"), plain.err);
    // (No journal here: the fake's journal socket is a plain file, whose failed sends reach
    // stderr whatever the level says.)
    Desktop verbose;
    auto debug = verbose.run({"--log-level", "debug", "bind", "0000:01:00.0"});
    BOOST_TEST(debug.status == 0, debug.err);
    BOOST_TEST(contains(debug.err, "vfio-hook: 0000:01:00.0: nvidia → vfio-pci in"), debug.err);
}

// Issue 24: status says vfio-hook loads vfio-pci on demand only where modprobe would find it.
BOOST_AUTO_TEST_CASE(status_says_loads_on_demand_only_when_vfio_pci_is_installed) {
    Desktop host;
    fs::remove_all(host.root() / "sys/bus/pci/drivers/vfio-pci");
    auto missing = host.run({"status"});
    BOOST_TEST(contains(missing.out, "the vfio-pci driver is neither loaded nor installed"), missing.out);
    BOOST_TEST(!contains(missing.out, "loads it on demand"), missing.out);
    fs::create_directories(host.root() / "proc/sys/kernel");
    std::ofstream(host.root() / "proc/sys/kernel/osrelease") << "6.1.0-28-amd64\n";
    fs::create_directories(host.root() / "lib/modules/6.1.0-28-amd64");
    std::ofstream(host.root() / "lib/modules/6.1.0-28-amd64/modules.dep")
        << "kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/vfio-pci-core.ko\n";
    auto installed = host.run({"status"});
    BOOST_TEST(contains(installed.out, "not loaded (vfio-hook loads it on demand)"), installed.out);
    BOOST_TEST(!contains(installed.out, "neither loaded nor installed"), installed.out);
}

// 2.
BOOST_AUTO_TEST_CASE(a_directory_where_a_file_belongs_is_one_line_and_exit_2) {
    Desktop host;
    auto check = host.run({"check", host.root().string()});
    BOOST_TEST(check.status == 2);
    BOOST_TEST(contains(check.err, "vfio-hook check: cannot read " + host.root().string() + ": Is a directory"), check.err);
    // (bind: status, recover and check go on with the defaults, a_bad_config_never_blocks_…)
    auto config = host.run({"--config", host.root().string(), "bind", "0000:01:00.0"});
    BOOST_TEST(config.status == 2);
    BOOST_TEST(contains(config.err, "Is a directory"), config.err);
    every_line_is_ours(check.err + config.err);
}

// 3.
BOOST_AUTO_TEST_CASE(status_is_not_ready_when_the_only_gpu_is_the_held_boot_display) {
    FakeHost host;
    host.gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0").drm_node("0000:00:02.0", "card0");
    host.process(1234, "Xorg", {"/dev/dri/card0"});
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 1);
    BOOST_TEST(contains(status.out, "held by pid 1234 (Xorg) on /dev/dri/card0"), status.out);
    BOOST_TEST(contains(status.out, "a VM could not take it now"), status.out);
    BOOST_TEST(contains(status.out, "no GPU could be given to a VM now"), status.out);
    auto json = host.run({"status", "--json"});
    BOOST_TEST(contains(json.out, "\"could_be_taken\":false"), json.out);
    BOOST_TEST(contains(json.out, "\"held_by\":[{\"pid\":1234,\"command\":\"Xorg\",\"node\":\"/dev/dri/card0\",\"unit\":null,\"unit_kind\":null}]"), json.out);
}

BOOST_AUTO_TEST_CASE(status_is_ready_when_a_second_gpu_could_be_taken) {
    Desktop host;
    install_hook(host);  // libvirt runs this vfio-hook: without it the host is not ready
    host.process(1234, "Xorg", {"/dev/dri/card0"});
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 0, status.out);
    BOOST_TEST(contains(status.out, "a VM could take it now"), status.out);
}

// 4.
BOOST_AUTO_TEST_CASE(with_the_iommu_off_a_missing_address_is_named_too) {
    Desktop host;
    host.no_iommu();
    auto check = host.run({"check", "-"}, domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:0a:00.0"}));
    BOOST_TEST(check.status == 1);
    BOOST_TEST(contains(check.out, "the IOMMU is off"), check.out);
    BOOST_TEST(contains(check.out, "0000:0a:00.0: no such PCI device"), check.out);
    auto bind = host.run({"bind", "0000:0a:00.0"});
    BOOST_TEST(bind.status == 1);
    BOOST_TEST(contains(bind.err, "the IOMMU is off"), bind.err);
    BOOST_TEST(contains(bind.err, "0000:0a:00.0: no such PCI device"), bind.err);
}

// 5.
BOOST_AUTO_TEST_CASE(unknown_words_are_named_with_the_nearest_command_and_exit_2) {
    FakeHost host;
    auto unknown = host.run({"frobnicate"});
    BOOST_TEST(unknown.status == 2);
    BOOST_TEST(contains(unknown.err, "vfio-hook: unknown command 'frobnicate'"), unknown.err);
    auto typo = host.run({"stauts"});
    BOOST_TEST(typo.status == 2);
    BOOST_TEST(contains(typo.err, "did you mean 'status'?"), typo.err);
    auto option = host.run({"--frob", "status"});
    BOOST_TEST(option.status == 2);
    BOOST_TEST(contains(option.err, "--frob"), option.err);
    auto nothing = host.run({});
    BOOST_TEST(nothing.status == 2);
    every_line_is_ours(unknown.err + typo.err + option.err + nothing.err);
    BOOST_TEST(host.run({"bind", "0000:01:00.0", "--no-such-option"}).status == 2);
}

BOOST_AUTO_TEST_CASE(help_version_and_global_options_after_the_command) {
    Desktop host;
    install_hook(host);  // so that `status` below is ready: exit 0
    auto help = host.run({"help"});
    BOOST_TEST(help.status == 0);
    BOOST_TEST(contains(help.out, "recover"), help.out);
    BOOST_TEST(contains(help.out, "MS"), help.out);  // number options say what they take
    BOOST_TEST(!contains(help.out, "TEXT"), help.out);
    auto status_help = host.run({"help", "status"});
    BOOST_TEST(status_help.status == 0);
    BOOST_TEST(contains(status_help.out, "--json"), status_help.out);
    BOOST_TEST(host.run({"help", "frob"}).status == 2);
    for (const char* flag : {"-V", "--version"}) {
        auto version = host.run({flag});
        BOOST_TEST(version.status == 0);
        BOOST_TEST(version.out == std::string("vfio-hook ") + VFIO_HOOK_VERSION + "\n", version.out);
    }
    // `vfio-hook status --root DIR`: the fake root given after the command still counts.
    auto after = host.run_exactly({"vfio-hook", "status", "--root", host.root().string()});
    BOOST_TEST(after.status == 0, after.err);
    BOOST_TEST(contains(after.out, "0000:01:00.0"), after.out);
}

// Issue 24, point 2: `help COMMAND` answered "address is required" for every command with a
// required argument, because the parser saw `help bind` as a `bind` without its address.
BOOST_AUTO_TEST_CASE(help_works_for_every_command_both_ways) {
    Desktop host;
    for (const auto& name : command_names()) {
        for (const auto& args : {std::vector<std::string>{"help", name}, std::vector<std::string>{name, "--help"},
                                 std::vector<std::string>{name, "-h"}}) {
            std::string shown = args[0] + " " + args[1];
            auto help = host.run(args);
            BOOST_TEST(help.status == 0, shown << ": " << help.err);
            BOOST_TEST(help.err.empty(), shown << ": " << help.err);
            BOOST_TEST(contains(help.out, "Usage: vfio-hook " + name), shown << ": " << help.out);
            BOOST_TEST(!contains(help.out, "Subcommands:"), shown << " printed the general help: " << help.out);
        }
    }
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.virsh_calls.empty());
    // Global options around it change nothing.
    auto around = host.run({"--connect", "qemu:///session", "help", "--log-level", "debug", "assign"});
    BOOST_TEST(around.status == 0, around.err);
    BOOST_TEST(contains(around.out, "Usage: vfio-hook assign"), around.out);
    // The list the loop goes by is the parser's: every command `vfio-hook help` shows is in it.
    auto general = host.run({"help"});
    std::istringstream lines(general.out.substr(general.out.find("Subcommands:")));
    std::string line;
    std::size_t listed = 0;
    while (std::getline(lines, line)) {
        if (!line.starts_with("  ")) continue;
        std::string name = line.substr(2, line.find(' ', 2) - 2);
        ++listed;
        BOOST_TEST((std::find(command_names().begin(), command_names().end(), name) != command_names().end()), name);
    }
    BOOST_TEST(listed == command_names().size());
}

// Bare `vfio-hook` is a usage error: a short usage on stderr (nothing on stdout, where a script
// looks for an answer), exit 2 as for every other usage error.
BOOST_AUTO_TEST_CASE(bare_vfio_hook_prints_a_short_usage_on_stderr_and_exits_2) {
    FakeHost host;
    for (const auto& args : {std::vector<std::string>{"vfio-hook"}, std::vector<std::string>{"/etc/libvirt/hooks/qemu"}}) {
        auto bare = host.run_exactly(args);
        BOOST_TEST(bare.status == 2, args[0]);
        BOOST_TEST(bare.out.empty(), args[0] << ": " << bare.out);
        BOOST_TEST(contains(bare.err, "vfio-hook: a command is required"), bare.err);
        BOOST_TEST(contains(bare.err, "usage: vfio-hook [OPTIONS] COMMAND"), bare.err);
        for (const auto& name : command_names()) BOOST_TEST(contains(bare.err, " " + name), name << ": " << bare.err);
        BOOST_TEST(std::count(bare.err.begin(), bare.err.end(), '\n') <= 5, bare.err);
        every_line_is_ours(bare.err);
    }
}

BOOST_AUTO_TEST_CASE(allow_boot_vga_takes_the_yes_or_no_its_help_shows) {
    Desktop host;
    std::string boot = domain_xml("win11", uuid_a, {"0000:00:02.0"});
    BOOST_TEST(host.run({"--allow-boot-vga", "no", "check", "-"}, boot).status == 1);
    BOOST_TEST(host.run({"--allow-boot-vga", "yes", "check", "-"}, boot).status == 0);
    BOOST_TEST(host.run({"--allow-boot-vga=no", "check", "-"}, boot).status == 1);
    BOOST_TEST(host.run({"check", "-", "--allow-boot-vga"}, boot).status == 0);
    BOOST_TEST(host.run({"check", "-", "--allow-boot-vga", "no"}, boot).status == 1);
    auto bad = host.run({"--allow-boot-vga=maybe", "check", "-"}, boot);
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(contains(bad.err, "expected yes or no"), bad.err);
    // A word that is not yes or no is the next argument, here where a command belongs.
    auto not_a_value = host.run({"--allow-boot-vga", "maybe", "check", "-"}, boot);
    BOOST_TEST(not_a_value.status == 2);
    BOOST_TEST(contains(not_a_value.err, "unknown command 'maybe'"), not_a_value.err);
    BOOST_TEST(contains(not_a_value.err, "--allow-boot-vga=no"), not_a_value.err);
    every_line_is_ours(bad.err + not_a_value.err);
}

// Issue 24, point 7: `--allow-boot-vga` alone means yes, as its help says, so it must not take a
// word that is not yes or no: `bind --allow-boot-vga 01:00.0` said "address is required" and
// `check --allow-boot-vga win11.xml` "--allow-boot-vga win11.xml: expected yes or no".
BOOST_AUTO_TEST_CASE(allow_boot_vga_alone_never_takes_the_next_argument) {
    Desktop host;
    fs::path file = host.root() / "boot.xml";
    std::ofstream(file) << domain_xml("win11", uuid_a, {"0000:00:02.0"});
    auto check = host.run({"check", "--allow-boot-vga", file.string()});
    BOOST_TEST(check.status == 0, check.err);
    BOOST_TEST(contains(check.out, "ready to start"), check.out);
    auto bind = host.run({"bind", "--allow-boot-vga", "01:00.0"});
    BOOST_TEST(bind.status == 0, bind.err);
    BOOST_TEST(*host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST_REQUIRE(host.run({"restore", "01:00.0"}).status == 0);
    auto before = host.run({"--allow-boot-vga", "bind", "01:00.0"});
    BOOST_TEST(before.status == 0, before.err);
    BOOST_TEST_REQUIRE(host.run({"restore", "01:00.0"}).status == 0);
}

// virsh's `-c URI` works wherever `--connect URI` does, before or after the command.
BOOST_AUTO_TEST_CASE(dash_c_is_connect_as_in_virsh) {
    Desktop host;
    host.virsh_answers["dumpxml"] = {gpu_only, gpu_only};
    auto before = host.run({"-c", "qemu:///session", "check", "--domain", "win11"});
    BOOST_TEST(before.status == 0, before.err);
    auto after = host.run({"check", "--domain", "win11", "-c", "qemu:///session"});
    BOOST_TEST(after.status == 0, after.err);
    BOOST_TEST_REQUIRE(host.virsh_calls.size() == 2u);
    for (const auto& call : host.virsh_calls) {
        BOOST_TEST(call == (std::vector<std::string>{"-c", "qemu:///session", "dumpxml", "--inactive", "--domain", "win11"}));
    }
    BOOST_TEST(contains(host.run({"help"}).out, "-c,--connect"));
}

// `check --domain X file.xml` read the domain from libvirt and ignored the file without a word.
BOOST_AUTO_TEST_CASE(check_with_both_a_file_and_a_domain_is_a_usage_error) {
    Desktop host;
    fs::path file = host.root() / "win11.xml";
    std::ofstream(file) << gpu_only;
    host.virsh_answers["dumpxml"] = {gpu_only};
    auto both = host.run({"check", "--domain", "win11", file.string()});
    BOOST_TEST(both.status == 2);
    BOOST_TEST(both.out.empty(), both.out);
    BOOST_TEST(both.err == "vfio-hook check: give a domain XML file (" + file.string() +
                               ") or --domain NAME (win11), not both\n",
               both.err);
    BOOST_TEST(host.virsh_calls.empty());
    BOOST_TEST(host.run({"check", "-", "--domain", "win11"}, gpu_only).status == 2);
}

// The man page's --connect names every command that asks libvirt: each is run here with -c and
// every virsh call it makes must carry that URI.
BOOST_AUTO_TEST_CASE(the_man_page_names_every_command_that_takes_connect) {
    std::ifstream stream(std::string(VFIO_HOOK_SOURCE_DIR) + "/man/vfio-hook.8.scd");
    std::string man(std::istreambuf_iterator<char>(stream), {});
    auto connect = man.find("*-c* _URI_, *--connect* _URI_");
    BOOST_TEST_REQUIRE(connect != std::string::npos);
    std::string paragraph = man.substr(connect, man.find("\n\n", connect) - connect);
    const std::vector<std::vector<std::string>> asking_libvirt = {
        {"check", "--domain", "win11"}, {"set", "win11", "allow-boot-vga", "yes"}, {"get", "win11"},
        {"recover"}, {"assign", "win11", "01:00.0", "--dry-run"}, {"unassign", "win11", "--dry-run"}};
    for (const auto& command : asking_libvirt) {
        Desktop host;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);  // a record for recover
        host.virsh_answers["dumpxml"] = {gpu_only};
        host.virsh_answers["dominfo"] = {std::string("Persistent:     yes\n")};
        std::vector<std::string> args{"-c", "test:///default"};
        args.insert(args.end(), command.begin(), command.end());
        host.run(args);
        BOOST_TEST(!host.virsh_calls.empty(), command[0]);
        for (const auto& call : host.virsh_calls) {
            BOOST_TEST((call.size() > 2 && call[0] == "-c" && call[1] == "test:///default"), command[0]);
        }
        BOOST_TEST(contains(paragraph, "*" + command[0]), command[0] << " missing from: " << paragraph);
    }
}

// LOGGING names every journal field vfio-hook sets, and SEE ALSO exists.
BOOST_AUTO_TEST_CASE(the_man_page_lists_the_journal_fields_and_see_also) {
    std::ifstream stream(std::string(VFIO_HOOK_SOURCE_DIR) + "/man/vfio-hook.8.scd");
    std::string man(std::istreambuf_iterator<char>(stream), {});
    auto logging = man.find("# LOGGING");
    BOOST_TEST_REQUIRE(logging != std::string::npos);
    std::string section = man.substr(logging, man.find("\n# ", logging + 1) - logging);
    for (const char* field : {"SYSLOG_IDENTIFIER", "PRIORITY", "DOMAIN", "DOMAIN_UUID", "OPERATION", "PCI_ADDRESS",
                              "DRIVER_FROM", "DRIVER_TO", "DURATION_MS", "DEVICE_COUNT"}) {
        BOOST_TEST(contains(section, field), field);
    }
    auto see_also = man.find("# SEE ALSO");
    BOOST_TEST_REQUIRE(see_also != std::string::npos);
    for (const char* page : {"*virsh*(1)", "*libvirtd*(8)", "*virtqemud*(8)", "*journalctl*(1)", "*driverctl*(8)"}) {
        BOOST_TEST(contains(man.substr(see_also), page), page);
    }
}

// 6.
BOOST_AUTO_TEST_CASE(errors_read_the_same_from_a_file_or_stdin_and_go_to_stderr) {
    Desktop host;
    fs::path empty = host.root() / "empty.xml";
    std::ofstream(empty) << "";
    auto from_file = host.run({"check", empty.string()});
    auto from_stdin = host.run({"check", "-"}, "");
    BOOST_TEST(from_file.status == 2);
    BOOST_TEST(from_stdin.status == 2);
    BOOST_TEST(from_file.out.empty());
    BOOST_TEST(from_stdin.out.empty());
    BOOST_TEST(from_file.err == "vfio-hook check: " + empty.string() + ": domain XML is empty: expected a <domain> document\n");
    BOOST_TEST(from_stdin.err == "vfio-hook check: stdin: domain XML is empty: expected a <domain> document\n");
}

BOOST_AUTO_TEST_CASE(a_refused_start_is_one_message_what_happened_then_each_reason) {
    Desktop host;
    host.process(1234, "Xorg", {"/dev/dri/card1"});
    auto run = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:0a:00.0"}));
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.starts_with("vfio-hook: domain 'win11' not started, nothing was changed:\n  "), run.err);
    BOOST_TEST(contains(run.err, "\n  0000:01:00.0: is held open by pid 1234 (Xorg) on /dev/dri/card1"), run.err);
    BOOST_TEST(contains(run.err, "\n  0000:0a:00.0: no such PCI device"), run.err);
    every_line_is_ours(run.err);
}

// 7.
BOOST_AUTO_TEST_CASE(called_as_the_hook_without_libvirts_arguments_it_answers_like_the_cli) {
    FakeHost host;
    auto version = host.run_exactly({"/etc/libvirt/hooks/qemu", "--version"});
    BOOST_TEST(version.status == 0);
    BOOST_TEST(contains(version.out, "vfio-hook "), version.out);
    auto help = host.run_exactly({"/etc/libvirt/hooks/qemu.d/vfio-hook", "help"});
    BOOST_TEST(help.status == 0);
    BOOST_TEST(contains(help.out, "recover"), help.out);
    auto bare = host.run_exactly({"/etc/libvirt/hooks/qemu"});
    BOOST_TEST(bare.status == 2);
    BOOST_TEST(contains(bare.err, "usage: vfio-hook"), bare.err);
}

// Issue 23, defect 10: libvirt's four words after `hook` are data. A VM named `--version` made
// CLI11 print the version on stdout, which libvirt reads as a replacement domain XML on
// migrate and restore.
BOOST_AUTO_TEST_CASE(a_domain_named_like_an_option_is_just_a_domain_to_the_hook) {
    for (const std::string name : {"--version", "-V", "-h", "--help", "--root", "--config", "--", "help"}) {
        Desktop host;
        std::string xml = domain_xml(name, uuid_a, {"0000:01:00.0"});
        auto prepare = host.run({"hook", name, "prepare", "begin", "-"}, xml);
        BOOST_TEST(prepare.status == 0, name << ": " << prepare.err);
        BOOST_TEST(prepare.out.empty(), name << " printed on stdout: " << prepare.out);
        BOOST_TEST(*host.driver_of("0000:01:00.0") == "vfio-pci", name);
        auto release = host.run({"hook", name, "release", "end", "shutdown"}, xml);
        BOOST_TEST(release.status == 0, name << ": " << release.err);
        BOOST_TEST(release.out.empty(), name << " printed on stdout: " << release.out);
        BOOST_TEST(*host.driver_of("0000:01:00.0") == "nvidia", name);
        // The fuzzer's input: a call with nothing to do prints nothing either.
        auto idle = host.run({"hook", name, "end", "shutdown"});
        BOOST_TEST(idle.out.empty(), name << " printed on stdout: " << idle.out);
    }
}

BOOST_AUTO_TEST_CASE(options_still_go_before_hook_or_after_its_four_words) {
    Desktop host;
    fs::path bad = host.root() / "bad.conf";
    std::ofstream(bad) << "write-deadline-ms = soon\n";
    auto before = host.run({"--config", bad.string(), "hook", "win11", "prepare", "begin", "-"}, gpu_only);
    BOOST_TEST(before.status == 1);
    BOOST_TEST(contains(before.err, "bad.conf:1:"), before.err);
    auto after = host.run({"hook", "win11", "prepare", "begin", "-", "--config", bad.string()}, gpu_only);
    BOOST_TEST(after.status == 1);
    BOOST_TEST(contains(after.err, "bad.conf:1:"), after.err);
    BOOST_TEST(host.kernel().writes() == 0);
    auto short_call = host.run({"hook", "win11", "prepare"});
    BOOST_TEST(short_call.status == 2);
    BOOST_TEST(short_call.out.empty(), short_call.out);
    BOOST_TEST(contains(short_call.err, "DOMAIN OPERATION SUB-OP"), short_call.err);
    auto help = host.run({"help", "hook"});
    BOOST_TEST(help.status == 0);
    BOOST_TEST(contains(help.out, "DOMAIN OPERATION SUB-OP"), help.out);
    auto too_many = host.run({"hook", "win11", "release", "end", "-", "surplus"});
    BOOST_TEST(too_many.status == 2);
    BOOST_TEST(contains(too_many.err, "surplus"), too_many.err);
}

// 8.
BOOST_AUTO_TEST_CASE(bind_of_a_missing_address_speaks_of_the_command_line) {
    Desktop host;
    auto bind = host.run({"bind", "0000:0a:00.0"});
    BOOST_TEST(bind.status == 1);
    BOOST_TEST(contains(bind.err, "0000:0a:00.0: no such PCI device on this host (given on the command line)"), bind.err);
    BOOST_TEST(!contains(bind.err, "<"), bind.err);
    BOOST_TEST(!contains(bind.err, "domain"), bind.err);
}

// Per-VM settings a user can actually set.
BOOST_AUTO_TEST_CASE(the_boot_vga_refusal_gives_the_exact_command_that_allows_it) {
    Desktop host;
    auto run = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:00:02.0"}));
    BOOST_TEST(contains(run.err, "`vfio-hook set 'win11' allow-boot-vga yes`"), run.err);
    BOOST_TEST(contains(run.err, "virsh metadata 'win11' --uri https://vfio-hook.org/xmlns/domain/1 --key vh --set "
                                 "'<vfio-hook><allow-boot-vga>yes</allow-boot-vga></vfio-hook>' --config"),
               run.err);
}

BOOST_AUTO_TEST_CASE(set_merges_into_the_vms_metadata_through_virsh_and_get_shows_it) {
    Desktop host;
    host.virsh_answers["metadata"] = {
        std::string("<vfio-hook><firmware-errors>refuse</firmware-errors></vfio-hook>\n"),
        std::string(""),
        std::string("<vfio-hook><firmware-errors>refuse</firmware-errors><allow-boot-vga>yes</allow-boot-vga></vfio-hook>\n")};
    auto set = host.run({"--connect", "qemu:///session", "set", "win11", "allow-boot-vga", "yes"});
    BOOST_TEST(set.status == 0, set.err);
    BOOST_TEST_REQUIRE(host.virsh_calls.size() == 2u);
    std::vector<std::string> expected{"-c", "qemu:///session", "metadata", "--domain", "win11", "--uri",
                                      "https://vfio-hook.org/xmlns/domain/1", "--key", "vh", "--set",
                                      "<vfio-hook><allow-boot-vga>yes</allow-boot-vga><firmware-errors>refuse</firmware-errors></vfio-hook>",
                                      "--config"};
    BOOST_TEST(host.virsh_calls[1] == expected);
    auto get = host.run({"get", "win11"});
    BOOST_TEST(get.status == 0);
    BOOST_TEST(contains(get.out, "allow-boot-vga = yes"), get.out);
    BOOST_TEST(contains(get.out, "firmware-errors = refuse"), get.out);
}

BOOST_AUTO_TEST_CASE(set_refuses_a_bad_value_before_asking_libvirt) {
    Desktop host;
    auto set = host.run({"set", "win11", "allow-boot-vga", "maybe"});
    BOOST_TEST(set.status == 2);
    BOOST_TEST(contains(set.err, "vfio-hook set: allow-boot-vga maybe: expected yes or no"), set.err);
    BOOST_TEST(host.virsh_calls.empty());
    auto unknown = host.run({"set", "win11", "alow-boot-vga", "yes"});
    BOOST_TEST(unknown.status == 2);
    BOOST_TEST(contains(unknown.err, "unknown setting"), unknown.err);
}

BOOST_AUTO_TEST_CASE(metadata_under_a_wrong_namespace_is_a_warning_in_check) {
    Desktop host;
    std::string wrong = domain_xml("win11", uuid_a, {"0000:01:00.0"}, false,
                                   "<vh:vfio-hook xmlns:vh=\"http://vfio-hook.org/xmlns/domain/1\">"
                                   "<vh:allow-boot-vga>yes</vh:allow-boot-vga></vh:vfio-hook>");
    auto check = host.run({"check", "-"}, wrong);
    BOOST_TEST(contains(check.out, "warning: <metadata> holds <vfio-hook> in namespace 'http://vfio-hook.org/xmlns/domain/1': "
                                   "it is ignored"),
               check.out);
    std::string unwrapped = domain_xml("win11", uuid_a, {"0000:01:00.0"}, false,
                                       "<vh:allow-boot-vga xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\">yes</vh:allow-boot-vga>");
    BOOST_TEST(contains(host.run({"check", "-"}, unwrapped).out, "without its wrapper"));
}

BOOST_AUTO_TEST_CASE(check_domain_reads_the_definition_through_virsh) {
    Desktop host;
    host.virsh_answers["dumpxml"] = {gpu_only};
    auto check = host.run({"check", "--domain", "win11", "--connect", "qemu:///session"});
    BOOST_TEST(check.status == 0, check.err);
    BOOST_TEST(contains(check.out, "move  0000:01:00.0"), check.out);
    BOOST_TEST_REQUIRE(host.virsh_calls.size() == 1u);
    BOOST_TEST(host.virsh_calls[0] == (std::vector<std::string>{"-c", "qemu:///session", "dumpxml", "--inactive", "--domain", "win11"}));
    host.virsh_answers.clear();
    auto missing = host.run({"check", "--domain", "nope"});
    BOOST_TEST(missing.status == 2);
    BOOST_TEST(contains(missing.err, "vfio-hook check: virsh failed"), missing.err);
}

// Addresses users type.
BOOST_AUTO_TEST_CASE(virsh_node_device_names_work_wherever_an_address_is_taken) {
    Desktop host;
    auto bind = host.run({"bind", "pci_0000_01_00_0"});
    BOOST_TEST(bind.status == 0, bind.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.run({"restore", "pci_0000_01_00_0", "01:00.1"}).status == 0);
    auto bad = host.run({"bind", "01:00"});
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(contains(bad.err, "vfio-hook bind: '01:00' is not a PCI address; expected 0000:01:00.0, 01:00.0 or pci_0000_01_00_0"),
               bad.err);
}

BOOST_AUTO_TEST_SUITE_END()
