#include "fake_host.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vfio_hook::testing {
namespace fs = std::filesystem;
namespace {

void write_file(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

std::string hex(unsigned value, int digits) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%0*x", digits, value);
    return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// ---- FakeKernel ----

fs::path FakeKernel::device_dir(const std::string& address) const {
    return root_ / "sys/bus/pci/devices" / address;
}

std::optional<std::string> FakeKernel::driver_of(const std::string& address) const {
    std::error_code error;
    auto target = fs::read_symlink(device_dir(address) / "driver", error);
    if (error) return std::nullopt;
    return target.filename().string();
}

bool FakeKernel::try_bind(const std::string& address, const std::string& driver) {
    std::error_code error;
    if (!fs::exists(root_ / "sys/bus/pci/drivers" / driver, error)) return false;
    if (auto refusing = refusing_drivers_.find(driver); refusing != refusing_drivers_.end()) {
        if (!refusing->second.empty())
            std::ofstream(root_ / "dev/kmsg", std::ios::app) << "3," << ++log_sequence_ << ",2000,-;" << refusing->second << "\n";
        return false;
    }
    fs::create_directory_symlink(root_ / "sys/bus/pci/drivers" / driver, device_dir(address) / "driver");
    driver_bound(address, driver);
    runtime_pm_follows(address, driver, true);
    vfio_device_follows(address, driver, true);
    return true;
}

void FakeKernel::set_fbcon(bool bound) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root_ / "sys/class/vtconsole", error)) {
        if (read(entry.path() / "name").find("frame buffer") != std::string::npos)
            write_file(entry.path() / "bind", bound ? "1\n" : "0\n");
    }
}

void FakeKernel::driver_bound(const std::string& address, const std::string& driver) {
    std::error_code error;
    if (auto firmware = firmware_framebuffers.find(address); firmware != firmware_framebuffers.end()) {
        fs::remove_all(root_ / "sys/bus/platform/devices" / firmware->second, error);  // sysfb_disable()
        firmware_framebuffers.erase(firmware);
    }
    auto framebuffer = framebuffers.find(address);
    if (framebuffer == framebuffers.end() || framebuffer->second.second != driver) return;
    fs::path fb = root_ / "sys/class/graphics" / ("fb" + std::to_string(framebuffer->second.first));
    fs::create_directories(fb);
    fs::create_directory_symlink(device_dir(address), fb / "device", error);
    write_file(fb / "dev", "29:" + std::to_string(framebuffer->second.first) + "\n");  // FB_MAJOR
    if (fbcon_unregistered_) register_fbcon();
    if (fbcon_follows_framebuffers) set_fbcon(true);
}

void FakeKernel::register_fbcon() {
    fbcon_unregistered_ = false;
    for (int n = 0;; ++n) {
        fs::path vtcon = root_ / "sys/class/vtconsole" / ("vtcon" + std::to_string(n));
        if (fs::exists(vtcon)) continue;
        write_file(vtcon / "name", "(M) frame buffer device\n");
        write_file(vtcon / "bind", fbcon_follows_framebuffers ? "1\n" : "0\n");
        return;
    }
}

void FakeKernel::driver_unbound(const std::string& address) {
    auto framebuffer = framebuffers.find(address);
    if (framebuffer == framebuffers.end()) return;
    std::error_code error;
    fs::remove_all(root_ / "sys/class/graphics" / ("fb" + std::to_string(framebuffer->second.first)), error);
    bool any_left = false;
    for (const auto& entry : fs::directory_iterator(root_ / "sys/class/graphics", error)) {
        any_left |= entry.path().filename().string().starts_with("fb");
    }
    if (!any_left) set_fbcon(false);
    if (any_left || !fbcon_unregisters_without_framebuffers) return;
    std::vector<fs::path> fbcon;
    for (const auto& entry : fs::directory_iterator(root_ / "sys/class/vtconsole", error)) {
        if (read(entry.path() / "name").find("frame buffer") != std::string::npos) fbcon.push_back(entry.path());
    }
    for (const auto& vtcon : fbcon) fs::remove_all(vtcon, error);
    if (!fbcon.empty()) fbcon_unregistered_ = true;
}

