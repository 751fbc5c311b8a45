#pragma once
// The only way vfio-hook changes the kernel's state: writes to sysfs files and loading a module,
// each under a deadline. RealKernel (host/sysfs.hpp) does them for real; tests substitute a fake
// kernel that moves driver links in a temp tree the way the kernel would.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

namespace vfio_hook {

struct [[nodiscard]] WriteResult {
    enum class Status { ok, failed, timed_out };
    Status status = Status::ok;
    int error = 0;  // errno when failed

    bool ok() const { return status == Status::ok; }
    std::string describe() const;  // "No such device", "hung for 5000 ms", ...
    static WriteResult success() { return {}; }
};

// A read of a file whose kernel handler can block: vtconsole's `bind` takes console_lock,
// /proc/driver/nvidia/…/information enters the NVIDIA driver (and can wake a suspended GPU).
struct [[nodiscard]] ReadResult {
    enum class Status { ok, absent, timed_out };
    Status status = Status::absent;
    std::string text;  // trailing newline removed
};

class KernelInterface {
public:
    virtual ~KernelInterface() = default;
    WriteResult write(const std::filesystem::path& file, std::string_view value) {
        return write_within(file, value, deadline());
    }
    virtual WriteResult write_within(const std::filesystem::path& file, std::string_view value,
                                     std::chrono::milliseconds deadline) = 0;
    // Under the same deadline as the writes.
    virtual ReadResult read_blocking(const std::filesystem::path& file) = 0;
    // Maps every virtual console to framebuffer `framebuffer` through `fb_node` (/dev/fbN) with
    // FBIOPUT_CON2FBMAP, what con2fbmap does: the one way to give fbcon back a console once its
    // vtconsole was unbound (writing 1 to `bind` is accepted and ignored), under the deadline.
    // One ioctl per VT (1..63); the result is the first VT's errno even when others were mapped
    // (a VT never allocated may refuse): whether fbcon is back is read from its `bind`.
    virtual WriteResult map_consoles(const std::filesystem::path& fb_node, unsigned framebuffer) = 0;
    // Loads a kernel module by name; true when it is (now) present.
    virtual bool load_module(const std::string& name) = 0;
    virtual std::chrono::milliseconds deadline() const = 0;
};

}  // namespace vfio_hook
