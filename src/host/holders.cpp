#include "host/holders.hpp"

#include <dirent.h>
#include <unistd.h>

#include <cctype>
#include <memory>

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

}  // namespace

std::vector<Holder> find_holders(const HostPaths& paths, const std::set<std::string>& nodes) {
    std::vector<Holder> holders;
    if (nodes.empty()) return holders;
    const std::string proc = paths.proc().string();
    const int self = paths.is_real_root() ? static_cast<int>(::getpid()) : -1;
    Dir processes(::opendir(proc.c_str()));
    if (!processes) return holders;
    while (dirent* process = ::readdir(processes.get())) {
        if (!all_digits(process->d_name)) continue;
        int pid = std::atoi(process->d_name);
        if (pid == self) continue;
        std::string fd_dir = proc + "/" + process->d_name + "/fd";
        Dir fds(::opendir(fd_dir.c_str()));
        if (!fds) continue;  // the process exited, or is a kernel thread
        std::set<std::string> seen;
        while (dirent* fd = ::readdir(fds.get())) {
            if (!all_digits(fd->d_name)) continue;
            char target[512];
            ssize_t n = ::readlink((fd_dir + "/" + fd->d_name).c_str(), target, sizeof target - 1);
            if (n <= 0) continue;
            std::string node(target, static_cast<std::size_t>(n));
            if (nodes.count(node) && seen.insert(node).second) {
                std::string command = read_small_file(proc + "/" + process->d_name + "/comm");
                holders.push_back({pid, command.empty() ? "?" : command, node});
            }
        }
    }
    return holders;
}

}  // namespace vfio_hook
