// Hidden holders named with what to stop (issue 26, points 7 and 8): a GPU's /dev/fbN, the
// systemd unit a holder runs in (from /proc/PID/cgroup), and the setting that makes a compositor
// leave a secondary GPU alone. Through the hook, `check` and `status` on the fake tree.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

const char* igpu = "0000:00:02.0";
const char* card = "0000:01:00.0";

// The host displays on its iGPU (boot_vga); the VM's GPU is a second card, driven by nvidia
// (its node /dev/nvidia0, its DRM card1, its fbdev fb1).
struct TwoGpus : FakeHost {
    TwoGpus() {
        device(igpu, 0x030000, "i915", 1, 0x8086, 0x3e92).boot_vga(igpu).drm_node(igpu, "card0");
        gpu(card, "nvidia", 14).nvidia_minor(card, 0).drm_node(card, "card1").drm_node(card, "renderD128");
    }
    Run prepare() { return hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {card})); }
    Run check() { return run({"check", "-"}, domain_xml("win11", uuid_a, {card})); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(holders)

// ---- the unit to stop (point 7)

BOOST_AUTO_TEST_CASE(a_system_service_holder_is_refused_with_the_systemctl_stop_that_ends_it) {
    TwoGpus host;
    host.process(812, "nvidia-persiste", {"/dev/nvidiactl", "/dev/nvidia0"})
        .cgroup(812, "0::/system.slice/nvidia-persistenced.service\n");
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "held open by pid 812 (nvidia-persiste) on /dev/nvidia0"), run.err);
    BOOST_TEST(contains(run.err, "stop its service: `systemctl stop nvidia-persistenced.service`"), run.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(contains(host.check().out, "`systemctl stop nvidia-persistenced.service`"));
    BOOST_TEST(contains(host.run({"status"}).out, "`systemctl stop nvidia-persistenced.service`"));
}

// cgroup v1 (and hybrid): systemd's own hierarchy is the `name=systemd` line; the controllers'
// lines name other paths.
BOOST_AUTO_TEST_CASE(on_cgroup_v1_the_unit_comes_from_systemds_own_hierarchy) {
    TwoGpus host;
    host.process(900, "ollama", {"/dev/nvidia0"})
        .cgroup(900, "12:pids:/user.slice\n4:memory:/\n1:name=systemd:/system.slice/ollama.service\n0::/\n");
    auto run = host.prepare();
    BOOST_TEST(contains(run.err, "`systemctl stop ollama.service`"), run.err);
}

BOOST_AUTO_TEST_CASE(a_user_service_is_stopped_in_its_users_manager_named_by_user_and_uid) {
    TwoGpus host;
    host.user(1000, "alice");
    const char* path = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/ddcutil-brightness.service\n";
    host.process(1500, "ddcutil", {"/dev/dri/card1"}).cgroup(1500, path);
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "(user alice, uid 1000): `systemctl --user -M alice@ stop ddcutil-brightness.service`"),
               run.err);

    TwoGpus unnamed;  // a uid /etc/passwd does not list (LDAP, systemd-homed): run as that uid
    unnamed.process(1500, "ddcutil", {"/dev/dri/card1"}).cgroup(1500, path);
    run = unnamed.prepare();
    BOOST_TEST(contains(run.err, "as uid 1000: `systemctl --user stop ddcutil-brightness.service`"), run.err);
}

// A unit name keeps systemd's escapes (`\x2d` for a dash inside an instance or a slice's own
// name) in its cgroup directory: printed bare, a shell turns `ollama@gpu\x2d1.service` into
// `ollama@gpux2d1.service`, a unit that does not exist. The command must run as printed.
BOOST_AUTO_TEST_CASE(a_unit_name_with_systemd_escapes_is_printed_as_one_shell_word) {
    TwoGpus host;
    host.process(812, "ollama", {"/dev/nvidia0"})
        .cgroup(812, "0::/system.slice/system-ollama.slice/ollama@gpu\\x2d1.service\n");
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "stop its service: `systemctl stop 'ollama@gpu\\x2d1.service'`"), run.err);
    host.user(1000, "alice");
    host.process(1500, "ddcutil", {"/dev/dri/card1"})
        .cgroup(1500, "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-ddc\\x2dtool@1.service\n");
    BOOST_TEST(contains(host.check().out, "`systemctl --user -M alice@ stop 'app-ddc\\x2dtool@1.service'`"), host.check().out);
}

// Any user names its own processes (prctl PR_SET_NAME) and, in its delegated user@ subtree, its
// own cgroups: a holder's name with terminal escapes must not reach root's terminal or the
// journal as they are (ps shows such bytes as '?'), and a cgroup directory whose name systemd
// never gives a unit is no unit to tell root to stop.
BOOST_AUTO_TEST_CASE(a_holders_own_name_and_cgroup_cannot_write_escapes_to_roots_terminal) {
    TwoGpus host;
    host.user(1000, "alice");
    host.process(1500, "x\x1b]2;pwned\x07", {"/dev/dri/card1"})
        .cgroup(1500, "0::/user.slice/user-1000.slice/user@1000.service/app.slice/\x1b[2J.service\n");
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(run.err.find('\x1b') == std::string::npos, run.err);
    BOOST_TEST(contains(run.err, "held open by pid 1500 (x?]2;pwned?) on /dev/dri/card1"), run.err);
    BOOST_TEST(!contains(run.err, "systemctl"), run.err);
    auto check = host.check();
    BOOST_TEST(check.out.find('\x1b') == std::string::npos, check.out);
    auto status = host.run({"status"});
    BOOST_TEST(status.out.find('\x1b') == std::string::npos, status.out);
}

