#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// A desktop: the iGPU drives the console; the discrete GPU + HDMI audio share group 14 behind a
// root port that sits in its own group.
const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

std::string one_per_line(const std::vector<std::string>& entries) {
    std::string text = "\n";
    for (const auto& entry : entries) text += "  " + entry + "\n";
    return text;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hook)

// prepare and release of a VM without host devices, nothing recorded and no hook.d: the hook
// reads stdin and looks, nothing more (not even its config: a broken one says nothing here).
BOOST_AUTO_TEST_CASE(the_null_path_reads_no_config_and_says_nothing) {
    Desktop host;
    fs::path bad = host.root() / "bad.conf";
    std::ofstream(bad) << "write-deadline-ms = soon\n";
    for (const char* op : {"prepare begin", "release end"}) {
        std::string operation(op);
        auto space = operation.find(' ');
        auto run = host.run({"--config", bad.string(), "hook", "plain", operation.substr(0, space),
                             operation.substr(space + 1), "-"},
                            domain_xml("plain", uuid_b, {}));
        BOOST_TEST(run.status == 0, op);
        BOOST_TEST(run.err.empty(), op << ": " << run.err);
    }
    // A USB keyboard passed through is no PCI device.
    const std::string usb = "<domain type='kvm'><name>kb</name><uuid>" + std::string(uuid_b) +
                            "</uuid><devices><hostdev mode='subsystem' type='usb' managed='yes'><source>"
                            "<vendor id='0x046d'/><product id='0xc52b'/></source></hostdev></devices></domain>";
    auto keyboard = host.run({"--config", bad.string(), "hook", "kb", "prepare", "begin", "-"}, usb);
    BOOST_TEST(keyboard.status == 0);
    BOOST_TEST(keyboard.err.empty(), keyboard.err);
    // An SR-IOV NIC given as <interface type='hostdev'> is a host device: not the null path.
    const std::string nic = "<domain type='kvm'><name>nic</name><uuid>" + std::string(uuid_b) +
                            "</uuid><devices><interface type='hostdev' managed='no'><source><address "
                            "type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>"
                            "</interface></devices></domain>";
    auto run = host.run({"--config", bad.string(), "hook", "nic", "prepare", "begin", "-"}, nic);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("bad.conf") != std::string::npos, run.err);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(prepare_moves_gpu_and_audio_to_vfio_and_release_brings_both_home) {
    Desktop host;
    auto prepare = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(prepare.out.empty());
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.driver_of("0000:00:02.0") == "i915");
    BOOST_TEST(host.records().size() == 1u);
    BOOST_TEST(host.records()[0] == std::string(uuid_a) + ".record");

    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(release.out.empty());
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(other_operations_answer_zero_and_touch_nothing) {
    Desktop host;
    for (const char* operation : {"start", "started", "stopped", "migrate", "restore", "reconnect", "attach", "future-op"}) {
        auto run = host.hook("win11", operation, "begin", gpu_only);
        BOOST_TEST(run.status == 0);
        BOOST_TEST(run.out.empty());
    }
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(!std::filesystem::exists(host.root() / "run/vfio-hook"));
}

BOOST_AUTO_TEST_CASE(a_vm_without_hostdevs_moves_nothing_and_never_takes_the_lock) {
    Desktop host;
    std::string plain = domain_xml("plain", uuid_a, {});
    BOOST_TEST(host.hook("plain", "prepare", "begin", plain).status == 0);
    BOOST_TEST(host.hook("plain", "release", "end", plain).status == 0);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(!std::filesystem::exists(host.root() / "run/vfio-hook/lock"));
}