WriteResult FakeKernel::map_consoles(const fs::path& fb_node, unsigned framebuffer) {
    console_maps.push_back("fb" + std::to_string(framebuffer));
    log_.push_back("ioctl FBIOPUT_CON2FBMAP " + fb_node.lexically_relative(root_).string());
    std::error_code error;
    if (!fs::exists(root_ / "sys/class/graphics" / ("fb" + std::to_string(framebuffer)), error))
        return {WriteResult::Status::failed, ENODEV};
    int first_error = 0;
    bool any_mapped = false;
    for (unsigned vt = 1; vt <= 63; ++vt) {
        auto injected = console_map_errors.find(vt);
        int result = injected == console_map_errors.end() ? 0 : injected->second;
        any_mapped |= result == 0;
        if (result != 0 && first_error == 0) first_error = result;
    }
    if (any_mapped) set_fbcon(true);
    return first_error == 0 ? WriteResult::success() : WriteResult{WriteResult::Status::failed, first_error};
}

void FakeKernel::fail_write(const std::string& file_suffix, int error, int times) {
    failures_[file_suffix] = {error, times};
}
void FakeKernel::hang_write(const std::string& file_suffix) { hangs_.insert(file_suffix); }
void FakeKernel::refuse_probe(const std::string& driver, const std::string& log_message) {
    refusing_drivers_[driver] = log_message;
}

bool FakeKernel::load_module(const std::string& name) {
    if (!module_loads_) return false;
    loaded_modules.push_back(name);
    auto driver = module_drivers.find(name);
    fs::create_directories(root_ / "sys/bus/pci/drivers" / (driver == module_drivers.end() ? name : driver->second));
    return true;
}

ReadResult FakeKernel::read_blocking(const fs::path& file) {
    for (const auto& suffix : read_hangs_) {
        if (ends_with(file.string(), suffix)) return {ReadResult::Status::timed_out, ""};
    }
    std::error_code error;
    if (!fs::exists(file, error)) return {};
    std::string text = read(file);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return {ReadResult::Status::ok, text};
}

