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

// /proc/iomem shows nesting by indentation, but no deeper than five levels: kernel/resource.c
// r_show() `for (depth = 0, p = r; depth < MAX_IORES_LEVEL; depth++, p = p->parent)` with
// `enum { MAX_IORES_LEVEL = 5 }`, so everything from depth 5 down is printed at ten spaces. A
// Navi card (its own upstream and downstream switch ports) in a chipset slot puts its BAR at
// depth 6 and efifb at depth 7: all three at the same indentation. Only the addresses (shown to
// root, which the hook is) say which BAR holds the framebuffer.
BOOST_AUTO_TEST_CASE(a_framebuffer_deeper_than_iomem_shows_is_found_by_its_address) {
    FakeHost host;
    host.gpu("0000:0c:00.0", "amdgpu", 14);
    std::ofstream(host.root() / "proc/iomem") << "00000000-00000fff : Reserved\n"
                                                 "7000000000-7fffffffff : PCI Bus 0000:00\n"
                                                 "  7000000000-7c0fffffff : PCI Bus 0000:02\n"
                                                 "    7000000000-7c0fffffff : PCI Bus 0000:03\n"
                                                 "      7000000000-7c0fffffff : PCI Bus 0000:0a\n"
                                                 "        7000000000-7c0fffffff : PCI Bus 0000:0b\n"
                                                 "          7000000000-7c0fffffff : PCI Bus 0000:0c\n"
                                                 "          7000000000-77ffffffff : 0000:0c:00.0\n"
                                                 "          7000000000-70002fffff : efifb\n"
                                                 "          7800000000-7801ffffff : 0000:0c:00.0\n";
    auto refused = host.hook("vm", "prepare", "begin", domain_xml("vm", uuid_a, {"0000:0c:00.0"}));
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("0000:0c:00.0: drives the host's console (firmware framebuffer efifb)") != std::string::npos,
               refused.err);
    // Read without CAP_SYS_ADMIN every address is 0 (r_show): the indentation still tells what it can.
    auto zeros = firmware_framebuffers("00000000-00000000 : PCI Bus 0000:00\n"
                                       "  00000000-00000000 : 0000:01:00.0\n"
                                       "    00000000-00000000 : efifb\n"
                                       "  00000000-00000000 : 0000:02:00.0\n");
    BOOST_TEST_REQUIRE(zeros.size() == 1u);
    BOOST_TEST(zeros.begin()->first == *PciAddress::parse("0000:01:00.0"));
}

// Each firmware framebuffer driver names the framebuffer's memory after itself (efifb.c:
// request_mem_region(…, "efifb"); vesafb.c: "vesafb"; simplefb.c: "simplefb"; efidrm.c,
// vesadrm.c, simpledrm.c: devm_request_mem_region(…, drv->name), "efidrm", "vesadrm",
// "simpledrm"), and sysfb's simple-framebuffer.0 carries a resource "BOOTFB" of its own
// (sysfb_simplefb.c: simplefb_resname) with the driver's region below it. Read through the real
// entry point: a VM given that GPU is refused, naming the framebuffer.
BOOST_AUTO_TEST_CASE(a_gpu_holding_any_firmware_framebuffer_is_refused) {
    for (std::string driver : {"efifb", "efidrm", "vesafb", "vesadrm", "simplefb", "simpledrm"}) {
        BOOST_TEST_CONTEXT(driver) {
            FakeHost host;
            host.gpu("0000:01:00.0", "nvidia", 14).firmware_framebuffer("0000:01:00.0", driver);
            auto refused = host.hook("vm", "prepare", "begin", domain_xml("vm", uuid_a, {"0000:01:00.0"}));
            BOOST_TEST(refused.status == 1);
            BOOST_TEST(refused.err.find("0000:01:00.0: drives the host's console (firmware framebuffer " + driver + ")") !=
                           std::string::npos,
                       refused.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_framebuffer_region_is_known_by_the_kernels_names_only) {
    auto in_bar = [](const std::string& regions) {
        auto found = firmware_framebuffers("80000000-8fffffff : 0000:01:00.0\n" + regions);
        return found.empty() ? std::string("-") : found.begin()->second;
    };
    BOOST_TEST(in_bar("  80000000-802fffff : efidrm\n") == "efidrm");
    BOOST_TEST(in_bar("  80000000-802fffff : vesadrm\n") == "vesadrm");
    BOOST_TEST(in_bar("  80000000-802fffff : BOOTFB\n    80000000-802fffff : simpledrm\n") == "simpledrm");
    BOOST_TEST(in_bar("  80000000-802fffff : BOOTFB\n") == "BOOTFB");  // simpledrm unbound: sysfb's device stays
    BOOST_TEST(in_bar("  80000000-802fffff : amdgpu\n") == "-");
    BOOST_TEST(in_bar("  80000000-802fffff : efi-framebuffers\n") == "-");
}

BOOST_AUTO_TEST_SUITE_END()
