// hook.d: the user's scripts, run by the hook at the right moment, safely. Real scripts (sh) in
// the fake root, run through the real command line.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/script_plan.hpp"
#include "host/scripts.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// The shared Desktop, with the user's scripts tracing what they see.
struct ScriptDesktop : Desktop {
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
};

// Running, not a zombie waiting for an init that may be slow to reap it.
bool alive(int pid) {
    std::string stat = read("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(") ");
    return close != std::string::npos && stat[close + 2] != 'Z';
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        lines.push_back(text.substr(start, end - start));
    if (start < text.size()) lines.push_back(text.substr(start));
    return lines;
}

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

}  // namespace

BOOST_AUTO_TEST_SUITE(scripts)

BOOST_AUTO_TEST_CASE(prepare_scripts_run_before_the_moves_and_release_scripts_after_the_devices_are_home) {
    ScriptDesktop host;
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
    ScriptDesktop host;
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
    ScriptDesktop host;
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
    ScriptDesktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "10-broken", "exit 1");
    host.script("etc/vfio-hook/hook.d/vm/win11/release/end", "20-still-runs");
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    auto release = host.hook("win11", "release", "end", gpu_only);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.home());
    BOOST_TEST(contains(read(host.trace()), "20-still-runs gpu=nvidia"));
}

BOOST_AUTO_TEST_CASE(a_script_that_hangs_is_killed_with_its_process_group_at_the_deadline) {
    ScriptDesktop host;
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
    ScriptDesktop host;
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
    ScriptDesktop host;
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
    ScriptDesktop host;
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

// scripts.cpp run_one: a script is checked when the directories are listed and run by its path
// later, after the scripts before it (a display manager's stop takes seconds). Whoever replaces
// the file in between has the new one run as root. Here the script before it does the swap.
BOOST_AUTO_TEST_CASE(a_script_swapped_after_its_check_is_refused_and_never_runs) {
    ScriptDesktop host;
    host.script("opt/vfio", "stop-dm");
    fs::path target = host.root() / "opt/vfio/stop-dm";
    fs::path begin = host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin";
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-swap",
                "printf '#!/bin/sh\\necho SWAPPED >> " + host.trace().string() + "\\n' > " + target.string() +
                    ".new; chmod 0777 " + target.string() + ".new; mv -f " + target.string() + ".new " +
                    target.string());
    fs::create_symlink(target, begin / "20-stop-dm");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, (begin / "20-stop-dm").string() + " is writable by group or others"), run.err);
    BOOST_TEST(contains(read(host.trace()), "10-swap gpu=nvidia"));
    BOOST_TEST(!contains(read(host.trace()), "SWAPPED"), read(host.trace()));
    BOOST_TEST(host.kernel().writes() == 0);
}

// scripts.cpp run_one: the check of the open file is only worth something if that very file is
// what runs: a name looked up again at exec may by then be another file. The seam swaps the file
// after the last check, as a user racing the hook would.
BOOST_AUTO_TEST_CASE(a_script_replaced_between_its_last_check_and_its_exec_is_not_what_runs) {
    ScriptDesktop host;
    host.script("opt/vfio", "stop-dm");
    fs::path target = host.root() / "opt/vfio/stop-dm";
    fs::path begin = host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin";
    fs::create_directories(begin);
    fs::create_symlink(target, begin / "10-stop-dm");
    struct Seam {
        explicit Seam(std::function<void(const std::string&)> swap) { before_script_exec_for_tests = std::move(swap); }
        ~Seam() { before_script_exec_for_tests = nullptr; }
    } seam([&](const std::string&) {
        std::ofstream(target.string() + ".new") << "#!/bin/sh\necho SWAPPED >> " << host.trace().string() << "\n";
        fs::permissions(target.string() + ".new", fs::perms(0755));
        fs::rename(target.string() + ".new", target);
    });
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(contains(read(host.trace()), "stop-dm gpu=nvidia"), read(host.trace()));
    BOOST_TEST(!contains(read(host.trace()), "SWAPPED"), read(host.trace()));
    host.hook("win11", "release", "end", gpu_only);
}

