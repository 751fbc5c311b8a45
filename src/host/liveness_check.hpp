#pragma once
// The live look at a device before a give-back: reads its config space under the deadline
// (the read can wake it from D3cold), and after a crash tries its own per-function reset once.

#include <optional>
#include <vector>

#include "core/liveness.hpp"
#include "core/pci_device.hpp"
#include "core/problem.hpp"
#include "core/refusal.hpp"
#include "core/state_record.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

Liveness read_liveness(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address);

// None: `address` may go to `driver`. Otherwise the one line that says why it stays on
// vfio-pci, recorded, and what to do. `strict`: after a crash (see core/shutoff_reason.hpp);
// then a device that does not answer is reset once through its `reset` file when every method
// in its `reset_method` resets it alone.
Problem refuse_dead_device(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address,
                           const std::optional<DriverName>& driver, bool strict);

// For `status`: each recorded device, still on vfio-pci, whose config space does not answer.
std::vector<Refusal> recorded_devices_not_answering(const HostPaths& paths, KernelInterface& kernel,
                                                    const std::vector<StateRecord>& records);

}  // namespace vfio_hook
