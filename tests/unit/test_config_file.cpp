#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <filesystem>
#include <fstream>

#include "core/config_file.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

BOOST_AUTO_TEST_SUITE(config_file)

BOOST_AUTO_TEST_CASE(every_key_sets_its_setting) {
    auto settings = parse_config_file("# vfio-hook\n\nwrite-deadline-ms = 2500\nsettle-deadline-ms=100  # short\n"
                                      "lock-deadline-ms = 900\nallow-boot-vga = yes\nfirmware-errors = \"refuse\"\n"
                                      "log-level = debug\n",
                                      "/etc/vfio-hook/vfio-hook.conf");
    BOOST_TEST_REQUIRE(settings.ok(), (settings.ok() ? "" : settings.error()));
    BOOST_TEST(settings->write_deadline.count() == 2500);
    BOOST_TEST(settings->settle_deadline.count() == 100);
    BOOST_TEST(settings->lock_deadline.count() == 900);
    BOOST_TEST(settings->allow_boot_vga);
    BOOST_TEST(settings->refuse_on_firmware_errors);
    BOOST_TEST(settings->log_level == "debug");
}

BOOST_AUTO_TEST_CASE(unknown_keys_and_bad_values_name_file_line_and_key) {
    auto unknown = parse_config_file("write-deadline-ms = 100\nwrite-dedline-ms = 100\n", "vh.conf");
    BOOST_TEST_REQUIRE(!unknown.ok());
    BOOST_TEST(unknown.error().find("vh.conf:2: 'write-dedline-ms = 100': unknown key") == 0u, unknown.error());
    auto bad = parse_config_file("\n\nwrite-deadline-ms = soon\n", "vh.conf");
    BOOST_TEST_REQUIRE(!bad.ok());
    BOOST_TEST(bad.error().find("vh.conf:3: 'write-deadline-ms = soon': expected a number of milliseconds") == 0u, bad.error());
    BOOST_TEST(!parse_config_file("write-deadline-ms = 0\n", "x").ok());
    BOOST_TEST(!parse_config_file("allow-boot-vga = maybe\n", "x").ok());
    BOOST_TEST(!parse_config_file("just some words\n", "x").ok());
}

BOOST_AUTO_TEST_CASE(a_broken_config_makes_prepare_refuse_and_release_still_give_back) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14);
    std::string xml = domain_xml("win11", uuid_a, {"0000:01:00.0"});
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", xml).status == 0);
    std::filesystem::create_directories(host.root() / "etc/vfio-hook");
    std::ofstream(host.root() / "etc/vfio-hook/vfio-hook.conf") << "firmware-errors = sometimes\n";
    auto refused = host.hook("win11", "prepare", "begin", xml);
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("vfio-hook.conf:1: 'firmware-errors = sometimes': expected warn or refuse") != std::string::npos, refused.err);
    auto release = host.hook("win11", "release", "end", xml);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    // status goes on with the defaults and says so (issue 24).
    auto status = host.run({"status"});
    BOOST_TEST(status.status != 2);
    BOOST_TEST(status.err.find("vfio-hook.conf:1") != std::string::npos);
    BOOST_TEST(status.err.find("; using the defaults") != std::string::npos, status.err);
}

BOOST_AUTO_TEST_CASE(the_command_line_overrides_the_config_file) {
    FakeHost host;
    host.gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0");
    std::filesystem::create_directories(host.root() / "etc/vfio-hook");
    std::ofstream(host.root() / "etc/vfio-hook/vfio-hook.conf") << "allow-boot-vga = no\n";
    std::string xml = domain_xml("single", uuid_a, {"0000:00:02.0"});
    BOOST_TEST(host.run({"check", "-"}, xml).status == 1);
    BOOST_TEST(host.run({"--allow-boot-vga", "check", "-"}, xml).status == 0);
    auto bad = host.run({"--write-deadline-ms", "abc", "status"});
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(bad.err.find("--write-deadline-ms abc: expected a number") != std::string::npos, bad.err);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shipped_config)

BOOST_AUTO_TEST_CASE(the_shipped_config_parses_and_states_the_defaults) {
    std::ifstream file(std::string(VFIO_HOOK_SOURCE_DIR) + "/config/vfio-hook.conf");
    std::string text(std::istreambuf_iterator<char>(file), {});
    BOOST_TEST_REQUIRE(!text.empty());
    auto settings = parse_config_file(text, "config/vfio-hook.conf");
    BOOST_TEST_REQUIRE(settings.ok(), (settings.ok() ? "" : settings.error()));
    Settings defaults;
    BOOST_TEST(settings->write_deadline.count() == defaults.write_deadline.count());
    BOOST_TEST(settings->settle_deadline.count() == defaults.settle_deadline.count());
    BOOST_TEST(settings->lock_deadline.count() == defaults.lock_deadline.count());
    BOOST_TEST(settings->allow_boot_vga == defaults.allow_boot_vga);
    BOOST_TEST(settings->refuse_on_firmware_errors == defaults.refuse_on_firmware_errors);
    for (const auto& key : config_keys()) {
        BOOST_TEST(text.find("\n" + std::string(key.name) + " = ") != std::string::npos, key.name);
    }
}

BOOST_AUTO_TEST_SUITE_END()
