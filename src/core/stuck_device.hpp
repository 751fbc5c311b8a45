#pragma once
// Kernel log lines that say a device is stuck in a low-power state or gone from the bus: what a
// GPU that vfio-pci let sleep in D3cold leaves behind (shared/notes/real-gpus.md).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/kernel_log.hpp"

namespace vfio_hook {

// "Unable to change power state from D3cold to D0, device inaccessible" (pci.c pci_power_up),
// "… stuck in D3", "not ready 65535ms after bus reset; giving up" (pci.c pci_dev_wait), "GPU has
// fallen off the bus" (NVIDIA).
bool says_device_stuck(std::string_view message);

// Each line after sequence `after` (and up to `until`) that names one of `addresses` and says it
// is stuck, as "0000:01:00.0: kernel log: \"…\"".
std::vector<std::string> stuck_device_lines(const std::vector<KernelLogLine>& lines, std::uint64_t after,
                                            const std::vector<PciAddress>& addresses,
                                            std::uint64_t until = UINT64_MAX);

}  // namespace vfio_hook
