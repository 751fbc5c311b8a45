#pragma once
// The chain a VM start goes through around vfio-hook, as `status` shows it: whether libvirt runs
// this vfio-hook at all, which libvirt daemon would run it, and the VMs libvirt defines (to say
// which of them name each GPU). Read-only; `status` is the admin CLI, so it may ask virsh (the
// hook never includes this).

#include <optional>
#include <string>
#include <vector>

#include "core/domain_xml.hpp"
#include "host/host_paths.hpp"
#include "host/virsh.hpp"

namespace vfio_hook {

struct HookInstalled {
    std::string path;     // where libvirt runs a vfio-hook: hooks/qemu or qemu.d/NAME; "" when none
    bool this_binary = false;  // that vfio-hook is this very program (its version is ours)
    std::string resolved;      // where the vfio-hook there leads, when it is another copy
    std::string other_program;  // hooks/qemu's target when it is another program ("" when not)
};
HookInstalled read_hook_installed(const HostPaths& paths);

struct LibvirtView {
    std::string daemon;                      // "virtqemud" or "libvirtd", by its socket; "" none
    std::optional<std::string> unreachable;  // why virsh did not answer; nullopt: it answered
    std::vector<Domain> domains;             // every definition it holds (dumpxml --inactive)
    std::vector<std::string> unreadable;     // "UUID: why" for a definition that did not parse
};
// `virsh list --all --uuid`, then `dumpxml --inactive` of each: never fails, says why instead.
LibvirtView read_libvirt(const HostPaths& paths, const Virsh& virsh, const std::string& uri);

}  // namespace vfio_hook
