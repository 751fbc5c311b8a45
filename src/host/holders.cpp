#include "host/holders.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <string_view>

#include "core/mount_table.hpp"
#include "core/systemd_unit.hpp"

namespace vfio_hook {
namespace {

struct CloseDir {
    void operator()(DIR* dir) const { ::closedir(dir); }
};
using Dir = std::unique_ptr<DIR, CloseDir>;

bool all_digits(const char* name) {
    if (!*name) return false;
    for (; *name; ++name) {
        if (!std::isdigit(static_cast<unsigned char>(*name))) return false;
    }
    return true;
}

std::optional<std::uint64_t> char_device_number(const std::filesystem::path& node) {
    struct stat info;
    if (::stat(node.c_str(), &info) != 0 || !S_ISCHR(info.st_mode)) return std::nullopt;
    return static_cast<std::uint64_t>(info.st_rdev);
}

}  // namespace

NodesToFind nodes_of(const HostPaths& paths, const BusSnapshot& bus) {
    NodesToFind nodes;
    std::set<GroupId> groups;
    for (const auto& [address, device] : bus.devices) {
        for (const auto& node : device.device_nodes) {
            auto number = device.node_numbers.find(node);
            nodes[node] = number == device.node_numbers.end() ? std::nullopt
                                                              : std::optional<std::uint64_t>(number->second);
        }
        if (device.iommu_group) groups.insert(*device.iommu_group);
    }
    nodes.merge(vfio_group_nodes(paths, groups));
    return nodes;
}

NodesToFind vfio_group_nodes(const HostPaths& paths, const std::set<GroupId>& groups) {
    NodesToFind nodes;
    for (GroupId group : groups) {
        auto number = parse_device_number(read_small_file(paths.root / "sys/class/vfio" / std::to_string(group) / "dev"));
        nodes[vfio_group_node(group)] = number;
    }
    return nodes;
}

namespace {

// The nodes looked for, by device number where known, and by path for those without one.
struct Wanted {
    const NodesToFind& nodes;
    std::map<std::uint64_t, std::string> by_number;
    bool some_without_number = false;  // a node given without a number: its path may still tell

    Wanted(const HostPaths& paths, const NodesToFind& wanted) : nodes(wanted) {
        for (const auto& [node, number] : wanted) {
            some_without_number |= !number;
            if (auto known = number ? number : char_device_number(paths.root / node.substr(1)))
                by_number.emplace(*known, node);
        }
    }
    bool by_path(std::string_view node) const { return nodes.count(std::string(node)) > 0; }
    bool by_path_without_number(std::string_view node) const {
        auto entry = nodes.find(std::string(node));
        return some_without_number && entry != nodes.end() && !entry->second;
    }
};

// The wanted nodes one process holds, in the order of its fds, from its open fd directory.
std::vector<std::string> held_through(int fd_dir_fd, DIR* fds, const Wanted& wanted, const MountTable& mounts) {
    std::vector<std::string> held;
    auto found = [&](std::string_view node) {
        if (std::find(held.begin(), held.end(), node) == held.end()) held.emplace_back(node);
    };
    while (dirent* fd = ::readdir(fds)) {
        if (!all_digits(fd->d_name)) continue;
        // The link's text first: reading it never leaves the kernel's dentry cache, while a
        // stat through it revalidates the file on its own file system (see mount_table.hpp).
        char target[512];
        ssize_t n = ::readlinkat(fd_dir_fd, fd->d_name, target, sizeof target - 1);
        if (n <= 0) continue;  // closed meanwhile, or not ours to look at
        std::string_view node(target, static_cast<std::size_t>(n));
        // pipe:[N], socket:[N], anon_inode:…: never a device node
        if (!node.starts_with("/")) continue;
        // Then one statx, through the fd to what it opened, whatever its path: a sandbox
        // names the GPU's node where it likes (bwrap --dev-bind, `docker --device
        // /dev/dri/card1:/gpu`), so only the device number tells. Not on a nodev mount (no
        // device can be open there) nor on a network or FUSE one (a dead server would hang
        // us with the lock held): there the path alone must do.
        if (!node.starts_with("/dev/") && !mounts.may_stat(node)) {
            if (wanted.by_path(node)) found(node);
            continue;
        }
        struct statx info;
        if (::statx(fd_dir_fd, fd->d_name, AT_STATX_DONT_SYNC, STATX_TYPE, &info) != 0) {
            if (errno == ENOENT && wanted.by_path(node)) found(node);
            continue;
        }
        if (!S_ISCHR(info.stx_mode)) continue;
        auto match = wanted.by_number.find(static_cast<std::uint64_t>(makedev(info.stx_rdev_major, info.stx_rdev_minor)));
        if (match != wanted.by_number.end()) found(match->second);
        else if (wanted.by_path_without_number(node)) found(node);
    }
    return held;
}

// Who a holder is: its command and the systemd unit it runs in (a user service's owner by
// name, from /etc/passwd, read once and only when needed), so the fix can name what to stop.
class HolderNamer {
public:
    explicit HolderNamer(const HostPaths& paths) : paths_(paths) {}
    Holder operator()(int pid, const std::string& node) {
        const std::filesystem::path dir = paths_.proc() / std::to_string(pid);
        std::string command = read_small_file(dir / "comm");
        // Any process names itself (prctl PR_SET_NAME): its control bytes, escapes included, as '?'
        // (as ps shows them), never to root's terminal or the journal as they are.
        for (char& c : command) {
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
        }
        Holder holder{pid, command.empty() ? "?" : command, node, {}};
        holder.unit = systemd_unit_of(read_text_file(dir / "cgroup", 64 << 10));
        if (holder.unit.kind == SystemdUnit::Kind::user_service) {
            if (!passwd_) passwd_ = read_text_file(paths_.root / "etc/passwd", 4 << 20);
            holder.unit.user = user_name_of(*passwd_, holder.unit.uid);
        }
        return holder;
    }

private:
    const HostPaths& paths_;
    std::optional<std::string> passwd_;
};

}  // namespace

std::vector<Holder> find_holders(const HostPaths& paths, const NodesToFind& nodes) {
    std::vector<Holder> holders;
    if (nodes.empty()) return holders;
    const Wanted wanted(paths, nodes);
    HolderNamer name(paths);
    const std::string proc = paths.proc().string();
    const int self = paths.is_real_root() ? static_cast<int>(::getpid()) : -1;
    Dir processes(::opendir(proc.c_str()));
    if (!processes) return holders;
    // Every call below is relative to an open directory: the kernel walks one name, not
    // /proc/PID/fd/N from the root, and nothing is allocated per fd (the scan's cost is per fd).
    const int proc_fd = ::dirfd(processes.get());
    const MountTable mounts = MountTable::parse(read_text_file(proc + "/self/mountinfo", 4 << 20));
    while (dirent* process = ::readdir(processes.get())) {
        if (!all_digits(process->d_name)) continue;
        int pid = std::atoi(process->d_name);
        if (pid == self) continue;
        char fd_dir[32];
        std::snprintf(fd_dir, sizeof fd_dir, "%d/fd", pid);
        int fd_dir_fd = ::openat(proc_fd, fd_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd_dir_fd < 0) continue;  // the process exited, or is a kernel thread
        Dir fds(::fdopendir(fd_dir_fd));
        if (!fds) {
            ::close(fd_dir_fd);
            continue;
        }
        for (const auto& node : held_through(fd_dir_fd, fds.get(), wanted, mounts))
            holders.push_back(name(pid, node));
    }
    return holders;
}

}  // namespace vfio_hook
