#pragma once
// Which mounts the holder scan may stat a file on: parsed from /proc/self/mountinfo. A stat
// through /proc/PID/fd/N revalidates the file on its own file system (NFS sends a GETATTR once
// its attribute cache is old, AT_STATX_DONT_SYNC or not), so a file on a dead NFS server would
// hang the hook, and libvirt with it. A character device can only have been opened on a mount
// without nodev (fs/namei.c may_open_dev()), so such mounts need no stat at all.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vfio_hook {

struct Mount {
    std::string point;        // unescaped, as paths read from /proc/PID/fd/N show it
    bool safe_to_stat = true;  // not a network or FUSE file system, and devices may live there
};

// Longest mount point first, so the first prefix that matches is the file's mount.
class MountTable {
public:
    static MountTable parse(std::string_view mountinfo);
    // Whether a file at `path` may be a character device worth a stat: false for what a nodev,
    // network or FUSE mount holds. Unknown mounts (an empty table) are stat'ed.
    bool may_stat(std::string_view path) const;

private:
    std::vector<Mount> mounts_;
};

// How the proc mount at `point` ("/proc") hides processes from a user without root: its
// `hidepid=` when that lists only the processes one may ptrace or owns (2, invisible, 4,
// ptraceable; fs/proc/root.c), with the `gid=` whose members still see all (nullopt if none).
// nullopt when it hides none (no hidepid, 0, 1/noaccess: listed, their fds denied).
struct HiddenPids {
    std::string hidepid;            // as mountinfo shows it: "invisible", "2", "ptraceable"
    std::optional<unsigned> gid;  // the proc mount's gid=, exempt from hidepid
};
std::optional<HiddenPids> proc_hides_pids(std::string_view mountinfo, std::string_view point);

}  // namespace vfio_hook
