#pragma once
// RealKernel: the kernel interface (host/kernel_interface.hpp) done for real, each write and each
// blocking read under a deadline.

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "host/kernel_interface.hpp"

namespace vfio_hook {

// Each write runs in a forked helper that owns no file descriptor of ours: when a driver's
// remove() blocks forever (nvidia with open handles, vfio-pci while a VM has the device) the
// helper stays stuck in the kernel, but we return at the deadline, and the helper holds neither
// libvirt's stdout/stderr pipes (libvirt waits for EOF on both) nor our lock.
class RealKernel : public KernelInterface {
public:
    explicit RealKernel(std::chrono::milliseconds deadline) : deadline_(deadline) {}
    WriteResult write_within(const std::filesystem::path& file, std::string_view value,
                             std::chrono::milliseconds deadline) override;
    ReadResult read_blocking(const std::filesystem::path& file) override;
    WriteResult map_consoles(const std::filesystem::path& fb_node, unsigned framebuffer) override;
    bool load_module(const std::string& name) override;
    std::chrono::milliseconds deadline() const override { return deadline_; }

private:
    std::chrono::milliseconds deadline_;
};

}  // namespace vfio_hook
