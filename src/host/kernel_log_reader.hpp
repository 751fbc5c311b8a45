#pragma once
// Reads the kernel's log buffer from /dev/kmsg without blocking.

#include <vector>

#include "core/kernel_log.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

std::vector<KernelLogLine> read_kernel_log(const HostPaths& paths);

}  // namespace vfio_hook
