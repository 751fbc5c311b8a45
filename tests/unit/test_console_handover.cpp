// Single-GPU passthrough: the host's only GPU goes to a VM that allows it, console and all, and
// comes back. The fake kernel keeps the console as the real one does (fake_host.hpp: fbcon
// follows framebuffers, `echo 1 > bind` changes nothing, FBIOPUT_CON2FBMAP brings it back).

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

const char* the_gpu = "0000:03:00.0";
const char* the_audio = "0000:03:00.1";

// The host's only GPU carries its console: amdgpu's framebuffer fb0 with fbcon on it, and the
// firmware framebuffer (efifb unless said otherwise) still inside its BAR.
struct SingleGpu : FakeHost {
    explicit SingleGpu(const std::string& firmware_driver = "efifb") {
        gpu_device();
        console_on(the_gpu, 0);
        firmware_framebuffer(the_gpu, firmware_driver);
    }
    void gpu_device() {
        device(the_gpu, 0x030000, "amdgpu", 11, 0x1002, 0x744c).boot_vga(the_gpu).drm_node(the_gpu, "card0");
        audio(the_audio, "snd_hda_intel", 11);
    }
    bool home() const {
        return driver_of(the_gpu) == "amdgpu" && driver_of(the_audio) == "snd_hda_intel" && override_of(the_gpu).empty() &&
               override_of(the_audio).empty();
    }
    bool console_back() const { return vtcon_bind() == "1"; }
    std::string record_text() const {
        std::ifstream file(root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"));
        return std::string(std::istreambuf_iterator<char>(file), {});
    }
};

const std::string allow_boot_vga_metadata =
    "<vh:vfio-hook xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\"><vh:allow-boot-vga>yes</vh:allow-boot-vga></vh:vfio-hook>";
const std::string allowed = domain_xml("win11", uuid_a, {the_gpu}, false, allow_boot_vga_metadata);

// A host whose console is the iGPU's framebuffer (i915, fb0) while the firmware's boot display is
// the dGPU (boot_vga=1, the BIOS's "PEG first"), driven by nvidia without fbdev emulation.
struct IgpuConsoleDgpuBootVga : FakeHost {
    IgpuConsoleDgpuBootVga() {
        gpu("0000:00:02.0", "i915", 2).drm_node("0000:00:02.0", "card0");
        console_on("0000:00:02.0", 0);
        gpu("0000:01:00.0", "nvidia", 14).boot_vga("0000:01:00.0").drm_node("0000:01:00.0", "card1");
        audio("0000:01:00.1", "snd_hda_intel", 14);
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(console_handover)

BOOST_AUTO_TEST_CASE(the_console_is_recorded_taken_after_the_checks_and_given_back_after_the_gpu_is_home) {
    SingleGpu host;
    auto prepare = host.hook("win11", "prepare", "begin", allowed);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(the_gpu) == "vfio-pci");
    BOOST_TEST(host.vtcon_bind() == "0");
    BOOST_TEST(contains(host.record_text(), std::string("console ") + the_gpu + " vtcon vtcon1\n"), host.record_text());
    BOOST_TEST(contains(host.record_text(), std::string("console ") + the_gpu + " framebuffer efi-framebuffer.0 efi-framebuffer\n"));
    // The console steps come before the first move, fbcon's before the framebuffer's.
    const auto& log = host.kernel().write_log();
    auto at = [&](const std::string& what) {
        return std::find_if(log.begin(), log.end(), [&](const std::string& line) { return contains(line, what); }) - log.begin();
    };
    BOOST_TEST(at("vtcon1/bind <- 0") < at("platform/drivers/efi-framebuffer/unbind <- efi-framebuffer.0"));
    BOOST_TEST(at("platform/drivers/efi-framebuffer/unbind") < at(std::string(the_gpu) + "/driver_override <- vfio-pci"));

    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "host console: fbcon on vtcon1 (0000:03:00.0) is given to domain 'win11'"), status.out);

