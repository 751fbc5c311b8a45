#include "core/hook_placement.hpp"

namespace vfio_hook {

bool vfio_hook_runs_qemu_d_layout(HookSlot slot, MainHookKind main_hook) {
    if (slot == HookSlot::main_hook) return true;
    if (main_hook == MainHookKind::absent) return true;
    if (slot == HookSlot::drop_in) return false;
    return main_hook == MainHookKind::this_program;
}

std::string describe_script_layouts(const MainHook& main_hook, const std::string& installed_as) {
    const std::string own = "/etc/vfio-hook/hook.d/";
    const std::string layout = "/etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/";
    std::string program = main_hook.path + (main_hook.resolved.empty() || main_hook.resolved == main_hook.path
                                                ? std::string()
                                                : " (" + main_hook.resolved + ")");
    if (main_hook.kind == MainHookKind::this_program)
        return "vfio-hook is " + program + ": it runs " + own + " and " + layout;
    if (installed_as.empty()) {
        if (main_hook.kind == MainHookKind::absent)
            return "vfio-hook is not installed as libvirt's hook (no " + main_hook.path +
                   "): nothing runs " + own + " or " + layout + "; run install.sh";
        return program + " is another program's hook and vfio-hook is not installed beside it: nothing runs " +
               own + "; run install.sh";
    }
    if (main_hook.kind == MainHookKind::absent)
        return "vfio-hook is " + installed_as + " (no " + main_hook.path + "): it runs " + own + " and " + layout;
    return "vfio-hook is " + installed_as + ": it runs " + own + "; " + layout + " is left to " + program +
           ", which libvirt runs first";
}

}  // namespace vfio_hook
