#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>
#include <set>

#include "core/persist.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

// An iGPU on i915 carries the console; the NVIDIA card (GPU + HDMI audio, group 14) serves VMs.
// The host has initramfs-tools: its update-initramfs writes its arguments to a file.
struct PersistHost : FakeHost {
    PersistHost() {
        gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0");
        gpu("0000:01:00.0", "nvidia", 14).drm_node("0000:01:00.0", "card1");
        audio("0000:01:00.1", "snd_hda_intel", 14);
        std::filesystem::create_directories(root() / "usr/sbin");
        std::ofstream(root() / "usr/sbin/update-initramfs")
            << "#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/../../initramfs-calls\"\n";
        std::filesystem::permissions(root() / "usr/sbin/update-initramfs", std::filesystem::perms::owner_all);
    }
    std::set<std::string> files_under_etc() const {
        std::set<std::string> files;
        if (!std::filesystem::exists(root() / "etc")) return files;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(root() / "etc")) {
            if (entry.is_regular_file()) files.insert(std::filesystem::relative(entry.path(), root()).string());
        }
        return files;
    }
    std::string initramfs_calls() const { return read(root() / "initramfs-calls"); }
    // A reboot: /run is empty again, and udev's rule set the override before any driver bound.
    void reboot_onto_vfio() {
        std::filesystem::remove_all(root() / "run/vfio-hook");
        for (const auto* address : {"0000:01:00.0", "0000:01:00.1"}) {
            if (driver_of(address) != "vfio-pci") continue;
            std::ofstream(root() / "sys/bus/pci/devices" / address / "driver_override") << "vfio-pci\n";
        }
    }
};

const std::string gpu_vm = domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:01:00.1"});

const std::set<std::string> persist_files = {
    "etc/vfio-hook/persist/0000:01:00.0",
    "etc/vfio-hook/persist/0000:01:00.1",
    "etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.0.rules",
    "etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.1.rules",
    "etc/modules-load.d/vfio-hook.conf",
    "etc/initramfs-tools/hooks/vfio-hook",
};

}  // namespace

BOOST_AUTO_TEST_SUITE(persist)

BOOST_AUTO_TEST_CASE(persist_writes_the_rules_for_the_whole_group_by_address_and_binds_now) {
    PersistHost host;
    auto before = host.files_under_etc();
    auto run = host.run({"persist", "01:00.0"});
    BOOST_TEST(run.status == 0, run.out + run.err);
    auto after = host.files_under_etc();
    std::set<std::string> added;
    for (const auto& file : after) {
        if (!before.count(file)) added.insert(file);
    }
    BOOST_TEST(added == persist_files);
    auto rule = read(host.root() / "etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.0.rules");
    BOOST_TEST(contains(rule, "KERNEL==\"0000:01:00.0\""), rule);
    BOOST_TEST(contains(rule, "ATTR{driver_override}=\"vfio-pci\""), rule);
    BOOST_TEST(!contains(rule, "10de"), "a rule by vendor:device would also take a twin card: " + rule);
    BOOST_TEST(contains(read(host.root() / "etc/initramfs-tools/hooks/vfio-hook"),
                        "/etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.1.rules"));
    BOOST_TEST(host.initramfs_calls() == "-u -k all\n");
    BOOST_TEST(contains(run.out, "running update-initramfs -u -k all"), run.out);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci");
    auto manifest = PersistManifest::parse(read(host.root() / "etc/vfio-hook/persist/0000:01:00.0"));
    BOOST_TEST_REQUIRE(manifest.ok(), (manifest.ok() ? "" : manifest.error()));
    BOOST_TEST(manifest->driver_before == std::optional<std::string>("nvidia"));
}

BOOST_AUTO_TEST_CASE(persist_refuses_the_boot_vga_and_writes_nothing) {
    PersistHost host;
    auto before = host.files_under_etc();
    auto run = host.run({"persist", "00:02.0"});
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "boot display"), run.err);
    // The fix is persist's own option, not a setting of a VM named "persist" nor bind's option.
    BOOST_TEST(contains(run.err, "`vfio-hook persist --allow-boot-vga 0000:00:02.0`"), run.err);
    BOOST_TEST(!contains(run.err, "vfio-hook set"), run.err);
    BOOST_TEST(!contains(run.err, " bind "), run.err);
    BOOST_TEST(host.files_under_etc() == before);
    BOOST_TEST(host.initramfs_calls().empty());
    BOOST_TEST(host.driver_of("0000:00:02.0") == "i915");
}

