// `vfio-hook check`: the dry run follows the hook's start (hook.d prepare scripts first, then the
// checks, the console, the moves), through the real command line on the fake tree.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>
#include <set>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// One NVIDIA GPU that also carries the host's console, with Xorg on its DRM node.
struct SingleGpu : FakeHost {
    SingleGpu() {
        gpu("0000:01:00.0", "nvidia", 14).boot_vga("0000:01:00.0").drm_node("0000:01:00.0", "card0");
        audio("0000:01:00.1", "snd_hda_intel", 14);
        console_on("0000:01:00.0", 0);
        process(1234, "Xorg", {"/dev/dri/card0"});
    }
    void script(const std::string& directory, const std::string& name, const std::string& body) {
        fs::path file = root() / directory / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << "#!/bin/sh\n" << body << "\n";
        fs::permissions(file, fs::perms(0755));
    }
    void stop_display_manager_script() {
        script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-display-manager",
               "systemctl stop display-manager.service");
    }
};

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

std::string without_uuid(std::string xml) {
    auto start = xml.find("  <uuid>");
    return xml.erase(start, xml.find('\n', start) + 1 - start);
}

// The keys of a JSON document in the order they appear, each with its depth ("1:schema").
std::vector<std::string> json_keys(const std::string& json) {
    std::vector<std::string> keys;
    int depth = 0;
    for (std::size_t i = 0; i < json.size(); ++i) {
        char c = json[i];
        if (c == '{' || c == '[') ++depth;
        if (c == '}' || c == ']') --depth;
        if (c != '"') continue;
        std::size_t end = i + 1;
        while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
        if (end + 1 < json.size() && json[end + 1] == ':')
            keys.push_back(std::to_string(depth) + ":" + json.substr(i + 1, end - i - 1));
        i = end;
    }
    return keys;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(check)

BOOST_AUTO_TEST_CASE(a_single_gpu_with_its_stop_display_manager_script_is_ready_to_start) {
    SingleGpu host;
    auto before = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(before.status == 1, before.out);
    BOOST_TEST(contains(before.out, "refused: 0000:01:00.0: is held open by pid 1234 (Xorg)"), before.out);

    host.stop_display_manager_script();
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(contains(run.out, "script /etc/vfio-hook/hook.d/vm/win11/prepare/begin/10-stop-display-manager  "
                                 "[run first, by vfio-hook]  [stops display-manager]"), run.out);
    BOOST_TEST(contains(run.out, "cleared 0000:01:00.0: pid 1234 (Xorg) on /dev/dri/card0: cleared by hook.d script "
                                 "/etc/vfio-hook/hook.d/vm/win11/prepare/begin/10-stop-display-manager"), run.out);
    BOOST_TEST(!contains(run.out, "refused"), run.out);
    BOOST_TEST(contains(run.out, "ready to start"), run.out);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(what_the_script_does_not_stop_is_still_a_refusal) {
    SingleGpu host;
    host.stop_display_manager_script();
    host.sound_card("0000:01:00.1", "card1", {"controlC1"});
    host.process(2000, "pipewire", {"/dev/snd/controlC1"});
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(run.status == 1, run.out);
    BOOST_TEST(contains(run.out, "cleared 0000:01:00.0: pid 1234 (Xorg)"), run.out);
    BOOST_TEST(contains(run.out, "refused: 0000:01:00.1: is held open by pid 2000 (pipewire)"), run.out);
    BOOST_TEST(contains(run.out, "would refuse to start"), run.out);
}

// A script that only speaks of the display manager in a comment stops nothing: the real start
// meets Xorg on the GPU and refuses, so check must not call the host ready.
BOOST_AUTO_TEST_CASE(a_display_manager_named_only_in_a_comment_clears_nothing) {
    SingleGpu host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-hugepages",
                "# the display manager keeps running: this host has a second GPU for it\n"
                "echo 4096 > /proc/sys/vm/nr_hugepages  # not the display-manager's business");
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(run.status == 1, run.out);
    BOOST_TEST(!contains(run.out, "cleared 0000:01:00.0"), run.out);
    BOOST_TEST(contains(run.out, "refused: 0000:01:00.0: is held open by pid 1234 (Xorg)"), run.out);
}

// Stopping the display manager ends its X server and its sessions, not another system service:
// ollama.service keeps the GPU's node open, stop-display-manager then waits and fails, and the
// start is refused; check must say so rather than count it cleared.
BOOST_AUTO_TEST_CASE(a_display_manager_stop_does_not_clear_another_services_holder) {
    SingleGpu host;
    host.stop_display_manager_script();
    host.process(900, "ollama", {"/dev/dri/card0"}).cgroup(900, "0::/system.slice/ollama.service\n");
    host.cgroup(1234, "0::/system.slice/gdm.service\n");  // the display manager's own X server
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(run.status == 1, run.out);
    BOOST_TEST(contains(run.out, "cleared 0000:01:00.0: pid 1234 (Xorg)"), run.out);
    BOOST_TEST(contains(run.out, "refused: 0000:01:00.0: is held open by pid 900 (ollama)"), run.out);
}

BOOST_AUTO_TEST_CASE(the_console_steps_a_single_gpu_start_takes_are_shown) {
    SingleGpu host;
    host.stop_display_manager_script();
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(contains(run.out, "console 0000:01:00.0: take fbcon on vtcon1 before the moves"), run.out);
    BOOST_TEST(host.vtcon_bind() == "1");
}

BOOST_AUTO_TEST_CASE(scripts_beside_a_vfio_tools_dispatcher_are_said_to_be_run_by_it) {
    SingleGpu host;
    host.script("etc/libvirt/hooks", "qemu", "exec run-parts \"$@\"");  // another program as hooks/qemu
    host.script("etc/libvirt/hooks/qemu.d/win11/prepare/begin", "stop-dm.sh", "systemctl stop display-manager");
    auto run = host.run({"--allow-boot-vga", "check", "-"}, gpu_only);
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(contains(run.out, "script /etc/libvirt/hooks/qemu.d/win11/prepare/begin/stop-dm.sh  [run first, by "
                                 "the VFIO-Tools dispatcher /etc/libvirt/hooks/qemu]"), run.out);
    BOOST_TEST(contains(run.out, "cleared by hook.d script /etc/libvirt/hooks/qemu.d/win11/prepare/begin/stop-dm.sh"),
               run.out);
}

BOOST_AUTO_TEST_CASE(a_hand_written_definition_without_uuid_is_checked_and_the_hook_stays_strict) {
    SingleGpu host;
    host.stop_display_manager_script();
    auto xml = without_uuid(gpu_only);
    auto run = host.run({"--allow-boot-vga", "check", "-"}, xml);
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(contains(run.out, "domain 'win11' (no uuid)"), run.out);
    BOOST_TEST(contains(run.out, "no <uuid>: fine for a dry run; libvirt adds one at `virsh define`"), run.out);
    auto json = host.run({"--allow-boot-vga", "check", "--json", "-"}, xml);
    BOOST_TEST(contains(json.out, "\"domain\":{\"name\":\"win11\",\"uuid\":null}"), json.out);
    // An invalid <uuid> is still an error, and the hook never starts a VM without one.
    auto bad = host.run({"check", "-"}, domain_xml("win11", "not-a-uuid", {"0000:01:00.0"}));
    BOOST_TEST(bad.status == 2, bad.out + bad.err);
    auto hook = host.hook("win11", "prepare", "begin", xml);
    BOOST_TEST(hook.status == 1);
    BOOST_TEST(contains(hook.err, "<uuid> is missing"), hook.err);
}

// The schema of `check --json` (man/vfio-hook.8): each key, at its depth, in order. A change
// here is a change for every script that reads it: bump "schema".
BOOST_AUTO_TEST_CASE(check_json_keeps_its_documented_keys) {
    SingleGpu host;
    host.stop_display_manager_script();
    host.sound_card("0000:01:00.1", "card1", {"controlC1"});
    host.process(2000, "pipewire", {"/dev/snd/controlC1"});
    host.kernel_log("nvidia 0000:01:00.0: firmware error: RmInitAdapter failed");
    auto run = host.run({"--allow-boot-vga", "check", "--json", "-"}, gpu_only);
    BOOST_TEST(run.status == 1, run.out + run.err);
    std::vector<std::string> keys = json_keys(run.out);
    std::vector<std::string> first_of_each;
    std::set<std::string> seen;
    for (const auto& key : keys) {
        if (seen.insert(key).second) first_of_each.push_back(key);
    }
    std::vector<std::string> expected = {
        "1:schema", "1:domain", "2:name", "2:uuid", "1:ready", "1:partial_view", "1:scripts", "3:path", "3:run_by", "3:stops",
        "1:cleared", "3:address", "3:pid", "3:command", "3:node", "3:script", "1:moves", "3:name", "3:kind",
        "3:from", "3:group", "3:requested", "3:already_on_vfio", "3:reset_methods", "1:kept", "1:details", "1:console_steps",
        "3:gpu", "3:step", "1:warnings", "1:refusals", "3:problem", "3:fix"};
    BOOST_TEST(first_of_each == expected, run.out);
    // Each key is documented in the man page (check --json).
    std::ifstream stream(std::string(VFIO_HOOK_SOURCE_DIR) + "/man/vfio-hook.8.scd");
    std::string man(std::istreambuf_iterator<char>(stream), {});
    for (const auto& key : expected) {
        auto name = key.substr(key.find(':') + 1);
        BOOST_TEST(contains(man, "*" + name + "*"), "the man page does not document check --json's key " << name);
    }
    BOOST_TEST(contains(run.out, "{\"schema\":1,"), run.out);
    BOOST_TEST(contains(run.out, "\"ready\":false"), run.out);
    BOOST_TEST(contains(run.out, "\"stops\":[\"display-manager\"]"), run.out);
    BOOST_TEST(contains(run.out, "\"from\":\"nvidia\""), run.out);
    BOOST_TEST(!contains(run.out, "\"\""), run.out);  // null, never an empty string
}
// Issue 24, point 5: each fix can be run as printed.
BOOST_AUTO_TEST_CASE(every_fix_names_the_real_vm_and_a_command_that_runs) {
    FakeHost host;
    host.gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0");
    host.gpu("0000:01:00.0", "nvidia", 14);
    host.device("0000:02:00.0", 0x020000, "e1000e", 14, 0x8086, 0x10d3);  // another slot, same group
    auto run = host.run({"check", "-"}, domain_xml("win 11", uuid_a, {"0000:01:00.0", "0000:00:02.0"}));
    BOOST_TEST(run.status == 1, run.out + run.err);
    BOOST_TEST(contains(run.out, "add it to the VM: `vfio-hook assign 'win 11' 0000:02:00.0`"), run.out);
    BOOST_TEST(contains(run.out, "`vfio-hook set 'win 11' allow-boot-vga yes`"), run.out);
    // status asks for no VM in particular: the word to replace is VM, never 'a VM'.
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "`vfio-hook set VM allow-boot-vga yes`"), status.out);
    BOOST_TEST(!contains(status.out, "'a VM'"), status.out);
    // bind has no VM: its own option, never 'manual bind'.
    auto bind = host.run({"bind", "0000:00:02.0"});
    BOOST_TEST(bind.status == 1);
    BOOST_TEST(contains(bind.err, "`vfio-hook --allow-boot-vga bind 0000:00:02.0`"), bind.err);
    BOOST_TEST(!contains(bind.err, "manual bind"), bind.err);
}

