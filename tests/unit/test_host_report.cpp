#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/host_report.hpp"

using namespace vfio_hook;

BOOST_AUTO_TEST_SUITE(host_report)

BOOST_AUTO_TEST_CASE(blacklists_and_vfio_ids_are_read_from_modprobe_and_the_cmdline) {
    DriverHolds holds;
    read_modprobe_config("# comment\nblacklist nouveau\ninstall nvidia-drm /bin/false\n"
                         "options vfio-pci ids=10de:2684,10de:22ba disable_vga=1\n", holds);
    read_kernel_cmdline("root=/dev/sda quiet modprobe.blacklist=amdgpu,radeon vfio-pci.ids=1002:73bf", holds);
    BOOST_TEST(holds.blacklisted.count("nouveau") == 1u);
    BOOST_TEST(holds.blacklisted.count("nvidia_drm") == 1u);
    BOOST_TEST(holds.blacklisted.count("amdgpu") == 1u);
    BOOST_TEST(holds.blacklisted.count("radeon") == 1u);
    BOOST_TEST(holds.vfio_pci_ids.count("10de:2684") == 1u);
    BOOST_TEST(holds.vfio_pci_ids.count("1002:73bf") == 1u);
    auto parameters = iommu_parameters("BOOT_IMAGE=x intel_iommu=on iommu=pt quiet");
    BOOST_TEST(parameters.size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_host_without_iommu_or_with_firmware_errors_is_not_ready) {
    BusSnapshot bus;
    PciDevice gpu;
    gpu.address = *PciAddress::parse("0000:01:00.0");
    gpu.class_code = 0x030000;
    gpu.driver = "nouveau";
    gpu.iommu_group = 3;
    bus.devices[gpu.address] = gpu;
    bus.groups[3] = {gpu.address};
    std::vector<StateRecord> records;
    std::vector<KernelLogLine> log;
    std::vector<Holder> holders;
    Settings settings;
    auto off = assess_host({bus, holders, settings, records, log, "", {}, true, true});
    BOOST_TEST(!off.ready());
    BOOST_TEST(off.problems[0].line().find("IOMMU is off") != std::string::npos);

    bus.iommu_enabled = true;
    BOOST_TEST(assess_host({bus, holders, settings, records, log, "", {}, true, true}).ready());
    log = {{9, 3, "nouveau 0000:01:00.0: pmu: firmware unavailable"}};
    auto report = assess_host({bus, holders, settings, records, log, "", {}, true, true});
    BOOST_TEST(!report.ready());
    BOOST_TEST_REQUIRE(report.gpus.size() == 1u);
    BOOST_TEST(report.gpus[0].log_problems.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_host_whose_only_gpu_is_the_held_boot_display_is_not_ready) {
    BusSnapshot bus;
    bus.iommu_enabled = true;
    PciDevice gpu;
    gpu.address = *PciAddress::parse("0000:00:02.0");
    gpu.class_code = 0x030000;
    gpu.driver = "i915";
    gpu.iommu_group = 2;
    gpu.boot_vga = true;
    gpu.device_nodes = {"/dev/dri/card0"};
    bus.devices[gpu.address] = gpu;
    bus.groups[2] = {gpu.address};
    std::vector<StateRecord> records;
    std::vector<KernelLogLine> log;
    std::vector<Holder> holders{{1234, "Xorg", "/dev/dri/card0"}};
    Settings settings;
    auto report = assess_host({bus, holders, settings, records, log, "", {}, true, true});
    BOOST_TEST(!report.ready());
    BOOST_TEST_REQUIRE(report.gpus.size() == 1u);
    BOOST_TEST(report.gpus[0].holders.size() == 1u);
    BOOST_TEST(!report.gpus[0].could_be_taken());
    BOOST_TEST(render_lines(report.gpus[0].blockers).find("boot display") != std::string::npos);
    BOOST_TEST(render_lines(report.gpus[0].blockers).find("pid 1234 (Xorg)") == std::string::npos);  // boot VGA first

    settings.allow_boot_vga = true;  // single-GPU: allowed, but Xorg still holds it
    report = assess_host({bus, holders, settings, records, log, "", {}, true, true});
    BOOST_TEST(!report.ready());
    BOOST_TEST(render_lines(report.gpus[0].blockers).find("held open by pid 1234 (Xorg) on /dev/dri/card0") != std::string::npos,
               render_lines(report.gpus[0].blockers));
    holders.clear();
    BOOST_TEST(assess_host({bus, holders, settings, records, log, "", {}, true, true}).ready());
}

BOOST_AUTO_TEST_SUITE_END()
