#pragma once
// Why libvirt stopped a VM, as `release end` is told it: what the give-back does differently
// after a crash than after a shutdown.

#include <string_view>

namespace vfio_hook {

// libvirt >= 10.5.0 passes the reason as release's fourth argument, the names of
// virDomainShutoffReason (docs/hooks.rst, qemu section: "The shutoff-reason argument (since
// 10.5.0; before that '-' was passed instead)"): unknown shutdown destroyed crashed migrated
// saved failed daemon, and "from snapshot" as one argument with a space. Debian 12's libvirt 9.0
// passes "-". Nothing depends on getting it: a word we do not know is `not_given`.
enum class ShutoffReason {
    not_given,  // "-", absent, or a word this version does not know
    unknown,
    shutdown,
    destroyed,
    crashed,
    migrated,
    saved,
    failed,
    from_snapshot,
    daemon,
};

ShutoffReason parse_shutoff_reason(std::string_view argument);

// After a guest crash or a daemon that killed the VM while reconnecting, the device may have
// been left mid-operation: its liveness must be proved before a host driver probes it.
inline bool needs_proof_of_life(ShutoffReason reason) {
    return reason == ShutoffReason::crashed || reason == ShutoffReason::daemon;
}

}  // namespace vfio_hook