WriteResult FakeKernel::write_within(const fs::path& file, std::string_view raw_value,
                                     std::chrono::milliseconds deadline) {
    std::string path = file.string();
    write_deadlines.emplace_back(file.lexically_relative(root_).string(), static_cast<long>(deadline.count()));
    std::string value(raw_value);
    while (!value.empty() && value.back() == '\n') value.pop_back();
    if (crash_after_ >= 0 && writes_ >= crash_after_) throw SimulatedCrash();
    ++writes_;
    log_.push_back(file.lexically_relative(root_).string() + " <- " + value);
    for (auto& [suffix, action] : actions_) {
        if (!action || !ends_with(path, suffix)) continue;
        auto once = std::move(action);
        action = nullptr;
        once();
    }
    for (const auto& suffix : hangs_) {
        if (ends_with(path, suffix)) return {WriteResult::Status::timed_out, 0};
    }
    for (auto& [suffix, failure] : failures_) {
        if (ends_with(path, suffix) && failure.second > 0) {
            --failure.second;
            return {WriteResult::Status::failed, failure.first};
        }
    }
    auto failed = [](int error) { return WriteResult{WriteResult::Status::failed, error}; };
    std::error_code error;
    fs::path console_relative = file.lexically_relative(root_ / "sys");
    auto console_parts = std::vector<std::string>(console_relative.begin(), console_relative.end());
    if (console_parts.size() == 4 && console_parts[0] == "class" && console_parts[1] == "vtconsole" &&
        console_parts[3] == "bind") {
        if (value == "0") write_file(file, "0\n");
        return WriteResult::success();  // "1" is accepted and changes nothing
    }
    if (console_parts.size() == 5 && console_parts[0] == "bus" && console_parts[1] == "platform" &&
        console_parts[2] == "drivers") {
        fs::path device = root_ / "sys/bus/platform/devices" / value;
        if (!fs::exists(device, error)) return failed(ENODEV);
        if (console_parts[4] == "unbind") {
            fs::remove(device / "driver", error);
            return WriteResult::success();
        }
        if (fs::exists(device / "driver", error)) return failed(EBUSY);
        fs::create_directory_symlink(root_ / "sys/bus/platform/drivers" / console_parts[3], device / "driver");
        return WriteResult::success();
    }
    if (WriteResult resized; resize_write(file, value, resized)) return resized;
    fs::path relative = file.lexically_relative(root_ / "sys/bus/pci");
    auto parts = std::vector<std::string>(relative.begin(), relative.end());

    if (parts.size() == 3 && parts[0] == "devices" && parts[2] == "driver_override") {
        if (!fs::exists(device_dir(parts[1]), error)) return failed(ENOENT);
        write_file(file, value.empty() ? "(null)\n" : value + "\n");
        return WriteResult::success();
    }
    if (parts.size() == 1 && parts[0] == "drivers_probe") {
        if (!fs::exists(device_dir(value), error)) return failed(ENODEV);
        if (driver_of(value)) return WriteResult::success();
        std::string override_driver = read(device_dir(value) / "driver_override");
        while (!override_driver.empty() && override_driver.back() == '\n') override_driver.pop_back();
        bool overridden = override_driver != "(null)" && !override_driver.empty();
        auto candidates = overridden ? std::vector<std::string>{override_driver} : matching_drivers[value];
        for (const auto& candidate : candidates) {
            if (try_bind(value, candidate)) break;
        }
        // Like the kernel: drivers_probe says success even when nothing bound.
        return WriteResult::success();
    }
    if (parts.size() == 3 && parts[0] == "drivers" && (parts[2] == "bind" || parts[2] == "unbind")) {
        const std::string& driver = parts[1];
        if (!fs::exists(root_ / "sys/bus/pci/drivers" / driver, error)) return failed(ENOENT);
        if (!fs::exists(device_dir(value), error)) return failed(ENODEV);
        if (parts[2] == "unbind") {
            if (driver_of(value) != driver) return failed(ENODEV);
            fs::remove(device_dir(value) / "driver");
            driver_unbound(value);
            runtime_pm_follows(value, driver, false);
            vfio_device_follows(value, driver, false);
            return WriteResult::success();
        }
        if (driver_of(value)) return failed(EBUSY);
        std::string override_driver = read(device_dir(value) / "driver_override");
        while (!override_driver.empty() && override_driver.back() == '\n') override_driver.pop_back();
        bool overridden = override_driver != "(null)" && !override_driver.empty();
        if (overridden && override_driver != driver) return failed(ENODEV);
        const auto& matching = matching_drivers[value];
        if (!overridden && std::find(matching.begin(), matching.end(), driver) == matching.end())
            return failed(ENODEV);
        return try_bind(value, driver) ? WriteResult::success() : failed(ENODEV);
    }
    if (!fs::exists(file.parent_path(), error)) return failed(ENOENT);
    // control_store() with "on" calls pm_runtime_forbid(), and d3cold_allowed_store()
    // pm_runtime_resume(): both wake a suspended device (fake_real_gpu.cpp).
    bool resumes = (parts.size() == 4 && parts[0] == "devices" && parts[2] == "power" && parts[3] == "control" &&
                    value == "on") ||
                   (parts.size() == 3 && parts[0] == "devices" && parts[2] == "d3cold_allowed");
    write_file(file, value);
    if (resumes) runtime_resume(parts[1]);
    return WriteResult::success();
}

// ---- FakeHost ----

FakeHost::FakeHost()
    : root_([] {
          std::string pattern = (fs::temp_directory_path() / "vfio-hook-test-XXXXXX").string();
          if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
          return fs::path(pattern);
      }()),
      kernel_(root_) {
    fs::create_directories(root_ / "sys/bus/pci/devices");
    fs::create_directories(root_ / "sys/bus/pci/drivers");
    fs::create_directories(root_ / "sys/kernel/iommu_groups");
    fs::create_directories(root_ / "proc");
    fs::create_directories(root_ / "run");
    write_file(root_ / "sys/bus/pci/drivers_probe", "");
    write_file(root_ / "dev/kmsg", "");
    write_file(root_ / "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt\n");
    driver("vfio-pci");
}

FakeHost::~FakeHost() {
    std::error_code error;
    fs::remove_all(root_, error);
}

