// hook.d: the user's scripts, run by the hook at the right moment, safely. Real scripts (sh) in
// the fake root, run through the real command line.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/script_plan.hpp"
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

struct Desktop : FakeHost {
    Desktop() {
        gpu("0000:01:00.0", "nvidia", 14).drm_node("0000:01:00.0", "card1");
        audio("0000:01:00.1", "snd_hda_intel", 14);
    }
    fs::path trace() const { return root() / "trace"; }
    // A script that appends "NAME driver-of-the-GPU-now VFIO_HOOK_* args" to the trace file.
    void script(const std::string& directory, const std::string& name, const std::string& body = "") {
        fs::path file = root() / directory / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << "#!/bin/sh\n"
                            << "gpu=$(basename \"$(readlink " << (root() / "sys/bus/pci/devices/0000:01:00.0/driver").string()
                            << ")\")\n"
                            << "echo \"" << name << " gpu=$gpu domain=$VFIO_HOOK_DOMAIN uuid=$VFIO_HOOK_DOMAIN_UUID "
                            << "op=$VFIO_HOOK_OPERATION/$VFIO_HOOK_SUB_OPERATION pci=[$VFIO_HOOK_PCI_ADDRESSES] args=$*"
                            << " xml=$(grep -c '<hostdev' || true)\" >> " << trace().string() << "\n"
                            << body << "\n";
        fs::permissions(file, fs::perms(0755));
    }
    bool home() const { return driver_of("0000:01:00.0") == "nvidia" && driver_of("0000:01:00.1") == "snd_hda_intel"; }
};

// Running, not a zombie waiting for an init that may be slow to reap it.
bool alive(int pid) {
    std::string stat = read("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(") ");
    return close != std::string::npos && stat[close + 2] != 'Z';
}

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

}  // namespace

BOOST_AUTO_TEST_SUITE(scripts)

BOOST_AUTO_TEST_CASE(prepare_scripts_run_before_the_moves_and_release_scripts_after_the_devices_are_home) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/all/prepare/begin", "50-global");
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "20-second");
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-first");
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "README");
    fs::permissions(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin/README", fs::perms(0644));
    host.script("etc/libvirt/hooks/qemu.d/win11/prepare/begin", "vfio-tools-style");
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "90-restart-dm");
    host.script("etc/vfio-hook/hook.d/vm/other/prepare/begin", "not-mine");

    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    BOOST_TEST(host.hook("win11", "release", "end", gpu_only).status == 0);
    BOOST_TEST(host.home());

    std::string expected =
        "50-global gpu=nvidia domain=win11 uuid=" + std::string(uuid_a) +
        " op=prepare/begin pci=[0000:01:00.0] args=win11 prepare begin - xml=1\n"
        "10-first gpu=nvidia domain=win11 uuid=" + std::string(uuid_a) +
        " op=prepare/begin pci=[0000:01:00.0] args=win11 prepare begin - xml=1\n"
        "20-second gpu=nvidia domain=win11 uuid=" + std::string(uuid_a) +
        " op=prepare/begin pci=[0000:01:00.0] args=win11 prepare begin - xml=1\n"
        "vfio-tools-style gpu=nvidia domain=win11 uuid=" + std::string(uuid_a) +
        " op=prepare/begin pci=[0000:01:00.0] args=win11 prepare begin - xml=1\n"
        "90-restart-dm gpu=nvidia domain=win11 uuid=" + std::string(uuid_a) +
        " op=release/end pci=[0000:01:00.0 0000:01:00.1] args=win11 release end - xml=1\n";
    BOOST_TEST(read(host.trace()) == expected);
}

BOOST_AUTO_TEST_CASE(scripts_of_other_events_run_at_their_own_call_and_never_reach_stdout) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/migrate/begin", "10-talk", "echo '<domain>not for libvirt</domain>'");
    host.script("etc/vfio-hook/hook.d/vm/win11/started/begin", "10-pin");
    auto migrate = host.hook("win11", "migrate", "begin", gpu_only);
    BOOST_TEST(migrate.status == 0);
    BOOST_TEST(migrate.out.empty(), migrate.out);
    BOOST_TEST(host.hook("win11", "started", "begin", gpu_only).status == 0);
    BOOST_TEST(contains(read(host.trace()), "10-talk gpu=nvidia domain=win11"));
    BOOST_TEST(contains(read(host.trace()), "10-pin gpu=nvidia domain=win11"));
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(a_failing_prepare_script_stops_the_start_with_its_last_line_and_nothing_moves) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-dm",
                "echo 'stopping gdm' >&2; echo 'gdm did not stop: card1 still open' >&2; exit 3");
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "20-never");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "not started, nothing was changed"), run.err);
    BOOST_TEST(contains(run.err, "10-stop-dm exited 3: gdm did not stop: card1 still open"), run.err);
    BOOST_TEST(!contains(read(host.trace()), "20-never"));
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_failing_release_script_is_logged_and_the_devices_still_come_home) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "10-broken", "exit 1");
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "20-still-runs");
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(contains(read(host.trace()), "20-still-runs gpu=nvidia"));
}

