#include "host/scripts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "host/log.hpp"

extern char** environ;

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

std::optional<EntryInfo> stat_entry(const fs::path& path) {
    struct stat info;
    if (::lstat(path.c_str(), &info) != 0) return std::nullopt;
    return EntryInfo{path.string(), static_cast<unsigned>(info.st_uid), static_cast<unsigned>(info.st_mode)};
}

std::vector<std::string> environment_for(const ScriptEvent& event) {
    std::vector<std::string> variables;
    bool has_path = false;
    for (char** variable = environ; variable && *variable; ++variable) {
        std::string_view text(*variable);
        if (text.starts_with("VFIO_HOOK_")) continue;
        has_path |= text.starts_with("PATH=");
        variables.emplace_back(text);
    }
    // libvirt passes PATH only if its daemon had one; scripts call systemctl, modprobe, ...
    if (!has_path) variables.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    std::string addresses;
    for (const auto& address : event.addresses) addresses += (addresses.empty() ? "" : " ") + address.str();
    variables.push_back("VFIO_HOOK_DOMAIN=" + event.domain_name);
    variables.push_back("VFIO_HOOK_DOMAIN_UUID=" + event.domain_uuid);
    variables.push_back("VFIO_HOOK_OPERATION=" + event.operation);
    variables.push_back("VFIO_HOOK_SUB_OPERATION=" + event.sub_operation);
    variables.push_back("VFIO_HOOK_PCI_ADDRESSES=" + addresses);
    return variables;
}

// The domain XML as a file the script reads at its own pace: a pipe we fill would need the
// script to read it all before we could read its output.
int xml_file(const std::string& xml) {
    int fd = ::memfd_create("vfio-hook-domain-xml", MFD_CLOEXEC);
    if (fd < 0) return ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::size_t written = 0;
    while (written < xml.size()) {
        ssize_t n = ::write(fd, xml.data() + written, xml.size() - written);
        if (n <= 0) break;
        written += static_cast<std::size_t>(n);
    }
    ::lseek(fd, 0, SEEK_SET);
    return fd;
}

struct Output {
    int fd;
    std::string pending;  // an unfinished line
    std::string last_line;
    bool open = true;
};

void log_lines(Output& output, const std::string& script, bool is_stderr) {
    std::size_t newline;
    while ((newline = output.pending.find('\n')) != std::string::npos) {
        std::string line = output.pending.substr(0, newline);
        output.pending.erase(0, newline + 1);
        if (line.empty()) continue;
        if (is_stderr) output.last_line = line;
        logger().info("{}: {}", script, line);
    }
}

std::string run_one(const std::string& script, const ScriptEvent& event, const std::string& xml,
                    std::chrono::milliseconds deadline) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return script + ": cannot run it: " + std::strerror(errno);
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        return script + ": cannot run it: " + std::strerror(errno);
    }
    int input = xml_file(xml);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, input, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);  // we ignore it; a script expects the default
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);  // its own group: the deadline kills it whole
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    std::vector<std::string> words{script, event.domain_name, event.operation, event.sub_operation, event.extra};
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    auto variables = environment_for(event);
    std::vector<char*> envp;
    for (auto& variable : variables) envp.push_back(variable.data());
    envp.push_back(nullptr);
    pid_t child = 0;
    int spawned = ::posix_spawn(&child, script.c_str(), &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(input);
    ::close(out[1]);
    ::close(err[1]);
    if (spawned != 0) {
        ::close(out[0]);
        ::close(err[0]);
        return script + ": cannot run it: " + std::strerror(spawned);
    }

    Output outputs[2] = {{out[0], "", "", true}, {err[0], "", "", true}};
    auto until = Clock::now() + deadline;
    int status = 0;
    bool exited = false;
    for (;;) {
        if (!exited && ::waitpid(child, &status, WNOHANG) == child) exited = true;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (!exited && left <= 0) break;
        pollfd fds[2] = {{outputs[0].open ? outputs[0].fd : -1, POLLIN, 0},
                         {outputs[1].open ? outputs[1].fd : -1, POLLIN, 0}};
        int ready = ::poll(fds, 2, exited ? 0 : static_cast<int>(std::min<long long>(left, 50)));
        if (ready < 0 && errno != EINTR) break;
        // Once it exited: what it wrote before is still in the pipes (its last stderr line is
        // the reason we give): read it all, but not what leftover children write later, nor
        // past the deadline when one of them never stops writing.
        if (exited && (ready == 0 || left <= 0)) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buffer[4096];
            ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                outputs[i].pending.append(buffer, static_cast<std::size_t>(n));
                log_lines(outputs[i], script, i == 1);
            } else if (n == 0) {
                outputs[i].open = false;
            }
        }
    }
    for (auto& output : outputs) {
        output.pending += '\n';
        log_lines(output, script, &output == &outputs[1]);
        ::close(output.fd);
    }
    if (!exited) {
        ::kill(-child, SIGKILL);
        // A script stuck in the kernel (an unbind waiting on a driver's remove, as NVRM does)
        // cannot die: a wait for it would hold libvirt forever. It holds none of libvirt's fds
        // (its output goes to our pipes), so after a bounded wait it is left behind.
        bool reaped = false;
        for (int tries = 0; tries < 200 && !reaped; ++tries) {
            reaped = ::waitpid(child, &status, WNOHANG) == child;
            if (!reaped) ::usleep(10000);
        }
        return script + " did not finish within " + std::to_string(deadline.count()) +
               " ms (script-deadline-ms): killed with its process group" +
               (reaped ? "" : "; it is stuck in the kernel and could not die (see its state in ps)");
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    std::string how = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                        : "was killed by signal " + std::to_string(WTERMSIG(status));
    const std::string& last = outputs[1].last_line;
    return script + " " + how + (last.empty() ? std::string() : ": " + last);
}

}  // namespace

