#pragma once
// Where the boundary finds sysfs, /proc, /dev and our state: everything under one root, "/" in
// production and a temp dir holding a fake tree in tests.

#include <cstdint>
#include <filesystem>
#include <optional>

#include "core/expected.hpp"
#include "core/pci_address.hpp"

namespace vfio_hook {

struct HostPaths {
    std::filesystem::path root = "/";

    std::filesystem::path pci_devices() const { return root / "sys/bus/pci/devices"; }
    std::filesystem::path pci_device(const PciAddress& address) const {
        return pci_devices() / address.str();
    }
    std::filesystem::path pci_drivers() const { return root / "sys/bus/pci/drivers"; }
    std::filesystem::path pci_driver(const std::string& driver) const { return pci_drivers() / driver; }
    std::filesystem::path drivers_probe() const { return root / "sys/bus/pci/drivers_probe"; }
    std::filesystem::path iommu_groups() const { return root / "sys/kernel/iommu_groups"; }
    std::filesystem::path proc() const { return root / "proc"; }
    std::filesystem::path kmsg() const { return root / "dev/kmsg"; }
    std::filesystem::path state_dir() const { return root / "run/vfio-hook"; }
    std::filesystem::path records_dir() const { return state_dir() / "records"; }
    std::filesystem::path lock_file() const { return state_dir() / "lock"; }
    std::filesystem::path journald_socket() const { return root / "run/systemd/journal/socket"; }
    std::filesystem::path libvirt_domain_xml_dir() const { return root / "etc/libvirt/qemu"; }
    bool is_real_root() const { return root == "/"; }
};

// Reads a file a user names (a domain XML, the config): its bytes, or one line saying why not
// ("… is a directory", "… is over the 64 MiB limit").
Expected<std::string> read_user_file(const std::filesystem::path& path, std::size_t limit);

// Writes `text` to a file only root may read (0600) and fsyncs it: `exclusive` fails with EEXIST
// rather than replace a file that is there, otherwise it is truncated. False (errno set) on failure.
bool write_private_file(const std::filesystem::path& path, const std::string& text, bool exclusive);

// Reads a small sysfs/proc file; "" when it is absent. Trailing newline removed.
std::string read_small_file(const std::filesystem::path& path);
// Reads a whole (procfs or regular) file, up to `limit` bytes; "" when it is absent.
std::string read_text_file(const std::filesystem::path& path, std::size_t limit = 1 << 20);
// A sysfs `dev` file's "MAJOR:MINOR" as a device number; nullopt when it is not one.
std::optional<std::uint64_t> parse_device_number(const std::string& text);
// The last path component of a symlink's target ("…/drivers/vfio-pci" → "vfio-pci").
std::optional<std::string> link_name(const std::filesystem::path& link);

}  // namespace vfio_hook