BOOST_AUTO_TEST_CASE(a_refused_prepare_changes_nothing_and_lists_every_problem) {
    Desktop host;
    host.process(1234, "Xorg", {"/dev/dri/card1"}).process(2000, "pipewire", {"/dev/snd/controlC1"});
    auto run = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:0a:00.0"}));
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:01:00.0: is held open by pid 1234 (Xorg) on /dev/dri/card1") != std::string::npos, run.err);
    BOOST_TEST(run.err.find("pid 2000 (pipewire)") != std::string::npos);
    BOOST_TEST(run.err.find("0000:0a:00.0: no such PCI device") != std::string::npos);
    BOOST_TEST(run.err.find("nothing was changed") != std::string::npos);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(the_boot_vga_is_refused_with_a_message_a_user_understands) {
    Desktop host;
    auto run = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:00:02.0"}));
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:00:02.0: is the host's boot display") != std::string::npos, run.err);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(a_failure_on_the_second_device_rolls_the_first_back) {
    Desktop host;
    host.kernel().fail_write("drivers/nvidia/unbind", EIO);
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:01:00.0: unbind from nvidia failed") != std::string::npos, run.err);
    BOOST_TEST(run.err.find("put back") != std::string::npos, run.err);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

// Issue 23, defect 9: a failed start said its stranded device "stays recorded" though the save
// of that record had failed (hand_over.cpp ignored the result). The state directory refuses the
// save once the moves have begun: a `.record.tmp` directory stands where the save writes.
BOOST_AUTO_TEST_CASE(a_failed_start_whose_record_cannot_be_updated_says_so) {
    Desktop host;
    fs::path records = host.root() / "run/vfio-hook/records";
    host.kernel().when_written("drivers/nvidia/unbind",
                               [&] { fs::create_directories(records / (std::string(uuid_a) + ".record.tmp")); });
    host.kernel().hang_write("drivers/nvidia/unbind");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("stays recorded") == std::string::npos, run.err);
    BOOST_TEST(run.err.find("cannot update the state record: cannot write " + (records / uuid_a).string()) !=
                   std::string::npos,
               run.err);
    // What the file still holds is the record written before the first move: it lists the GPU.
    BOOST_TEST(run.err.find("still lists every device this start was to move") != std::string::npos, run.err);
    std::ifstream record(records / (std::string(uuid_a) + ".record"));
    std::string text((std::istreambuf_iterator<char>(record)), {});
    BOOST_TEST(text.find("0000:01:00.0") != std::string::npos, text);
}

// The same when everything came home but the record cannot be removed.
BOOST_AUTO_TEST_CASE(a_rolled_back_start_whose_record_cannot_be_removed_says_so) {
    Desktop host;
    fs::path record = host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record");
    host.kernel().when_written("drivers/nvidia/unbind", [&] {
        fs::remove(record);
        fs::create_directories(record / "in-the-way");  // unlink() of a directory: EISDIR
    });
    host.kernel().fail_write("drivers/nvidia/unbind", EIO);
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(host.home());
    BOOST_TEST(run.err.find("every device was put back where it was") != std::string::npos, run.err);
    BOOST_TEST(run.err.find("cannot update the state record: cannot remove " + record.string()) != std::string::npos,
               run.err);
}

BOOST_AUTO_TEST_CASE(a_device_that_does_not_take_vfio_is_rolled_back_and_named) {
    Desktop host;
    host.kernel().refuse_probe("vfio-pci");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("did not bind to vfio-pci") != std::string::npos, run.err);
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_CASE(release_with_no_record_touches_nothing) {
    Desktop host;
    auto run = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(run.status == 0);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(devices_on_vfio_before_prepare_stay_there_after_release) {
    FakeHost host;
    host.gpu("0000:01:00.0", "vfio-pci", 14).audio("0000:01:00.1", "snd_hda_intel", 14);
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci");
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.driver_of("0000:01:00.1") == "snd_hda_intel");
}

BOOST_AUTO_TEST_CASE(a_device_without_a_driver_stays_driverless_on_release) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).audio("0000:01:00.1", "", 14);
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.1") == "vfio-pci");
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(!host.driver_of("0000:01:00.1").has_value());
    // Its driver_override must go too: left at vfio-pci, the next reprobe would hand it back.
    BOOST_TEST(host.override_of("0000:01:00.1").empty());
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
}

BOOST_AUTO_TEST_CASE(two_domains_each_get_back_only_their_own_devices) {
    Desktop host;
    host.gpu("0000:02:00.0", "amdgpu", 15);
    std::string second = domain_xml("linux", uuid_b, {"0000:02:00.0"});
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.hook("linux", "prepare", "begin", second).status == 0);
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.driver_of("0000:02:00.0") == "vfio-pci");
    BOOST_TEST(host.hook("linux", "release", "end", second).status == 0);
    BOOST_TEST(host.driver_of("0000:02:00.0") == "amdgpu");
}

