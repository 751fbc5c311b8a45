#pragma once
// The host as every command and the hook see it: where its files are (a temp tree in tests), the
// one way to change the kernel's state, and the settings in force.

#include "core/settings.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

struct Host {
    HostPaths paths;
    KernelInterface& kernel;
    Settings settings;
};

}  // namespace vfio_hook
