#include "core/console.hpp"

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

// /proc/iomem nests by two-space indentation: "  4000000000-400fffffff : 0000:01:00.0" with
// "    4000000000-40002fffff : efifb" one level below it.
std::map<PciAddress, std::string> firmware_framebuffers(std::string_view iomem) {
    std::map<PciAddress, std::string> found;
    std::vector<std::string_view> parents;  // the name at each indentation depth
    while (!iomem.empty()) {
        auto end = iomem.find('\n');
        std::string_view line = iomem.substr(0, end);
        iomem = end == std::string_view::npos ? std::string_view{} : iomem.substr(end + 1);
        auto indent = line.find_first_not_of(' ');
        auto colon = line.find(" : ");
        if (indent == std::string_view::npos || colon == std::string_view::npos) continue;
        std::size_t depth = indent / 2;
        std::string_view name = line.substr(colon + 3);
        parents.resize(depth);
        if (is_firmware_framebuffer_region(name)) {
            for (auto parent : parents) {
                if (auto address = PciAddress::parse(parent)) found[*address] = std::string(name);
            }
        }
        parents.push_back(name);
    }
    return found;
}

}  // namespace vfio_hook
