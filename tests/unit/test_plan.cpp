#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/plan.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

struct Scene {
    BusSnapshot bus;
    std::vector<Holder> holders;
    std::vector<StateRecord> records;
    std::vector<KernelLogLine> log;
    Settings settings;

    Scene() { bus.iommu_enabled = true; }
    Scene& add(const char* address, std::uint32_t class_code, std::optional<std::string> driver,
               GroupId group, std::vector<std::string> nodes = {}) {
        PciDevice device;
        device.address = at(address);
        device.class_code = class_code;
        device.driver = std::move(driver);
        device.iommu_group = group;
        device.device_nodes = std::move(nodes);
        bus.devices[device.address] = device;
        bus.groups[group].push_back(device.address);
        return *this;
    }
    PreparePlan plan(const Domain& domain) {
        std::string owner = domain.uuid.str();
        return plan_prepare({domain, owner, bus, holders, records, log, settings});
    }
};

Domain domain_with(std::vector<const char*> addresses, const char* uuid = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0") {
    Domain domain{"win11", *DomainUuid::parse(uuid), {}, {}};
    for (const char* address : addresses) domain.pci_devices.push_back({at(address), false, "hostdev"});
    return domain;
}

bool mentions(const std::vector<Refusal>& refusals, const std::string& text) {
    for (const auto& refusal : refusals) {
        if (refusal.line().find(text) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(plan)

BOOST_AUTO_TEST_CASE(audio_function_follows_gpu_into_vfio_and_leaves_first) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "nvidia", 14).add("0000:01:00.1", 0x040300, "snd_hda_intel", 14);
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST_REQUIRE(!plan.refused(), render_lines(plan.refusals));
    BOOST_TEST_REQUIRE(plan.moves.size() == 2u);
    BOOST_TEST(plan.moves[0].address == at("0000:01:00.1"));
    BOOST_TEST(!plan.moves[0].requested);
    BOOST_TEST(plan.moves[1].address == at("0000:01:00.0"));
    BOOST_TEST(plan.moves[1].from.value() == "nvidia");
}

BOOST_AUTO_TEST_CASE(bridges_in_the_group_stay_where_they_are) {
    Scene scene;
    scene.add("0000:00:01.0", 0x060400, "pcieport", 2).add("0000:01:00.0", 0x030000, "amdgpu", 2);
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST_REQUIRE(!plan.refused());
    BOOST_TEST_REQUIRE(plan.moves.size() == 1u);
    BOOST_TEST(plan.moves[0].address == at("0000:01:00.0"));
}

BOOST_AUTO_TEST_CASE(a_device_already_on_vfio_is_left_alone_and_not_recorded) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "vfio-pci", 14).add("0000:01:00.1", 0x040300, "snd_hda_intel", 14);
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST_REQUIRE(!plan.refused());
    BOOST_TEST(plan.left_on_vfio.size() == 1u);
    BOOST_TEST_REQUIRE(plan.moves.size() == 1u);
    BOOST_TEST(plan.moves[0].address == at("0000:01:00.1"));
}

BOOST_AUTO_TEST_CASE(a_missing_device_is_refused_naming_its_address) {
    Scene scene;
    auto plan = scene.plan(domain_with({"0000:0a:00.0"}));
    BOOST_TEST_REQUIRE(plan.refusals.size() == 1u);
    BOOST_TEST(plan.refusals[0].line().find("0000:0a:00.0: no such PCI device") == 0u);
    BOOST_TEST(plan.moves.empty());
}

BOOST_AUTO_TEST_CASE(the_boot_vga_is_refused_unless_allowed) {
    Scene scene;
    scene.add("0000:00:02.0", 0x030000, "i915", 2);
    scene.bus.devices[at("0000:00:02.0")].boot_vga = true;
    auto refused = scene.plan(domain_with({"0000:00:02.0"}));
    BOOST_TEST(mentions(refused.refusals, "0000:00:02.0: is the host's boot display"));
    scene.settings.allow_boot_vga = true;
    BOOST_TEST(!scene.plan(domain_with({"0000:00:02.0"})).refused());
    scene.settings.allow_boot_vga = false;
    Domain allowed = domain_with({"0000:00:02.0"});
    allowed.settings.allow_boot_vga = true;
    BOOST_TEST(!scene.plan(allowed).refused());
}

BOOST_AUTO_TEST_CASE(the_boot_vga_as_a_group_companion_is_refused_too) {
    Scene scene;
    scene.add("0000:00:02.0", 0x030000, "i915", 1).add("0000:00:1f.3", 0x040300, "snd_hda_intel", 1);
    scene.bus.devices[at("0000:00:02.0")].boot_vga = true;
    auto plan = scene.plan(domain_with({"0000:00:1f.3"}));
    BOOST_TEST(mentions(plan.refusals, "0000:00:02.0: shares IOMMU group 1"));
}

