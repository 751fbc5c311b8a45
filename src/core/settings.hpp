#pragma once
// Every setting vfio-hook reads, as one plain struct: the config file fills it, the command line
// overrides it, and the domain's <metadata> may override the per-VM ones.

#include <chrono>
#include <string>

namespace vfio_hook {

struct Settings {
    // How long one sysfs write that can block in a driver (unbind, bind, drivers_probe) may take
    // before the hook gives up on it and reports which write hung.
    std::chrono::milliseconds write_deadline{5000};
    // How long giving a device back to its host driver may take: a bind runs the driver's probe,
    // which may load large firmware (NVIDIA's GSP) and take far longer than an unbind.
    std::chrono::milliseconds bind_deadline{30000};
    // How long to wait for the kernel to show the result of a write (the driver link).
    std::chrono::milliseconds settle_deadline{2000};
    // How long a hook run waits for another run's lock before refusing.
    std::chrono::milliseconds lock_deadline{60000};
    // How long one hook.d script may run before its whole process group is killed.
    std::chrono::milliseconds script_deadline{60000};
    bool allow_boot_vga = false;
    bool refuse_on_firmware_errors = false;
    std::string log_level = "info";
};

}  // namespace vfio_hook
