#include "host/program.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

extern char** environ;

namespace vfio_hook {
namespace {

using Clock = std::chrono::steady_clock;

// Reads both pipes until EOF on both or the deadline; false on expiry.
bool drain(int out_fd, int err_fd, std::string& out, std::string& err, Clock::time_point until) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
    std::string* sinks[2] = {&out, &err};
    int open_count = 2;
    while (open_count > 0) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) return false;
        int ready = ::poll(fds, 2, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) return false;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buffer[8192];
            ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                sinks[i]->append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1;
                --open_count;
            }
        }
    }
    return true;
}

std::string last_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    auto newline = text.find_last_of('\n');
    return newline == std::string::npos ? text : text.substr(newline + 1);
}

}  // namespace

Expected<std::string> run_program(const std::vector<std::string>& argv_text, std::chrono::milliseconds deadline,
                                  const std::vector<std::string>& extra_environment) {
    const std::string& name = argv_text.at(0);
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Error{"cannot run " + name + ": " + std::strerror(errno)};
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        ::close(out_pipe[0]);
        ::close(out_pipe[1]);
        return Error{"cannot run " + name + ": " + std::strerror(errno)};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);  // its own group: killed whole
    posix_spawnattr_setpgroup(&attributes, 0);
    std::vector<std::string> words = argv_text;
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    std::vector<std::string> environment_text = extra_environment;
    for (char** entry = environ; *entry; ++entry) {
        std::string_view variable(*entry);
        bool replaced = false;
        for (const auto& extra : extra_environment) {
            auto name_end = extra.find('=');
            if (variable.substr(0, name_end + 1) == std::string_view(extra).substr(0, name_end + 1)) replaced = true;
        }
        if (!replaced) environment_text.emplace_back(variable);
    }
    std::vector<char*> environment;
    for (auto& entry : environment_text) environment.push_back(entry.data());
    environment.push_back(nullptr);
    pid_t child = 0;
    int spawned = ::posix_spawnp(&child, name.c_str(), &actions, &attributes, argv.data(), environment.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    std::string out, err;
    bool finished = spawned == 0 && drain(out_pipe[0], err_pipe[0], out, err, Clock::now() + deadline);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    if (spawned != 0) return Error{"cannot run " + name + ": " + std::strerror(spawned)};
    if (!finished) ::kill(-child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!finished) {
        return Error{name + " did not finish within " + std::to_string(deadline.count()) + " ms"};
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        auto why = last_line(err);
        return Error{name + " failed" + (why.empty() ? std::string() : ": " + why)};
    }
    return out;
}

}  // namespace vfio_hook
