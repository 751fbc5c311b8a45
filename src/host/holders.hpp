#pragma once
// Which processes have given device nodes open: a walk of /proc/PID/fd, as fuser does.

#include <set>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

std::vector<Holder> find_holders(const HostPaths& paths, const std::set<std::string>& nodes);

}  // namespace vfio_hook