BOOST_AUTO_TEST_CASE(the_iommu_fix_gives_the_boot_loader_steps_and_no_amd_iommu_on) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).no_iommu();
    for (const auto& run : {host.run({"check", "-"}, gpu_only), host.run({"status"})}) {
        BOOST_TEST(run.status == 1, run.out + run.err);
        for (const char* step : {"intel_iommu=on", "/etc/default/grub", "`update-grub`", "/etc/kernel/cmdline",
                                 "`kernel-install add $(uname -r) /boot/vmlinuz-$(uname -r)`", "AMD needs no parameter"})
            BOOST_TEST(contains(run.out, step), step << " missing: " << run.out);
        BOOST_TEST(!contains(run.out, "amd_iommu=on"), run.out);
    }
}

// Issue 24, point 5: devices by name, as lspci shows them.
BOOST_AUTO_TEST_CASE(devices_are_named_from_pci_ids_or_the_nvidia_model_line) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14);
    host.audio("0000:01:00.1", "snd_hda_intel", 14);
    fs::create_directories(host.root() / "usr/share/hwdata");
    std::ofstream(host.root() / "usr/share/hwdata/pci.ids")
        << "# pci.ids\n1002  Advanced Micro Devices, Inc. [AMD/ATI]\n\t73bf  Navi 21\n"
        << "10de  NVIDIA Corporation\n\t2684  AD102 [GeForce RTX 4090]\n\t\t1043 88e2  ROG Strix\n"
        << "\t22ba  AD102 High Definition Audio Controller\n10df  Emulex Corporation\n";
    auto check = host.run({"check", "-"}, gpu_only);
    BOOST_TEST(contains(check.out, "(VGA controller, NVIDIA Corporation AD102 [GeForce RTX 4090], group 14)"), check.out);
    BOOST_TEST(contains(check.out, "(audio device, NVIDIA Corporation AD102 High Definition Audio Controller, group 14)"),
               check.out);
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "0000:01:00.0  VGA controller [10de:2684]  NVIDIA Corporation AD102 [GeForce RTX 4090]"),
               status.out);
    // The NVIDIA driver's own name for the card comes first.
    host.nvidia_minor("0000:01:00.0", 0);
    auto named = host.run({"check", "--json", "-"}, gpu_only);
    BOOST_TEST(contains(named.out, "\"name\":\"NVIDIA GeForce RTX 4090\""), named.out);
}

BOOST_AUTO_TEST_SUITE_END()