BOOST_AUTO_TEST_CASE(persist_of_the_boot_vga_with_allow_boot_vga_warns_how_to_get_the_screen_back) {
    PersistHost host;
    auto run = host.run({"persist", "--allow-boot-vga", "00:02.0", "--dry-run"});
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(contains(run.err, "vfio-hook unpersist 0000:00:02.0"), run.err);
    BOOST_TEST(contains(run.out, "would persist 0000:00:02.0"), run.out);
}

BOOST_AUTO_TEST_CASE(dry_run_changes_nothing) {
    PersistHost host;
    auto before = host.files_under_etc();
    auto run = host.run({"persist", "--dry-run", "01:00.0"});
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(contains(run.out, "would persist 0000:01:00.1"), run.out);
    BOOST_TEST(host.files_under_etc() == before);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(a_holder_stops_only_todays_move_never_the_boot_time_binding) {
    PersistHost host;
    host.process(1234, "Xorg", {"/dev/dri/card1"});
    auto run = host.run({"persist", "01:00.0"});
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(contains(run.err, "not moved now"), run.err);
    BOOST_TEST(contains(run.err, "pid 1234"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.files_under_etc().count("etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.0.rules") == 1);
}

BOOST_AUTO_TEST_CASE(a_persisted_device_stays_on_vfio_when_a_vm_stops_today_and_after_a_reboot) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    for (int boot = 0; boot < 2; ++boot) {
        if (boot == 1) host.reboot_onto_vfio();
        auto start = host.hook("win11", "prepare", "begin", gpu_vm);
        BOOST_TEST(start.status == 0, start.err);
        auto stop = host.hook("win11", "release", "end", gpu_vm);
        BOOST_TEST(stop.status == 0, stop.err);
        BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci", "boot " << boot);
        BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci", "boot " << boot);
        auto recover = host.run({"recover"});
        BOOST_TEST(recover.status == 0, recover.out + recover.err);
        BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci", "recover, boot " << boot);
    }
}

BOOST_AUTO_TEST_CASE(restore_of_a_persisted_device_names_unpersist) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    auto run = host.run({"restore", "01:00.0"});
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "vfio-hook unpersist 0000:01:00.0"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(unpersist_removes_exactly_what_persist_wrote_and_gives_the_devices_back) {
    for (bool rebooted : {false, true}) {
        PersistHost host;
        auto before = host.files_under_etc();
        BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
        if (rebooted) host.reboot_onto_vfio();
        auto run = host.run({"unpersist", "01:00.0"});
        BOOST_TEST(run.status == 0, run.out + run.err);
        BOOST_TEST(host.files_under_etc() == before, "rebooted " << rebooted);
        BOOST_TEST(host.initramfs_calls() == "-u -k all\n-u -k all\n");
        BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia", "rebooted " << rebooted);
        BOOST_TEST(host.driver_of("0000:01:00.1") == "snd_hda_intel", "rebooted " << rebooted);
        BOOST_TEST(host.override_of("0000:01:00.0").empty());
    }
}

// A running VM holds the card: unpersist changes nothing (neither its boot binding nor its
// driver) and says to stop the VM and run unpersist again, which then still finds it persisted.
BOOST_AUTO_TEST_CASE(unpersist_while_a_vm_runs_on_the_device_changes_nothing) {
    for (bool rebooted : {false, true}) {
        PersistHost host;
        BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
        if (rebooted) host.reboot_onto_vfio();
        auto persisted = host.files_under_etc();
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_vm).status == 0);
        host.process(4242, "qemu-system-x86", {"/dev/vfio/14"});
        host.libvirt_active = std::set<std::string>{uuid_a};
        auto run = host.run({"unpersist", "01:00.0"});
        BOOST_TEST(run.status == 1, "rebooted " << rebooted);
        BOOST_TEST(contains(run.err, "pid 4242"), run.err);
        BOOST_TEST(contains(run.err, "then run `vfio-hook unpersist 0000:01:00.0`"), run.err);
        BOOST_TEST(host.files_under_etc() == persisted, "rebooted " << rebooted);
        BOOST_TEST(host.initramfs_calls() == "-u -k all\n", "rebooted " << rebooted);
        BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
        BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci");
    }
}

// The desktop on the card's host driver is not a VM: persist left the card there, and unpersist
// removes the boot binding all the same.
BOOST_AUTO_TEST_CASE(a_program_on_the_host_driver_does_not_stop_unpersist) {
    PersistHost host;
    auto before = host.files_under_etc();
    host.process(1234, "Xorg", {"/dev/dri/card1"});
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.0") == "nvidia");
    auto run = host.run({"unpersist", "01:00.0"});
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(host.files_under_etc() == before);
}