BOOST_AUTO_TEST_CASE(every_holder_is_named_with_pid_command_and_node) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "amdgpu", 14, {"/dev/dri/card1", "/dev/dri/renderD128"})
        .add("0000:01:00.1", 0x040300, "snd_hda_intel", 14, {"/dev/snd/controlC1"});
    scene.holders = {{1234, "Xorg", "/dev/dri/card1"}, {2222, "pipewire", "/dev/snd/controlC1"},
                     {999, "bash", "/dev/null"}};
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST(plan.refusals.size() == 2u);
    BOOST_TEST(mentions(plan.refusals, "0000:01:00.0: is held open by pid 1234 (Xorg) on /dev/dri/card1"));
    BOOST_TEST(mentions(plan.refusals, "0000:01:00.1: is held open by pid 2222 (pipewire) on /dev/snd/controlC1"));
}

BOOST_AUTO_TEST_CASE(a_gpu_another_vm_has_open_is_refused_naming_pid_and_domain) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "vfio-pci", 14);
    scene.holders = {{4321, "qemu-system-x86", "/dev/vfio/14"}};
    StateRecord other{"9b1c5c1e-0c1a-4f5e-9a7e-2f0b6f1a7c11", "linux-vm", {{at("0000:01:00.0"), "nvidia", 14}}};
    scene.records = {other};
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST_REQUIRE(plan.refusals.size() == 1u);
    BOOST_TEST(mentions(plan.refusals, "pid 4321 (qemu-system-x86) through /dev/vfio/14"));
    BOOST_TEST(mentions(plan.refusals, "domain 'linux-vm'"));
}

BOOST_AUTO_TEST_CASE(a_gpu_recorded_for_another_domain_is_refused_even_before_its_qemu_opens_it) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "vfio-pci", 14);
    scene.records = {{"9b1c5c1e-0c1a-4f5e-9a7e-2f0b6f1a7c11", "linux-vm", {{at("0000:01:00.0"), "nvidia", 14}}}};
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST(mentions(plan.refusals, "is already given to domain 'linux-vm'"));
}

BOOST_AUTO_TEST_CASE(a_storage_controller_in_the_group_is_refused_naming_it_and_the_group) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "nvidia", 9).add("0000:00:17.0", 0x010601, "ahci", 9);
    auto plan = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST(mentions(plan.refusals, "0000:00:17.0: is the host's storage controller (ahci), in IOMMU group 9 with the VM's 0000:01:00.0"));
}

BOOST_AUTO_TEST_CASE(an_iommu_that_is_off_is_said_once_and_other_problems_are_listed_too) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "nvidia", 14);
    scene.bus.iommu_enabled = false;
    auto plan = scene.plan(domain_with({"0000:01:00.0", "0000:0a:00.0"}));
    BOOST_TEST_REQUIRE(plan.refusals.size() == 2u, render_lines(plan.refusals));
    BOOST_TEST(mentions(plan.refusals, "intel_iommu=on"));
    BOOST_TEST(mentions(plan.refusals, "0000:0a:00.0: no such PCI device"));
    BOOST_TEST(!mentions(plan.refusals, "has no IOMMU group"));
}

BOOST_AUTO_TEST_CASE(firmware_errors_warn_by_default_and_refuse_when_configured) {
    Scene scene;
    scene.add("0000:01:00.0", 0x030000, "nouveau", 14);
    scene.log = {{5, 3, "nouveau 0000:01:00.0: pmu: firmware unavailable"}};
    auto warned = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST(!warned.refused());
    BOOST_TEST(mentions(warned.warnings, "firmware unavailable"));
    scene.settings.refuse_on_firmware_errors = true;
    auto refused = scene.plan(domain_with({"0000:01:00.0"}));
    BOOST_TEST(mentions(refused.refusals, "firmware unavailable"));
}

BOOST_AUTO_TEST_CASE(release_leaves_a_device_whose_group_is_still_open) {
    BusSnapshot bus;
    PciDevice gpu;
    gpu.address = at("0000:01:00.0");
    gpu.class_code = 0x030000;
    gpu.driver = "vfio-pci";
    gpu.iommu_group = 14;
    bus.devices[gpu.address] = gpu;
    StateRecord record{"4dea22b3-1d52-d8f3-2516-782e98ab3fa0", "win11",
                       {{gpu.address, "nvidia", 14}, {at("0000:01:00.1"), "snd_hda_intel", 14}}};
    auto plan = plan_release(record, bus, {{77, "qemu-system-x86", "/dev/vfio/14"}});
    BOOST_TEST(plan.restores.empty());
    BOOST_TEST(plan.kept.size() == 1u);
    BOOST_TEST(plan.gone.size() == 1u);
    auto forced = plan_release(record, bus, {{77, "qemu-system-x86", "/dev/vfio/14"}}, true);
    BOOST_TEST(forced.restores.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
