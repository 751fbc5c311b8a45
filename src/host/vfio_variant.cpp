#include "host/vfio_variant.hpp"

#include <sys/utsname.h>

#include <filesystem>

namespace vfio_hook {
namespace {

// Debian's modules.alias is about 1.5 MB; a limit well above any real one.
constexpr std::size_t modules_alias_limit = 64 << 20;

std::optional<DriverName> present_driver(const HostPaths& paths, const std::string& module) {
    std::error_code error;
    for (const auto& name : {module, dashed_driver_name(module)}) {
        if (std::filesystem::is_directory(paths.pci_driver(name), error)) return name;
    }
    return std::nullopt;
}

}  // namespace

std::string read_modules_alias(const HostPaths& paths) {
    struct utsname names {};
    if (::uname(&names) != 0) return {};
    return read_text_file(paths.root / "lib/modules" / names.release / "modules.alias", modules_alias_limit);
}

VfioDriverChoice vfio_driver_for(const HostPaths& paths, const PciAddress& address,
                                 const std::optional<std::string>& model, const std::string& modules_alias) {
    if (model) return choose_vfio_driver(model, "", "");
    return choose_vfio_driver(std::nullopt, read_small_file(paths.pci_device(address) / "modalias"), modules_alias);
}

Expected<DriverName> load_vfio_driver(const HostPaths& paths, KernelInterface& kernel, const VfioDriverChoice& choice) {
    if (auto name = present_driver(paths, choice.module)) return *name;
    if (kernel.load_module(choice.module)) {
        if (auto name = present_driver(paths, choice.module)) return *name;
    }
    return Error{"the VFIO driver " + choice.module + " (" + choice.why() + ") is not available and `modprobe " +
                 choice.module + "` failed; install its module, or name another with <driver model='vfio-pci'/> in the hostdev"};
}

}  // namespace vfio_hook