BOOST_AUTO_TEST_CASE(unpersist_keeps_the_files_another_persisted_device_still_needs) {
    PersistHost host;
    host.gpu("0000:02:00.0", "amdgpu", 15);
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.run({"persist", "02:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.run({"unpersist", "01:00.0"}).status == 0);
    auto files = host.files_under_etc();
    BOOST_TEST(files.count("etc/modules-load.d/vfio-hook.conf") == 1);
    BOOST_TEST(files.count("etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.0.rules") == 0);
    auto hook = read(host.root() / "etc/initramfs-tools/hooks/vfio-hook");
    BOOST_TEST(contains(hook, "0000:02:00.0"), hook);
    BOOST_TEST(!contains(hook, "0000:01:00.0"), hook);
    BOOST_TEST(host.driver_of("0000:02:00.0") == "vfio-pci");
}

// The manifest is written before the rule: a persist cut off between them leaves a manifest
// that names the rule, and unpersist finishes from it.
BOOST_AUTO_TEST_CASE(a_persist_cut_off_after_its_manifest_is_undone_by_unpersist) {
    PersistHost host;
    auto before = host.files_under_etc();
    std::filesystem::create_directories(host.root() / "etc/udev");
    std::ofstream(host.root() / "etc/udev/rules.d") << "not a directory\n";
    before.insert("etc/udev/rules.d");
    auto run = host.run({"persist", "01:00.0"});
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "etc/udev/rules.d"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia", "nothing moves when the boot side is not in place");
    auto left = host.files_under_etc();
    BOOST_TEST(left.size() == before.size() + 1, "one manifest, no rule");
    auto undo = host.run({"unpersist", "01:00.0"});
    BOOST_TEST(undo.status == 0, undo.out + undo.err);
    BOOST_TEST(host.files_under_etc() == before);
}

// A crash while the initramfs is rebuilt (the minutes dracut takes) must leave the manifest, so
// that unpersist can be run again: an initramfs that still carries the rule sets the override
// at the next boot, with no rule, manifest or status line left on the host to undo it.
BOOST_AUTO_TEST_CASE(unpersist_removes_the_manifest_only_after_the_initramfs_is_rebuilt) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    std::ofstream(host.root() / "usr/sbin/update-initramfs", std::ios::trunc)
        << "#!/bin/sh\nroot=\"$(dirname \"$0\")/../..\"\n"
           "ls \"$root/etc/vfio-hook/persist\" \"$root/etc/udev/rules.d\" >> \"$root/initramfs-calls\"\n";
    auto run = host.run({"unpersist", "01:00.0"});
    BOOST_TEST(run.status == 0, run.out + run.err);
    auto calls = host.initramfs_calls();
    BOOST_TEST(contains(calls, "0000:01:00.0\n0000:01:00.1\n"), "the manifests while it ran: " + calls);
    BOOST_TEST(!contains(calls, ".rules"), "the rules while it ran: " + calls);
    BOOST_TEST(!std::filesystem::exists(host.root() / "etc/vfio-hook/persist/0000:01:00.0"));
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
}

BOOST_AUTO_TEST_CASE(a_manifest_never_makes_unpersist_delete_a_file_persist_does_not_write) {
    for (const char* file : {"/etc/passwd", "/etc/udev/rules.d/../../passwd", "etc/vfio-hook/persist/x",
                             "/etc/udev/rules.d/61-vfio-hook-persist-x/../../../shadow",
                             "/etc/udev/rules.d/61-vfio-hook-persist-0000:02:00.0.rules",
                             "/etc/vfio-hook/persist/0000:02:00.0"}) {
        auto manifest = PersistManifest::parse("vfio-hook persist manifest 1\naddress 0000:01:00.0\n"
                                               "driver-before nvidia\nfile " + std::string(file) + "\n");
        BOOST_TEST(!manifest.ok(), file);
    }
}

// A hand-edited manifest naming another persisted card's files: unpersist of this card must
// not take the other card's boot binding with it.
BOOST_AUTO_TEST_CASE(a_manifest_naming_another_devices_files_never_makes_unpersist_remove_them) {
    PersistHost host;
    host.gpu("0000:02:00.0", "amdgpu", 15);
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.run({"persist", "02:00.0"}).status == 0);
    std::ofstream(host.root() / "etc/vfio-hook/persist/0000:01:00.1", std::ios::app)
        << "file /etc/udev/rules.d/61-vfio-hook-persist-0000:02:00.0.rules\n"
        << "file /etc/vfio-hook/persist/0000:02:00.0\n";
    auto run = host.run({"unpersist", "01:00.0"});
    BOOST_TEST(!contains(run.out, "0000:02:00.0"), run.out);
    auto files = host.files_under_etc();
    BOOST_TEST(files.count("etc/vfio-hook/persist/0000:02:00.0") == 1);
    BOOST_TEST(files.count("etc/udev/rules.d/61-vfio-hook-persist-0000:02:00.0.rules") == 1);
    BOOST_TEST(contains(read(host.root() / "etc/initramfs-tools/hooks/vfio-hook"), "0000:02:00.0"));
    BOOST_TEST(host.driver_of("0000:02:00.0") == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(a_binary_path_udev_would_misread_gets_no_run_key) {
    auto address = *PciAddress::parse("0000:01:00.0");
    BOOST_TEST(contains(persist_udev_rule(address, "/usr/sbin/vfio-hook"),
                        "RUN+=\"/usr/sbin/vfio-hook persist-apply 0000:01:00.0\""));
    for (const char* path : {"/opt/my tools/vfio-hook", "/opt/x\"/vfio-hook", "relative/vfio-hook", ""}) {
        auto rule = persist_udev_rule(address, path);
        BOOST_TEST(!contains(rule, "RUN"), rule);
        BOOST_TEST(contains(rule, "ATTR{driver_override}=\"vfio-pci\""), rule);
    }
}

BOOST_AUTO_TEST_CASE(persist_apply_takes_a_persisted_device_back_from_a_driver_that_was_first) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.run({"unpersist", "01:00.0", "--dry-run"}).status == 0);
    // A twin card's driver, loaded before udev ran the rule, took it at boot.
    host.reboot_onto_vfio();
    auto sys = host.root() / "sys/bus/pci";
    BOOST_TEST_REQUIRE(host.kernel().write(sys / "drivers/vfio-pci/unbind", "0000:01:00.0").ok());
    BOOST_TEST_REQUIRE(host.kernel().write(sys / "devices/0000:01:00.0/driver_override", "\n").ok());
    BOOST_TEST_REQUIRE(host.kernel().write(sys / "drivers_probe", "0000:01:00.0").ok());
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.0") == "nvidia");
    auto run = host.run({"persist-apply", "0000:01:00.0"});
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    auto unrelated = host.run({"persist-apply", "0000:00:02.0"});
    BOOST_TEST(unrelated.status == 1);
    BOOST_TEST(host.driver_of("0000:00:02.0") == "i915");
}

