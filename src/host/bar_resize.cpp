#include "host/bar_resize.hpp"

#include <charconv>
#include <filesystem>

namespace vfio_hook {
namespace {

constexpr unsigned bar_count = 6;  // resource0_resize … resource5_resize

std::filesystem::path resize_file(const HostPaths& paths, const PciAddress& address, unsigned bar) {
    return paths.pci_device(address) / ("resource" + std::to_string(bar) + "_resize");
}

// The bitmap `resourceN_resize` shows ("%016llx"); nullopt when absent or not hex.
std::optional<std::uint64_t> supported_sizes(const HostPaths& paths, const PciAddress& address, unsigned bar) {
    std::string text = read_small_file(resize_file(paths, address, bar));
    std::uint64_t bitmap = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), bitmap, 16);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return bitmap;
}

std::optional<unsigned> current_bit(const HostPaths& paths, const PciAddress& address, unsigned bar) {
    std::string resource = read_text_file(paths.pci_device(address) / "resource", 4096);
    return rebar_bit_of_size(bar_size_from_resource(resource, bar));
}

std::string sizes_text(std::uint64_t bitmap) {
    auto bits = rebar_supported_bits(bitmap);
    if (bits.empty()) return "no size";
    if (bits.size() == 1) return rebar_size_text(bits.front());
    return rebar_size_text(bits.front()) + " to " + rebar_size_text(bits.back());
}

}  // namespace

std::string describe(const PciAddress& address, const BarResize& resize) {
    return address.str() + " BAR " + std::to_string(resize.bar) + ": " + rebar_size_text(resize.from) + " -> " +
           rebar_size_text(resize.to);
}

std::vector<ResizableBar> read_resizable_bars(const HostPaths& paths, const PciAddress& address, bool may_wake) {
    std::vector<ResizableBar> bars;
    // `power_state` is the kernel's cached state, and a stat of the file wakes nothing.
    if (!may_wake && read_small_file(paths.pci_device(address) / "power_state") == "D3cold") {
        std::error_code error;
        for (unsigned bar = 0; bar < bar_count; ++bar) {
            if (std::filesystem::exists(resize_file(paths, address, bar), error))
                bars.push_back({bar, 0, current_bit(paths, address, bar), false});
        }
        return bars;
    }
    for (unsigned bar = 0; bar < bar_count; ++bar) {
        if (auto bitmap = supported_sizes(paths, address, bar)) bars.push_back({bar, *bitmap, current_bit(paths, address, bar)});
    }
    return bars;
}

RebarPlan plan_bar_resizes(const HostPaths& paths, const PciAddress& address, const RebarSetting& setting) {
    RebarPlan plan;
    for (const auto& bar : read_resizable_bars(paths, address)) {
        plan.resizable = true;
        std::string where = address.str() + ": rebar " + setting.str() + ": BAR " + std::to_string(bar.bar);
        auto target = rebar_target(setting, bar.supported);
        if (!target) {
            plan.warnings.push_back(where + " takes " + sizes_text(bar.supported) + ", not " + setting.str() +
                                    "; left as it is (choose a size it takes, or smallest/largest)");
        } else if (!bar.current) {
            plan.warnings.push_back(where + ": its current size cannot be read from " +
                                    (paths.pci_device(address) / "resource").string() + "; left as it is");
        } else if (*bar.current != *target) {
            plan.resizes.push_back({bar.bar, *bar.current, *target});
        }
    }
    return plan;
}

Problem resize_bars(const HostPaths& paths, KernelInterface& kernel, const PciAddress& address,
                    const std::vector<BarSize>& sizes) {
    Problem problems;
    for (const auto& size : sizes) {
        auto file = resize_file(paths, address, size.bar);
        WriteResult result = kernel.write(file, std::to_string(size.bit));
        if (result.ok()) continue;
        problems.merge(Problem(address.str() + ": resizing BAR " + std::to_string(size.bar) + " to " +
                               rebar_size_text(size.bit) + " failed: writing " + file.string() + ": " +
                               result.describe()));
    }
    return problems;
}

Problem restore_bar_sizes(const HostPaths& paths, KernelInterface& kernel, const RecordedDevice& device) {
    std::vector<BarSize> differing;
    for (const auto& size : device.bar_sizes) {
        if (current_bit(paths, device.address, size.bar) != size.bit) differing.push_back(size);
    }
    auto problem = resize_bars(paths, kernel, device.address, differing);
    if (!problem) return {};
    return Problem(problem.message() + "; it keeps the VM's size until the next boot");
}

}  // namespace vfio_hook
