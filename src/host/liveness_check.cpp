#include "host/liveness_check.hpp"

#include <fstream>

#include "host/log.hpp"
#include "host/pci_bus.hpp"

namespace vfio_hook {
namespace {

std::string read_reset_methods(const HostPaths& paths, const PciAddress& address) {
    return read_small_file(paths.pci_device(address) / "reset_method");
}

}  // namespace

Liveness read_liveness(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address) {
    auto config = paths.pci_device(address) / "config";
    // Only a device the kernel believes in D3cold is resumed by the read (pci-sysfs.c
    // pci_config_pm_runtime_get), which can take long or hang; any other answers at once (a
    // device gone from the bus with all ones), so it is read here, without a helper process.
    if (read_small_file(paths.pci_device(address) / "power_state") != "D3cold") {
        std::ifstream file(config, std::ios::binary);
        if (!file) return judge_config_space("");
        char bytes[256];
        file.read(bytes, sizeof bytes);
        return judge_config_space(std::string_view(bytes, static_cast<std::size_t>(file.gcount())));
    }
    // read_blocking drops trailing newline and space bytes: a config space ending in 0x0a or
    // 0x20 reads shorter, which can only hide the PM status (bytes past the end read as absent),
    // never the vendor at offset 0.
    auto read = kernel.read_blocking(config);
    if (read.status == ReadResult::Status::timed_out) {
        // A read that cannot finish is a device that does not answer: its driver's probe would
        // block the same way.
        Liveness liveness;
        liveness.state = Liveness::State::gone;
        liveness.why = "reading its config space did not return within " +
                       std::to_string(kernel.deadline().count()) + " ms";
        return liveness;
    }
    return judge_config_space(read.text);
}

Problem refuse_dead_device(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address,
                           const std::optional<DriverName>& driver, bool strict) {
    Liveness liveness = read_liveness(paths, kernel, address);
    if (liveness.may_go_home(strict)) return {};
    std::string methods = read_reset_methods(paths, address);
    bool reset_is_safe = reset_is_per_function(methods);
    auto reset_file = paths.pci_device(address) / "reset";
    // Only a device no host driver drives is reset here: on a VFIO driver (which resets on open
    // and close itself) or on none. Under a live driver (a script put it back before release)
    // pci_reset_function() would pull the device from under that driver.
    auto current = current_driver(paths, address);
    std::error_code error;
    bool undriven = !current || *current == vfio_pci || std::filesystem::exists(paths.pci_device(address) / "vfio-dev", error);
    if (strict && reset_is_safe && undriven) {
        WriteResult reset = kernel.write(reset_file, "1");
        Liveness after = reset.ok() ? read_liveness(paths, kernel, address) : liveness;
        if (reset.ok() && after.may_go_home(strict)) {
            logger().warn("{}: {}; its reset ({}) brought it back", address.str(), liveness.why, methods);
            return {};
        }
        liveness.why += reset.ok() ? ", also after its reset (" + methods + ")"
                                   : "; its reset failed: " + reset.describe();
    }
    std::string line = address.str() + ": not given back to " + driver.value_or("a host driver") + ": " +
                       liveness.why + "; it stays on vfio-pci, recorded: ";
    if (reset_is_safe && !strict) {
        line += "reset it (`echo 1 > " + reset_file.string() + "`, reset_method: " + methods +
                ") then run `vfio-hook recover`, or reboot";
    } else {
        line += "reboot the host" +
                (methods.empty() ? std::string(" (it has no reset)")
                 : reset_is_safe ? std::string()
                                 : " (its reset_method '" + methods + "' would reset the other devices on its bus too)");
    }
    return line;
}

std::vector<Refusal> recorded_devices_not_answering(const HostPaths& paths, KernelInterface& kernel,
                                                    const std::vector<StateRecord>& records) {
    std::vector<Refusal> dead;
    for (const auto& record : records) {
        for (const auto& device : record.devices) {
            if (current_driver(paths, device.address) != device.vfio_driver_name()) continue;  // a variant too
            Liveness liveness = read_liveness(paths, kernel, device.address);
            if (liveness.state != Liveness::State::gone) continue;
            std::string methods = read_reset_methods(paths, device.address);
            dead.push_back({device.address,
                            liveness.why + "; it is on vfio-pci, recorded for " + record.owner_label(),
                            reset_is_per_function(methods)
                                ? "reset it (`echo 1 > " + (paths.pci_device(device.address) / "reset").string() +
                                      "`) then run `vfio-hook recover`, or reboot the host"
                                : "reboot the host"});
        }
    }
    return dead;
}

}  // namespace vfio_hook