FakeHost& FakeHost::driver(const std::string& name) {
    fs::create_directories(root_ / "sys/bus/pci/drivers" / name);
    write_file(root_ / "sys/bus/pci/drivers" / name / "bind", "");
    write_file(root_ / "sys/bus/pci/drivers" / name / "unbind", "");
    return *this;
}

FakeHost& FakeHost::device(const std::string& address, std::uint32_t class_code,
                           const std::string& driver_name, std::optional<unsigned> group,
                           std::uint16_t vendor, std::uint16_t device_id) {
    fs::path dir = root_ / "sys/bus/pci/devices" / address;
    fs::create_directories(dir);
    write_file(dir / "vendor", hex(vendor, 4) + "\n");
    write_file(dir / "device", hex(device_id, 4) + "\n");
    write_file(dir / "class", hex(class_code, 6) + "\n");
    write_file(dir / "config", fake_config_space(vendor, device_id, class_code));
    write_file(dir / "driver_override", "(null)\n");
    write_file(dir / "power_state", "D0\n");
    write_file(dir / "reset_method", "flr bus\n");
    write_file(dir / "power/control", "on\n");
    write_file(dir / "d3cold_allowed", "1\n");
    char modalias[96];  // drivers/pci/pci-sysfs.c modalias_show
    std::snprintf(modalias, sizeof modalias, "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n", vendor, device_id,
                  vendor, 0x1234u, (class_code >> 16) & 0xff, (class_code >> 8) & 0xff, class_code & 0xff);
    write_file(dir / "modalias", modalias);
    if (group) {
        fs::path group_dir = root_ / "sys/kernel/iommu_groups" / std::to_string(*group);
        fs::create_directories(group_dir / "devices");
        fs::create_directory_symlink(dir, group_dir / "devices" / address);
        fs::create_directory_symlink(group_dir, dir / "iommu_group");
    }
    if (!driver_name.empty()) {
        driver(driver_name);
        fs::create_directory_symlink(root_ / "sys/bus/pci/drivers" / driver_name, dir / "driver");
        kernel_.matching_drivers[address] = {driver_name};
    }
    return *this;
}

FakeHost& FakeHost::claimed_first_by(const std::string& address, const std::string& driver_name) {
    driver(driver_name);
    auto& matching = kernel_.matching_drivers[address];
    matching.insert(matching.begin(), driver_name);
    return *this;
}

FakeHost& FakeHost::boot_vga(const std::string& address) {
    write_file(root_ / "sys/bus/pci/devices" / address / "boot_vga", "1\n");
    return *this;
}

FakeHost& FakeHost::drm_node(const std::string& address, const std::string& name) {
    fs::create_directories(root_ / "sys/bus/pci/devices" / address / "drm" / name);
    return *this;
}

FakeHost& FakeHost::sound_card(const std::string& address, const std::string& card,
                               const std::vector<std::string>& nodes) {
    for (const auto& node : nodes)
        fs::create_directories(root_ / "sys/bus/pci/devices" / address / "sound" / card / node);
    return *this;
}

FakeHost& FakeHost::process(int pid, const std::string& command, const std::vector<std::string>& open_nodes) {
    fs::path dir = root_ / "proc" / std::to_string(pid);
    write_file(dir / "comm", command + "\n");
    fs::create_directories(dir / "fd");
    int fd = 3;
    fs::create_symlink("/dev/null", dir / "fd" / "0");
    for (const auto& node : open_nodes) fs::create_symlink(node, dir / "fd" / std::to_string(fd++));
    return *this;
}

FakeHost& FakeHost::cgroup(int pid, const std::string& text) {
    write_file(root_ / "proc" / std::to_string(pid) / "cgroup", text);
    return *this;
}

FakeHost& FakeHost::user(unsigned uid, const std::string& name) {
    fs::create_directories(root_ / "etc");
    std::ofstream(root_ / "etc/passwd", std::ios::app)
        << name << ":x:" << uid << ":" << uid << "::/home/" << name << ":/bin/bash\n";
    return *this;
}

FakeHost& FakeHost::kernel_log(const std::string& message, int priority) {
    std::ofstream(root_ / "dev/kmsg", std::ios::app)
        << priority << "," << ++log_sequence_ << ",1000,-;" << message << "\n";
    return *this;
}

