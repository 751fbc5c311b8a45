#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/kernel_log.hpp"

using namespace vfio_hook;

BOOST_AUTO_TEST_SUITE(kernel_log)

BOOST_AUTO_TEST_CASE(kmsg_records_parse_and_continuation_lines_are_skipped) {
    auto lines = parse_kmsg("3,812,1234567,-;nouveau 0000:01:00.0: pmu: firmware unavailable\n"
                            " SUBSYSTEM=pci\n"
                            "6,813,1234600,c;snd_hda_intel 0000:01:00.1: enabling device\n"
                            "garbage\n");
    BOOST_TEST_REQUIRE(lines.size() == 2u);
    BOOST_TEST(lines[0].sequence == 812u);
    BOOST_TEST(lines[0].priority == 3);
    BOOST_TEST(lines[0].message == "nouveau 0000:01:00.0: pmu: firmware unavailable");
}

BOOST_AUTO_TEST_CASE(firmware_and_probe_failures_are_problems_about_their_device_only) {
    auto gpu = *PciAddress::parse("0000:01:00.0");
    auto other = *PciAddress::parse("0000:02:00.0");
    std::vector<KernelLogLine> lines = {
        {1, 3, "nouveau 0000:01:00.0: pmu: firmware unavailable"},
        {2, 3, "NVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:742)"},
        {3, 4, "amdgpu 0000:02:00.0: Direct firmware load for amdgpu/navi10_gpu_info.bin failed with error -2"},
        {4, 6, "nouveau 0000:01:00.0: DRM: VRAM: 8192 MiB"},
        {5, 3, "nouveau: probe of 0000:01:00.0 failed with error -22"},
        {6, 3, "pcieport 0000:00:01.0: AER: Corrected error received: 0000:01:00.0"},
        {7, 3, "vfio-pci 0000:01:00.0: Unable to change power state from D3cold to D0, device inaccessible"},
    };
    auto problems = problems_about(lines, gpu, std::string("nouveau"));
    BOOST_TEST(problems.size() == 5u);
    BOOST_TEST(problems_about(lines, other, std::string("amdgpu")).size() == 1u);
    BOOST_TEST(!reports_driver_problem("nouveau 0000:01:00.0: DRM: VRAM: 8192 MiB"));
}

BOOST_AUTO_TEST_CASE(a_driver_prefix_names_the_device_even_without_its_address) {
    auto gpu = *PciAddress::parse("0000:01:00.0");
    KernelLogLine line{1, 3, "snd-hda-intel: probe failed, no codecs"};
    BOOST_TEST(mentions_device(line, gpu, std::string("snd_hda_intel")));
    BOOST_TEST(!mentions_device(line, gpu, std::string("nvidia")));
}

BOOST_AUTO_TEST_CASE(a_line_naming_one_card_is_not_blamed_on_another_card_of_the_same_driver) {
    KernelLogLine line{1, 3, "bochs-drm 0000:01:00.0: firmware unavailable"};
    BOOST_TEST(mentions_device(line, *PciAddress::parse("0000:01:00.0"), std::string("bochs-drm")));
    BOOST_TEST(!mentions_device(line, *PciAddress::parse("0000:00:02.0"), std::string("bochs-drm")));
    KernelLogLine upper{2, 3, "NVRM: GPU 0000:0A:00.0: RmInitAdapter failed!"};
    BOOST_TEST(mentions_device(upper, *PciAddress::parse("0000:0a:00.0"), std::nullopt));
}

BOOST_AUTO_TEST_SUITE_END()