bool script_directory_exists(const HostPaths& paths, const std::string& domain_name,
                             const std::string& operation, const std::string& sub_operation,
                             bool with_qemu_d_layout) {
    struct stat info;
    for (const auto& directory : script_directories(domain_name, operation, sub_operation, with_qemu_d_layout)) {
        if (::stat((paths.root / directory).c_str(), &info) == 0 && S_ISDIR(info.st_mode)) return true;
    }
    return false;
}

ScriptPlan find_scripts(const HostPaths& paths, const std::string& domain_name, const std::string& operation,
                        const std::string& sub_operation, bool with_qemu_d_layout) {
    std::vector<ScriptDirectory> directories;
    for (const auto& relative : script_directories(domain_name, operation, sub_operation, with_qemu_d_layout)) {
        fs::path directory = paths.root / relative;
        // stat, as script_directory_exists does: a link to a directory is not skipped in
        // silence; its lstat() among the ancestors below refuses it by name.
        struct stat self;
        if (::stat(directory.c_str(), &self) != 0 || !S_ISDIR(self.st_mode)) continue;
        ScriptDirectory listing;
        // Every directory from etc/<something> down: whoever may write one of them may swap a script.
        fs::path prefix = paths.root;
        int depth = 0;
        for (const auto& component : fs::path(relative)) {
            prefix /= component;
            if (++depth < 2) continue;
            if (auto ancestor = stat_entry(prefix)) listing.ancestors.push_back(*ancestor);
        }
        std::unique_ptr<DIR, int (*)(DIR*)> entries(::opendir(directory.c_str()), &::closedir);
        while (dirent* entry = entries ? ::readdir(entries.get()) : nullptr) {
            std::string name = entry->d_name;
            if (name == "." || name == "..") continue;
            // stat, not lstat: a symlink to a script is that script (its target's owner and mode).
            struct stat info;
            fs::path file = directory / name;
            if (::stat(file.c_str(), &info) != 0) continue;
            listing.entries.push_back({file.string(), static_cast<unsigned>(info.st_uid),
                                       static_cast<unsigned>(info.st_mode)});
        }
        directories.push_back(std::move(listing));
    }
    return plan_scripts(directories, static_cast<unsigned>(::geteuid()));
}

std::vector<std::string> run_scripts(const std::vector<std::string>& scripts, const ScriptEvent& event,
                                     const std::string& domain_xml, std::chrono::milliseconds deadline,
                                     bool stop_at_first_failure) {
    std::vector<std::string> failures;
    for (const auto& script : scripts) {
        auto start = Clock::now();
        std::string failure = run_one(script, event, domain_xml, deadline);
        auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        if (failure.empty()) {
            logger().info("{}: done in {} ms", script, took);
            continue;
        }
        logger().error("{}", failure);
        failures.push_back(failure);
        if (stop_at_first_failure) break;
    }
    return failures;
}

}  // namespace vfio_hook
