// Liveness before a give-back and release by libvirt's shutoff reason (issue 26, points 2 and 3):
// a device whose live config space does not answer is never handed to its host driver.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>

#include "core/liveness.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

const char* gpu = "0000:01:00.0";
const char* hdmi = "0000:01:00.1";

// A discrete GPU and its HDMI audio, in group 14, started by `win11`.
struct StartedVm : FakeHost {
    StartedVm() {
        gpu_address_setup();
        auto prepare = hook("win11", "prepare", "begin", xml);
        if (prepare.status != 0) throw std::runtime_error("prepare failed: " + prepare.err);
    }
    void gpu_address_setup() {
        this->gpu(::gpu, "amdgpu", 14).drm_node(::gpu, "card1");
        audio(hdmi, "snd_hda_intel", 14);
    }
    Run release(const std::string& reason) { return run({"hook", "win11", "release", "end", reason}, xml); }
    bool wrote(const std::string& part) const {
        for (const auto& line : const_cast<StartedVm*>(this)->kernel().write_log()) {
            if (contains(line, part)) return true;
        }
        return false;
    }
    std::string xml = domain_xml("win11", uuid_a, {::gpu});
};

}  // namespace

BOOST_AUTO_TEST_SUITE(liveness)

BOOST_AUTO_TEST_CASE(a_gpu_that_stops_answering_stays_on_vfio_recorded_and_the_release_says_what_to_do) {
    StartedVm host;
    host.reset_methods(gpu, "flr");
    host.stops_answering(gpu);
    auto release = host.release("-");
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci", "a dead GPU was handed to its host driver");
    BOOST_TEST(host.driver_of(hdmi) == "snd_hda_intel", "its audio function answers and goes home");
    BOOST_TEST(host.records().size() == 1u);
    BOOST_TEST(contains(release.err, "0000:01:00.0: not given back to amdgpu: its config space reads vendor 0xffff"),
               release.err);
    BOOST_TEST(contains(release.err, "stays on vfio-pci, recorded"), release.err);
    // flr is a per-function reset: the user may reset it; `bus` alone would reset its neighbours.
    BOOST_TEST(contains(release.err, "reset it (`echo 1 > "), release.err);
    BOOST_TEST(!host.wrote("/reset <-"), "a normal release resets nothing on its own");

    // status names it, with the fix, as long as it is recorded and does not answer.
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 1);
    BOOST_TEST(contains(status.out, "0000:01:00.0: its config space reads vendor 0xffff (it does not answer); it is on "
                                    "vfio-pci, recorded for domain 'win11'"), status.out);
    auto json = host.run({"status", "--json"});
    BOOST_TEST(contains(json.out, "{\"address\":\"0000:01:00.0\",\"problem\":\"its config space reads vendor 0xffff"), json.out);

    // recover says the same while it does not answer, and gives it back once it does.
    auto still = host.run({"recover"});
    BOOST_TEST(still.status == 1);
    BOOST_TEST(contains(still.out, "problem: 0000:01:00.0: not given back to amdgpu"), still.out);
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    host.answers_again(gpu);
    auto recovered = host.run({"recover"});
    BOOST_TEST(recovered.status == 0, recovered.out);
    BOOST_TEST(host.driver_of(gpu) == "amdgpu");
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_dead_gpu_whose_only_reset_is_a_bus_reset_gets_reboot_advice) {
    StartedVm host;
    host.reset_methods(gpu, "bus");
    host.stops_answering(gpu);
    auto release = host.release("crashed");
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    BOOST_TEST(contains(release.err, "reboot the host (its reset_method 'bus' would reset the other devices"),
               release.err);
    BOOST_TEST(!host.wrote("/reset <-"), "a bus reset was tried on the user's behalf");
}