// scripts.cpp find_scripts: a linked script is judged by its target's owner and mode only; the
// directories on the way there are not looked at, so their owner may swap the file at will.
BOOST_AUTO_TEST_CASE(a_script_linked_through_a_directory_an_ordinary_user_owns_is_refused_by_name) {
    ScriptDesktop host;
    fs::path alice = host.root() / "home/alice";
    host.script("home/alice/vfio", "stop-dm");
    host.script("opt/vfio", "stop-dm");
    // An ordinary user's directory: owned by uid 1000 (as root), or writable by others (as anyone).
    if (is_root()) {
        BOOST_TEST_REQUIRE(::chown(alice.c_str(), 1000, 1000) == 0);
        BOOST_TEST_REQUIRE(::chown((alice / "vfio").c_str(), 1000, 1000) == 0);
    } else {
        fs::permissions(alice, fs::perms(0777));
        fs::permissions(alice / "vfio", fs::perms(0777));
    }
    std::string why = is_root() ? " is owned by uid 1000, not root" : " is writable by group or others";
    fs::path begin = host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin";
    fs::create_directories(begin);
    // The file itself is root's and safe; the directory it is in is not.
    fs::create_symlink(alice / "vfio/stop-dm", begin / "10-stop-dm");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "hook.d script not run: " + (alice / "vfio").string() + why), run.err);
    BOOST_TEST(!fs::exists(host.trace()));

    // A link to a link in her directory that leads to a safe place: she may point it elsewhere.
    fs::remove(begin / "10-stop-dm");
    fs::create_symlink(host.root() / "opt/vfio/stop-dm", alice / "current");
    fs::create_symlink(alice / "current", begin / "10-stop-dm");
    run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "hook.d script not run: " + alice.string() + why), run.err);
    BOOST_TEST(!fs::exists(host.trace()));
    BOOST_TEST(host.kernel().writes() == 0);

    // A link whose whole way is root's runs.
    fs::remove(begin / "10-stop-dm");
    fs::create_symlink(host.root() / "opt/vfio/stop-dm", begin / "10-stop-dm");
    BOOST_TEST(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(contains(read(host.trace()), "stop-dm gpu=nvidia"));
    host.hook("win11", "release", "end", gpu_only);
}

// scripts.cpp find_scripts: the directories above a hook.d directory were checked from
// etc/vfio-hook down: a group-writable /etc (or /) let its group swap etc/vfio-hook itself.
BOOST_AUTO_TEST_CASE(every_directory_from_the_root_down_to_hook_d_is_checked) {
    ScriptDesktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-dm");
    fs::permissions(host.root() / "etc", fs::perms(0775));
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "hook.d script not run: " + (host.root() / "etc").string() + " is writable by group or others"),
               run.err);
    BOOST_TEST(!fs::exists(host.trace()));
}

// hook.cpp run_user_scripts: one unsafe directory dropped the scripts of all the others, and
// release threw the refusal away without a word: the display manager never came back.
BOOST_AUTO_TEST_CASE(release_skips_an_unsafe_directory_by_name_and_still_runs_the_safe_ones) {
    ScriptDesktop host;
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

// scripts.cpp run_one: output without a newline piled up in memory and was searched again for a
// newline at every read (quadratic: 64 MiB took 42 s, past the deadline), then logged whole.
BOOST_AUTO_TEST_CASE(a_long_line_of_script_output_is_logged_cut_with_a_note) {
    ScriptDesktop host;
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-noisy",
                "head -c 1048576 /dev/zero | tr '\\0' x; echo\n"
                "head -c 200000 /dev/zero | tr '\\0' y >&2; exit 3");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "10-noisy: [line cut to 4096 of 1048576 bytes] xxxx"), run.err.substr(0, 300));
    BOOST_TEST(contains(run.err, "10-noisy exited 3: [line cut to 4096 of 200000 bytes] yyyy"), run.err.substr(0, 300));
    for (const auto& line : lines_of(run.err)) BOOST_TEST(line.size() < 4096u + 300u);
}

