#include "host/device_mover.hpp"

#include <unistd.h>

#include <thread>

#include "host/pci_bus.hpp"

namespace vfio_hook {

namespace {

Problem describe_failure(const PciAddress& address, const std::string& step,
                         const std::filesystem::path& file, const WriteResult& result,
                         std::chrono::milliseconds deadline, bool probing = false) {
    if (result.status == WriteResult::Status::timed_out && probing) {
        return Problem{address.str() + ": still binding: " + step + " (the write to " +
                       file.string() + ") had not returned after " +
                       std::to_string(deadline.count()) +
                       " ms; the driver may still be loading its firmware (bind-deadline-ms)",
                       ProblemKind::hung};
    }
    if (result.status == WriteResult::Status::timed_out) {
        return Problem{address.str() + ": " + step + " hung: the write to " + file.string() +
                       " did not return within " + std::to_string(deadline.count()) +
                       " ms (a driver or a process still holds the device)", ProblemKind::hung};
    }
    return Problem{address.str() + ": " + step + " failed: writing " + file.string() + ": " +
                   result.describe()};
}

}  // namespace

Problem DeviceMover::write(const PciAddress& address, const std::string& step,
                           const std::filesystem::path& file,
                           std::string_view value) {
    WriteResult result = kernel_.write(file, value);
    if (result.ok()) return {};
    return describe_failure(address, step, file, result, kernel_.deadline());
}

// The kernel binds synchronously for most drivers, but some probe asynchronously: poll the link
// with a deadline, never a fixed sleep.
bool DeviceMover::wait_for_driver(const PciAddress& address, const std::optional<DriverName>& driver) {
    auto deadline = std::chrono::steady_clock::now() + settle_deadline_;
    auto pause = std::chrono::microseconds(200);
    for (;;) {
        if (current_driver(paths_, address) == driver) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
}

WriteResult DeviceMover::probe_write(const std::filesystem::path& file, const PciAddress& address) {
    return kernel_.write_within(file, address.str(), bind_deadline_);
}

void DeviceMover::between_drivers(const PciAddress& address, const WhileUnbound& while_unbound) {
    if (while_unbound && !current_driver(paths_, address)) while_unbound();
}

Problem DeviceMover::to_vfio(const PciAddress& address, const DriverName& vfio, const WhileUnbound& while_unbound) {
    if (auto error = write(address, "setting driver_override to " + vfio,
                           paths_.pci_device(address) / "driver_override", vfio))
        return error;
    auto driver = current_driver(paths_, address);
    if (driver == vfio) return {};
    if (driver) {
        if (auto error = write(address, "unbind from " + *driver,
                               paths_.pci_driver(*driver) / "unbind", address.str()))
            return error;
    }
    between_drivers(address, while_unbound);
    if (auto error = write(address, "drivers_probe", paths_.drivers_probe(), address.str()))
        return error;
    if (!wait_for_driver(address, vfio)) {
        return Problem{address.str() + ": did not bind to " + vfio + " (driver now: " +
                       current_driver(paths_, address).value_or("none") + ")"};
    }
    return {};
}

Expected<std::optional<DriverName>> DeviceMover::read_override(const PciAddress& address) {
    auto file = paths_.pci_device(address) / "driver_override";
    auto read = kernel_.read_blocking(file);
    if (read.status == ReadResult::Status::timed_out) {
        return Error{address.str() + ": reading " + file.string() + " did not return within " +
                     std::to_string(kernel_.deadline().count()) +
                     " ms (the device lock is held: a stuck unbind?)"};
    }
    if (read.text.empty() || read.text == "(null)" || !is_kernel_driver_name(read.text))
        return std::optional<DriverName>();
    return std::optional<DriverName>(read.text);
}

Problem DeviceMover::send_home(const PciAddress& address, const std::optional<DriverName>& driver,
                               const std::optional<DriverName>& override, const WhileUnbound& while_unbound) {
    if (auto error = bind_to(address, driver, while_unbound)) return error;
    if (!override) return {};
    auto failure = write(address, "putting back driver_override " + *override,
                         paths_.pci_device(address) / "driver_override", *override);
    if (!failure) return {};
    return Problem{failure.message(), ProblemKind::device_home};
}

Problem DeviceMover::bind_to(const PciAddress& address, const std::optional<DriverName>& driver,
                             const WhileUnbound& while_unbound) {
    if (driver && !is_kernel_driver_name(*driver))
        return Problem{address.str() + ": refusing to bind to '" + *driver +
                       "': not a kernel driver name"};
    if (auto error = leave_current_driver(address, driver)) return error;
    between_drivers(address, while_unbound);
    if (!driver || current_driver(paths_, address) == driver) return {};  // it had no driver before: it stays driverless
    // Bind to the recorded driver by name: a reprobe could pick another driver (a dynamic
    // vfio-pci ID added by driverctl, say). Fall back to the reprobe if the name no longer binds.
    auto bind_file = paths_.pci_driver(*driver) / "bind";
    WriteResult bound = probe_write(bind_file, address);
    if (bound.status == WriteResult::Status::timed_out)
        return describe_failure(address, "bind to " + *driver, bind_file, bound, bind_deadline_, true);
    if (!bound.ok()) {
        WriteResult probed = probe_write(paths_.drivers_probe(), address);
        if (!probed.ok())
            return describe_failure(address, "drivers_probe", paths_.drivers_probe(), probed,
                                    bind_deadline_, true);
    }
    if (!wait_for_driver(address, driver)) {
        return Problem{address.str() + ": did not come back to " + *driver + " (driver now: " +
                       current_driver(paths_, address).value_or("none") + ")" +
                       (bound.ok() ? std::string() : "; bind said: " + bound.describe())};
    }
    return {};
}

Problem DeviceMover::reprobe(const PciAddress& address) {
    if (auto error = leave_current_driver(address, std::nullopt)) return error;
    WriteResult probed = probe_write(paths_.drivers_probe(), address);
    if (probed.ok()) return {};
    return describe_failure(address, "drivers_probe", paths_.drivers_probe(), probed, bind_deadline_, true);
}

Problem DeviceMover::leave_current_driver(const PciAddress& address,
                                          const std::optional<DriverName>& keep) {
    // An empty line clears the override; it survives unbind and would send a reprobe back to
    // vfio-pci.
    if (auto error = write(address, "clearing driver_override",
                           paths_.pci_device(address) / "driver_override", "\n"))
        return error;
    auto current = current_driver(paths_, address);
    if (!current || current == keep) return {};
    return write(address, "unbind from " + *current, paths_.pci_driver(*current) / "unbind",
                 address.str());
}

}  // namespace vfio_hook
