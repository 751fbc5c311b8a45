#include "host/pci_bus.hpp"

#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <system_error>

#include "core/console.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

std::uint32_t read_hex(const fs::path& file) {
    std::string text = read_small_file(file);
    std::string_view digits = text;
    if (digits.starts_with("0x")) digits.remove_prefix(2);
    std::uint32_t value = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), value, 16);
    return value;
}

std::vector<std::string> entries(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

bool starts_with_any(const std::string& name, std::initializer_list<std::string_view> prefixes) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](std::string_view prefix) { return name.starts_with(prefix); });
}

// The PCI device an i2c adapter belongs to: the nearest PCI address in the path of its class
// device (/sys/class/i2c-dev/i2c-N → ../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/
// [drm/card1/card1-DP-1/]i2c-N/i2c-dev/i2c-N), so a bridge above the GPU never owns it.
std::optional<PciAddress> i2c_adapter_owner(const fs::path& class_link) {
    std::error_code error;
    fs::path target = fs::read_symlink(class_link, error);
    if (error) return std::nullopt;
    std::optional<PciAddress> owner;
    for (const auto& part : target) {
        if (auto address = PciAddress::parse(part.string())) owner = address;
    }
    return owner;
}

// NVIDIA's per-GPU node, /dev/nvidiaN by the "Device Minor" of /proc/driver/nvidia/gpus/ADDR/
// information (not by order). Reading it enters the NVIDIA driver: only under the deadline, and
// only when it exists. Not /dev/nvidiactl or /dev/nvidia-modeset: every NVIDIA GPU's users open
// those, so Xorg on GPU 0 would block passing GPU 1.
std::optional<std::string> nvidia_node(const HostPaths& paths, KernelInterface& kernel, PciDevice& device) {
    auto info_file = paths.proc() / "driver/nvidia/gpus" / device.address.str() / "information";
    if (::access(info_file.c_str(), F_OK) != 0) return std::nullopt;
    auto read = kernel.read_blocking(info_file);
    if (read.status == ReadResult::Status::timed_out)
        device.unreadable.push_back(info_file.string() + " did not answer within " +
                                    std::to_string(kernel.deadline().count()) + " ms");
    const std::string& info = read.text;
    // "Model:           NVIDIA GeForce RTX 4090": the name `status` and `check` show for it.
    if (auto model = info.find("Model:"); model != std::string::npos) {
        auto start = info.find_first_not_of(" \t", model + 6);
        auto end = info.find('\n', model);
        if (start != std::string::npos && start < end) device.model = info.substr(start, end == std::string::npos ? end : end - start);
    }
    auto minor = info.find("Device Minor:");
    if (minor == std::string::npos) return std::nullopt;
    unsigned number = 0;
    auto start = info.find_first_of("0123456789", minor);
    if (start == std::string::npos ||
        std::from_chars(info.data() + start, info.data() + info.size(), number).ec != std::errc{})
        return std::nullopt;
    std::string node = "/dev/nvidia" + std::to_string(number);
    device.node_numbers[node] = makedev(195, number);  // NVIDIA's fixed major
    return node;
}

