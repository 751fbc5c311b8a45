#include "host/pci_names.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <tuple>

namespace vfio_hook {
namespace {

// pci.ids: a vendor line "10de  NVIDIA Corporation" at the start of a line, its devices below
// it as "\t2684  AD102 [GeForce RTX 4090]" (and subsystems, two tabs, which are skipped). The
// file is a megabyte or two: read line by line up to the vendor's block and no further.
std::optional<std::string> from_pci_ids(const std::filesystem::path& file, std::uint16_t vendor,
                                        std::uint16_t device) {
    std::ifstream ids(file);
    if (!ids) return std::nullopt;
    char hex[8];
    std::snprintf(hex, sizeof hex, "%04x", vendor);
    const std::string vendor_prefix = std::string(hex) + "  ";
    std::snprintf(hex, sizeof hex, "%04x", device);
    const std::string device_prefix = "\t" + std::string(hex) + "  ";
    std::string line, vendor_name;
    while (std::getline(ids, line)) {
        if (vendor_name.empty()) {
            if (line.starts_with(vendor_prefix)) vendor_name = line.substr(vendor_prefix.size());
            continue;
        }
        if (line.starts_with(device_prefix)) return vendor_name + " " + line.substr(device_prefix.size());
        if (!line.empty() && line[0] != '\t' && line[0] != '#') break;  // the next vendor
    }
    if (vendor_name.empty()) return std::nullopt;
    return vendor_name + " Device " + std::string(hex);
}

std::optional<std::filesystem::path> names_root;

}  // namespace

void use_pci_names_under(const HostPaths& paths) { names_root = paths.root; }

std::optional<std::string> device_name(const PciDevice& device) {
    if (!device.model.empty()) return device.model;
    if (!names_root) return std::nullopt;
    // status and check name the same few devices again and again: one look each per run.
    static std::map<std::tuple<std::string, std::uint16_t, std::uint16_t>, std::optional<std::string>> known;
    auto key = std::make_tuple(names_root->string(), device.vendor, device.device);
    if (auto found = known.find(key); found != known.end()) return found->second;
    std::optional<std::string> name;
    for (const char* file : {"usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids"}) {
        if ((name = from_pci_ids(*names_root / file, device.vendor, device.device))) break;
    }
    known[key] = name;
    return name;
}

std::string name_column(const PciDevice& device) {
    auto name = device_name(device);
    return name ? "  " + *name : std::string();
}

}  // namespace vfio_hook
