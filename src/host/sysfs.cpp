#include "host/sysfs.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

extern char** environ;

namespace vfio_hook {
namespace {

using Clock = std::chrono::steady_clock;

// Leaves the child with only fds 0-2 on /dev/null and `keep` as fd 3.
void isolate_child_fds(int keep) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
    }
    if (keep != 3) ::dup2(keep, 3);
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 4U, ~0U, 0U) == 0) return;
#endif
    long max = ::sysconf(_SC_OPEN_MAX);
    for (long fd = 4; fd < (max > 0 ? max : 65536); ++fd) ::close(static_cast<int>(fd));
}

// Waits for the helper's report on `fd` until the deadline; false on expiry.
bool wait_readable(int fd, Clock::time_point deadline) {
    for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd descriptor{fd, POLLIN, 0};
        int ready = ::poll(&descriptor, 1, static_cast<int>(left.count()));
        if (ready > 0) return true;
        if (ready < 0 && errno != EINTR) return false;
    }
}

}  // namespace

std::string WriteResult::describe() const {
    switch (status) {
        case Status::ok: return "ok";
        case Status::failed: return std::strerror(error);
        case Status::timed_out: return "hung";
    }
    return "unknown";
}

namespace {

// Runs `act` (which returns 0 or an errno, making only syscalls) in a forked helper that owns no
// file descriptor of ours, and waits for its word until the deadline. On expiry the helper is
// left to finish (or stay stuck in the kernel) on its own: it holds nothing of ours.
template <typename Act>
WriteResult in_helper(std::chrono::milliseconds deadline, Act act) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return {WriteResult::Status::failed, errno};
    pid_t child = ::fork();
    if (child < 0) {
        int error = errno;
        ::close(report[0]);
        ::close(report[1]);
        return {WriteResult::Status::failed, error};
    }
    if (child == 0) {
        isolate_child_fds(report[1]);
        int result = act();
        [[maybe_unused]] auto written = ::write(3, &result, sizeof result);
        ::_exit(0);
    }
    ::close(report[1]);
    WriteResult outcome{WriteResult::Status::timed_out, 0};
    if (wait_readable(report[0], Clock::now() + deadline)) {
        int result = 0;
        if (::read(report[0], &result, sizeof result) == sizeof result) {
            outcome = result == 0 ? WriteResult::success() : WriteResult{WriteResult::Status::failed, result};
        } else {
            outcome = {WriteResult::Status::failed, EIO};  // the helper died without a word
        }
        ::waitpid(child, nullptr, 0);
    }
    ::close(report[0]);
    return outcome;
}

}  // namespace

WriteResult RealKernel::write_within(const std::filesystem::path& file, std::string_view value,
                                     std::chrono::milliseconds deadline) {
    std::string path = file.string();  // prepared before fork: the child only makes syscalls
    return in_helper(deadline, [&] {
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) return errno;
        return ::write(fd, value.data(), value.size()) < 0 ? errno : 0;
    });
}

WriteResult RealKernel::map_consoles(const std::filesystem::path& fb_node, unsigned framebuffer) {
    std::string path = fb_node.string();
    return in_helper(deadline_, [&] {
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) return errno;
        // linux/fb.h: struct fb_con2fbmap { __u32 console; __u32 framebuffer; }; consoles 1..63.
        struct {
            std::uint32_t console, framebuffer;
        } map{0, framebuffer};
        int result = 0;
        for (map.console = 1; map.console <= 63; ++map.console) {
            if (::ioctl(fd, 0x4610 /* FBIOPUT_CON2FBMAP */, &map) != 0 && result == 0) result = errno;
        }
        return result;
    });
}

ReadResult RealKernel::read_blocking(const std::filesystem::path& file) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return {};
    std::string path = file.string();
    pid_t child = ::fork();
    if (child < 0) {
        ::close(report[0]);
        ::close(report[1]);
        return {};
    }
    if (child == 0) {
        isolate_child_fds(report[1]);
        char buffer[65536];
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : ::read(fd, buffer, sizeof buffer);
        // First byte: whether the file could be read at all; then its contents.
        char found = n >= 0 ? 1 : 0;
        [[maybe_unused]] auto a = ::write(3, &found, 1);
        if (n > 0) {
            [[maybe_unused]] auto b = ::write(3, buffer, static_cast<std::size_t>(n));
        }
        ::_exit(0);
    }
    ::close(report[1]);
    auto until = Clock::now() + deadline_;
    std::string bytes;
    bool finished = false;
    char buffer[4096];
    while (wait_readable(report[0], until)) {
        ssize_t n = ::read(report[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            finished = true;
            break;
        }
        bytes.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(report[0]);
    if (!finished) return {ReadResult::Status::timed_out, ""};  // the helper stays stuck alone
    ::waitpid(child, nullptr, 0);
    if (bytes.empty() || bytes[0] != 1) return {};
    std::string text = bytes.substr(1);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return {ReadResult::Status::ok, text};
}

bool RealKernel::load_module(const std::string& name) {
    const char* candidates[] = {"/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe",
                                "/bin/modprobe"};
    const char* modprobe = nullptr;
    for (const char* candidate : candidates) {
        if (::access(candidate, X_OK) == 0) {
            modprobe = candidate;
            break;
        }
    }
    if (!modprobe) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    for (int fd = 0; fd <= 2; ++fd) posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0);
    std::string module = name;
    char* argv[] = {const_cast<char*>("modprobe"), module.data(), nullptr};
    pid_t child = 0;
    int spawned = ::posix_spawn(&child, modprobe, &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) return false;
    // modprobe runs the module's init; bound it like any other kernel wait.
    auto deadline = Clock::now() + deadline_;
    int status = 0;
    for (auto pause = std::chrono::milliseconds(1);; pause = std::min(pause * 2, std::chrono::milliseconds(50))) {
        pid_t done = ::waitpid(child, &status, WNOHANG);
        if (done == child) return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (Clock::now() >= deadline) return false;
        ::usleep(static_cast<useconds_t>(pause.count() * 1000));
    }
}

}  // namespace vfio_hook
