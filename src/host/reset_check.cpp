#include "host/reset_check.hpp"

#include <filesystem>

#include "core/reset_advice.hpp"

namespace vfio_hook {

std::vector<std::string> reset_bug_warnings(const HostPaths& paths, const std::vector<const PciDevice*>& devices) {
    std::error_code error;
    // A loaded module shows as /sys/module/NAME (dashes become underscores).
    bool loaded = std::filesystem::exists(paths.root / "sys/module/vendor_reset", error);
    std::vector<std::string> warnings;
    for (const auto* device : devices) {
        if (auto warning = reset_bug_warning(*device, loaded)) warnings.push_back(*warning);
    }
    return warnings;
}

}  // namespace vfio_hook
