// Defects a hostile review found where the other suites did not look, one case each (each
// failed before its fix): console hand-over, hook.d scripts, assign/unassign backups. Each case
// says what broke for the user.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <sys/stat.h>

#include <fstream>

#include "core/domain_edit.hpp"
#include "core/domain_xml.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read(const fs::path& file) {
    std::ifstream stream(file);
    return std::string(std::istreambuf_iterator<char>(stream), {});
}

const char* the_gpu = "0000:03:00.0";
const char* the_audio = "0000:03:00.1";

const std::string allow_boot_vga =
    "<vh:vfio-hook xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\"><vh:allow-boot-vga>yes</vh:allow-boot-vga></vh:vfio-hook>";

struct SingleGpu : FakeHost {
    SingleGpu() {
        device(the_gpu, 0x030000, "amdgpu", 11, 0x1002, 0x744c).boot_vga(the_gpu).drm_node(the_gpu, "card0");
        audio(the_audio, "snd_hda_intel", 11);
        console_on(the_gpu, 0);
        firmware_framebuffer(the_gpu, "efi-framebuffer.0", "efifb");
    }
    std::string record_text() const { return read(root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record")); }
};

const std::string single_gpu_vm = domain_xml("win11", uuid_a, {the_gpu}, false, allow_boot_vga);

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

struct Desktop : FakeHost {
    Desktop() {
        gpu("0000:01:00.0", "nvidia", 14).drm_node("0000:01:00.0", "card1");
        audio("0000:01:00.1", "snd_hda_intel", 14);
    }
    fs::path trace() const { return root() / "trace"; }
    void script(const fs::path& directory, const std::string& name, const std::string& body) {
        fs::create_directories(directory);
        std::ofstream(directory / name) << "#!/bin/sh\necho " << name << " >> " << trace().string() << "\n" << body << "\n";
        fs::permissions(directory / name, fs::perms(0755));
    }
};

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

// As virt-manager writes it (trimmed): SPICE + QXL + ich9 sound, a network interface.
const std::string virt_manager = R"(<domain type='kvm'>
  <name>win11</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <devices>
    <interface type='network'>
      <source network='default'/>
    </interface>
    <graphics type='spice' autoport='yes' passwd='s3cret'/>
    <sound model='ich9'/>
    <audio id='1' type='spice'/>
    <video>
      <model type='qxl' primary='yes'/>
    </video>
  </devices>
</domain>
)";

struct Workstation : FakeHost {
    Workstation() {
        gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0");
        bridge("0000:00:01.0", 1);
        gpu("0000:01:00.0", "nvidia", 14);
        audio("0000:01:00.1", "snd_hda_intel", 14);
        virsh_answers["dominfo"] = {std::string("Name:           win11\nState:          shut off\nPersistent:     yes\n")};
        virsh_answers["dumpxml"] = {virt_manager};
    }
    fs::path backups() const { return root() / "var/lib/vfio-hook/backups"; }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(review_findings)

// hand_over.cpp carry_out_prepare: when taking a console step fails, `rest.console` is assigned
// (not appended), so the console steps an earlier run left recorded (a console that did not come
// back) are dropped and the record deleted: recover no longer retries them, status no longer says.
BOOST_AUTO_TEST_CASE(a_failed_console_take_keeps_an_earlier_console_that_did_not_come_back) {
    SingleGpu host;
    host.kernel().fbcon_follows_framebuffers = false;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", single_gpu_vm).status == 0);
    host.kernel().framebuffers.clear();  // back on its driver, the GPU registers no framebuffer
    auto release = host.hook("win11", "release", "end", single_gpu_vm);
    BOOST_TEST_REQUIRE(contains(release.err, "fbcon is not back on vtcon1"), release.err);
    BOOST_TEST_REQUIRE(contains(host.record_text(), "vtcon vtcon1"), host.record_text());

    // Next start: a firmware framebuffer sits in the GPU's BAR again and will not let go.
    host.firmware_framebuffer(the_gpu, "efi-framebuffer.0", "efifb");
    host.kernel().fail_write("efifb/unbind", EBUSY);
    auto prepare = host.hook("win11", "prepare", "begin", single_gpu_vm);
    BOOST_TEST(prepare.status == 1, prepare.err);
    BOOST_TEST(contains(host.record_text(), "vtcon vtcon1"),
               "the console that never came back was dropped from the record: '" << host.record_text() << "'");
    auto status = host.run({"status"});
    BOOST_TEST(contains(status.out, "the host's console (fbcon on vtcon1) did not come back"), status.out);
}

// console.cpp console_on: every bound fbcon vtconsole is taken with the boot GPU, even when fbcon
// draws on another GPU's framebuffer (the host's iGPU). Without the unbind the kernel would keep
// the VTs on the remaining framebuffer; with it, they go to the dummy console, and at release the
// boot GPU (nvidia without fbdev) registers no framebuffer, so the host's console never returns.
BOOST_AUTO_TEST_CASE(taking_the_boot_gpu_leaves_fbcon_on_another_gpus_framebuffer_alone) {
    IgpuConsoleDgpuBootVga host;
    const std::string vm = domain_xml("win11", uuid_a, {"0000:01:00.0"}, false, allow_boot_vga);
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.vtcon_bind() == "1", "the host's console on the iGPU's fb0 was unbound");
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.vtcon_bind() == "1", "the host's console did not come back: " << release.err);
    BOOST_TEST(host.records().empty());
}

