#include "host/visibility.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "core/mount_table.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

bool denied(int error) { return error == EACCES || error == EPERM; }

// A path under the root as the host names it ("/dev/kmsg"), whatever the root is.
std::string on_host(const HostPaths& paths, const fs::path& path) {
    return "/" + path.lexically_relative(paths.root).string();
}

bool is_pid(const char* name) {
    if (!*name) return false;
    for (; *name; ++name) {
        if (!std::isdigit(static_cast<unsigned char>(*name))) return false;
    }
    return true;
}

// The processes whose fd directory we may not open: the holder scan skips exactly these.
void survey_processes(const HostPaths& paths, Visibility& visibility) {
    struct CloseDir {
        void operator()(DIR* dir) const { ::closedir(dir); }
    };
    std::unique_ptr<DIR, CloseDir> processes(::opendir(paths.proc().c_str()));
    if (!processes) return;
    std::size_t closed = 0;
    int last_error = 0;
    while (dirent* process = ::readdir(processes.get())) {
        if (!is_pid(process->d_name)) continue;
        std::string fd_dir = std::string(process->d_name) + "/fd";
        int fd = ::openat(::dirfd(processes.get()), fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
        } else if (denied(errno)) {
            last_error = errno;
            ++closed;
        }
    }
    if (closed == 0) return;
    visibility.unseen.push_back({"the open files of " + std::to_string(closed) + (closed == 1 ? " process" : " processes"),
                                 on_host(paths, paths.proc() / "PID/fd"), std::strerror(last_error)});
}

// Under hidepid=invisible (2) or ptraceable (4) /proc lists only what this user owns or may
// ptrace: the others' processes are absent, not denied, so no open above fails for them. Root
// and the mount's gid= see them all.
void survey_hidden_processes(const HostPaths& paths, Visibility& visibility) {
    if (::geteuid() == 0) return;
    std::string proc = on_host(paths, paths.proc());
    auto hidden = proc_hides_pids(read_text_file(paths.proc() / "self/mountinfo", 4 << 20), proc);
    if (!hidden) return;
    if (hidden->gid) {
        std::vector<gid_t> groups(static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
        int count = ::getgroups(static_cast<int>(groups.size()), groups.data());
        groups.resize(static_cast<std::size_t>(std::max(count, 0)));
        groups.push_back(::getegid());
        if (std::find(groups.begin(), groups.end(), *hidden->gid) != groups.end()) return;
    }
    visibility.unseen.push_back({"the processes of other users", proc, "mounted hidepid=" + hidden->hidepid});
}

// `what` at `path` when opening it is denied; absent is not a gap (nothing recorded, no log).
void survey_file(const HostPaths& paths, const fs::path& path, int flags, const std::string& what,
                 Visibility& visibility) {
    int fd = ::open(path.c_str(), flags | O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        ::close(fd);
        return;
    }
    if (denied(errno)) visibility.unseen.push_back({what, on_host(paths, path), std::strerror(errno)});
}

}  // namespace

std::string Visibility::summary() const {
    std::string text = "could not see ";
    for (std::size_t i = 0; i < unseen.size(); ++i) {
        if (i > 0) text += i + 1 == unseen.size() ? " and " : ", ";
        text += unseen[i].what + " (" + unseen[i].path + ": " + unseen[i].why + ")";
    }
    return text;
}

Visibility survey_visibility(const HostPaths& paths) {
    Visibility visibility;
    survey_processes(paths, visibility);
    survey_hidden_processes(paths, visibility);
    survey_file(paths, paths.kmsg(), 0, "the kernel log", visibility);
    survey_file(paths, paths.records_dir(), O_DIRECTORY, "vfio-hook's records", visibility);
    return visibility;
}

Problem needs_root(const HostPaths& paths) {
    if (::geteuid() == 0) return Problem::none();
    fs::path dir = paths.state_dir();
    std::error_code error;
    while (!fs::exists(dir, error) && dir.has_relative_path() && dir != paths.root) dir = dir.parent_path();
    if (::access(dir.c_str(), W_OK | X_OK) == 0) return Problem::none();
    return Problem{std::string("needs root (") + run_as_root + ")"};
}

}  // namespace vfio_hook