// A login session's scope is no unit to stop (stopping it ends the whole session): name the
// session, never a systemctl command.
BOOST_AUTO_TEST_CASE(a_program_in_a_login_session_names_the_session_not_a_unit) {
    TwoGpus host;
    host.process(2000, "blender", {"/dev/dri/renderD128"})
        .cgroup(2000, "0::/user.slice/user-1000.slice/session-3.scope\n");
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "close that program, or log out of session 3"), run.err);
    BOOST_TEST(!contains(run.err, "systemctl"), run.err);
}

// ---- /dev/fbN (point 7)

// nvidia-drm (570+) registers an fbdev for its GPU: a program drawing on /dev/fb1 holds it,
// while the iGPU's /dev/fb0 is nothing to this card.
BOOST_AUTO_TEST_CASE(the_gpus_own_framebuffer_node_holds_it_and_another_gpus_does_not) {
    TwoGpus host;
    host.framebuffer(igpu, 0).framebuffer(card, 1);
    host.process(3000, "fbi", {"/dev/fb0"});
    auto run = host.prepare();
    BOOST_TEST(run.status == 0, run.err);
    BOOST_TEST_REQUIRE(host.hook("win11", "release", "end", domain_xml("win11", uuid_a, {card})).status == 0);
    BOOST_TEST(host.driver_of(card) == "nvidia");

    host.process(3100, "fbi", {"/dev/fb1"}).cgroup(3100, "0::/system.slice/kiosk.service\n");
    run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "held open by pid 3100 (fbi) on /dev/fb1"), run.err);
    BOOST_TEST(contains(run.err, "`systemctl stop kiosk.service`"), run.err);
    BOOST_TEST(!contains(run.err, "pid 3000"), run.err);
    BOOST_TEST(host.driver_of(card) == "nvidia");
}

// ---- compositors on a secondary GPU (point 8)

BOOST_AUTO_TEST_CASE(kwin_on_a_secondary_gpu_is_told_kwin_drm_devices_without_this_card) {
    TwoGpus host;
    host.process(1400, "kwin_wayland", {"/dev/dri/card0", "/dev/dri/card1"})
        .cgroup(1400, "0::/user.slice/user-1000.slice/user@1000.service/session.slice/plasma-kwin_wayland.service\n");
    auto run = host.prepare();
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "KWin drives this GPU: set KWIN_DRM_DEVICES"), run.err);
    BOOST_TEST(contains(run.err, "leaving out this one (/dev/dri/by-path/pci-0000:01:00.0-card)"), run.err);
    BOOST_TEST(contains(run.err, "log out and in again"), run.err);
    BOOST_TEST(!contains(run.err, "systemctl"), run.err);  // stopping it would end the desktop
    BOOST_TEST(contains(host.check().out, "KWIN_DRM_DEVICES"));
    BOOST_TEST(contains(host.run({"status"}).out, "KWIN_DRM_DEVICES"));
}

BOOST_AUTO_TEST_CASE(each_compositor_is_told_its_own_setting_for_this_gpu) {
    const std::vector<std::pair<std::string, std::string>> cases{
        {"gnome-shell", "KERNELS==\"0000:01:00.0\", TAG+=\"mutter-device-ignore\""},
        {"Hyprland", "set AQ_DRM_DEVICES"},
        {"sway", "sway (wlroots) drives this GPU: set WLR_DRM_DEVICES"},
        {"labwc", "WLR_DRM_DEVICES"},
        {"niri", "ignore-drm-device \"/dev/dri/by-path/pci-0000:01:00.0-card\""},
        {"Xorg", "Option \"AutoAddGPU\" \"off\""},
    };
    for (const auto& [command, advice] : cases) {
        TwoGpus host;
        host.process(1400, command, {"/dev/dri/card1"});
        auto run = host.prepare();
        BOOST_TEST(run.status == 1);
        BOOST_TEST(contains(run.err, advice), command + ": " + run.err);
    }
}

// The host's primary GPU (boot_vga) is never to be taken from its compositor: a single-GPU VM
// (allow-boot-vga) is told to end the session, not to configure the compositor without it.
BOOST_AUTO_TEST_CASE(a_compositor_on_the_primary_gpu_gets_no_setting_to_drop_it) {
    FakeHost host;
    host.gpu(card, "amdgpu", 14).boot_vga(card).drm_node(card, "card0");
    host.process(1400, "kwin_wayland", {"/dev/dri/card0"})
        .cgroup(1400, "0::/user.slice/user-1000.slice/session-2.scope\n");
    auto run = host.hook("win11", "prepare", "begin",
                         domain_xml("win11", uuid_a, {card}, false,
                                    "<vh:vfio-hook xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\">"
                                    "<vh:allow-boot-vga>yes</vh:allow-boot-vga></vh:vfio-hook>"));
    BOOST_TEST(run.status == 1);
    BOOST_TEST(contains(run.err, "held open by pid 1400 (kwin_wayland)"), run.err);
    BOOST_TEST(!contains(run.err, "KWIN_DRM_DEVICES"), run.err);
    BOOST_TEST(contains(run.err, "log out of session 2"), run.err);
}

BOOST_AUTO_TEST_SUITE_END()
