#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <filesystem>
#include <fstream>

#include "core/console.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(console)

BOOST_AUTO_TEST_CASE(the_firmware_framebuffer_is_found_inside_its_gpus_bar) {
    auto found = firmware_framebuffers(
        "00000000-00000fff : Reserved\n"
        "80000000-dfffffff : PCI Bus 0000:00\n"
        "  80000000-8fffffff : PCI Bus 0000:01\n"
        "    80000000-8fffffff : 0000:01:00.0\n"
        "      80000000-802fffff : efifb\n"
        "  90000000-90ffffff : 0000:00:02.0\n"
        "    90000000-90ffffff : bochs-drm\n");
    BOOST_TEST_REQUIRE(found.size() == 1u);
    BOOST_TEST(found.begin()->first == *PciAddress::parse("0000:01:00.0"));
    BOOST_TEST(found.begin()->second == "efifb");
    BOOST_TEST(firmware_framebuffers("garbage\n  : \n").empty());
}

BOOST_AUTO_TEST_CASE(a_gpu_carrying_fbcon_is_refused_like_the_boot_vga) {
    FakeHost host;
    host.gpu("0000:01:00.0", "amdgpu", 14).gpu("0000:02:00.0", "amdgpu", 15);
    fs::create_directories(host.root() / "sys/class/graphics/fb0");
    fs::create_directory_symlink(host.root() / "sys/bus/pci/devices/0000:01:00.0",
                                 host.root() / "sys/class/graphics/fb0/device");
    fs::create_directories(host.root() / "sys/class/vtconsole/vtcon1");
    std::ofstream(host.root() / "sys/class/vtconsole/vtcon1/name") << "(M) frame buffer device\n";
    std::ofstream(host.root() / "sys/class/vtconsole/vtcon1/bind") << "1\n";
    auto refused = host.hook("vm", "prepare", "begin", domain_xml("vm", uuid_a, {"0000:01:00.0"}));
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("0000:01:00.0: drives the host's console (fbcon on /dev/fb0)") != std::string::npos, refused.err);
    BOOST_TEST(host.hook("vm", "prepare", "begin", domain_xml("vm", uuid_a, {"0000:02:00.0"})).status == 0);

    std::ofstream(host.root() / "sys/class/vtconsole/vtcon1/bind") << "0\n";
    BOOST_TEST(host.run({"check", "-"}, domain_xml("vm2", uuid_b, {"0000:01:00.0"})).status == 0);
}

BOOST_AUTO_TEST_CASE(a_gpu_holding_the_efi_framebuffer_is_refused) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14);
    std::ofstream(host.root() / "proc/iomem") << "4000000000-400fffffff : 0000:01:00.0\n  4000000000-40002fffff : efifb\n";
    auto refused = host.hook("vm", "prepare", "begin", domain_xml("vm", uuid_a, {"0000:01:00.0"}));
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("firmware framebuffer efifb") != std::string::npos, refused.err);
}

BOOST_AUTO_TEST_SUITE_END()
