// Who runs /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/*: vfio-hook when it is hooks/qemu (or
// no hooks/qemu exists), the program in hooks/qemu otherwise (VFIO-Tools' dispatcher runs that
// layout itself). Real scripts in the fake root, run through the real command line.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fstream>

#include "core/hook_placement.hpp"
#include "fake_host.hpp"
#include "host/hook_slots.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// A stand-in for VFIO-Tools' hook helper (PassthroughPOST/VFIO-Tools, libvirt_hooks/qemu), as
// users install it at /etc/libvirt/hooks/qemu: with `set -e`, it runs every executable file of
// $(dirname $0)/qemu.d/$1/$2/$3 (find -L -maxdepth 1 -type f -executable) with the hook's
// arguments, or that path itself when it is an executable file.
const char* vfio_tools_dispatcher = R"sh(#!/bin/bash
set -e
hookpath="$(dirname "$0")/qemu.d/$1/$2/$3"
if [ -f "$hookpath" ] && [ -s "$hookpath" ] && [ -x "$hookpath" ]; then
    "$hookpath" "$@"
elif [ -d "$hookpath" ]; then
    while read -r file; do
        if [ -n "$file" ]; then "$file" "$@"; fi
    done <<< "$(find -L "$hookpath" -maxdepth 1 -type f -executable -print)"
fi
)sh";

// The shared Desktop, with hooks/qemu and the scripts' layouts to place.
struct PlacementDesktop : Desktop {
    fs::path hooks() const { return root() / "etc/libvirt/hooks"; }
    fs::path trace() const { return root() / "trace"; }
    // A script that appends its name and the operation to the trace.
    void script(const std::string& directory, const std::string& name) {
        fs::path file = root() / directory / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << "#!/bin/sh\necho \"" << name << " $2/$3\" >> " << trace().string() << "\n";
        fs::permissions(file, fs::perms(0755));
    }
    // The user's scripts in both layouts, for win11's prepare and for an event only scripts act on.
    void scripts_in_both_layouts() {
        script("etc/vfio-hook/hook.d/vm/win11/prepare/begin", "10-own");
        script("etc/libvirt/hooks/qemu.d/win11/prepare/begin", "20-vfio-tools");
        script("etc/libvirt/hooks/qemu.d/win11/started/begin", "30-vfio-tools");
    }
    void dispatcher_as_main_hook() {
        fs::create_directories(hooks());
        std::ofstream(hooks() / "qemu") << vfio_tools_dispatcher;
        fs::permissions(hooks() / "qemu", fs::perms(0755));
    }
    // This very program (the unit tests' binary stands for vfio-hook) linked into a slot.
    void this_program_as(const std::string& slot) {
        fs::create_directories((hooks() / slot).parent_path());
        fs::create_symlink(fs::read_symlink("/proc/self/exe"), hooks() / slot);
    }
};

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

}  // namespace

BOOST_AUTO_TEST_SUITE(hook_placement)

BOOST_AUTO_TEST_CASE(beside_a_vfio_tools_dispatcher_only_vfio_hooks_own_scripts_run) {
    PlacementDesktop host;
    host.dispatcher_as_main_hook();
    host.this_program_as("qemu.d/vfio-hook");
    host.scripts_in_both_layouts();
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.hook("win11", "started", "begin", gpu_only).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "vfio-pci");
    // The dispatcher (libvirt runs it first) runs 20- and 30-vfio-tools: vfio-hook must not again.
    BOOST_TEST(read(host.trace()) == "10-own prepare/begin\n");
    host.hook("win11", "release", "end", gpu_only);
}

BOOST_AUTO_TEST_CASE(as_hooks_qemu_itself_vfio_hook_runs_both_layouts) {
    PlacementDesktop host;
    host.this_program_as("qemu");
    host.scripts_in_both_layouts();
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(host.hook("win11", "started", "begin", gpu_only).status == 0);
    BOOST_TEST(read(host.trace()) == "10-own prepare/begin\n20-vfio-tools prepare/begin\n30-vfio-tools started/begin\n");
    host.hook("win11", "release", "end", gpu_only);
}