// A line cut at 4096 bytes in the middle of a UTF-8 character is no longer text: journalctl shows
// such a MESSAGE as "[4.1K blob data]" (utf8_is_printable() fails), and libvirt's error carries a
// broken character. The cut falls before the character.
BOOST_AUTO_TEST_CASE(a_long_line_is_cut_between_utf8_characters) {
    ScriptDesktop host;
    // 4095 bytes of 'a', then "é" (C3 A9) straddling byte 4096.
    host.script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-noisy",
                "{ head -c 4095 /dev/zero | tr '\\0' a; printf '\\303\\251 und weiter\\n'; } >&2; exit 3");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "10-noisy exited 3: [line cut to 4095 of 4108 bytes] aaaa"), run.err.substr(0, 300));
    BOOST_TEST(!contains(run.err, "a\xC3"), "a lone lead byte of a cut character");
    BOOST_TEST(!contains(run.err, "a\xC3\xA9"), "more than 4096 bytes kept");
}

// NixOS ships /etc files as links into the store: /etc/X -> /etc/static/X, /etc/static ->
// /nix/store/HASH-etc/etc, and /nix/store is root:nixbld 1775, group-writable with the sticky bit
// (nix's local-store.cc: `chmod(realStoreDir, 01775)`). The sticky bit is what makes that safe:
// in it only an entry's owner, the directory's owner or root may remove or rename an entry
// (fs/namei.c may_delete() -> check_sticky()), so nixbld may add names but not swap root's.
// Refusing it refused every hook.d script a NixOS host installs the NixOS way, and with it every
// start of the VM.
BOOST_AUTO_TEST_CASE(a_script_reached_through_a_sticky_store_of_trusted_entries_runs) {
    ScriptDesktop host;
    host.script("nix/store/abc-etc/etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-stop-dm");
    fs::permissions(host.root() / "nix/store", fs::perms(01775));
    fs::create_directories(host.root() / "etc/static");
    fs::remove(host.root() / "etc/static");
    fs::create_symlink(host.root() / "nix/store/abc-etc/etc", host.root() / "etc/static");
    fs::path begin = host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin";
    fs::create_directories(begin);
    fs::create_symlink(host.root() / "etc/static/vfio-hook/hook.d/vm/win11/prepare/begin/10-stop-dm",
                       begin / "10-stop-dm");
    auto run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(contains(read(host.trace()), "10-stop-dm gpu=nvidia"));
    host.hook("win11", "release", "end", gpu_only);

    // Without the sticky bit anyone in the group may rename root's entry away and put theirs there.
    fs::permissions(host.root() / "nix/store", fs::perms(0775));
    run = host.hook("win11", "prepare", "begin", gpu_only);
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, (host.root() / "nix/store").string() + " is writable by group or others"), run.err);
}

// With the sticky bit, an entry on the way that someone else owns is theirs to swap.
BOOST_AUTO_TEST_CASE(a_sticky_directory_protects_only_entries_root_owns) {
    auto entry = [](const std::string& path, unsigned uid, unsigned mode) { return EntryInfo{path, uid, mode}; };
    EntryInfo store = entry("/nix/store", 0, S_IFDIR | 01775);
    store.looked_up_owners = {0};
    EntryInfo script = entry("/d/10-a", 0, S_IFREG | 0755);
    script.way = {store};
    ScriptDirectory directory{{entry("/d", 0, S_IFDIR | 0755)}, {script}};
    auto plan = plan_scripts({directory}, 0);
    BOOST_TEST(plan.refusals.empty());
    BOOST_TEST(plan.scripts == (std::vector<std::string>{"/d/10-a"}));
    directory.entries[0].way[0].looked_up_owners = {0, 30001};  // a nixbld user's entry on the way
    plan = plan_scripts({directory}, 0);
    BOOST_TEST(plan.scripts.empty());
    BOOST_TEST(plan.refusals ==
               (std::vector<std::string>{"/nix/store is writable by group or others (/d/10-a leads through it)"}));
    directory.entries[0].way[0].looked_up_owners = {0};
    directory.entries[0].way[0].uid = 30001;  // a sticky directory its owner may still rearrange
    plan = plan_scripts({directory}, 0);
    BOOST_TEST(plan.scripts.empty());
}

BOOST_AUTO_TEST_SUITE_END()