// persist left the card to the desktop until the next boot; a later `udevadm trigger
// --action=add` runs the rule again and must not unbind the driver from under the desktop.
BOOST_AUTO_TEST_CASE(persist_apply_never_takes_a_device_a_program_holds_on_its_host_driver) {
    PersistHost host;
    host.process(1234, "Xorg", {"/dev/dri/card1"});
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.0") == "nvidia");
    auto run = host.run({"persist-apply", "0000:01:00.0"});
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "pid 1234"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
}

BOOST_AUTO_TEST_CASE(status_lists_persisted_devices_and_driverctl_overrides) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.run({"persist", "01:00.0"}).status == 0);
    std::filesystem::create_directories(host.root() / "etc/driverctl.d");
    std::ofstream(host.root() / "etc/driverctl.d/pci-0000:03:00.0") << "vfio-pci\n";
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "bound at boot: vfio-hook persist: 0000:01:00.0, 0000:01:00.1; driverctl: "
                                    "0000:03:00.0 -> vfio-pci"), status.out);
    auto json = host.run({"status", "--json"});
    BOOST_TEST(contains(json.out, "\"persisted\":[\"0000:01:00.0\",\"0000:01:00.1\"]"), json.out);
    BOOST_TEST(contains(json.out, "\"driverctl_overrides\":[{\"address\":\"0000:03:00.0\",\"driver\":\"vfio-pci\"}]"),
               json.out);
    std::filesystem::remove(host.root() / "etc/udev/rules.d/61-vfio-hook-persist-0000:01:00.1.rules");
    BOOST_TEST(contains(host.run({"status"}).out, "0000:01:00.1 (incomplete"));
}

// The seed case: nouveau without its PMU firmware fails its probe at every give-back.
BOOST_AUTO_TEST_CASE(a_give_back_that_fails_for_missing_firmware_names_persist_as_the_fallback) {
    PersistHost host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_vm).status == 0);
    host.kernel().refuse_probe("nvidia", "nouveau 0000:01:00.0: pmu: firmware unavailable");
    auto release = host.hook("win11", "release", "end", gpu_vm);
    BOOST_TEST(contains(release.err, "pmu: firmware unavailable"), release.err);
    BOOST_TEST(contains(release.err, "`vfio-hook persist 0000:01:00.0` keeps it on vfio-pci from boot"), release.err);
    BOOST_TEST(!contains(release.err, "vfio-hook persist 0000:01:00.1"), release.err);
}

BOOST_AUTO_TEST_SUITE_END()