BOOST_AUTO_TEST_CASE(without_a_main_hook_the_drop_in_runs_both_layouts_as_nobody_else_does) {
    PlacementDesktop host;
    host.this_program_as("qemu.d/vfio-hook");
    host.scripts_in_both_layouts();
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    BOOST_TEST(read(host.trace()) == "10-own prepare/begin\n20-vfio-tools prepare/begin\n");
    host.hook("win11", "release", "end", gpu_only);
}

// Installed twice (hooks/qemu and qemu.d/vfio-hook, the same binary): the drop-in, run by libvirt
// under its qemu.d name (here reached through a link to the hooks directory, as argv[0]'s
// resolved path), leaves the layout to hooks/qemu, which runs it.
BOOST_AUTO_TEST_CASE(run_as_a_qemu_d_drop_in_vfio_hook_leaves_the_layout_to_hooks_qemu) {
    PlacementDesktop host;
    host.this_program_as("qemu");
    host.this_program_as("qemu.d/vfio-hook");
    host.scripts_in_both_layouts();
    fs::create_directory_symlink(host.hooks() / "qemu.d", host.root() / "hooks-link");
    std::string argv0 = (host.root() / "hooks-link/vfio-hook").string();
    auto run = host.run_exactly({argv0, "--root", host.root().string(), "hook", "win11", "started", "begin", "-"},
                                gpu_only);
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST(!fs::exists(host.trace()), read(host.trace()));
    BOOST_TEST((slot_of(argv0) == HookSlot::drop_in));
    BOOST_TEST((slot_of("/etc/libvirt/hooks/qemu.d/vfio-hook") == HookSlot::drop_in));
    BOOST_TEST((slot_of("/etc/libvirt/hooks/qemu") == HookSlot::main_hook));
    BOOST_TEST((slot_of("vfio-hook") == HookSlot::by_hand));
}

BOOST_AUTO_TEST_CASE(the_decision_for_every_slot_and_main_hook) {
    using enum HookSlot;
    using enum MainHookKind;
    BOOST_TEST(vfio_hook_runs_qemu_d_layout(main_hook, this_program));
    BOOST_TEST(vfio_hook_runs_qemu_d_layout(drop_in, absent));
    BOOST_TEST(!vfio_hook_runs_qemu_d_layout(drop_in, this_program));
    BOOST_TEST(!vfio_hook_runs_qemu_d_layout(drop_in, other_program));
    BOOST_TEST(vfio_hook_runs_qemu_d_layout(by_hand, absent));
    BOOST_TEST(vfio_hook_runs_qemu_d_layout(by_hand, this_program));
    BOOST_TEST(!vfio_hook_runs_qemu_d_layout(by_hand, other_program));
}

BOOST_AUTO_TEST_CASE(status_says_which_program_runs_which_layout) {
    PlacementDesktop beside;
    beside.dispatcher_as_main_hook();
    beside.this_program_as("qemu.d/vfio-hook");
    auto status = beside.run({"status"});
    BOOST_TEST(contains(status.out, "hook scripts: vfio-hook is /etc/libvirt/hooks/qemu.d/vfio-hook: it runs "
                                    "/etc/vfio-hook/hook.d/; /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/ is "
                                    "left to /etc/libvirt/hooks/qemu ("),
               status.out);
    BOOST_TEST(contains(beside.run({"status", "--json"}).out, "\"hook_scripts\":\"vfio-hook is /etc/libvirt/hooks/qemu.d/vfio-hook: it runs"));

    PlacementDesktop alone;
    alone.this_program_as("qemu");
    status = alone.run({"status"});
    BOOST_TEST(contains(status.out, "hook scripts: vfio-hook is /etc/libvirt/hooks/qemu ("), status.out);
    BOOST_TEST(contains(status.out, "): it runs /etc/vfio-hook/hook.d/ and /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/\n"),
               status.out);

    PlacementDesktop none;
    BOOST_TEST(contains(none.run({"status"}).out, "hook scripts: vfio-hook is not installed as libvirt's hook"));
}

BOOST_AUTO_TEST_SUITE_END()
