#pragma once
// Every setting the core reads, as one plain struct: the command line and (later) the config file
// fill it; the domain's <metadata> may override the per-VM ones.

#include <chrono>

namespace vfio_hook {

struct Settings {
    // How long one sysfs write that can block in a driver (unbind, bind, drivers_probe) may take
    // before the hook gives up on it and reports which write hung.
    std::chrono::milliseconds write_deadline{5000};
    // How long to wait for the kernel to show the result of a write (the driver link).
    std::chrono::milliseconds settle_deadline{2000};
    // How long a hook run waits for another run's lock before refusing.
    std::chrono::milliseconds lock_deadline{60000};
    bool allow_boot_vga = false;
    bool refuse_on_firmware_errors = false;
};

}  // namespace vfio_hook