FakeHost& FakeHost::no_iommu() {
    fs::remove_all(root_ / "sys/kernel/iommu_groups");
    fs::create_directories(root_ / "sys/kernel/iommu_groups");
    for (const auto& entry : fs::directory_iterator(root_ / "sys/bus/pci/devices"))
        fs::remove(entry.path() / "iommu_group");
    return *this;
}

FakeHost& FakeHost::virtual_functions(const std::string& pf, const std::vector<std::string>& vfs) {
    fs::path dir = root_ / "sys/bus/pci/devices" / pf;
    for (std::size_t i = 0; i < vfs.size(); ++i)
        fs::create_directory_symlink("../" + vfs[i], dir / ("virtfn" + std::to_string(i)));
    write_file(dir / "sriov_numvfs", std::to_string(vfs.size()) + "\n");
    return *this;
}

FakeHost& FakeHost::preset_override(const std::string& address, const std::string& driver) {
    write_file(root_ / "sys/bus/pci/devices" / address / "driver_override", driver + "\n");
    return *this;
}

FakeHost& FakeHost::char_device(const std::string& path, unsigned major, unsigned minor) {
    fs::path node = root_ / path.substr(1);
    fs::create_directories(node.parent_path());
    if (::mknod(node.c_str(), S_IFCHR | 0600, makedev(major, minor)) != 0)
        throw std::runtime_error("mknod " + node.string() + " failed (the fake needs root for it)");
    return *this;
}

FakeHost& FakeHost::node_number(const std::string& address, const std::string& sysfs_subdir,
                                unsigned major, unsigned minor, const std::string& dev_path) {
    write_file(root_ / "sys/bus/pci/devices" / address / sysfs_subdir / "dev",
               std::to_string(major) + ":" + std::to_string(minor) + "\n");
    if (::geteuid() == 0) char_device(dev_path, major, minor);
    return *this;
}

FakeHost& FakeHost::node_outside_dev(const std::string& path, const std::string& real_node) {
    fs::path link = root_ / path.substr(1);
    fs::create_directories(link.parent_path());
    fs::create_symlink(real_node, link);
    return *this;
}

FakeHost& FakeHost::process_in_root(int pid, const std::string& command, const std::vector<std::string>& paths) {
    std::vector<std::string> targets;
    for (const auto& path : paths) targets.push_back((root_ / path.substr(1)).string());
    return process(pid, command, targets);
}

FakeHost& FakeHost::framebuffer(const std::string& address, unsigned framebuffer) {
    auto driver = driver_of(address);
    kernel_.framebuffers[address] = {framebuffer, driver.value_or("")};
    fs::path fb = root_ / "sys/class/graphics" / ("fb" + std::to_string(framebuffer));
    fs::create_directories(fb);
    fs::create_directory_symlink(root_ / "sys/bus/pci/devices" / address, fb / "device");
    write_file(fb / "dev", "29:" + std::to_string(framebuffer) + "\n");  // FB_MAJOR 29, minor N
    write_file(root_ / ("dev/fb" + std::to_string(framebuffer)), "");
    return *this;
}

FakeHost& FakeHost::console_on(const std::string& address, unsigned framebuffer) {
    this->framebuffer(address, framebuffer);
    write_file(root_ / "sys/class/vtconsole/vtcon0/name", "(S) dummy device\n");
    write_file(root_ / "sys/class/vtconsole/vtcon0/bind", "0\n");
    write_file(root_ / "sys/class/vtconsole/vtcon1/name", "(M) frame buffer device\n");
    write_file(root_ / "sys/class/vtconsole/vtcon1/bind", "1\n");
    return *this;
}

