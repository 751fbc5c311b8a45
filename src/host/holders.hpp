#pragma once
// Which processes have given device nodes open: a walk of /proc/PID/fd, as fuser does.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/plan.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// The nodes to look for: each /dev path (what messages name) with its device number when known.
// A node without one is numbered from its /dev entry under the root, else matched by path.
using NodesToFind = std::map<std::string, std::optional<std::uint64_t>>;

// Matches every open fd by the device number of what it opened (stat through /proc/PID/fd),
// not by the path string: a container's remapped /dev, a sandbox's node outside /dev, or an
// iommufd user of /dev/vfio/devices/vfioN, holds the same device under another name.
std::vector<Holder> find_holders(const HostPaths& paths, const NodesToFind& nodes);

// The nodes a snapshot's devices are held through: their own nodes, and /dev/vfio/GROUP.
NodesToFind nodes_of(const HostPaths& paths, const BusSnapshot& bus);
NodesToFind vfio_group_nodes(const HostPaths& paths, const std::set<GroupId>& groups);

}  // namespace vfio_hook