BOOST_AUTO_TEST_CASE(a_second_vm_asking_for_a_taken_gpu_is_refused_and_its_release_leaves_it) {
    Desktop host;
    std::string rival = domain_xml("rival", uuid_b, {"0000:01:00.0"});
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto refused = host.hook("rival", "prepare", "begin", rival);
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("0000:01:00.0: is already given to domain 'win11'") != std::string::npos, refused.err);
    BOOST_TEST(host.hook("rival", "release", "end", rival).status == 0);
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_CASE(managed_yes_devices_are_moved_too_and_come_home) {
    Desktop host;
    std::string managed = domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:01:00.1"}, true);
    BOOST_TEST(host.hook("win11", "prepare", "begin", managed).status == 0);
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.hook("win11", "release", "end", managed).status == 0);
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_CASE(a_driver_that_will_not_come_back_leaves_the_device_on_vfio_and_recorded) {
    Desktop host;
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.kernel_log("nvidia 0000:01:00.0: an old error, before the release: probe failed");
    host.kernel().refuse_probe("nvidia", "NVRM: GPU 0000:01:00.0: RmInitAdapter failed! (0x22:0x56:742)");
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.driver_of("0000:01:00.1") == "snd_hda_intel");
    BOOST_TEST(host.records().size() == 1u);
    BOOST_TEST(release.err.find("0000:01:00.0: did not come back to nvidia") != std::string::npos, release.err);
    BOOST_TEST(release.err.find("RmInitAdapter failed") != std::string::npos, release.err);
    BOOST_TEST(release.err.find("an old error") == std::string::npos, release.err);
}

// A reprobe takes whichever matching driver the kernel tries first: nouveau before nvidia, or
// vfio-pci itself once driverctl has given it the card's ID. Only a bind by name brings the card
// back to the driver it was on.
BOOST_AUTO_TEST_CASE(release_brings_a_gpu_back_to_its_recorded_driver_when_a_reprobe_would_pick_another) {
    for (const char* reprobe_picks : {"nouveau", "vfio-pci"}) {
        Desktop host;
        host.claimed_first_by("0000:01:00.0", reprobe_picks);
        BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0, reprobe_picks);
        BOOST_TEST_REQUIRE(host.on_vfio(), reprobe_picks);
        auto release = host.hook("win11", "release", "end", gpu_only);
        BOOST_TEST(release.status == 0);
        BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia", "reprobe picks " << reprobe_picks << ": " << release.err);
        BOOST_TEST(host.home(), reprobe_picks);
        BOOST_TEST(host.records().empty(), reprobe_picks);
    }
}

// Ordering of the two functions: the GPU's audio function is a runtime-PM consumer of the GPU
// function, so it leaves its driver first at prepare and comes back after the GPU at release.
BOOST_AUTO_TEST_CASE(the_audio_function_leaves_before_the_gpu_and_comes_back_after_it) {
    Desktop host;
    const auto& log = host.kernel().write_log();
    // The first write from `from` on that unbinds `address` (leaves), or binds or reprobes it
    // (gives it back); log.size() if there is none.
    auto first = [&](std::size_t from, const std::string& address, bool unbind) {
        for (std::size_t i = from; i < log.size(); ++i) {
            const std::string& entry = log[i];
            if (!entry.ends_with(" <- " + address)) continue;
            bool is_unbind = entry.find("/unbind <- ") != std::string::npos;
            bool gives_back = entry.find("/bind <- ") != std::string::npos ||
                              entry.starts_with("sys/bus/pci/drivers_probe <- ");
            if (unbind ? is_unbind : gives_back) return i;
        }
        return log.size();
    };

    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto audio_leaves = first(0, "0000:01:00.1", true);
    auto gpu_leaves = first(0, "0000:01:00.0", true);
    BOOST_TEST_REQUIRE(audio_leaves < log.size(), one_per_line(log));
    BOOST_TEST_REQUIRE(gpu_leaves < log.size(), one_per_line(log));
    BOOST_TEST(audio_leaves < gpu_leaves, "at prepare the audio function leaves its driver at write "
                                              << audio_leaves << ", the GPU at write " << gpu_leaves
                                              << ":" << one_per_line(log));

    std::size_t release_starts = log.size();
    BOOST_TEST_REQUIRE(host.hook("win11", "release", "end", gpu_only).status == 0);
    auto gpu_back = first(release_starts, "0000:01:00.0", false);
    auto audio_back = first(release_starts, "0000:01:00.1", false);
    BOOST_TEST_REQUIRE(gpu_back < log.size(), one_per_line(log));
    BOOST_TEST_REQUIRE(audio_back < log.size(), one_per_line(log));
    BOOST_TEST(gpu_back < audio_back, "at release the GPU is given back at write "
                                          << gpu_back << ", its audio function at write " << audio_back
                                          << ":" << one_per_line(log));
    BOOST_TEST(host.home());
}