namespace {

// A firmware framebuffer as kernels 6.1, 6.12 and 7.x name it, by the driver that drives it. The
// test's own copy of the kernel's names, read in the source, so that a wrong name in the code
// shows here (the code's list is in core/console.hpp):
// - drivers/firmware/sysfb.c: `name = "efi-framebuffer"` / `"vesa-framebuffer"`, then
//   `pd = platform_device_alloc(name, 0)`: the devices efi-framebuffer.0, vesa-framebuffer.0;
//   sysfb_simplefb.c: `platform_device_alloc("simple-framebuffer", 0)` with one resource,
//   `static const char simplefb_resname[] = "BOOTFB"`.
// - drivers/video/fbdev/efifb.c: `.name = "efi-framebuffer"` (platform driver) and
//   `request_mem_region(efifb_fix.smem_start, size_remap, "efifb")`; vesafb.c:
//   `.name = "vesa-framebuffer"`, `request_mem_region(vesafb_fix.smem_start, size_total,
//   "vesafb")`; simplefb.c: `.name = "simple-framebuffer"`, `request_mem_region(res->start,
//   resource_size(res), "simplefb")`.
// - drivers/gpu/drm/sysfb/efidrm.c (7.x): `#define DRIVER_NAME "efidrm"`, `.name =
//   "efi-framebuffer"`, `devm_request_mem_region(&pdev->dev, res->start, vsize, drv->name)`;
//   vesadrm.c: `#define DRIVER_NAME "vesadrm"`, `.name = "vesa-framebuffer"`, the same request;
//   simpledrm.c (drivers/gpu/drm/tiny/ in 6.1 and 6.12): `.name = "simple-framebuffer", /*
//   connect to sysfb */`, `devm_request_mem_region(&pdev->dev, res->start, resource_size(res),
//   drv->name)` with DRIVER_NAME "simpledrm".
struct FirmwareFramebufferNames {
    const char* platform_device;
    const char* platform_driver;
    std::vector<const char*> iomem;  // outermost first, nested under the GPU's BAR
};
const std::map<std::string, FirmwareFramebufferNames> kernel_firmware_framebuffers = {
    {"efifb", {"efi-framebuffer.0", "efi-framebuffer", {"efifb"}}},
    {"efidrm", {"efi-framebuffer.0", "efi-framebuffer", {"efidrm"}}},
    {"vesafb", {"vesa-framebuffer.0", "vesa-framebuffer", {"vesafb"}}},
    {"vesadrm", {"vesa-framebuffer.0", "vesa-framebuffer", {"vesadrm"}}},
    {"simplefb", {"simple-framebuffer.0", "simple-framebuffer", {"BOOTFB", "simplefb"}}},
    {"simpledrm", {"simple-framebuffer.0", "simple-framebuffer", {"BOOTFB", "simpledrm"}}},
};

}  // namespace

FakeHost& FakeHost::firmware_framebuffer(const std::string& address, const std::string& kernel_driver) {
    const auto& names = kernel_firmware_framebuffers.at(kernel_driver);
    std::ofstream iomem(root_ / "proc/iomem", std::ios::app);
    iomem << "c0000000-cfffffff : PCI Bus 0000:00\n  c0000000-c0ffffff : " << address << "\n";
    std::string indent = "    ";
    for (const char* region : names.iomem) {
        iomem << indent << "c0000000-c02fffff : " << region << "\n";
        indent += "  ";
    }
    fs::create_directories(root_ / "sys/bus/platform/drivers" / names.platform_driver);
    fs::path device = root_ / "sys/bus/platform/devices" / names.platform_device;
    fs::create_directories(device);
    fs::create_directory_symlink(root_ / "sys/bus/platform/drivers" / names.platform_driver, device / "driver");
    kernel_.firmware_framebuffers[address] = names.platform_device;
    return *this;
}