// scripts.cpp run_one: once waitpid reports the exit, only one read(4096) per pipe is done, so a
// script whose output is still in the pipe when it exits loses its last stderr line: the refusal
// names the wrong reason (or none). Many short lines make the hook's reading slower than the exit.
BOOST_AUTO_TEST_CASE(a_failing_script_is_refused_with_its_last_stderr_line_after_much_output) {
    Desktop host;
    host.script(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-dm",
                "seq 1 30000 >&2\n"
                "echo 'gdm did not stop: card1 still open' >&2; exit 3");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "10-stop-dm exited 3: gdm did not stop: card1 still open"), run.err);
}

// scripts.cpp find_scripts: the event directory is lstat()ed, so a symlink to a directory is
// skipped without a word, while script_directory_exists (stat) says it exists. A failing prepare
// script (or the release script that restarts the display manager) silently never runs.
BOOST_AUTO_TEST_CASE(a_symlinked_event_directory_is_run_or_refused_never_skipped) {
    Desktop host;
    fs::path real = host.root() / "etc/vfio-hook/scripts/win11-prepare";
    host.script(real, "10-must-run", "echo 'not ready' >&2; exit 1");
    fs::create_directories(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare");
    fs::create_directory_symlink(real, host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1, "the start went ahead; the script ran: " << fs::exists(host.trace()));
    BOOST_TEST(contains(run.err, "prepare/begin is a symbolic link"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    host.hook("win11", "release", "end", gpu_only);
}

// assign.cpp back_up: backups are named UUID-<second>.xml and opened with O_TRUNC, so a second
// change within the same second (assign --headless, then unassign of one function, as a script
// does) overwrites the backup of the original definition: its display is gone for good.
BOOST_AUTO_TEST_CASE(a_second_change_within_one_second_keeps_the_first_backup) {
    Workstation host;
    BOOST_TEST_REQUIRE(host.run({"assign", "win11", "01:00.0", "--headless"}).status == 0);
    host.virsh_answers["dumpxml"] = {host.defined[0]};
    BOOST_TEST_REQUIRE(host.run({"unassign", "win11", "01:00.1"}).status == 0);
    bool original_kept = false;
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(host.backups())) {
        ++files;
        original_kept |= read(entry.path()) == virt_manager;
    }
    BOOST_TEST(original_kept, files << " backup file(s); none holds the original definition");
}

// assign.cpp latest_backup: --restore-display takes the newest backup, which after any later
// change (an unassign of one function, a second assign) is a headless one: nothing comes back and
// the command says "nothing to change" although a backup with the display exists.
BOOST_AUTO_TEST_CASE(restore_display_uses_the_backup_that_has_the_display) {
    Workstation host;
    auto headless = assign_devices(virt_manager, {*PciAddress::parse("0000:01:00.0"), *PciAddress::parse("0000:01:00.1")}, true);
    BOOST_TEST_REQUIRE(headless.ok());
    fs::create_directories(host.backups());
    std::ofstream(host.backups() / (std::string(uuid_a) + "-20261201T100000Z.xml")) << virt_manager;  // by assign --headless
    std::ofstream(host.backups() / (std::string(uuid_a) + "-20261201T100500Z.xml")) << headless->xml;  // by a later unassign
    host.virsh_answers["dumpxml"] = {headless->xml};
    auto run = host.run({"unassign", "win11", "--restore-display"});
    BOOST_TEST_REQUIRE(run.status == 0, run.err);
    BOOST_TEST_REQUIRE(host.defined.size() == 1u, run.out);
    BOOST_TEST(contains(host.defined[0], "<graphics type=\"spice\""), host.defined[0]);
}

// assign.cpp apply/back_up: the definition is dumped with --security-info (VNC/SPICE passwords)
// and written with the process umask: the staged file is never made private, the backup only
// after it was written.
BOOST_AUTO_TEST_CASE(definitions_with_secrets_are_never_readable_by_others) {
    Workstation host;
    ::umask(022);
    BOOST_TEST_REQUIRE(host.run({"assign", "win11", "01:00.0"}).status == 0);
    BOOST_TEST_REQUIRE(host.defined_modes.size() == 1u);
    BOOST_TEST((host.defined_modes[0] & 077) == 0u, "the staged definition was mode " << std::oct << host.defined_modes[0]);
    struct stat info {};
    BOOST_TEST_REQUIRE(::stat(host.backups().c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 077) == 0u, "the backups directory is mode " << std::oct << (info.st_mode & 07777));
}

BOOST_AUTO_TEST_SUITE_END()