BOOST_AUTO_TEST_CASE(a_script_that_hangs_is_killed_with_its_process_group_at_the_deadline) {
    Desktop host;
    fs::path child_pid = host.root() / "child.pid";
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-hangs",
                "sleep 60 & echo $! > " + child_pid.string() + "; sleep 60");
    auto start = std::chrono::steady_clock::now();
    auto run = host.run({"--script-deadline-ms", "500", "hook", "win11", "prepare", "begin", "-"}, gpu_only);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "10-hangs did not finish within 500 ms (script-deadline-ms): killed with its process group"),
               run.err);
    BOOST_TEST(took < std::chrono::seconds(10));
    int pid = std::stoi(read(child_pid));
    // SIGKILL is sent to the whole group at once; the child's exit may take a moment to show.
    for (int i = 0; i < 200 && alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_TEST(!alive(pid), "the script's background child " << pid << " survived");
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(an_unsafe_script_or_directory_is_refused_by_name_and_not_run) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-world-writable");
    fs::path script = host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin/10-world-writable";
    fs::permissions(script, fs::perms(0777));
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "hook.d script not run: " + script.string() + " is writable by group or others"), run.err);
    BOOST_TEST(!fs::exists(host.trace()));
    BOOST_TEST(host.kernel().writes() == 0);

    fs::permissions(script, fs::perms(0755));
    fs::permissions(host.root() / "etc/vfio-hook/hook.d/vm", fs::perms(0775));
    run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, (host.root() / "etc/vfio-hook/hook.d/vm").string() + " is writable by group or others"),
               run.err);
    BOOST_TEST(!fs::exists(host.trace()));
}

BOOST_AUTO_TEST_CASE(the_plan_refuses_foreign_owners_and_skips_what_is_not_a_script) {
    auto entry = [](const std::string& path, unsigned uid, unsigned mode) { return EntryInfo{path, uid, mode}; };
    ScriptDirectory directory{{entry("/etc/vfio-hook", 0, S_IFDIR | 0755)},
                              {entry("/d/20-b", 0, S_IFREG | 0755), entry("/d/10-a", 0, S_IFREG | 0700),
                               entry("/d/.hidden", 0, S_IFREG | 0755), entry("/d/notes", 0, S_IFREG | 0644),
                               entry("/d/sub", 0, S_IFDIR | 0755)}};
    auto plan = plan_scripts({directory}, 0);
    BOOST_TEST(plan.refusals.empty());
    BOOST_TEST(plan.scripts == (std::vector<std::string>{"/d/10-a", "/d/20-b"}));
    directory.entries.push_back(entry("/d/30-c", 1000, S_IFREG | 0755));
    plan = plan_scripts({directory}, 0);
    BOOST_TEST(plan.scripts.empty());
    BOOST_TEST(plan.refusals == (std::vector<std::string>{"/d/30-c is owned by uid 1000, not root"}));
    BOOST_TEST(script_directories("..", "prepare", "begin").empty());
    BOOST_TEST(script_directories("a/b", "prepare", "begin").empty());
    BOOST_TEST(script_directories("win 11", "prepare", "begin").size() == 3u);
}

// scripts.cpp run_one: once waitpid reports the exit, only one read(4096) per pipe is done, so a
// script whose output is still in the pipe when it exits loses its last stderr line: the refusal
// names the wrong reason (or none). Many short lines make the hook's reading slower than the exit.
BOOST_AUTO_TEST_CASE(a_failing_script_is_refused_with_its_last_stderr_line_after_much_output) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-dm",
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
    host.script("etc/vfio-hook/scripts/win11-prepare", "10-must-run", "echo 'not ready' >&2; exit 1");
    fs::create_directories(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare");
    fs::create_directory_symlink(real, host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1, "the start went ahead; the script ran: " << fs::exists(host.trace()));
    BOOST_TEST(contains(run.err, "prepare/begin is a symbolic link"), run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    host.hook("win11", "release", "end", gpu_only);
}

// hook.cpp run_user_scripts: one unsafe directory dropped the scripts of all the others, and
// release threw the refusal away without a word: the display manager never came back.
BOOST_AUTO_TEST_CASE(release_skips_an_unsafe_directory_by_name_and_still_runs_the_safe_ones) {
    Desktop host;
    host.script("etc/vfio-hook/hook.d/all/release/end", "90-restart-dm");
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "10-unsafe");
    fs::path unsafe = host.root() / "etc/vfio-hook/hook.d/vm/win11/release/end";
    fs::permissions(unsafe, fs::perms(0777));
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(contains(read(host.trace()), "90-restart-dm gpu=nvidia"), read(host.trace()));
    BOOST_TEST(!contains(read(host.trace()), "10-unsafe"));
    BOOST_TEST(contains(release.err, "hook.d script not run: " + unsafe.string() + " is writable by group or others"),
               release.err);

    // prepare stays conservative: its scripts stop the display manager, and a start refused
    // after that would leave the host without one; so nothing runs, and the start is refused.
    host.script("etc/vfio-hook/hook.d/all/prepare/begin", "10-stop-dm");
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "20-unsafe");
    fs::permissions(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin", fs::perms(0777));
    auto prepare = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(contains(prepare.err, "prepare/begin is writable by group or others"), prepare.err);
    BOOST_TEST(!contains(read(host.trace()), "10-stop-dm"));
}

BOOST_AUTO_TEST_SUITE_END()
