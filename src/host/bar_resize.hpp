#pragma once
// Resizable BAR per VM (issue 26, point 5), on the host: read what a device's BARs can be and
// are, resize them while it has no driver, and put the recorded sizes back at release. The
// decisions are core/rebar.hpp's; the kernel facts are there too.
//
// A resize is an improvement, never a condition: one that fails (EBUSY, ENOSPC, a BAR that does
// not take the size) is a warning, and the device moves all the same.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/problem.hpp"
#include "core/rebar.hpp"
#include "core/state_record.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// One resizable BAR as sysfs shows it.
struct ResizableBar {
    unsigned bar = 0;
    std::uint64_t supported = 0;        // resourceN_resize's bitmap: bit n = 2^n MB
    std::optional<unsigned> current;    // its size now as a bit, from `resource`; nullopt: unreadable
    bool sizes_read = true;             // false: `supported` not read, the device sleeps in D3cold
};

// Each BAR of the device with a `resourceN_resize` file (none: no ReBAR capability, or a kernel
// before 6.1). For `status` as well as the plan below. Reading that file resumes a device the
// kernel has in D3cold (pci_config_pm_runtime_get): with `may_wake` false (status, which only
// looks) such a device's bitmaps are left unread.
std::vector<ResizableBar> read_resizable_bars(const HostPaths& paths, const PciAddress& address, bool may_wake = true);

struct BarResize {
    unsigned bar = 0;
    unsigned from = 0;  // bits of the kernel's bitmap: 2^bit MB
    unsigned to = 0;
};

struct [[nodiscard]] RebarPlan {
    bool resizable = false;           // the device has a resizable BAR at all
    std::vector<BarResize> resizes;   // the BARs whose size the setting changes
    std::vector<std::string> warnings;  // a size a BAR cannot take, a size that cannot be read
};

// What `setting` asks of the device's resizable BARs (each `resourceN_resize` it has).
RebarPlan plan_bar_resizes(const HostPaths& paths, const PciAddress& address, const RebarSetting& setting);

// Writes each size (`resourceN_resize` = bit) under the write deadline: the device must have no
// driver. Each failure a line of the problem, naming the BAR, the size and the errno.
Problem resize_bars(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address,
                    const std::vector<BarSize>& sizes);

// The recorded sizes back where they differ from what is there now (the resize may have failed):
// while the device has no driver, before its host driver binds.
Problem restore_bar_sizes(const HostPaths& paths, KernelInterface& kernel, const RecordedDevice& device);

// "0000:01:00.0 BAR 0: 256 MB -> 16 GB" for check and the log.
std::string describe(const PciAddress& address, const BarResize& resize);

}  // namespace vfio_hook
