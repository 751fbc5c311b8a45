#pragma once
// Where the hook leaves how each VM's last prepare and release went (core/last_run.hpp), and
// where `status` reads it: /run/vfio-hook/last/UUID.OPERATION.

#include <string>
#include <vector>

#include "core/last_run.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// Best effort, never in the way of the hook: a file that cannot be written is skipped (the
// journal still has the run). Written to a temp file and renamed, so a reader sees a whole one.
void save_last_run(const HostPaths& paths, const LastRun& run);
std::vector<LastRun> load_last_runs(const HostPaths& paths);

}  // namespace vfio_hook
