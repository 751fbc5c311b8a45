#pragma once
// Reads what core/hook_placement decides from: how this vfio-hook was run (argv[0], its resolved
// directory, /proc/self/exe) and what /etc/libvirt/hooks/qemu is (the same file as this program,
// another program, or none).

#include <string>
#include <string_view>

#include "core/hook_placement.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

HookSlot slot_of(std::string_view argv0);

// A stat of hooks/qemu and of /proc/self/exe: cheap enough for every hook call.
MainHookKind main_hook_kind(const HostPaths& paths);
// The same, with where hooks/qemu's links lead (for `status`).
MainHook read_main_hook(const HostPaths& paths);

// Whether this call of the hook also runs /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/.
bool runs_qemu_d_layout(const HostPaths& paths, std::string_view argv0);

// Where this program sits for libvirt: "/etc/libvirt/hooks/qemu" or "/etc/libvirt/hooks/qemu.d/NAME"
// (the same file as /proc/self/exe, however linked); "" when in neither.
std::string installed_as(const HostPaths& paths);

}  // namespace vfio_hook
