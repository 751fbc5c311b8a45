#pragma once
// What this run could not see of the host, and whether it may change it. Without root the open
// files of other users' processes (/proc/PID/fd, mode 0500 for its owner), the kernel log
// (/dev/kmsg under kernel.dmesg_restrict) and vfio-hook's records (/run/vfio-hook, 0700) are
// closed: an answer built without them is a partial one, so `status` and `check` say so first
// and never call it ready; and a command that changes the host says "needs root" up front
// rather than fail later on EACCES from the lock.

#include <string>
#include <vector>

#include "core/problem.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// One thing this run could not look at.
struct Unseen {
    std::string what;  // "the open files of 212 processes"
    std::string path;  // as on the host: "/proc/PID/fd"
    std::string why;   // strerror: "Permission denied"
};

struct Visibility {
    std::vector<Unseen> unseen;
    bool partial() const { return !unseen.empty(); }
    // "could not see the open files of 212 processes (/proc/PID/fd: Permission denied), …"
    std::string summary() const;
};

// What a run cannot see, learnt by opening each thing as the readers do (one open per process,
// nothing read): a process that exits meanwhile, or a missing file, is not a gap.
Visibility survey_visibility(const HostPaths& paths);

// The fix printed with a partial view or a refused change.
inline constexpr const char* run_as_root = "run it with sudo, or as root";

// Whether this run may change the host: none as root, or where the state directory (or, before
// it exists, its nearest existing parent) is writable to us (a test's own tree); else the line
// "needs root (run it with sudo, or as root)".
Problem needs_root(const HostPaths& paths);

}  // namespace vfio_hook