    BOOST_TEST(host.hook("win11", "release", "end", allowed).status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.console_back());
    BOOST_TEST(host.records().empty());
}

// The kernel registers every firmware framebuffer driver under its platform device's name, not
// its own: efifb and efidrm as "efi-framebuffer", vesafb and vesadrm as "vesa-framebuffer",
// simplefb and simpledrm as "simple-framebuffer" (the source lines are quoted in fake_host.cpp),
// and each names the framebuffer's memory in /proc/iomem after itself (simpledrm's below sysfb's
// BOOTFB). Whichever drives it, it is found in the BAR, detached from that platform driver
// before the first move, and the GPU's own framebuffer gives the console back.
BOOST_AUTO_TEST_CASE(every_firmware_framebuffer_is_detached_under_the_kernels_names) {
    const std::map<std::string, std::string> devices = {
        {"efifb", "efi-framebuffer"},       {"efidrm", "efi-framebuffer"},       {"vesafb", "vesa-framebuffer"},
        {"vesadrm", "vesa-framebuffer"},    {"simplefb", "simple-framebuffer"}, {"simpledrm", "simple-framebuffer"},
    };
    for (const auto& [firmware_driver, platform_driver] : devices) {
        BOOST_TEST_CONTEXT(firmware_driver) {
            SingleGpu host(firmware_driver);
            auto prepare = host.hook("win11", "prepare", "begin", allowed);
            BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
            const std::string device = platform_driver + ".0";
            BOOST_TEST(contains(host.record_text(), std::string("console ") + the_gpu + " framebuffer " + device + " " +
                                                         platform_driver + "\n"),
                       host.record_text());
            const auto& log = host.kernel().write_log();
            auto at = [&](const std::string& what) {
                return std::find_if(log.begin(), log.end(), [&](const std::string& line) { return contains(line, what); }) -
                       log.begin();
            };
            std::string unbind = "sys/bus/platform/drivers/" + platform_driver + "/unbind <- " + device;
            BOOST_TEST(at(unbind) < at(std::string(the_gpu) + "/driver_override <- vfio-pci"));
            BOOST_TEST(!fs::exists(host.root() / "sys/bus/platform/devices" / device / "driver"));
            BOOST_TEST(host.hook("win11", "release", "end", allowed).status == 0);
            BOOST_TEST(host.home());
            BOOST_TEST(host.console_back());
            BOOST_TEST(host.records().empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_refused_start_never_touches_the_console) {
    SingleGpu host;
    host.process(1234, "gnome-shell", {"/dev/dri/card0"});  // the display manager did not stop
    auto run = host.hook("win11", "prepare", "begin", allowed);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "held open by pid 1234 (gnome-shell) on /dev/dri/card0"), run.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.console_back());
    BOOST_TEST(fs::exists(host.root() / "sys/bus/platform/devices/efi-framebuffer.0/driver"));
}

BOOST_AUTO_TEST_CASE(a_failed_move_gives_the_gpu_back_first_then_the_console) {
    SingleGpu host;
    host.kernel().refuse_probe("vfio-pci");
    auto run = host.hook("win11", "prepare", "begin", allowed);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "did not bind to vfio-pci"), run.err);
    BOOST_TEST(host.home());
    BOOST_TEST(host.console_back());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_console_the_driver_does_not_bring_back_is_mapped_back_with_con2fbmap) {
    SingleGpu host;
    host.kernel().fbcon_follows_framebuffers = false;  // a driver that registers no fbcon by itself
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
    BOOST_TEST(host.hook("win11", "release", "end", allowed).status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.kernel().console_maps == std::vector<std::string>{"fb0"});
    BOOST_TEST(host.console_back());
    BOOST_TEST(host.records().empty());
}