std::string FakeHost::vtcon_bind(const std::string& vtcon) const {
    std::string text = read(root_ / "sys/class/vtconsole" / vtcon / "bind");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

FakeHost& FakeHost::nvidia_minor(const std::string& address, unsigned minor) {
    write_file(root_ / "proc/driver/nvidia/gpus" / address / "information",
               "Model: \t\t NVIDIA GeForce RTX 4090\nIRQ:   \t\t 160\nDevice Minor: \t " +
                   std::to_string(minor) + "\nBus Location: \t " + address + "\n");
    return *this;
}

// The kernel's layout of an i2c adapter and its i2c-dev node (6.1 to 7.x):
// - i2c-core-base.c i2c_register_adapter(): `dev_set_name(&adap->dev, "i2c-%d", adap->nr)`,
//   `adap->dev.bus = &i2c_bus_type`, `device_register(&adap->dev)` with the parent the driver set
//   (the PCI device for nvidia's, amdgpu's and nouveau's DDC buses; the connector's kdev for a DP
//   AUX channel, drm_dp_helper.c `aux->ddc.dev.parent = aux->dev`): the directory i2c-N under
//   the parent, and the link /sys/bus/i2c/devices/i2c-N to it.
// - i2c-dev.c i2cdev_attach_adapter(): `i2c_dev->dev.devt = MKDEV(I2C_MAJOR, adap->nr)` (I2C_MAJOR
//   89, include/linux/i2c-dev.h), `.class = &i2c_dev_class` (name "i2c-dev"), `.parent =
//   &adap->dev`, `dev_set_name(&i2c_dev->dev, "i2c-%d", adap->nr)`: the class device
//   i2c-N/i2c-dev/i2c-N with its `dev` file "89:N", its `device` link back to the adapter and the
//   link /sys/class/i2c-dev/i2c-N to it; udev makes /dev/i2c-N.
// - i2cdev_open() takes the adapter with i2c_get_adapter() (get_device), and i2c_del_adapter()
//   ends with `wait_for_completion(&adap->dev_released)`: the driver's remove waits for every
//   process that has /dev/i2c-N open.
FakeHost& FakeHost::i2c_adapter(const std::string& address, unsigned number, const std::string& under) {
    const std::string name = "i2c-" + std::to_string(number);
    fs::path parent = root_ / "sys/bus/pci/devices" / address;
    if (!under.empty()) parent /= under;
    fs::path adapter = parent / name;
    fs::path class_device = adapter / "i2c-dev" / name;
    write_file(adapter / "name", "NVIDIA i2c adapter " + std::to_string(number) + " at " + address.substr(5) + "\n");
    write_file(class_device / "dev", "89:" + std::to_string(number) + "\n");
    write_file(class_device / "name", "NVIDIA i2c adapter " + std::to_string(number) + "\n");
    fs::create_directory_symlink("../..", class_device / "device");
    // Relative links, as sysfs makes them (../../devices/pci0000:00/…).
    fs::create_directories(root_ / "sys/class/i2c-dev");
    fs::create_directory_symlink(fs::relative(class_device, root_ / "sys/class/i2c-dev"),
                                 root_ / "sys/class/i2c-dev" / name);
    fs::create_directories(root_ / "sys/bus/i2c/devices");
    fs::create_directory_symlink(fs::relative(adapter, root_ / "sys/bus/i2c/devices"),
                                 root_ / "sys/bus/i2c/devices" / name);
    if (::geteuid() == 0) char_device("/dev/" + name, 89, number);
    return *this;
}

std::optional<std::string> FakeHost::driver_of(const std::string& address) const {
    std::error_code error;
    auto target = fs::read_symlink(root_ / "sys/bus/pci/devices" / address / "driver", error);
    if (error) return std::nullopt;
    return target.filename().string();
}

std::string FakeHost::override_of(const std::string& address) const {
    std::string text = read(root_ / "sys/bus/pci/devices" / address / "driver_override");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text == "(null)" ? "" : text;
}

std::vector<std::string> FakeHost::records() const {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root_ / "run/vfio-hook/records", error))
        names.push_back(entry.path().filename().string());
    return names;
}

namespace {
struct KernelRef : KernelInterface {
    explicit KernelRef(KernelInterface& kernel) : kernel(kernel) {}
    WriteResult write_within(const fs::path& file, std::string_view value,
                             std::chrono::milliseconds deadline) override {
        return kernel.write_within(file, value, deadline);
    }
    ReadResult read_blocking(const fs::path& file) override { return kernel.read_blocking(file); }
    WriteResult map_consoles(const fs::path& node, unsigned framebuffer) override {
        return kernel.map_consoles(node, framebuffer);
    }
    bool load_module(const std::string& name) override { return kernel.load_module(name); }
    std::chrono::milliseconds deadline() const override { return kernel.deadline(); }
    KernelInterface& kernel;
};
}  // namespace

