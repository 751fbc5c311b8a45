// What real GPUs do that the rest of the fake host does not (issue 26; the facts and their
// sources are in shared/notes/real-gpus.md): a live config space that can stop answering, a PM
// status register, reset methods.

#include <sys/utsname.h>

#include <cerrno>
#include <fstream>

#include "fake_host.hpp"

namespace vfio_hook::testing {
namespace fs = std::filesystem;
namespace {

fs::path device_file(const fs::path& root, const std::string& address, const std::string& name) {
    return root / "sys/bus/pci/devices" / address / name;
}

void write_bytes(const fs::path& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace

std::string fake_config_space(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code,
                              unsigned pm_state) {
    std::string bytes(256, '\0');
    auto put = [&](std::size_t at, unsigned value, int width) {
        for (int i = 0; i < width; ++i) bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    };
    put(0x00, vendor, 2);
    put(0x02, device, 2);
    put(0x04, 0x0007, 2);          // command: I/O, memory, bus master
    put(0x06, 0x0010, 2);          // status: capability list present
    put(0x09, class_code, 3);      // programming interface, subclass, class
    put(0x0e, 0x80, 1);            // header type 0, multi-function
    put(0x34, 0x40, 1);            // first capability
    put(0x40, 0x01, 1);            // PM capability, last in the list
    put(0x42, 0x0003, 2);          // PMC: version 3
    put(0x44, pm_state & 3u, 2);   // PMCSR
    return bytes;
}

FakeHost& FakeHost::stops_answering(const std::string& address) {
    write_bytes(device_file(root_, address, "config"), std::string(256, '\xff'));
    return *this;
}

FakeHost& FakeHost::answers_again(const std::string& address) { return pm_state(address, 0); }

FakeHost& FakeHost::pm_state(const std::string& address, unsigned state) {
    auto hex_of = [&](const char* name) {
        std::ifstream file(device_file(root_, address, name));
        std::string text;
        file >> text;
        return static_cast<std::uint32_t>(std::stoul(text, nullptr, 16));
    };
    write_bytes(device_file(root_, address, "config"),
                fake_config_space(static_cast<std::uint16_t>(hex_of("vendor")),
                                  static_cast<std::uint16_t>(hex_of("device")), hex_of("class"), state));
    return *this;
}

FakeHost& FakeHost::reset_methods(const std::string& address, const std::string& methods) {
    std::ofstream(device_file(root_, address, "reset_method")) << methods << "\n";
    std::error_code error;
    if (methods.empty()) {
        fs::remove(device_file(root_, address, "reset"), error);
    } else {
        std::ofstream(device_file(root_, address, "reset")) << "";
    }
    return *this;
}

// vfio_pci_core_register_device() calls pm_runtime_allow() (5.19+); its unregister calls
// pm_runtime_forbid(): `on` afterwards, whatever it was before.
// With runtime PM allowed, the bind's pm_runtime_put() lets vfio-pci's idle suspend run at once
// (pci_pm_runtime_suspend): D3cold where the platform has it and `d3cold_allowed` is 1
// (acpi_pci_choose_state() stops at D3hot when pci_d3cold_disable() set no_d3cold), D3hot
// otherwise. The unbind's pm_runtime_forbid() resumes it first.
void FakeKernel::runtime_pm_follows(const std::string& address, const std::string& driver, bool bound) {
    fs::path control = device_dir(address) / "power/control";
    std::error_code error;
    if (driver != "vfio-pci" || !fs::exists(control, error)) return;
    if (!bound) runtime_resume(address);
    std::ofstream(control, std::ios::trunc) << (bound ? "auto\n" : "on\n");
    if (!bound) return;
    std::string allowed = read(device_dir(address) / "d3cold_allowed");
    bool d3cold = d3cold_platform.count(address) && allowed.starts_with("1");
    std::ofstream(device_dir(address) / "power_state", std::ios::trunc) << (d3cold ? "D3cold\n" : "D3hot\n");
}

void FakeKernel::runtime_resume(const std::string& address) {
    fs::path state = device_dir(address) / "power_state";
    std::string now = read(state);
    if (!now.starts_with("D3")) return;
    auto platform = d3cold_platform.find(address);
    if (now.starts_with("D3cold") && platform != d3cold_platform.end() && !platform->second) {
        write_bytes(device_dir(address) / "config", std::string(256, '\xff'));
        std::ofstream(root_ / "dev/kmsg", std::ios::app)
            << "3," << ++log_sequence_ << ",3000,-;vfio-pci " << address
            << ": Unable to change power state from D3cold to D0, device inaccessible\n";
        return;
    }
    std::ofstream(state, std::ios::trunc) << "D0\n";
}

FakeHost& FakeHost::power_control(const std::string& address, const std::string& value) {
    std::ofstream(device_file(root_, address, "power/control"), std::ios::trunc) << value << "\n";
    return *this;
}

std::string FakeHost::power_control_of(const std::string& address) const {
    std::ifstream file(device_file(root_, address, "power/control"));
    std::string value;
    file >> value;
    return value;
}

// vfio_pci_core_register_device() → vfio_register_group_dev(): the device gets
// `vfio-dev/vfioN` (drivers/vfio/vfio_main.c, 6.1+) for any vfio_pci_core driver; gone at unbind.
void FakeKernel::vfio_device_follows(const std::string& address, const std::string& driver, bool bound) {
    if (!vfio_drivers.count(driver)) return;
    std::error_code error;
    if (!bound) {
        fs::remove_all(device_dir(address) / "vfio-dev", error);
        return;
    }
    static unsigned next = 0;
    fs::create_directories(device_dir(address) / "vfio-dev" / ("vfio" + std::to_string(next++)));
}

namespace {

// `resource`: one "0x%016llx 0x%016llx 0x%016llx" line per resource (pci-sysfs.c resource_show);
// 13 lines for the 6 BARs, the ROM and the bridge windows. BAR N at 0xc0000000 + N * 64 GB.
std::string resource_text(const std::map<unsigned, unsigned>& bits) {
    std::string text;
    for (unsigned line = 0; line < 13; ++line) {
        std::uint64_t start = 0, end = 0, flags = 0;
        if (auto bar = bits.find(line); bar != bits.end()) {
            start = 0xc0000000ULL + (std::uint64_t(line) << 36);
            end = start + (1ULL << (20 + bar->second)) - 1;
            flags = 0x14220c;  // memory, 64-bit, prefetchable
        }
        char row[64];
        std::snprintf(row, sizeof row, "0x%016llx 0x%016llx 0x%016llx\n", static_cast<unsigned long long>(start),
                      static_cast<unsigned long long>(end), static_cast<unsigned long long>(flags));
        text += row;
    }
    return text;
}

std::map<unsigned, unsigned> resource_bits(const fs::path& resource) {
    std::ifstream file(resource);
    std::map<unsigned, unsigned> bits;
    std::string start, end, flags;
    for (unsigned line = 0; file >> start >> end >> flags; ++line) {
        auto size = std::stoull(end, nullptr, 16) - std::stoull(start, nullptr, 16) + 1;
        if (std::stoull(end, nullptr, 16) == 0) continue;
        unsigned bit = 0;
        for (auto megabytes = size >> 20; megabytes > 1; megabytes >>= 1) ++bit;
        bits[line] = bit;
    }
    return bits;
}

}  // namespace

// pci-sysfs.c __resource_resize_store: kstrtoul(buf, 0) or EINVAL; EBUSY while a driver is bound
// (or VFs exist); pci_resize_resource() refuses a size the capability does not list (EINVAL).
bool FakeKernel::resize_write(const fs::path& file, const std::string& value, WriteResult& result) {
    std::string name = file.filename().string();
    if (!name.starts_with("resource") || !name.ends_with("_resize") || name.size() != 16) return false;
    std::string address = file.parent_path().filename().string();
    unsigned bar = static_cast<unsigned>(name[8] - '0');
    std::ifstream bitmap_file(file);
    std::string bitmap_text;
    bitmap_file >> bitmap_text;
    auto bitmap = std::stoull(bitmap_text, nullptr, 16);
    char* end = nullptr;
    unsigned long bit = std::strtoul(value.c_str(), &end, 0);
    if (value.empty() || *end != '\0' || bit > 63) {
        result = {WriteResult::Status::failed, EINVAL};
    } else if (driver_of(address)) {
        result = {WriteResult::Status::failed, EBUSY};
    } else if (!(bitmap & (1ULL << bit))) {
        result = {WriteResult::Status::failed, EINVAL};
    } else {
        auto bits = resource_bits(device_dir(address) / "resource");
        bits[bar] = static_cast<unsigned>(bit);
        std::ofstream(device_dir(address) / "resource", std::ios::trunc) << resource_text(bits);
        result = WriteResult::success();
    }
    return true;
}

FakeHost& FakeHost::resizable_bar(const std::string& address, unsigned bar, std::uint64_t bitmap, unsigned current_bit) {
    char text[32];
    std::snprintf(text, sizeof text, "%016llx\n", static_cast<unsigned long long>(bitmap));
    std::ofstream(device_file(root_, address, "resource" + std::to_string(bar) + "_resize"), std::ios::trunc) << text;
    auto bits = resource_bits(device_file(root_, address, "resource"));
    bits[bar] = current_bit;
    std::ofstream(device_file(root_, address, "resource"), std::ios::trunc) << resource_text(bits);
    return *this;
}

unsigned FakeHost::bar_bit(const std::string& address, unsigned bar) const {
    auto bits = resource_bits(device_file(root_, address, "resource"));
    return bits.count(bar) ? bits.at(bar) : 0;
}

FakeHost& FakeHost::modules_alias(const std::string& lines) {
    struct utsname names {};
    ::uname(&names);
    fs::path file = root_ / "lib/modules" / names.release / "modules.alias";
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::trunc) << lines;
    return *this;
}

FakeHost& FakeHost::vfio_variant(const std::string& module, const std::string& driver) {
    kernel_.module_drivers[module] = driver;
    kernel_.vfio_drivers.insert(driver);
    return *this;
}

}  // namespace vfio_hook::testing