// RealKernel::map_consoles sends FBIOPUT_CON2FBMAP for each of the 63 VTs and reports the first
// errno; a VT that was never allocated, or one fbcon will not take, answers with an error of its
// own while the others are mapped and fbcon is bound again. Whether the console is back is read
// from fbcon's bind, not from that errno.
BOOST_AUTO_TEST_CASE(a_vt_the_ioctl_refuses_does_not_make_a_console_that_is_back_read_as_not_back) {
    SingleGpu host;
    host.kernel().fbcon_follows_framebuffers = false;
    host.kernel().console_map_errors[5] = EINVAL;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
    auto release = host.hook("win11", "release", "end", allowed);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(!contains(release.err, "not back"), release.err);
    BOOST_TEST(host.kernel().console_maps == std::vector<std::string>{"fb0"});
    BOOST_TEST(host.console_back());
    BOOST_TEST(host.records().empty(), "the console was kept in the record as not given back");

    // When no VT is mapped, fbcon stays unbound and the error says what the ioctl answered.
    SingleGpu refused;
    refused.kernel().fbcon_follows_framebuffers = false;
    for (unsigned vt = 1; vt <= 63; ++vt) refused.kernel().console_map_errors[vt] = EINVAL;
    BOOST_TEST_REQUIRE(refused.hook("win11", "prepare", "begin", allowed).status == 0);
    release = refused.hook("win11", "release", "end", allowed);
    BOOST_TEST(contains(release.err, "fbcon is not back on vtcon1 (FBIOPUT_CON2FBMAP on"), release.err);
    BOOST_TEST(contains(release.err, "Invalid argument"), release.err);
    BOOST_TEST(!refused.console_back());
}

// With its last framebuffer gone the kernel unregisters fbcon; it registers again with the
// GPU's driver, at the lowest free vtconN, which need not be the one recorded.
BOOST_AUTO_TEST_CASE(fbcon_that_comes_back_under_another_vtconsole_is_found_and_verified) {
    for (bool follows : {true, false}) {
        SingleGpu host;
        host.kernel().fbcon_unregisters_without_framebuffers = true;
        host.kernel().fbcon_follows_framebuffers = follows;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
        BOOST_TEST_REQUIRE(!fs::exists(host.root() / "sys/class/vtconsole/vtcon1"));
        fs::create_directories(host.root() / "sys/class/vtconsole/vtcon1");
        std::ofstream(host.root() / "sys/class/vtconsole/vtcon1/name") << "(S) another console\n";
        auto release = host.hook("win11", "release", "end", allowed);
        BOOST_TEST(release.status == 0, release.err);
        BOOST_TEST(release.err.find("fbcon is not back") == std::string::npos, release.err);
        BOOST_TEST(host.home());
        BOOST_TEST(host.vtcon_bind("vtcon2") == "1", "follows=" << follows);
        BOOST_TEST(host.records().empty(), "follows=" << follows);
        BOOST_TEST(host.kernel().console_maps.size() == (follows ? 0u : 1u));
    }
}

// The GPU's driver comes back without a framebuffer (no fbdev emulation) while another GPU has
// one: the consoles go there rather than nowhere.
BOOST_AUTO_TEST_CASE(a_console_whose_gpu_registers_no_framebuffer_comes_back_on_another_one) {
    SingleGpu host;
    host.gpu("0000:00:02.0", "i915", 2).console_on("0000:00:02.0", 1);
    host.kernel().fbcon_follows_framebuffers = false;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
    BOOST_TEST_REQUIRE(host.vtcon_bind() == "0");
    host.kernel().framebuffers.erase(the_gpu);
    auto release = host.hook("win11", "release", "end", allowed);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.kernel().console_maps == std::vector<std::string>{"fb1"});
    BOOST_TEST(host.console_back(), release.err);
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_console_that_does_not_come_back_stays_recorded_and_status_says_how_to_retry) {
    SingleGpu host;
    host.kernel().fbcon_follows_framebuffers = false;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
    host.kernel().framebuffers.clear();  // back on its driver, the GPU registers no framebuffer
    auto release = host.hook("win11", "release", "end", allowed);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(contains(release.err, "fbcon is not back on vtcon1: the GPU's driver registered no framebuffer"),
               release.err);
    BOOST_TEST(host.records().size() == 1u);
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 1);
    BOOST_TEST(contains(status.out, "the host's console (fbcon on vtcon1) did not come back"), status.out);
    BOOST_TEST(contains(status.out, "run `vfio-hook recover`"), status.out);
}

