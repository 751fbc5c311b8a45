#include "host/console.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <system_error>

#include "core/console.hpp"
#include "core/problem.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

fs::path vtconsole(const HostPaths& paths, const std::string& name) {
    return paths.root / "sys/class/vtconsole" / name;
}

// Every registered framebuffer: fbN → the device that registered it ("" for none).
std::map<unsigned, std::string> framebuffers(const HostPaths& paths) {
    std::map<unsigned, std::string> found;
    for (const auto& name : names_in(paths.root / "sys/class/graphics")) {
        if (!name.starts_with("fb") || name.size() < 3 || !std::isdigit(static_cast<unsigned char>(name[2]))) continue;
        try {
            found[static_cast<unsigned>(std::stoul(name.substr(2)))] =
                link_name(paths.root / "sys/class/graphics" / name / "device").value_or("");
        } catch (const std::exception&) {
        }
    }
    return found;
}

// The framebuffer the GPU's own driver registered, if any.
std::optional<unsigned> framebuffer_of(const HostPaths& paths, const PciAddress& gpu) {
    for (const auto& [number, device] : framebuffers(paths)) {
        if (device == gpu.str()) return number;
    }
    return std::nullopt;
}

bool is_fbcon(const HostPaths& paths, const std::string& vtcon) {
    return read_small_file(vtconsole(paths, vtcon) / "name").find("frame buffer") != std::string::npos;
}

bool fbcon_bound(KernelInterface& kernel, const HostPaths& paths, const std::string& name) {
    auto bind = kernel.read_blocking(vtconsole(paths, name) / "bind");
    return bind.status == ReadResult::Status::ok && bind.text == "1";
}

// fbcon's vtconsole now: the one recorded, or, when fbcon unregistered while the GPU was away
// (its last framebuffer gone) and registered again, whichever vtconsole it came back as.
std::optional<std::string> fbcon_vtconsole(const HostPaths& paths, const std::string& recorded) {
    if (is_fbcon(paths, recorded)) return recorded;
    for (const auto& name : names_in(paths.root / "sys/class/vtconsole")) {
        if (is_fbcon(paths, name)) return name;
    }
    return std::nullopt;
}

}  // namespace

std::vector<ConsoleStep> console_steps_on(const HostPaths& paths, KernelInterface& kernel, const PciAddress& gpu) {
    std::vector<ConsoleStep> steps;
    // A GPU carries the console only through a framebuffer of its own (its driver's fbN, or the
    // firmware's inside its BAR): the boot GPU of a host whose console is on the iGPU has none,
    // and unbinding fbcon there would only blank the iGPU's screen.
    auto in_bars = firmware_framebuffers(read_text_file(paths.proc() / "iomem"));
    if (!framebuffer_of(paths, gpu) && !in_bars.count(gpu)) return steps;
    for (const auto& name : names_in(paths.root / "sys/class/vtconsole")) {
        if (is_fbcon(paths, name) && fbcon_bound(kernel, paths, name))
            steps.push_back({gpu, ConsoleStep::Kind::vtconsole, name, ""});
    }
    if (!in_bars.count(gpu)) return steps;
    for (const auto& name : names_in(paths.root / "sys/bus/platform/devices")) {
        auto driver = link_name(paths.root / "sys/bus/platform/devices" / name / "driver");
        // The device is "efi-framebuffer.0", its driver "efi-framebuffer" whether efifb or
        // efidrm drives it (core/console.hpp): the driver's link, not a module name, says which.
        if (driver && is_firmware_framebuffer_driver(*driver) && is_kernel_driver_name(name))
            steps.push_back({gpu, ConsoleStep::Kind::firmware_framebuffer, name, *driver});
    }
    return steps;
}

Problem take_console_step(const HostPaths& paths, KernelInterface& kernel, const ConsoleStep& step) {
    fs::path file = step.kind == ConsoleStep::Kind::vtconsole
                        ? vtconsole(paths, step.name) / "bind"
                        : paths.root / "sys/bus/platform/drivers" / step.driver / "unbind";
    auto result = kernel.write(file, step.kind == ConsoleStep::Kind::vtconsole ? "0" : step.name);
    if (result.ok()) return {};
    return step.gpu.str() + ": taking the console (" + step.describe() + ") failed: writing " + file.string() +
           ": " + result.describe();
}

Problem give_back_console_step(const HostPaths& paths, KernelInterface& kernel,
                               const ConsoleStep& step) {
    if (step.kind == ConsoleStep::Kind::firmware_framebuffer) {
        // Once a native driver has had the GPU the kernel deletes the firmware framebuffer's
        // device (sysfb_disable): the console then comes from the driver's own framebuffer.
        std::error_code error;
        if (!fs::exists(paths.root / "sys/bus/platform/devices" / step.name, error)) return {};
        if (link_name(paths.root / "sys/bus/platform/devices" / step.name / "driver")) return {};
        fs::path bind = paths.root / "sys/bus/platform/drivers" / step.driver / "bind";
        auto result = kernel.write(bind, step.name);
        if (result.ok()) return {};
        return step.gpu.str() + ": giving back " + step.describe() + " failed: writing " + bind.string() + ": " +
               result.describe();
    }
    // The GPU's driver registering its framebuffer brings fbcon back by itself only when some VT's
    // saved map still names that framebuffer (measured on 6.1 and 6.12: the kernel rewrites a VT's
    // map whenever it moves it), and by the time the driver's bind returned it has done so or it
    // never will: one look, then the ioctl.
    auto fbcon = fbcon_vtconsole(paths, step.name);
    if (fbcon && fbcon_bound(kernel, paths, *fbcon)) return {};
    // The GPU's own framebuffer, or, when its driver registers none (no fbdev emulation), any
    // other one (an iGPU's): a text console somewhere beats none.
    auto framebuffer = framebuffer_of(paths, step.gpu);
    if (auto all = framebuffers(paths); !framebuffer && !all.empty()) framebuffer = all.begin()->first;
    if (!framebuffer) {
        return step.gpu.str() + ": fbcon is not back on " + step.name + ": the GPU's driver registered no "
               "framebuffer (its fbdev emulation is off?) and there is no other";
    }
    fs::path node = paths.root / ("dev/fb" + std::to_string(*framebuffer));
    // fbcon's bind is the answer, not the ioctl's: the ioctl goes to every VT, and one that was
    // never allocated (or one fbcon will not take) refuses while the others are mapped. Its
    // errno only says why when fbcon stayed unbound.
    auto mapped = kernel.map_consoles(node, *framebuffer);
    fbcon = fbcon_vtconsole(paths, step.name);
    if (fbcon && fbcon_bound(kernel, paths, *fbcon)) return {};
    return step.gpu.str() + ": fbcon is not back on " + step.name + " (FBIOPUT_CON2FBMAP on " + node.string() +
           ": " + (mapped.ok() ? "no effect" : mapped.describe()) + ")";
}

}  // namespace vfio_hook
