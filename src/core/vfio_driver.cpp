#include "core/vfio_driver.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace vfio_hook {

bool VfioDriverChoice::is_vfio_pci() const { return module == "vfio_pci" || module == vfio_pci; }

std::string VfioDriverChoice::why() const {
    switch (source) {
        case Source::domain: return "the domain's <driver model>";
        case Source::modules_alias: return "modules.alias";
        case Source::fallback: break;
    }
    return "the default";
}

std::string dashed_driver_name(std::string_view module) {
    std::string name(module);
    std::replace(name.begin(), name.end(), '_', '-');
    return name;
}

VfioDriverChoice choose_vfio_driver(const std::optional<std::string>& model, std::string_view modalias,
                                    std::string_view modules_alias) {
    if (model) return {*model, VfioDriverChoice::Source::domain};
    VfioDriverChoice fallback{"vfio_pci", VfioDriverChoice::Source::fallback};
    if (!modalias.starts_with("pci:")) return fallback;
    // The device as a VFIO alias names it: "vfio_pci:v000010DEd…".
    std::string wanted = "vfio_pci:" + std::string(modalias.substr(4));
    std::optional<VfioDriverChoice> best;
    std::size_t fewest = 0;
    constexpr std::string_view prefix = "alias vfio_pci:";
    std::size_t at = 0;
    while (at < modules_alias.size()) {
        auto end = modules_alias.find('\n', at);
        if (end == std::string_view::npos) end = modules_alias.size();
        std::string_view line = modules_alias.substr(at, end - at);
        at = end + 1;
        if (!line.starts_with(prefix)) continue;
        auto space = line.find(' ', 6);
        if (space == std::string_view::npos) continue;
        std::string pattern(line.substr(6, space - 6));
        std::string module(line.substr(space + 1));
        if (!is_kernel_driver_name(module) || fnmatch(pattern.c_str(), wanted.c_str(), 0) != 0) continue;
        auto wildcards = static_cast<std::size_t>(std::count(pattern.begin(), pattern.end(), '*'));
        if (best && wildcards >= fewest) continue;
        best = VfioDriverChoice{module, VfioDriverChoice::Source::modules_alias};
        fewest = wildcards;
    }
    if (!best || best->is_vfio_pci()) return fallback;
    return *best;
}

}  // namespace vfio_hook