// A music player holds only a PCM node (pcmC1D3p), no control node: it is as much a holder as
// the sound server.
BOOST_AUTO_TEST_CASE(a_process_holding_only_a_pcm_node_of_the_gpus_audio_refuses_the_prepare) {
    Desktop host;
    host.process(3100, "mpv", {"/dev/snd/pcmC1D3p"});
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:01:00.1: is held open by pid 3100 (mpv) on /dev/snd/pcmC1D3p") !=
                   std::string::npos,
               run.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

// A compute job or a Wayland client opens only the render node, never card1.
BOOST_AUTO_TEST_CASE(a_process_holding_only_the_gpus_render_node_refuses_the_prepare) {
    Desktop host;
    host.process(5100, "ollama", {"/dev/dri/renderD129"});
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("0000:01:00.0: is held open by pid 5100 (ollama) on /dev/dri/renderD129") !=
                   std::string::npos,
               run.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

// vfio-pci.ids bound the card at boot (no record), and another VM's QEMU has its group open:
// neither a second VM nor `restore` may take it from under that QEMU.
BOOST_AUTO_TEST_CASE(a_device_on_vfio_that_another_qemu_has_open_is_neither_taken_nor_restored) {
    FakeHost host;
    host.gpu("0000:01:00.0", "vfio-pci", 14).audio("0000:01:00.1", "vfio-pci", 14);
    host.process(4321, "qemu-system-x86", {"/dev/vfio/14"});
    auto prepare = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(prepare.err.find("0000:01:00.0: is in use by pid 4321 (qemu-system-x86) through /dev/vfio/14") !=
                   std::string::npos,
               prepare.err);
    BOOST_TEST(host.records().empty());
    auto restore = host.run({"restore", "0000:01:00.0"});
    BOOST_TEST(restore.status == 1);
    BOOST_TEST(restore.err.find("in use by pid 4321 (qemu-system-x86) through /dev/vfio/14") != std::string::npos,
               restore.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(release_ignores_the_fourth_argument_libvirt_passes) {
    Desktop host;
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto release = host.run({"hook", "win11", "release", "end", "shutdown"}, gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_CASE(bad_xml_fails_prepare_with_one_line_and_never_fails_release) {
    Desktop host;
    auto prepare = host.hook("win11", "prepare", "begin", "<domain><name>");
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(prepare.err.find("domain 'win11': domain XML is not well-formed") != std::string::npos, prepare.err);
    BOOST_TEST(host.hook("win11", "release", "end", "").status == 0);
    BOOST_TEST(host.kernel().writes() == 0);
}

// libxml2 is built with its own encodings only (docs/lean-binary.md: no ICU, no iconv). A domain
// in another is refused in one line that names the encoding, before anything moves; libvirt
// writes UTF-8, and the built-in ISO-8859-1 still reads.
BOOST_AUTO_TEST_CASE(a_domain_in_an_encoding_libxml2_was_built_without_is_refused_in_one_line) {
    Desktop host;
    auto shift_jis = host.hook("win11", "prepare", "begin", "<?xml version='1.0' encoding='Shift_JIS'?>\n" + gpu_only);
    BOOST_TEST(shift_jis.status == 1);
    BOOST_TEST(shift_jis.err.find("domain 'win11': domain XML declares encoding 'Shift_JIS', which vfio-hook "
                                  "does not read (UTF-8, UTF-16, ISO-8859-1, ASCII; libvirt writes UTF-8): "
                                  "give it as UTF-8, refusing\n") != std::string::npos,
               shift_jis.err);
    BOOST_TEST(std::count(shift_jis.err.begin(), shift_jis.err.end(), '\n') == 1, shift_jis.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.records().empty());

    std::string latin1 = "<?xml version='1.0' encoding='ISO-8859-1'?>\n" + gpu_only;
    latin1.insert(latin1.find("<memory"), "<description>caf\xe9</description>\n  ");
    auto prepare = host.hook("win11", "prepare", "begin", latin1);
    BOOST_TEST(prepare.status == 0, prepare.err);
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.hook("win11", "release", "end", latin1).status == 0);
    BOOST_TEST(host.home());
}

// An upgrade while a VM runs: the record was written by the first release (no override or
// console fields); the new binary's release must still bring everything home from it.
BOOST_AUTO_TEST_CASE(release_reads_a_record_written_by_the_first_release) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST_REQUIRE(host.on_vfio());
    std::ofstream(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"), std::ios::trunc)
        << "vfio-hook-record 1\nowner " << uuid_a << "\ndomain win11\n"
        << "device 0000:01:00.0 nvidia 14\ndevice 0000:01:00.1 snd_hda_intel 14\n";
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0, release.err);
    BOOST_TEST(host.home(), release.err);
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_domain_name_is_never_used_in_a_path) {
    Desktop host;
    std::string evil = domain_xml("../../etc/x y\nz", uuid_a, {"0000:01:00.0"});
    BOOST_TEST(host.hook("../../etc/x y\nz", "prepare", "begin", evil).status == 0);
    BOOST_TEST(host.records() == std::vector<std::string>{std::string(uuid_a) + ".record"});
    BOOST_TEST(host.hook("../../etc/x y\nz", "release", "end", evil).status == 0);
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_CASE(the_next_prepare_finishes_what_a_crashed_run_left) {
    Desktop host;
    host.kernel().crash_after(4);
    BOOST_CHECK_THROW(host.hook("win11", "prepare", "begin", gpu_only), SimulatedCrash);
    BOOST_TEST(!host.home());
    host.kernel().crash_after(-1);
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

// A release that could not give the GPU back leaves it recorded; the user then removes the
// hostdev from the VM. Its next start, with no host devices at all, still gives the GPU back.
BOOST_AUTO_TEST_CASE(the_next_start_gives_back_what_a_failed_release_left_even_without_hostdevs) {
    Desktop host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    host.kernel().fail_write("drivers/nvidia/bind", EIO, 1);
    host.kernel().fail_write("drivers_probe", EIO, 1);
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST_REQUIRE(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST_REQUIRE(host.records().size() == 1u);

    auto start = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {}));
    BOOST_TEST(start.status == 0, start.err);
    BOOST_TEST(host.home(), start.err);
    BOOST_TEST(host.records().empty());
}

// check (and assign) change nothing on the host, not even the loaded modules.
BOOST_AUTO_TEST_CASE(check_never_loads_the_vfio_module) {
    FakeHost host;
    std::filesystem::remove_all(host.root() / "sys/bus/pci/drivers/vfio-pci");
    host.gpu("0000:01:00.0", "nvidia", 14);
    auto run = host.run({"check", "-"}, gpu_only);
    BOOST_TEST(run.status == 0, run.out + run.err);
    BOOST_TEST(!std::filesystem::exists(host.root() / "sys/bus/pci/drivers/vfio-pci"));
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);  // the start loads it
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(a_missing_vfio_module_that_cannot_load_is_a_refusal) {
    FakeHost host;
    std::filesystem::remove_all(host.root() / "sys/bus/pci/drivers/vfio-pci");
    host.gpu("0000:01:00.0", "nvidia", 14);
    host.kernel().refuse_module_load();
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find("modprobe vfio-pci") != std::string::npos, run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
}

BOOST_AUTO_TEST_SUITE_END()
