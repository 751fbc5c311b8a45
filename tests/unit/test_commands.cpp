#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>
#include <sstream>

#include "core/config_file.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

int count_prepare_writes() {
    Desktop host;
    host.hook("win11", "prepare", "begin", gpu_only);
    return host.kernel().writes();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(commands)

// The hook killed after every possible number of writes: recover always brings everything home.
BOOST_AUTO_TEST_CASE(recover_brings_everything_home_after_a_crash_at_any_step_of_prepare) {
    int total = count_prepare_writes();
    BOOST_TEST_REQUIRE(total >= 6);
    for (int k = 0; k <= total; ++k) {
        Desktop host;
        host.kernel().crash_after(k);
        try {
            host.hook("win11", "prepare", "begin", gpu_only);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        auto recover = host.run({"recover"});
        BOOST_TEST(recover.status == 0, "k=" << k << ": " << recover.err);
        BOOST_TEST(host.home(), "k=" << k);
        BOOST_TEST(host.records().empty(), "k=" << k);
    }
}

// Killed between creating OWNER.record.tmp and renaming it (seen in the e2e's kill-during-
// prepare on a real kernel): nothing had moved yet, and recover leaves no file behind.
BOOST_AUTO_TEST_CASE(recover_deletes_a_record_save_that_was_cut_off_and_keeps_real_records) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.run({"bind", "0000:01:00.0"}).status == 0);
    std::ofstream(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record.tmp")) << "vfio-hook rec";
    auto recover = host.run({"recover"});
    BOOST_TEST(recover.status == 0, recover.err);
    BOOST_TEST(host.records() == std::vector<std::string>{"manual.record"});  // a finished bind stays
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(recover_brings_everything_home_after_a_crash_at_any_step_of_release) {
    for (int k = 0; k <= 12; ++k) {
        Desktop host;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
        host.kernel().crash_after(host.kernel().writes() + k);
        try {
            host.hook("win11", "release", "end", gpu_only);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        BOOST_TEST(host.run({"recover"}).status == 0, "k=" << k);
        BOOST_TEST(host.home(), "k=" << k);
        BOOST_TEST(host.records().empty(), "k=" << k);
    }
}

BOOST_AUTO_TEST_CASE(every_refused_kernel_write_in_prepare_is_rolled_back) {
    for (const char* file : {"devices/0000:01:00.1/driver_override", "drivers/snd_hda_intel/unbind",
                             "devices/0000:01:00.0/driver_override", "drivers/nvidia/unbind", "drivers_probe"}) {
        Desktop host;
        host.kernel().fail_write(file, EIO, 1);
        auto run = host.hook("win11", "prepare", "begin", gpu_only);
        BOOST_TEST(run.status == 1, file);
        BOOST_TEST(host.home(), file);
        BOOST_TEST(host.records().empty(), file);
    }
}

BOOST_AUTO_TEST_CASE(a_hung_write_at_release_is_reported_and_the_record_kept_for_recover) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.kernel().hang_write("drivers/vfio-pci/unbind");
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(release.err.find("unbind from vfio-pci hung") != std::string::npos, release.err);
    BOOST_TEST(host.records().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_hung_unbind_at_prepare_fails_the_start_naming_device_and_write) {
    Desktop host;
    host.kernel().hang_write("drivers/nvidia/unbind");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:01:00.0: unbind from nvidia hung") != std::string::npos, run.err);
    BOOST_TEST(host.driver_of("0000:01:00.1") == "snd_hda_intel");  // rolled back
    BOOST_TEST(host.records().size() == 1u);  // the stuck GPU stays recorded
}

BOOST_AUTO_TEST_CASE(check_is_a_dry_run_that_shows_every_move) {
    Desktop host;
    auto run = host.run({"check", "-"}, gpu_only);
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(run.out.find("move  0000:01:00.1") != std::string::npos, run.out);
    BOOST_TEST(run.out.find("snd_hda_intel -> vfio-pci  [group companion]") != std::string::npos, run.out);
    BOOST_TEST(run.out.find("nvidia -> vfio-pci") != std::string::npos);
    BOOST_TEST(host.kernel().writes() == 0);

    auto refused = host.run({"check", "-"}, domain_xml("win11", uuid_a, {"0000:00:02.0"}));
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.out.find("refused: 0000:00:02.0") != std::string::npos, refused.out);
}

BOOST_AUTO_TEST_CASE(manual_bind_and_restore_use_the_same_records) {
    Desktop host;
    auto bind = host.run({"bind", "0000:01:00.0"});
    BOOST_TEST(bind.status == 0, bind.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci");
    BOOST_TEST(host.records() == std::vector<std::string>{"manual.record"});
    auto restore = host.run({"restore", "0000:01:00.0", "0000:01:00.1"});
    BOOST_TEST(restore.status == 0, restore.err);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

// bind 01:00.0 takes its audio function with it; restore 01:00.0 must not leave that behind.
BOOST_AUTO_TEST_CASE(restore_of_the_gpu_gives_back_the_functions_bind_took_with_it) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.run({"bind", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.1") == "vfio-pci");
    auto restore = host.run({"restore", "01:00.0"});
    BOOST_TEST(restore.status == 0, restore.err);
    BOOST_TEST(restore.out.find("0000:01:00.1") != std::string::npos, restore.out);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(restore_refuses_a_device_a_vm_has_open_unless_forced) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.process(4242, "qemu-system-x86", {"/dev/vfio/14"});
    auto refused = host.run({"restore", "0000:01:00.0"});
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("pid 4242 (qemu-system-x86) through /dev/vfio/14") != std::string::npos, refused.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    host.kernel().hang_write("drivers/vfio-pci/unbind");
    auto forced = host.run({"restore", "--force", "0000:01:00.0"});
    BOOST_TEST(forced.status == 1);
    BOOST_TEST(forced.err.find("0000:01:00.0: unbind from vfio-pci hung") != std::string::npos, forced.err);
}

BOOST_AUTO_TEST_CASE(recover_leaves_devices_of_a_running_vm) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.process(4242, "qemu-system-x86", {"/dev/vfio/14"});
    auto recover = host.run({"recover"});
    BOOST_TEST(recover.status == 0);
    BOOST_TEST(recover.out.find("kept: 0000:01:00.0: still in use by pid 4242") != std::string::npos, recover.out);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
}

// A release while QEMU still has the group open leaves the device on vfio-pci: it stays recorded,
// so recover gives it back once that QEMU is gone.
BOOST_AUTO_TEST_CASE(a_device_a_vm_still_holds_at_release_stays_recorded_until_recover_gives_it_back) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.process(4242, "qemu-system-x86", {"/dev/vfio/14"});
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(release.err.find("still in use by pid 4242 (qemu-system-x86) through /dev/vfio/14") != std::string::npos,
               release.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.records() == std::vector<std::string>{std::string(uuid_a) + ".record"});

    std::filesystem::remove_all(host.root() / "proc/4242");  // that QEMU has exited
    auto recover = host.run({"recover"});
    BOOST_TEST(recover.status == 0, recover.out + recover.err);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(recover_leaves_a_device_that_had_no_driver_driverless_and_without_override) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).audio("0000:01:00.1", "", 14);
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.1") == "vfio-pci");
    auto recover = host.run({"recover"});
    BOOST_TEST(recover.status == 0, recover.out + recover.err);
    BOOST_TEST(!host.driver_of("0000:01:00.1").has_value());
    BOOST_TEST(host.override_of("0000:01:00.1").empty());
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(restore_of_an_unrecorded_vfio_device_reprobes_it) {
    FakeHost host;
    host.gpu("0000:01:00.0", "vfio-pci", 14);
    host.kernel().matching_drivers["0000:01:00.0"] = {"nouveau"};
    host.driver("nouveau");
    auto run = host.run({"restore", "0000:01:00.0"});
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nouveau");
}

BOOST_AUTO_TEST_CASE(bad_addresses_on_the_command_line_are_one_clear_line) {
    Desktop host;
    auto run = host.run({"bind", "01:00"});
    BOOST_TEST(run.status == 2);
    BOOST_TEST(run.err.find("'01:00' is not a PCI address") != std::string::npos, run.err);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(status_shows_gpus_groups_owner_and_firmware_errors) {
    Desktop host;
    host.kernel_log("nouveau 0000:01:00.0: pmu: firmware unavailable");
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto table = host.run({"status"});
    BOOST_TEST(table.status == 1);  // not ready: the firmware error
    BOOST_TEST(table.out.find("IOMMU:      enabled") != std::string::npos, table.out);
    BOOST_TEST(table.out.find("given to domain 'win11'") != std::string::npos, table.out);
    BOOST_TEST(table.out.find("0000:01:00.0: nouveau 0000:01:00.0: pmu: firmware unavailable") != std::string::npos, table.out);
    BOOST_TEST(table.out.find("intel_iommu=on") != std::string::npos);
    auto json = host.run({"status", "--json"});
    BOOST_TEST(json.out.find("\"ready\":false") != std::string::npos, json.out);
    BOOST_TEST(json.out.find("\"address\":\"0000:01:00.1\"") != std::string::npos);
    BOOST_TEST(json.out.find("firmware unavailable") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(documentation)

BOOST_AUTO_TEST_CASE(every_command_option_and_config_key_is_in_the_man_page) {
    std::ifstream file(std::string(VFIO_HOOK_SOURCE_DIR) + "/man/vfio-hook.8.scd");
    std::string man(std::istreambuf_iterator<char>(file), {});
    BOOST_TEST_REQUIRE(!man.empty());
    FakeHost host;
    auto help = host.run({"--help"});
    BOOST_TEST(help.status == 0);
    std::vector<std::string> words;
    std::istringstream lines(help.out);
    std::string line;
    while (std::getline(lines, line)) {
        auto start = line.find_first_not_of(' ');
        if (start == std::string::npos) continue;
        std::string first = line.substr(start, line.find_first_of(" ,:", start) - start);
        if (first.starts_with("--")) words.push_back(first);
        if (start == 2 && !first.starts_with("-") && line.size() > 30) words.push_back("*" + first + "*");
    }
    BOOST_TEST(words.size() >= 12u);
    for (const auto& word : words) BOOST_TEST(man.find(word) != std::string::npos, word);
    for (const auto& key : config_keys()) BOOST_TEST(man.find(std::string(key.name)) != std::string::npos, key.name);
}

BOOST_AUTO_TEST_CASE(readme_man_page_and_help_agree_on_commands_options_and_exit_codes) {
    auto text_of = [](const char* file) {
        std::ifstream stream(std::string(VFIO_HOOK_SOURCE_DIR) + "/" + file);
        return std::string(std::istreambuf_iterator<char>(stream), {});
    };
    std::string readme = text_of("README.md"), man = text_of("man/vfio-hook.8.scd");
    FakeHost host;
    std::string help = host.run({"--help"}).out;
    BOOST_TEST(help.find("0 success (or ready), 1 refused, not ready or failed, 2 bad usage or bad input") != std::string::npos, help);
    BOOST_TEST(readme.find("Exit status: 0 success (status: ready), 1 refused,\nnot ready or failed, 2 bad usage or bad input") !=
               std::string::npos);
    for (const char* code : {"*0*", "*1*", "*2*"}) BOOST_TEST(man.find(code) != std::string::npos, code);
    for (const char* command : {"status", "check", "bind", "restore", "recover", "set", "get", "help"}) {
        BOOST_TEST(help.find("  " + std::string(command)) != std::string::npos, command);
        BOOST_TEST(readme.find("vfio-hook " + std::string(command)) != std::string::npos, command);
    }
    for (const auto& key : config_keys()) {
        BOOST_TEST(readme.find("--" + std::string(key.name)) != std::string::npos, key.name);
        BOOST_TEST(help.find("--" + std::string(key.name)) != std::string::npos, key.name);
    }
    for (const char* option : {"--connect", "--config"}) BOOST_TEST(readme.find(option) != std::string::npos, option);
}

BOOST_AUTO_TEST_SUITE_END()
