#pragma once
// The parts of a libvirt domain definition the hook acts on: identity, the host PCI devices it is
// given, and our per-VM settings in <metadata>.

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/domain_uuid.hpp"
#include "core/expected.hpp"
#include "core/pci_address.hpp"
#include "core/problem.hpp"
#include "core/xml_document.hpp"
#include "core/rebar.hpp"

namespace vfio_hook {

// The XML namespace of our per-VM settings inside the domain's <metadata>.
inline constexpr std::string_view metadata_namespace = "https://vfio-hook.org/xmlns/domain/1";

struct HostPciDevice {
    PciAddress address;
    bool managed = false;       // libvirt detaches/reattaches managed='yes' devices itself
    std::string element;        // "hostdev" or "interface", for messages
    // <driver model='…'/> inside it: the VFIO (variant) driver libvirt is told to use (issue 26).
    std::optional<std::string> driver_model = std::nullopt;
};

struct DomainSettings {
    std::optional<bool> allow_boot_vga;
    std::optional<bool> refuse_on_firmware_errors;
    // <allow-host-critical>0000:00:1f.3</allow-host-critical>, once per address: devices the
    // host needs (storage, ISA/LPC, SMBus, SPI flash) that this VM may take all the same.
    std::set<PciAddress> allowed_host_critical;
    // <power-guard>no</power-guard>: leave `power/control` as vfio-pci sets it (host/power_guard.hpp).
    std::optional<bool> power_guard;
    // <rebar>smallest|largest|SIZE</rebar>: the size its resizable BARs get while it has them
    // (core/rebar.hpp); nullopt leaves them as they are.
    std::optional<RebarSetting> rebar;
};

struct Domain {
    std::string name;
    DomainUuid uuid;
    std::vector<HostPciDevice> pci_devices;  // host addresses, each once, in document order
    DomainSettings settings;
    // What looks like our settings but is not read: a wrong namespace, settings outside a wrapper.
    std::vector<std::string> warnings;
};

// Largest domain XML we read (xml_document's limit); libvirt's own definitions are kilobytes.
inline constexpr std::size_t max_domain_xml_bytes = xml::max_bytes;

// One per-VM setting by its name (allow-boot-vga yes|no, firmware-errors warn|refuse,
// allow-host-critical ADDRESS or -ADDRESS, power-guard yes|no,
// rebar smallest|largest|SIZE|no); the error names what was expected.
Problem apply_domain_setting(DomainSettings& settings, std::string_view key,
                             std::string_view value);
// The wrapper element `virsh metadata --set` takes (libvirt puts it in our namespace).
std::string serialize_settings(const DomainSettings& settings);
// The wrapper element as `virsh metadata` prints it, whatever its namespace prefix.
Expected<DomainSettings> parse_settings_element(std::string_view xml);

// Parses without network access, without DTDs and without entity expansion; a document that
// declares a DOCTYPE is refused outright (libvirt never writes one).
Expected<Domain> parse_domain_xml(std::string_view xml);

// Only the domain's name and UUID, ignoring its devices and settings: what release needs to give
// back what prepare took, even when a setting it cannot read (a value set with `virsh metadata
// --live`, a key from a newer version) would fail the full parse.
Expected<Domain> parse_domain_identity(std::string_view xml);

// For `check`, a dry run that may come before `virsh define`: a hand-written definition may
// leave out <uuid> (libvirt adds one at define). Then the domain has the nil UUID and
// `uuid_given` is false; an invalid <uuid> is still an error. The hook never takes this path.
struct DryRunDomain {
    Domain domain;
    bool uuid_given = true;
};
Expected<DryRunDomain> parse_domain_xml_for_dry_run(std::string_view xml);

// Without parsing: whether a whole domain document (ending in </domain>) can name no host PCI
// device at all: no <interface type='hostdev'>, and every <hostdev> says a type other than pci
// (a USB keyboard passed through is common). Anything it cannot tell counts as a PCI device.
bool surely_without_pci_hostdevs(std::string_view xml);

}  // namespace vfio_hook
