// The power guard (issue 26, point 1): `power/control` kept `on` while a device waits on vfio-pci
// for QEMU, and its runtime power settings put back once its host driver has it again.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

const char* gpu = "0000:01:00.0";
const char* hdmi = "0000:01:00.1";

// amdgpu and snd_hda_intel both enable runtime PM: `power/control` auto on the host.
struct AmdCard : FakeHost {
    AmdCard() {
        this->gpu(::gpu, "amdgpu", 14).power_control(::gpu, "auto");
        audio(hdmi, "snd_hda_intel", 14).power_control(hdmi, "auto");
        std::ofstream(root() / "sys/bus/pci/devices" / ::gpu / "d3cold_allowed") << "0\n";
    }
    std::string d3cold_of(const std::string& address) { return read(root() / "sys/bus/pci/devices" / address / "d3cold_allowed"); }
};

const std::string vm = domain_xml("win11", uuid_a, {gpu});

}  // namespace

BOOST_AUTO_TEST_SUITE(power_guard)

BOOST_AUTO_TEST_CASE(power_control_is_on_while_the_vm_has_the_gpu_and_as_it_was_after) {
    AmdCard host;
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    // vfio-pci's bind made it auto; the guard set it back on.
    BOOST_TEST(host.power_control_of(gpu) == "on");
    BOOST_TEST(host.power_control_of(hdmi) == "on");
    for (const auto& [file, deadline] : host.kernel().write_deadlines) {
        if (contains(file, "power/control")) BOOST_TEST(deadline == host.kernel().deadline().count(), file);
    }
    auto record = read(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"));
    BOOST_TEST(contains(record, "device 0000:01:00.0 amdgpu 14 power=auto d3cold=0"), record);

    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
    // vfio-pci's unbind left on; the recorded values are back.
    BOOST_TEST(host.power_control_of(gpu) == "auto");
    BOOST_TEST(host.power_control_of(hdmi) == "auto");
    BOOST_TEST(contains(host.d3cold_of(gpu), "0"));
}

BOOST_AUTO_TEST_CASE(power_guard_no_leaves_vfio_pci_s_auto_and_still_restores) {
    AmdCard host;
    std::string metadata = "<vh:vfio-hook xmlns:vh='https://vfio-hook.org/xmlns/domain/1'>"
                           "<vh:power-guard>no</vh:power-guard></vh:vfio-hook>";
    std::string unguarded = domain_xml("win11", uuid_a, {gpu}, false, metadata);
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", unguarded).status == 0);
    BOOST_TEST(host.power_control_of(gpu) == "auto");
    BOOST_TEST(host.hook("win11", "release", "end", unguarded).status == 0);
    BOOST_TEST(host.power_control_of(gpu) == "auto");
}

BOOST_AUTO_TEST_CASE(set_power_guard_writes_the_vm_s_metadata) {
    FakeHost host;
    host.virsh_answers["metadata"] = {std::string("")};
    auto set = host.run({"set", "win11", "power-guard", "no"});
    BOOST_TEST(set.status == 0, set.err);
    BOOST_TEST_REQUIRE(host.virsh_calls.size() == 2u);
    BOOST_TEST(contains(host.virsh_calls[1][10], "<power-guard>no</power-guard>"), host.virsh_calls[1][10]);
    BOOST_TEST(host.run({"set", "win11", "power-guard", "maybe"}).status == 2);
}

// A record written by the version before the power guard (no power= fields) is released by this
// one: the devices come home and no power setting is touched.
BOOST_AUTO_TEST_CASE(a_record_from_before_the_power_guard_is_released) {
    AmdCard host;
    fs::create_directories(host.root() / "run/vfio-hook/records");
    std::ofstream(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"))
        << "vfio-hook-record 1\nowner " << uuid_a << "\ndomain win11\n"
        << "device 0000:01:00.0 amdgpu 14\ndevice 0000:01:00.1 snd_hda_intel 14\n";
    for (const char* address : {gpu, hdmi}) {
        fs::remove(host.root() / "sys/bus/pci/devices" / address / "driver");
        fs::create_directory_symlink(host.root() / "sys/bus/pci/drivers/vfio-pci",
                                     host.root() / "sys/bus/pci/devices" / address / "driver");
        host.power_control(address, "on");
    }
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
    BOOST_TEST(host.driver_of(hdmi) == "snd_hda_intel", release.err);
    BOOST_TEST(host.records().empty());
    for (const auto& line : host.kernel().write_log()) BOOST_TEST(!contains(line, "power/control"), line);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stuck_devices)

BOOST_AUTO_TEST_CASE(a_gpu_that_cannot_leave_d3cold_is_named_in_the_failed_start) {
    AmdCard host;
    host.kernel().refuse_probe("vfio-pci", "vfio-pci 0000:01:00.0: Unable to change power state from D3cold to D0, device inaccessible");
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(contains(prepare.err, "0000:01:00.0: kernel log: \"vfio-pci 0000:01:00.0: Unable to change power state from D3cold to D0"),
               prepare.err);
}

BOOST_AUTO_TEST_CASE(what_the_kernel_said_while_the_vm_ran_is_named_at_release_and_in_status) {
    AmdCard host;
    host.kernel_log("NVRM: GPU 0000:01:00.0: GPU has fallen off the bus. (an earlier boot's VM)");
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", vm).status == 0);
    host.kernel_log("vfio-pci 0000:01:00.0: not ready 65535ms after bus reset; giving up");
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(contains(release.err, "0000:01:00.0: kernel log: \"vfio-pci 0000:01:00.0: not ready 65535ms after bus reset; giving up\""),
               release.err);
    BOOST_TEST(!contains(release.err, "an earlier boot"), release.err);
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "GPU has fallen off the bus"), status.out);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(reset_bug)

// An RX 5700 XT (Navi 10, 1002:731f): vendor-reset's list. Its warning names the fix until both
// halves are there: the module loaded and reset_method device_specific.
BOOST_AUTO_TEST_CASE(a_navi10_card_is_warned_about_until_vendor_reset_is_set_up) {
    FakeHost host;
    host.device("0000:03:00.0", 0x030000, "amdgpu", 14, 0x1002, 0x731f).reset_methods("0000:03:00.0", "bus");
    std::string xml = domain_xml("win11", uuid_a, {"0000:03:00.0"});
    auto check = host.run({"check", "-"}, xml);
    BOOST_TEST(contains(check.out, "reset: bus"), check.out);
    BOOST_TEST(contains(check.out, "warning: 0000:03:00.0: this AMD GPU (1002:731f) has the AMD reset bug"), check.out);
    BOOST_TEST(contains(check.out, "vendor-reset is not loaded and its reset_method is 'bus', not device_specific"), check.out);
    auto status = host.run({"status", "--json"});
    BOOST_TEST(contains(status.out, "\"warnings\":[\"0000:03:00.0: this AMD GPU (1002:731f) has the AMD reset bug"), status.out);

    // Loaded, but the kernel still resets it by bus: vendor-reset is never called.
    std::filesystem::create_directories(host.root() / "sys/module/vendor_reset");
    auto loaded = host.run({"check", "-"}, xml);
    BOOST_TEST(contains(loaded.out, "has the AMD reset bug and may not come back from a VM: its reset_method is 'bus', not device_specific"),
               loaded.out);
    host.reset_methods("0000:03:00.0", "device_specific");
    BOOST_TEST(!contains(host.run({"check", "-"}, xml).out, "reset bug"));
    BOOST_TEST(!contains(host.run({"status"}).out, "reset bug"));
}

// IDs between those vendor-reset lists are not its: it does not take them, the kernel then has no
// device_specific method to offer, and "set reset_method to device_specific" could never be done.
BOOST_AUTO_TEST_CASE(an_id_inside_a_family_s_range_but_not_in_vendor_reset_s_table_gets_no_warning) {
    for (std::uint16_t id : {0x6870, 0x7314, 0x67D1, 0x698A}) {
        FakeHost host;
        host.device("0000:03:00.0", 0x030000, "amdgpu", 14, 0x1002, id);
        auto check = host.run({"check", "-"}, domain_xml("win11", uuid_a, {"0000:03:00.0"}));
        BOOST_TEST(!contains(check.out, "reset bug"), std::hex << id << ": " << check.out);
    }
    FakeHost listed;
    listed.device("0000:03:00.0", 0x030000, "amdgpu", 14, 0x1002, 0x686c);  // Radeon Instinct MI25 MxGPU
    BOOST_TEST(contains(listed.run({"check", "-"}, domain_xml("win11", uuid_a, {"0000:03:00.0"})).out, "reset bug"));
}

BOOST_AUTO_TEST_CASE(a_card_vendor_reset_does_not_list_gets_no_warning) {
    FakeHost host;
    host.device("0000:03:00.0", 0x030000, "amdgpu", 14, 0x1002, 0x744c);  // RX 7900 XTX (Navi 31)
    auto check = host.run({"check", "-"}, domain_xml("win11", uuid_a, {"0000:03:00.0"}));
    BOOST_TEST(!contains(check.out, "reset bug"), check.out);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(vfio_variant)

// A Grace Hopper GPU on nvgrace-gpu-vfio-pci, a vfio_pci_core variant: owned by VFIO (vfio-dev/
// exists), so prepare leaves it where it is instead of unbinding it for vfio-pci.
BOOST_AUTO_TEST_CASE(a_device_on_a_vfio_variant_driver_counts_as_on_vfio) {
    FakeHost host;
    host.device("0009:01:00.0", 0x030200, "nvgrace_gpu_vfio_pci", 20, 0x10de, 0x2342);
    std::filesystem::create_directories(host.root() / "sys/bus/pci/devices/0009:01:00.0/vfio-dev/vfio0");
    std::string xml = domain_xml("gh200", uuid_a, {"0009:01:00.0"});
    auto check = host.run({"check", "-"}, xml);
    BOOST_TEST(contains(check.out, "keep  0009:01:00.0: already on a VFIO driver before us; left alone"), check.out);
    auto prepare = host.hook("gh200", "prepare", "begin", xml);
    BOOST_TEST(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of("0009:01:00.0") == "nvgrace_gpu_vfio_pci");
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.hook("gh200", "release", "end", xml).status == 0);
    BOOST_TEST(host.driver_of("0009:01:00.0") == "nvgrace_gpu_vfio_pci");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(power_guard_crashes)

// The crash-after-every-write tests with the guard's own writes among them (keep_awake at
// prepare, the restore at release): whatever write the hook died after, `recover` leaves each
// function's power/control as the host had it (auto for amdgpu and snd_hda_intel), not the `on`
// that vfio-pci's unbind or the guard left.
BOOST_AUTO_TEST_CASE(recover_puts_power_control_back_after_a_crash_at_any_write_of_prepare) {
    int total = [] {
        AmdCard host;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", vm).status == 0);
        return host.kernel().writes();
    }();
    BOOST_TEST_REQUIRE(total >= 8);
    for (int k = 0; k <= total; ++k) {
        AmdCard host;
        host.kernel().crash_after(k);
        try {
            (void)host.hook("win11", "prepare", "begin", vm);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        auto recover = host.run({"recover"});
        BOOST_TEST(recover.status == 0, "k=" << k << ": " << recover.out << recover.err);
        BOOST_TEST(host.driver_of(gpu) == "amdgpu", "k=" << k);
        BOOST_TEST(host.power_control_of(gpu) == "auto", "k=" << k);
        BOOST_TEST(host.power_control_of(hdmi) == "auto", "k=" << k);
        BOOST_TEST(host.d3cold_of(hdmi).starts_with("1"), "k=" << k);  // the guard's 0 undone
        BOOST_TEST(host.d3cold_of(gpu).starts_with("0"), "k=" << k);
        BOOST_TEST(host.records().empty(), "k=" << k);
    }
}

BOOST_AUTO_TEST_CASE(recover_puts_power_control_back_after_a_crash_at_any_write_of_release) {
    for (int k = 0; k <= 14; ++k) {
        AmdCard host;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", vm).status == 0);
        host.kernel().crash_after(host.kernel().writes() + k);
        try {
            (void)host.hook("win11", "release", "end", vm);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        auto recover = host.run({"recover"});
        BOOST_TEST(recover.status == 0, "k=" << k << ": " << recover.out << recover.err);
        BOOST_TEST(host.driver_of(gpu) == "amdgpu", "k=" << k);
        BOOST_TEST(host.power_control_of(gpu) == "auto", "k=" << k);
        BOOST_TEST(host.power_control_of(hdmi) == "auto", "k=" << k);
        BOOST_TEST(host.d3cold_of(hdmi).starts_with("1"), "k=" << k);  // the guard's 0 undone
        BOOST_TEST(host.d3cold_of(gpu).starts_with("0"), "k=" << k);
        BOOST_TEST(host.records().empty(), "k=" << k);
    }
}

// A start that fails after the audio function moved: the rollback brings it home, but its old
// driver_override (driverctl's) cannot be written back. It is home on its driver all the same, so
// its runtime power setting must be put back too, not left at the `on` vfio-pci's unbind leaves.
BOOST_AUTO_TEST_CASE(a_rollback_that_cannot_write_the_override_back_still_restores_power_control) {
    AmdCard host;
    host.preset_override(hdmi, "snd_hda_intel");
    host.kernel().fail_write("drivers/amdgpu/unbind", EIO, 1);
    host.kernel().when_written("drivers/snd_hda_intel/bind",
                               [&] { host.kernel().fail_write(std::string(hdmi) + "/driver_override", EIO, 1); });
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(host.driver_of(hdmi) == "snd_hda_intel", prepare.err);
    BOOST_TEST(contains(prepare.err, "putting back driver_override snd_hda_intel failed"), prepare.err);
    BOOST_TEST(host.power_control_of(hdmi) == "auto", prepare.err);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stuck_devices)

// A line about a device in another PCI domain whose address merely ends in ours (an NVMe drive
// behind Intel VMD at 10000:01:00.0, the kernel printing the domain as %04x; the GPU at
// 0000:01:00.0) is not about our GPU: the release must not blame the GPU for it.
BOOST_AUTO_TEST_CASE(a_stuck_line_about_a_device_in_another_pci_domain_is_not_ours) {
    AmdCard host;
    host.kernel_log("Linux version 6.12.57 (boot)");
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", vm).status == 0);
    host.kernel_log("nvme 10000:01:00.0: Unable to change power state from D3cold to D0, device inaccessible");
    host.kernel_log("vfio-pci 0000:01:00.0: Unable to change power state from D3cold to D0, device inaccessible");
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(!contains(release.err, "10000:01:00.0"), release.err);
    BOOST_TEST(contains(release.err, "0000:01:00.0: kernel log: \"vfio-pci 0000:01:00.0: Unable to change"), release.err);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(power_guard)

// A card the platform lets sleep in D3cold and that never wakes from it (the RX 9000 reports).
// vfio-pci's idle suspend runs the moment its bind returns, before any write after the bind can
// land, so `power/control` = on afterwards comes too late: it is itself the wake that fails. The
// guard must keep the device out of D3cold from before the bind (d3cold_allowed = 0), and put the
// recorded value back with the host driver.
BOOST_AUTO_TEST_CASE(a_gpu_that_never_wakes_from_d3cold_never_enters_it_on_vfio) {
    FakeHost host;
    host.gpu(gpu, "amdgpu", 14).power_control(gpu, "auto");
    host.audio(hdmi, "snd_hda_intel", 14);
    host.kernel().d3cold_platform[gpu] = false;
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    BOOST_TEST(!contains(read(host.root() / "sys/bus/pci/devices" / gpu / "power_state"), "D3cold"));
    BOOST_TEST(!contains(read(host.root() / "dev/kmsg"), "Unable to change power state"), read(host.root() / "dev/kmsg"));
    BOOST_TEST(!contains(host.run({"status"}).out, "does not answer"));

    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
    BOOST_TEST(contains(read(host.root() / "sys/bus/pci/devices" / gpu / "d3cold_allowed"), "1"));
    BOOST_TEST(host.power_control_of(gpu) == "auto");
}

BOOST_AUTO_TEST_SUITE_END()
