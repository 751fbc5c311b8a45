#pragma once
// Which VFIO driver a device gets (issue 26, point 6): the hostdev's `<driver model='…'/>` when the
// domain names one; otherwise a VFIO variant driver chosen as libvirt chooses it; vfio-pci when
// nothing better matches.
//
// How libvirt chooses (src/util/virpci.c, virPCIDeviceFindBestVFIOVariant, ≈10.0): every line of
// /lib/modules/$(uname -r)/modules.alias that starts `alias vfio_pci:` is a VFIO driver's match
// (drivers declared with PCI_DRIVER_OVERRIDE_DEVICE_VFIO: vfio-pci itself matches everything,
// `vfio_pci:v*d*sv*sd*bc*sc*i*`; nvgrace_gpu_vfio_pci, mlx5_vfio_pci … match their IDs); the
// device's `modalias` (pci:v…d…sv…sd…bc…sc…i…) is matched against each with `*` as a wildcard,
// and the match with the fewest wildcards wins. Names there are module names (underscores); the
// driver's directory under /sys/bus/pci/drivers may spell them with dashes (vfio_pci → vfio-pci).

#include <optional>
#include <string>
#include <string_view>

#include "core/pci_device.hpp"

namespace vfio_hook {

struct VfioDriverChoice {
    std::string module;  // as modules.alias or <driver model> names it: vfio_pci, nvgrace_gpu_vfio_pci
    enum class Source { domain, modules_alias, fallback };
    Source source = Source::fallback;

    bool is_vfio_pci() const;  // vfio_pci / vfio-pci
    std::string why() const;   // "the domain's <driver model>", "modules.alias", "the default"
};

// `model`: the hostdev's <driver model='…'/>; `modalias`: the device's sysfs `modalias`;
// `modules_alias`: the text of modules.alias ("" when absent: vfio-pci then).
VfioDriverChoice choose_vfio_driver(const std::optional<std::string>& model, std::string_view modalias,
                                    std::string_view modules_alias);

// A module's name as its driver directory may spell it: underscores as dashes (vfio_pci → vfio-pci).
std::string dashed_driver_name(std::string_view module);

}  // namespace vfio_hook