BOOST_AUTO_TEST_CASE(after_a_crash_a_dead_gpu_with_a_per_function_reset_is_reset_once_and_goes_home) {
    StartedVm host;
    host.reset_methods(gpu, "flr pm");
    host.stops_answering(gpu);
    host.kernel().when_written(std::string(gpu) + "/reset", [&] { host.answers_again(gpu); });
    auto release = host.release("crashed");
    BOOST_TEST(host.wrote("0000:01:00.0/reset <- 1"));
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(after_a_crash_a_reset_that_does_not_revive_it_leaves_it_on_vfio_with_reboot_advice) {
    StartedVm host;
    host.reset_methods(gpu, "flr");
    host.stops_answering(gpu);
    auto release = host.release("daemon");
    int resets = 0;
    for (const auto& line : host.kernel().write_log()) resets += contains(line, "/reset <-");
    BOOST_TEST(resets == 1, "the reset is tried once");
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    BOOST_TEST(contains(release.err, "also after its reset (flr); it stays on vfio-pci, recorded: reboot the host"),
               release.err);
}

// Strict after a crash: no proof of life (a config space that cannot be read) is no give-back;
// after a normal shutdown, or from an older libvirt that passes `-`, it goes home as before.
BOOST_AUTO_TEST_CASE(an_unreadable_config_space_blocks_the_give_back_only_after_a_crash) {
    for (const std::string reason : {"crashed", "daemon", "shutdown", "destroyed", "-", "from snapshot", "some-future-word"}) {
        StartedVm host;
        std::filesystem::remove(host.root() / "sys/bus/pci/devices" / gpu / "config");
        auto release = host.release(reason);
        bool strict = reason == "crashed" || reason == "daemon";
        BOOST_TEST((host.driver_of(gpu) == (strict ? "vfio-pci" : "amdgpu")), reason << ": " << release.err);
        BOOST_TEST(contains(release.err, "its config space could not be read") == strict, reason << ": " << release.err);
    }
}

BOOST_AUTO_TEST_CASE(a_config_read_that_does_not_return_counts_as_not_answering) {
    StartedVm host;
    // The kernel resumes a device it believes in D3cold before the read; that resume hangs.
    std::ofstream(host.root() / "sys/bus/pci/devices" / gpu / "power_state") << "D3cold\n";
    host.kernel().hang_read(std::string(gpu) + "/config");
    auto release = host.release("shutdown");
    BOOST_TEST(host.driver_of(gpu) == "vfio-pci");
    BOOST_TEST(contains(release.err, "0000:01:00.0: not given back to amdgpu: reading its config space did not return within 50 ms"),
               release.err);
}

BOOST_AUTO_TEST_CASE(a_gpu_in_d3cold_is_woken_by_the_read_and_judged_by_what_it_answers) {
    for (bool answers : {true, false}) {
        StartedVm host;
        std::ofstream(host.root() / "sys/bus/pci/devices" / gpu / "power_state") << "D3cold\n";
        if (!answers) host.stops_answering(gpu);
        auto release = host.release("crashed");
        BOOST_TEST(host.driver_of(gpu) == (answers ? "amdgpu" : "vfio-pci"), release.err);
    }
}

BOOST_AUTO_TEST_CASE(a_gpu_idle_in_d3hot_answers_and_goes_home_even_after_a_crash) {
    StartedVm host;
    host.pm_state(gpu, 3);
    auto release = host.release("crashed");
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
}

// The parse behind it, on the bytes the kernel returns.
BOOST_AUTO_TEST_CASE(config_space_bytes_judged) {
    BOOST_TEST((judge_config_space(fake_config_space(0x1002, 0x73bf, 0x030000)).state == Liveness::State::alive));
    BOOST_TEST(judge_config_space(fake_config_space(0x1002, 0x73bf, 0x030000, 3)).power_state_name() == "D3hot");
    BOOST_TEST((judge_config_space(std::string(64, '\xff')).state == Liveness::State::gone));
    std::string header_gone = fake_config_space(0x1002, 0x73bf, 0x030000);
    header_gone[0x0e] = static_cast<char>(0xff);
    BOOST_TEST((judge_config_space(header_gone).state == Liveness::State::gone));
    BOOST_TEST((judge_config_space("").state == Liveness::State::unknown));
    BOOST_TEST(reset_is_per_function("flr pm"));
    BOOST_TEST(!reset_is_per_function("flr bus"));
    BOOST_TEST(!reset_is_per_function(""));
}

// The reset is a step for a device nobody drives: vfio-pci's (it resets on open and close
// anyway) or none. A recorded device a script put back on its host driver before release (a
// "stopped end" script of another tool) is driven by amdgpu: a `reset` written then runs under
// a live driver (pci_reset_function() with amdgpu bound), which can hang the host's GPU stack.
BOOST_AUTO_TEST_CASE(after_a_crash_a_dead_device_on_a_host_driver_is_not_reset_under_it) {
    StartedVm host;
    host.reset_methods(gpu, "flr");
    std::filesystem::remove(host.root() / "sys/bus/pci/devices" / gpu / "driver");
    std::filesystem::remove_all(host.root() / "sys/bus/pci/devices" / gpu / "vfio-dev");  // gone with vfio-pci's unbind
    std::filesystem::create_directory_symlink(host.root() / "sys/bus/pci/drivers/amdgpu",
                                              host.root() / "sys/bus/pci/devices" / gpu / "driver");
    host.stops_answering(gpu);
    auto release = host.release("crashed");
    BOOST_TEST(!host.wrote("/reset <-"), "reset written under amdgpu: " << release.err);
    BOOST_TEST(host.driver_of(gpu) == "amdgpu", release.err);
}

BOOST_AUTO_TEST_SUITE_END()
