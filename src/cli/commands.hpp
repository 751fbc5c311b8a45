#pragma once
// One function per command; each renders its result and returns the exit code
// (0 success or ready, 1 refused, not ready or failed, 2 bad usage or bad input).

#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "host/hand_over.hpp"
#include "host/pci_names.hpp"
#include "host/virsh.hpp"

namespace vfio_hook {

struct HookCall {
    std::string domain;  // as libvirt passes it: for messages only, never for paths
    std::string operation;
    std::string sub_operation;
    std::string extra;  // libvirt's fourth argument ("-", "shutdown", …): passed on to scripts only
    // Whether this call also runs /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/ (no when the
    // program in hooks/qemu runs it: core/hook_placement.hpp).
    bool runs_qemu_d_layout = true;
};

// Does the hook have work? libvirt calls it for every event of every VM, and most calls have
// none, so the answer comes in three stages, each asked only when the one before said maybe and
// each enough alone to say no:
//   1. the arguments (hook_has_work): prepare and release always; any other event only when a
//      hook.d directory exists for it. A few stat calls; main() asks it before anything else.
//   2. stdin (hook_is_idle): nothing recorded, no hook.d directory for the event and (prepare) a
//      whole document with no host device in it. One directory read and a substring search, no
//      config, no logger, no parse. Complete on its own: it answers stage 1's question too.
//   3. the parse (domain_has_work): a prepare of a domain without host PCI devices and without a
//      record left by an earlier run has nothing to move (its hook.d scripts still run).
bool hook_has_work(const HostPaths& paths, const HookCall& call);
bool hook_is_idle(const HostPaths& paths, const HookCall& call, std::string_view domain_xml);
bool domain_has_work(const HostPaths& paths, const Domain& domain);

// The hook: never prints on stdout, never calls libvirt.
int run_hook(Host& host, const HookCall& call, const std::string& domain_xml);

// What the admin commands work with: the host, their two streams, and their door to libvirt.
struct Commands {
    Host& host;
    std::ostream& out;
    std::ostream& err;
    const Virsh& virsh;
    std::string uri;
};

// `config_problem`: why the config file was left out for the defaults ("" when it was used); the
// hook refuses to start a VM with host devices then, and so does check.
int run_check(Commands& commands, const std::string& domain_xml, const std::string& source, bool json,
              const std::string& config_problem = "");
int run_status(Commands& commands, bool json);
int run_bind(Commands& commands, const std::vector<PciAddress>& addresses);
int run_restore(Commands& commands, const std::vector<PciAddress>& addresses, bool force);
int run_recover(Commands& commands);
// persist: the whole IOMMU group goes to vfio-pci at every boot, by address; unpersist undoes it.
int run_persist(Commands& commands, const std::vector<PciAddress>& addresses, bool dry_run);
int run_unpersist(Commands& commands, const std::vector<PciAddress>& addresses, bool dry_run);
int run_persist_apply(Commands& commands, const PciAddress& address);  // from the udev rule
int run_set(Commands& commands, const std::string& domain, const std::string& key, const std::string& value);
int run_get(Commands& commands, const std::string& domain);
int run_assign(Commands& commands, const std::string& domain, const std::vector<PciAddress>& addresses, bool headless,
               bool dry_run);
int run_unassign(Commands& commands, const std::string& domain, const std::vector<PciAddress>& addresses,
                 bool restore_display, bool dry_run);

}  // namespace vfio_hook
