#pragma once
// The systemd unit a process runs in, read from its /proc/PID/cgroup: what a holder's fix names
// (`systemctl stop nvidia-persistenced.service`), since a service restarts what `kill` ends.

#include <string>
#include <string_view>

namespace vfio_hook {

struct SystemdUnit {
    enum class Kind {
        none,            // no unit to stop: a kernel thread, a container, a transient scope
        system_service,  // /system.slice/NAME.service: `systemctl stop NAME.service`
        user_service,    // under user@UID.service: `systemctl --user -M USER@ stop NAME.service`
        session,         // a login session's scope (session-3.scope): log out, not a unit to stop
    };
    Kind kind = Kind::none;
    std::string name;  // "nvidia-persistenced.service"; the session's id ("3") for a session
    unsigned uid = 0;  // the owner of the user manager or the session (user-UID.slice)
    std::string user;  // that uid's name (from /etc/passwd; the boundary fills it), "" unknown
};

// The unit of /proc/PID/cgroup's text: the cgroup v2 line (`0::/system.slice/foo.service`), or
// on a cgroup v1 host systemd's own hierarchy (`1:name=systemd:/...`). Slices are only groups;
// the first other component names the unit, and inside `user@UID.service` the user manager's.
SystemdUnit systemd_unit_of(std::string_view proc_cgroup);

// The login name of `uid` in /etc/passwd's text, "" when not listed.
std::string user_name_of(std::string_view passwd, unsigned uid);

}  // namespace vfio_hook