// The device nodes through which host programs hold this function: DRM cards and render nodes,
// ALSA nodes of its sound cards, its iommufd cdev, its i2c buses, its framebuffers and its
// NVIDIA node.
std::vector<std::string> device_nodes(const HostPaths& paths, KernelInterface& kernel, PciDevice& device) {
    fs::path dir = paths.pci_device(device.address);
    std::vector<std::string> nodes;
    auto add = [&](const std::string& node, const fs::path& sysfs_dir) {
        nodes.push_back(node);
        if (auto number = parse_device_number(read_small_file(sysfs_dir / "dev"))) device.node_numbers[node] = *number;
    };
    for (const auto& name : entries(dir / "drm")) {
        if (starts_with_any(name, {"card", "renderD"})) add("/dev/dri/" + name, dir / "drm" / name);
    }
    for (const auto& card : entries(dir / "sound")) {
        for (const auto& name : entries(dir / "sound" / card)) {
            if (starts_with_any(name, {"controlC", "pcmC", "hwC", "midiC"}))
                add("/dev/snd/" + name, dir / "sound" / card / name);
        }
    }
    // The iommufd cdev (6.6+): QEMU may use the device through it with /dev/vfio/GROUP closed.
    for (const auto& name : entries(dir / "vfio-dev")) {
        if (name.starts_with("vfio")) add("/dev/vfio/devices/" + name, dir / "vfio-dev" / name);
    }
    // Its DDC buses and DP AUX channels as /dev/i2c-N (i2c-dev): i2cdev_open() takes a reference
    // on the adapter and the driver's remove waits in i2c_del_adapter() until the last one is
    // dropped, so a brightness daemon (ddcutil, ddccontrol) pins the GPU with no DRM node open.
    // The adapter hangs under the PCI device or deeper, under a DRM connector.
    const fs::path i2c_dev = paths.root / "sys/class/i2c-dev";
    for (const auto& name : entries(i2c_dev)) {
        if (name.starts_with("i2c-") && i2c_adapter_owner(i2c_dev / name) == device.address)
            add("/dev/" + name, i2c_dev / name);
    }
    // Its fbdev emulation's /dev/fbN (nvidia-drm since 570, amdgpu, i915, nouveau): the fb's
    // parent `device` is the GPU itself (drm_fb_helper: info->device = the DRM device's dev).
    // An open fb holds its driver module (rmmod), and a program drawing on it loses it silently.
    const fs::path graphics = paths.root / "sys/class/graphics";
    for (const auto& name : entries(graphics)) {
        bool framebuffer = name.size() > 2 && name.starts_with("fb") && std::isdigit(static_cast<unsigned char>(name[2]));
        auto parent = framebuffer ? link_name(graphics / name / "device") : std::nullopt;  // not fbcon
        if (parent && PciAddress::parse(*parent) == device.address) add("/dev/" + name, graphics / name);
    }
    if (auto node = nvidia_node(paths, kernel, device)) nodes.push_back(*node);
    return nodes;
}

// `bind` takes console_lock, which a wedged console driver can hold: read under the deadline,
// and a console that does not answer counts as bound (the cautious side).
bool fbcon_is_bound(const HostPaths& paths, KernelInterface& kernel) {
    for (const auto& name : entries(paths.root / "sys/class/vtconsole")) {
        fs::path dir = paths.root / "sys/class/vtconsole" / name;
        if (read_small_file(dir / "name").find("frame buffer") == std::string::npos) continue;
        auto bind = kernel.read_blocking(dir / "bind");
        if (bind.status == ReadResult::Status::timed_out || bind.text == "1") return true;
    }
    return false;
}

// Marks the devices that carry the host's console: the firmware framebuffer inside one of their
// BARs (/proc/iomem), or /dev/fb0 while fbcon draws the virtual consoles on it.
void mark_console(const HostPaths& paths, KernelInterface& kernel, BusSnapshot& bus) {
    for (const auto& [address, name] : firmware_framebuffers(read_text_file(paths.proc() / "iomem"))) {
        if (auto it = bus.devices.find(address); it != bus.devices.end())
            it->second.console = "firmware framebuffer " + name;
    }
    auto fb0 = link_name(paths.root / "sys/class/graphics/fb0/device");
    auto address = fb0 ? PciAddress::parse(*fb0) : std::nullopt;
    if (!address) return;
    auto it = bus.devices.find(*address);
    if (it != bus.devices.end() && it->second.console.empty() && fbcon_is_bound(paths, kernel))
        it->second.console = "fbcon on /dev/fb0";
}

}  // namespace

std::optional<DriverName> current_driver(const HostPaths& paths, const PciAddress& address) {
    return link_name(paths.pci_device(address) / "driver");
}

