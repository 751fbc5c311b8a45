#pragma once
// Moves one PCI function between drivers through sysfs — to vfio-pci, or home to a named driver —
// and verifies the result, each step under a deadline. The sequences follow the kernel's rules:
// driver_override survives unbind and beats dynamic IDs; drivers_probe reports success even when
// nothing bound, so the driver link is what tells.

#include <functional>
#include <optional>
#include <string>

#include "core/expected.hpp"
#include "core/pci_device.hpp"
#include "core/problem.hpp"
#include "core/settings.hpp"
#include "host/host_paths.hpp"
#include "host/kernel_interface.hpp"

namespace vfio_hook {

// What to do in the moment a device has no driver, between the unbind and the next bind (issue
// 26: resizing its BARs, which the kernel allows only then).
using WhileUnbound = std::function<void()>;

class DeviceMover {
public:
    DeviceMover(const HostPaths& paths, KernelInterface& kernel, const Settings& settings)
        : paths_(paths), kernel_(kernel), settle_deadline_(settings.settle_deadline),
          bind_deadline_(settings.bind_deadline) {}

    // Each returns the problem (one line naming the device, the step and the file; its kind says
    // whether a write hung or only the old driver_override is not back), or none.
    // `driver`: vfio-pci or a VFIO variant driver (core/vfio_driver.hpp), already loaded.
    Problem to_vfio(const PciAddress& address, const DriverName& driver = std::string(vfio_pci),
                    const WhileUnbound& while_unbound = {});
    // Back to `driver` by name (falling back to a reprobe); nullopt driver: left driverless.
    // `override`: a driver_override the device had before us, written back once it is home.
    Problem send_home(const PciAddress& address, const std::optional<DriverName>& driver,
                      const std::optional<DriverName>& override = std::nullopt,
                      const WhileUnbound& while_unbound = {});
    // The device's driver_override as it is now (nullopt: none). The read takes the device lock,
    // so it runs under the deadline; an error when it did not answer.
    Expected<std::optional<DriverName>> read_override(const PciAddress& address);
    // Off vfio-pci to whichever host driver claims it (for devices we have no record of).
    Problem reprobe(const PciAddress& address);

private:
    // The first half of send_home: off vfio-pci and onto `driver` (its override not yet back).
    Problem bind_to(const PciAddress& address, const std::optional<DriverName>& driver,
                    const WhileUnbound& while_unbound);
    // Runs `while_unbound`, if any, when the device has no driver now.
    void between_drivers(const PciAddress& address, const WhileUnbound& while_unbound);
    // Clears driver_override and unbinds whatever driver has the device, unless it is `keep`.
    Problem leave_current_driver(const PciAddress& address,
                                 const std::optional<DriverName>& keep);
    Problem write(const PciAddress& address, const std::string& step,
                  const std::filesystem::path& file, std::string_view value);
    // A write that runs a host driver's probe, under the longer bind deadline.
    WriteResult probe_write(const std::filesystem::path& file, const PciAddress& address);
    bool wait_for_driver(const PciAddress& address, const std::optional<DriverName>& driver);

    const HostPaths& paths_;
    KernelInterface& kernel_;
    std::chrono::milliseconds settle_deadline_;
    std::chrono::milliseconds bind_deadline_;
};

}  // namespace vfio_hook
