#include "host/kernel_log_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vfio_hook {

std::vector<KernelLogLine> read_kernel_log(const HostPaths& paths) {
    int fd = ::open(paths.kmsg().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return {};
    // /dev/kmsg hands out one record per read() and EAGAIN at the end; a plain file (tests)
    // hands out chunks and 0 at the end. EPIPE means records were overwritten under us: go on.
    std::string text;
    char buffer[8192];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && (errno == EPIPE || errno == EINTR)) continue;
        break;
    }
    ::close(fd);
    return parse_kmsg(text);
}

}  // namespace vfio_hook
