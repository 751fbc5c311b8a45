#pragma once
// Who runs the VFIO-Tools layout (/etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/*): vfio-hook or
// the program in hooks/qemu, decided from how vfio-hook was run and what hooks/qemu is. Pure: the
// boundary (host/hook_slots) reads both.
//
// libvirt runs hooks/qemu first, then every executable file directly in hooks/qemu.d/ (its
// subdirectories are not executables, so libvirt never runs the layout itself: virHookCall in
// src/util/virhook.c). The layout runs only when a program runs it: VFIO-Tools' dispatcher as
// hooks/qemu does, and so does vfio-hook. Both doing it runs every script twice, and the
// dispatcher's release scripts run before vfio-hook has brought the devices home.

#include <string>

namespace vfio_hook {

// How this vfio-hook was run.
enum class HookSlot {
    main_hook,  // as hooks/qemu
    drop_in,    // as an executable in hooks/qemu.d/ (argv[0] or its resolved path is there)
    by_hand,    // any other name: `vfio-hook hook …` from a wrapper, a person, a test
};

// What /etc/libvirt/hooks/qemu is.
enum class MainHookKind {
    absent,         // none, or not an executable file: libvirt runs no main hook
    this_program,   // this very vfio-hook (the same file, however it is linked)
    other_program,  // anything else: a dispatcher, a script, another copy of vfio-hook
};

struct MainHook {
    MainHookKind kind = MainHookKind::absent;
    std::string path;      // "/etc/libvirt/hooks/qemu"
    std::string resolved;  // where its links lead ("" when it is absent)
};

// Whether vfio-hook itself runs the qemu.d layout on this call. A drop-in leaves it to
// hooks/qemu whatever that is (vfio-hook too, when installed twice); by hand, to a hooks/qemu
// that is not this program. With no main hook nobody else would run it.
bool vfio_hook_runs_qemu_d_layout(HookSlot slot, MainHookKind main_hook);

// For `status`: which program runs which script layout when libvirt calls, in one line.
// `installed_as`: where vfio-hook sits for libvirt ("" when in neither slot).
std::string describe_script_layouts(const MainHook& main_hook, const std::string& installed_as);

}  // namespace vfio_hook