FakeHost::Run FakeHost::run(const std::vector<std::string>& args, const std::string& stdin_text) {
    std::vector<std::string> full{"vfio-hook", "--root", root_.string(), "--settle-deadline-ms", "5"};
    full.insert(full.end(), args.begin(), args.end());
    return run_exactly(full, stdin_text);
}

FakeHost::Run FakeHost::run_exactly(const std::vector<std::string>& full, const std::string& stdin_text) {
    std::ostringstream out, err;
    CliEnvironment environment{
        [&](const Settings&) { return std::make_unique<KernelRef>(kernel_); },
        [&]() -> Expected<std::string> { return stdin_text; },
        [&](const std::vector<std::string>& virsh_args) -> Expected<std::string> {
            virsh_calls.push_back(virsh_args);
            std::string command = virsh_args.size() > 2 ? virsh_args[2] : "";
            if (command == "list") {
                if (!libvirt_active) return Error{libvirt_active.error()};
                std::string lines;
                for (const auto& uuid : *libvirt_active) lines += uuid + "\n";
                return lines + "\n";
            }
            if (command == "define" && virsh_args.size() > 3) {
                std::ifstream file(virsh_args[3]);
                struct stat info {};
                defined_modes.push_back(::stat(virsh_args[3].c_str(), &info) == 0 ? info.st_mode & 07777 : 0);
                defined.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
                return std::string("Domain defined\n");
            }
            auto answers = virsh_answers.find(command);
            if (answers == virsh_answers.end() || answers->second.empty())
                return Error{"virsh failed: error: failed to get domain"};
            auto answer = answers->second.front();
            if (answers->second.size() > 1) answers->second.erase(answers->second.begin());
            return answer;
        },
        out, err};
    int status = run_cli(full, environment);
    return {status, out.str(), err.str()};
}

FakeHost::Run FakeHost::hook(const std::string& domain, const std::string& operation,
                             const std::string& sub, const std::string& xml) {
    return run({"hook", domain, operation, sub, "-"}, xml);
}

std::string domain_xml(const std::string& name, const std::string& uuid,
                       const std::vector<std::string>& addresses, bool managed,
                       const std::string& metadata) {
    std::ostringstream xml;
    xml << "<domain type='kvm'>\n  <name>" << name << "</name>\n  <uuid>" << uuid << "</uuid>\n";
    if (!metadata.empty()) xml << "  <metadata>\n" << metadata << "\n  </metadata>\n";
    xml << "  <memory unit='KiB'>131072</memory>\n  <devices>\n";
    int slot = 5;
    for (const auto& text : addresses) {
        auto address = PciAddress::parse(text);
        char attributes[128];
        std::snprintf(attributes, sizeof attributes,
                      "domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'", address->domain,
                      address->bus, address->slot, address->function);
        xml << "    <hostdev mode='subsystem' type='pci' managed='" << (managed ? "yes" : "no") << "'>\n"
            << "      <source>\n        <address " << attributes << "/>\n      </source>\n"
            << "      <address type='pci' domain='0x0000' bus='0x0" << slot++
            << "' slot='0x00' function='0x0'/>\n    </hostdev>\n";
    }
    xml << "  </devices>\n</domain>\n";
    return xml.str();
}

bool is_root() { return ::geteuid() == 0; }

Desktop::Desktop() {
    gpu("0000:00:02.0", "i915", 2).boot_vga("0000:00:02.0").drm_node("0000:00:02.0", "card0");
    bridge("0000:00:01.0", 1);
    gpu("0000:01:00.0", "nvidia", 14).drm_node("0000:01:00.0", "card1").drm_node("0000:01:00.0", "renderD129");
    audio("0000:01:00.1", "snd_hda_intel", 14).sound_card("0000:01:00.1", "card1", {"controlC1", "pcmC1D3p"});
}

bool Desktop::home() const {
    return driver_of("0000:01:00.0") == "nvidia" && driver_of("0000:01:00.1") == "snd_hda_intel" &&
           override_of("0000:01:00.0").empty() && override_of("0000:01:00.1").empty() &&
           driver_of("0000:00:02.0") == "i915";
}

bool Desktop::on_vfio() const {
    return driver_of("0000:01:00.0") == "vfio-pci" && driver_of("0000:01:00.1") == "vfio-pci";
}

}  // namespace vfio_hook::testing
