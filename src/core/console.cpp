#include "core/console.hpp"

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

namespace vfio_hook {

bool is_firmware_framebuffer_driver(std::string_view platform_driver) {
    for (const auto& driver : firmware_framebuffer_drivers) {
        if (platform_driver == driver.platform_driver) return true;
    }
    return false;
}

bool is_firmware_framebuffer_region(std::string_view name) {
    if (name == "BOOTFB") return true;
    for (const auto& driver : firmware_framebuffer_drivers) {
        for (auto region : driver.regions) {
            if (name == region) return true;
        }
        // platform_device_add() names a resource that has no name after its device
        if (name.starts_with(driver.platform_driver) &&
            (name.size() == driver.platform_driver.size() || name[driver.platform_driver.size()] == '.'))
            return true;
    }
    return false;
}

namespace {

// One line of /proc/iomem: "  4000000000-400fffffff : 0000:01:00.0".
struct IomemLine {
    std::size_t depth = 0;
    unsigned long long start = 0, end = 0;
    std::string_view name;
};

std::optional<IomemLine> parse_iomem_line(std::string_view line) {
    auto indent = line.find_first_not_of(' ');
    auto colon = line.find(" : ");
    if (indent == std::string_view::npos || colon == std::string_view::npos || colon < indent) return std::nullopt;
    IomemLine parsed{indent / 2, 0, 0, line.substr(colon + 3)};
    std::string_view range = line.substr(indent, colon - indent);
    auto dash = range.find('-');
    if (dash == std::string_view::npos) return parsed;
    auto hex = [](std::string_view text, unsigned long long& value) {
        return std::from_chars(text.data(), text.data() + text.size(), value, 16).ec == std::errc{};
    };
    if (!hex(range.substr(0, dash), parsed.start) || !hex(range.substr(dash + 1), parsed.end))
        parsed.start = parsed.end = 0;
    return parsed;
}

}  // namespace

// /proc/iomem nests by two-space indentation: "  4000000000-400fffffff : 0000:01:00.0" with
// "    4000000000-40002fffff : efifb" one level below it. But r_show() (kernel/resource.c) prints
// no level deeper than MAX_IORES_LEVEL (5): a GPU behind a chipset and its own switch ports has
// its BAR and the framebuffer at the same indentation. So the addresses decide where they are
// shown (to root, as the hook runs); the indentation only where they are all 0 (read without
// CAP_SYS_ADMIN, as `status` may be).
std::map<PciAddress, std::string> firmware_framebuffers(std::string_view iomem) {
    std::map<PciAddress, std::string> found;
    std::vector<std::string_view> parents;                      // the name at each indentation depth
    std::vector<std::pair<IomemLine, PciAddress>> bars;         // every PCI device's region so far
    while (!iomem.empty()) {
        auto end = iomem.find('\n');
        std::string_view text = iomem.substr(0, end);
        iomem = end == std::string_view::npos ? std::string_view{} : iomem.substr(end + 1);
        auto line = parse_iomem_line(text);
        if (!line) continue;
        parents.resize(line->depth);
        if (is_firmware_framebuffer_region(line->name)) {
            if (line->end != 0) {
                // A region's parents are printed before it: the BARs seen so far that hold it.
                for (const auto& [bar, address] : bars) {
                    if (bar.start <= line->start && line->end <= bar.end) found[address] = std::string(line->name);
                }
            } else {
                for (auto parent : parents) {
                    if (auto address = PciAddress::parse(parent)) found[*address] = std::string(line->name);
                }
            }
        }
        if (auto address = PciAddress::parse(line->name)) bars.emplace_back(*line, *address);
        parents.push_back(line->name);
    }
    return found;
}

}  // namespace vfio_hook