std::optional<PciDevice> read_device(const HostPaths& paths, KernelInterface& kernel,
                                     const PciAddress& address) {
    fs::path dir = paths.pci_device(address);
    std::error_code error;
    if (!fs::exists(dir / "config", error) && !fs::exists(dir / "class", error)) return std::nullopt;
    PciDevice device;
    device.address = address;
    device.vendor = static_cast<std::uint16_t>(read_hex(dir / "vendor"));
    device.device = static_cast<std::uint16_t>(read_hex(dir / "device"));
    device.class_code = read_hex(dir / "class");
    device.driver = current_driver(paths, address);
    // Not driver_override: reading it takes the device lock, so it blocks for as long as a
    // stuck unbind of that device does; nothing here may wait on the kernel without a deadline.
    if (auto group = link_name(dir / "iommu_group")) {
        GroupId id = 0;
        if (std::from_chars(group->data(), group->data() + group->size(), id).ec == std::errc{})
            device.iommu_group = id;
    }
    device.boot_vga = read_small_file(dir / "boot_vga") == "1";
    device.power_state = read_small_file(dir / "power_state");
    device.reset_methods = read_small_file(dir / "reset_method");
    device.vfio_device = fs::exists(dir / "vfio-dev", error);  // issue 26: VFIO variant drivers
    device.device_nodes = device_nodes(paths, kernel, device);
    // The virtfnN links, not sriov_numvfs: reading that file takes the device lock (it blocks
    // behind a stuck unbind), while the links exist exactly while the VFs do.
    for (const auto& name : entries(dir)) {
        if (!name.starts_with("virtfn")) continue;
        auto target = link_name(dir / name);
        auto vf = target ? PciAddress::parse(*target) : std::nullopt;
        if (vf) device.virtual_functions.push_back({*vf, current_driver(paths, *vf)});
    }
    return device;
}

std::vector<PciAddress> list_devices(const HostPaths& paths) {
    std::vector<PciAddress> addresses;
    for (const auto& name : entries(paths.pci_devices())) {
        if (auto address = PciAddress::parse(name)) addresses.push_back(*address);
    }
    return addresses;
}

std::vector<PciAddress> group_members(const HostPaths& paths, GroupId group) {
    std::vector<PciAddress> members;
    for (const auto& name : entries(paths.iommu_groups() / std::to_string(group) / "devices")) {
        if (auto address = PciAddress::parse(name)) members.push_back(*address);
    }
    return members;
}

bool iommu_enabled(const HostPaths& paths) { return !entries(paths.iommu_groups()).empty(); }

BusSnapshot read_bus(const HostPaths& paths, KernelInterface& kernel,
                     const std::vector<PciAddress>& wanted) {
    BusSnapshot bus;
    bus.iommu_enabled = iommu_enabled(paths);
    auto add = [&](const PciAddress& address) {
        if (bus.devices.count(address)) return;
        if (auto device = read_device(paths, kernel, address)) bus.devices.emplace(address, *device);
    };
    for (const auto& address : wanted) {
        add(address);
        const PciDevice* device = bus.find(address);
        if (!device || !device->iommu_group || bus.groups.count(*device->iommu_group)) continue;
        auto members = group_members(paths, *device->iommu_group);
        bus.groups[*device->iommu_group] = members;
        for (const auto& member : members) add(member);
    }
    mark_console(paths, kernel, bus);
    return bus;
}

BusSnapshot read_whole_bus(const HostPaths& paths, KernelInterface& kernel) {
    BusSnapshot bus;
    bus.iommu_enabled = iommu_enabled(paths);
    for (const auto& address : list_devices(paths)) {
        auto device = read_device(paths, kernel, address);
        if (!device) continue;
        if (device->iommu_group) bus.groups[*device->iommu_group].push_back(address);
        bus.devices.emplace(address, *device);
    }
    mark_console(paths, kernel, bus);
    return bus;
}

}  // namespace vfio_hook
