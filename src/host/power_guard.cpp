#include "host/power_guard.hpp"

namespace vfio_hook {
namespace {

std::filesystem::path control_file(const HostPaths& paths, const PciAddress& address) {
    return paths.pci_device(address) / "power/control";
}

std::filesystem::path d3cold_file(const HostPaths& paths, const PciAddress& address) {
    return paths.pci_device(address) / "d3cold_allowed";
}

std::optional<std::string> read_if_present(const std::filesystem::path& file) {
    std::error_code error;
    if (!std::filesystem::exists(file, error)) return std::nullopt;
    std::string value = read_small_file(file);
    if (value.empty()) return std::nullopt;
    return value;
}

Problem write_back(KernelInterface& kernel, const PciAddress& address, const std::filesystem::path& file,
                   const std::optional<std::string>& recorded) {
    if (!recorded || read_if_present(file) == recorded) return {};
    WriteResult result = kernel.write(file, *recorded);
    if (result.ok()) return {};
    return address.str() + ": putting back " + file.filename().string() + " = " + *recorded + " failed: writing " +
           file.string() + ": " + result.describe() + "; the device is home: write it by hand";
}

}  // namespace

void record_power_settings(const HostPaths& paths, RecordedDevice& device) {
    device.power_control = read_if_present(control_file(paths, device.address));
    device.d3cold_allowed = read_if_present(d3cold_file(paths, device.address));
}

Problem forbid_d3cold(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address) {
    auto file = d3cold_file(paths, address);
    // Absent: a kernel without CONFIG_ACPI (no D3cold to forbid). 0 already: nothing to do.
    if (read_if_present(file) != "1") return {};
    WriteResult result = kernel.write(file, "0");
    if (result.ok()) return {};
    return address.str() + ": power guard: writing 0 to " + file.string() + ": " + result.describe() +
           "; vfio-pci may let it sleep in D3cold until QEMU opens it";
}

Problem keep_awake(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address) {
    auto file = control_file(paths, address);
    // Absent: a kernel without runtime PM. vfio-pci's bind calls pm_runtime_allow() even with
    // disable_idle_d3=1 (it then only keeps its usage count), so `on` here means someone else.
    auto now = read_if_present(file);
    if (!now || *now == "on") return {};
    WriteResult result = kernel.write(file, "on");
    if (result.ok()) return {};
    return address.str() + ": power guard: writing on to " + file.string() + ": " + result.describe() +
           "; vfio-pci may let it sleep in D3cold until QEMU opens it";
}

Problem restore_power_settings(const HostPaths& paths, KernelInterface& kernel, const RecordedDevice* device) {
    if (!device) return {};
    // d3cold_allowed first: writing it wakes the device, which `power/control` = auto may then
    // let sleep again.
    if (auto problem = write_back(kernel, device->address, d3cold_file(paths, device->address), device->d3cold_allowed))
        return problem;
    return write_back(kernel, device->address, control_file(paths, device->address), device->power_control);
}

}  // namespace vfio_hook