BOOST_AUTO_TEST_CASE(a_crash_after_any_write_then_recover_restores_devices_and_console) {
    int total = 0;
    {
        SingleGpu host;
        host.hook("win11", "prepare", "begin", allowed);
        total = host.kernel().writes();
    }
    BOOST_TEST_REQUIRE(total >= 8);
    for (int k = 0; k <= total; ++k) {
        SingleGpu host;
        host.kernel().crash_after(k);
        try {
            host.hook("win11", "prepare", "begin", allowed);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        auto recover = host.run({"recover"});
        BOOST_TEST(recover.status == 0, "k=" << k << ": " << recover.out << recover.err);
        BOOST_TEST(host.home(), "k=" << k);
        BOOST_TEST(host.console_back(), "k=" << k);
        BOOST_TEST(host.records().empty(), "k=" << k);
    }
    for (int k = 0; k <= 10; ++k) {
        SingleGpu host;
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
        host.kernel().crash_after(host.kernel().writes() + k);
        try {
            host.hook("win11", "release", "end", allowed);
        } catch (const SimulatedCrash&) {
        }
        host.kernel().crash_after(-1);
        BOOST_TEST(host.run({"recover"}).status == 0, "k=" << k);
        BOOST_TEST(host.home(), "release k=" << k);
        BOOST_TEST(host.console_back(), "release k=" << k);
        BOOST_TEST(host.records().empty(), "release k=" << k);
    }
}

// hand_over.cpp carry_out_prepare: when taking a console step fails, `rest.console` is assigned
// (not appended), so the console steps an earlier run left recorded (a console that did not come
// back) are dropped and the record deleted: recover no longer retries them, status no longer says.
BOOST_AUTO_TEST_CASE(a_failed_console_take_keeps_an_earlier_console_that_did_not_come_back) {
    SingleGpu host;
    host.kernel().fbcon_follows_framebuffers = false;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", allowed).status == 0);
    host.kernel().framebuffers.clear();  // back on its driver, the GPU registers no framebuffer
    auto release = host.hook("win11", "release", "end", allowed);
    BOOST_TEST_REQUIRE(contains(release.err, "fbcon is not back on vtcon1"), release.err);
    BOOST_TEST_REQUIRE(contains(host.record_text(), "vtcon vtcon1"), host.record_text());

    // Next start: a firmware framebuffer sits in the GPU's BAR again and will not let go.
    host.firmware_framebuffer(the_gpu, "efifb");
    host.kernel().fail_write("platform/drivers/efi-framebuffer/unbind", EBUSY);
    auto prepare = host.hook("win11", "prepare", "begin", allowed);
    BOOST_TEST(prepare.status == 1, prepare.err);
    BOOST_TEST(contains(host.record_text(), "vtcon vtcon1"),
               "the console that never came back was dropped from the record: '" << host.record_text() << "'");
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "the host's console (fbcon on vtcon1) did not come back"), status.out);
}

// console.cpp console_steps_on: every bound fbcon vtconsole is taken with the boot GPU, even when fbcon
// draws on another GPU's framebuffer (the host's iGPU). Without the unbind the kernel would keep
// the VTs on the remaining framebuffer; with it, they go to the dummy console, and at release the
// boot GPU (nvidia without fbdev) registers no framebuffer, so the host's console never returns.
BOOST_AUTO_TEST_CASE(taking_the_boot_gpu_leaves_fbcon_on_another_gpus_framebuffer_alone) {
    IgpuConsoleDgpuBootVga host;
    const std::string vm = domain_xml("win11", uuid_a, {"0000:01:00.0"}, false, allow_boot_vga_metadata);
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.vtcon_bind() == "1", "the host's console on the iGPU's fb0 was unbound");
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.vtcon_bind() == "1", "the host's console did not come back: " << release.err);
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_SUITE_END()
