#include "core/persist.hpp"

#include <sstream>

#include "core/pci_device.hpp"

namespace vfio_hook {
namespace {

constexpr std::string_view manifest_header = "vfio-hook persist manifest 1";

std::string rule_list(const std::vector<PciAddress>& persisted, const std::string& separator) {
    std::string list;
    for (const auto& address : persisted) {
        if (!list.empty()) list += separator;
        list += on_host(persist_rule_path(address));
    }
    return list;
}

}  // namespace

std::string PersistManifest::serialise() const {
    std::string text(manifest_header);
    text += "\naddress " + address.str() + "\n";
    text += "driver-before " + driver_before.value_or("-") + "\n";
    for (const auto& file : files) text += "file " + file.string() + "\n";
    return text;
}

Expected<PersistManifest> PersistManifest::parse(const std::string& text) {
    std::istringstream lines(text);
    std::string line;
    if (!std::getline(lines, line) || line != manifest_header) return Error{"not a vfio-hook persist manifest"};
    std::optional<PciAddress> address;
    std::optional<std::string> driver;
    std::vector<std::filesystem::path> files;
    while (std::getline(lines, line)) {
        auto space = line.find(' ');
        std::string key = line.substr(0, space), value = space == std::string::npos ? "" : line.substr(space + 1);
        if (key == "address") {
            address = PciAddress::parse(value);
            if (!address) return Error{"bad address '" + value + "'"};
        } else if (key == "driver-before") {
            if (value != "-" && !is_kernel_driver_name(value)) return Error{"bad driver name '" + value + "'"};
            if (value != "-") driver = value;
        } else if (key == "file") {
            files.emplace_back(value);
        } else if (!line.empty()) {
            return Error{"unknown line '" + line + "'"};
        }
    }
    if (!address) return Error{"no address line"};
    // Only the files persist writes for this address: a damaged manifest must never make
    // unpersist delete anything else, another persisted device's rule or manifest included.
    for (const auto& file : files) {
        if (file != on_host(persist_manifest_path(*address)) && file != on_host(persist_rule_path(*address))) {
            return Error{"file '" + file.string() + "' is not one that persist writes for " + address->str()};
        }
    }
    return PersistManifest{*address, driver, files};
}

std::string initramfs_tool_name(InitramfsTool tool) {
    switch (tool) {
        case InitramfsTool::initramfs_tools: return "initramfs-tools";
        case InitramfsTool::dracut: return "dracut";
        case InitramfsTool::mkinitcpio: return "mkinitcpio";
        case InitramfsTool::none: break;
    }
    return "none";
}

std::filesystem::path persist_manifest_path(const PciAddress& address) {
    return persist_manifest_dir / address.str();
}

std::filesystem::path persist_rule_path(const PciAddress& address) {
    // 61: after the persistent-naming rules, well before 80-drivers.rules loads a driver.
    return std::filesystem::path("etc/udev/rules.d") / ("61-vfio-hook-persist-" + address.str() + ".rules");
}

std::optional<std::filesystem::path> initramfs_config_path(InitramfsTool tool) {
    switch (tool) {
        case InitramfsTool::initramfs_tools: return "etc/initramfs-tools/hooks/vfio-hook";
        case InitramfsTool::dracut: return "etc/dracut.conf.d/vfio-hook.conf";
        case InitramfsTool::mkinitcpio: return "etc/mkinitcpio.conf.d/vfio-hook.conf";
        case InitramfsTool::none: break;
    }
    return std::nullopt;
}

std::string persist_udev_rule(const PciAddress& address, const std::string& binary) {
    // udev splits RUN's value at spaces and a quote would end it: a path with anything else
    // than these characters gets no RUN: the override then still keeps host drivers off the
    // device, but nothing binds vfio-pci to it unless vfio-pci loads after the override is set.
    bool plain = !binary.empty() && binary.front() == '/' &&
                 binary.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._+-") ==
                     std::string::npos;
    std::string run = plain ? ", RUN+=\"" + binary + " persist-apply " + address.str() + "\"" : "";
    return "# Written by `vfio-hook persist " + address.str() + "`; `vfio-hook unpersist " + address.str() +
           "` removes it.\n"
           "# The override makes vfio-pci the only driver that may bind the device; persist-apply takes\n"
           "# it back from a driver that was loaded before this rule ran.\n"
           "ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"" + address.str() +
           "\", ATTR{driver_override}=\"vfio-pci\"" + run + "\n";
}

std::string persist_modules_load() {
    return "# Written by `vfio-hook persist`; removed with the last persisted device.\nvfio-pci\n";
}

std::string initramfs_config(InitramfsTool tool, const std::vector<PciAddress>& persisted) {
    if (persisted.empty()) return {};
    const std::string header = "# Written by `vfio-hook persist`; removed with the last persisted device.\n";
    switch (tool) {
        case InitramfsTool::initramfs_tools:
            return "#!/bin/sh\n" + header +
                   "# Puts vfio-pci and vfio-hook's udev rules into the initramfs: a GPU driver loaded\n"
                   "# there then finds the persisted devices already claimed by their driver_override.\n"
                   "case \"$1\" in prereqs) exit 0 ;; esac\n"
                   ". /usr/share/initramfs-tools/hook-functions\n"
                   "manual_add_modules vfio-pci\n"
                   "mkdir -p \"${DESTDIR}/etc/udev/rules.d\"\n"
                   "for rule in " + rule_list(persisted, " ") + "; do\n"
                   "    [ -e \"$rule\" ] && cp \"$rule\" \"${DESTDIR}/etc/udev/rules.d/\"\n"
                   "done\n"
                   "exit 0\n";
        case InitramfsTool::dracut:
            return header + "force_drivers+=\" vfio-pci \"\ninstall_items+=\" " + rule_list(persisted, " ") + " \"\n";
        case InitramfsTool::mkinitcpio:
            return header + "MODULES+=(vfio_pci vfio vfio_iommu_type1)\nFILES+=(" + rule_list(persisted, " ") + ")\n";
        case InitramfsTool::none: break;
    }
    return {};
}

std::vector<std::string> initramfs_update_command(InitramfsTool tool) {
    switch (tool) {
        case InitramfsTool::initramfs_tools: return {"update-initramfs", "-u", "-k", "all"};
        case InitramfsTool::dracut: return {"dracut", "--force", "--regenerate-all"};
        case InitramfsTool::mkinitcpio: return {"mkinitcpio", "-P"};
        case InitramfsTool::none: break;
    }
    return {};
}

}  // namespace vfio_hook
