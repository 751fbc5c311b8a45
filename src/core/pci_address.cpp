#include "core/pci_address.hpp"

#include <charconv>
#include <cstdio>

namespace vfio_hook {
namespace {

std::optional<unsigned long> parse_hex(std::string_view text) {
    if (text.empty()) return std::nullopt;
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<unsigned long> parse_hex_field(std::string_view text, std::size_t digits) {
    if (text.size() != digits) return std::nullopt;
    return parse_hex(text);
}

// The domain as the kernel prints it: %04x, so 4 digits, or more without a leading zero.
std::optional<unsigned long> parse_domain(std::string_view text) {
    if (text.size() < 4 || text.size() > 8 || (text.size() > 4 && text[0] == '0')) return std::nullopt;
    return parse_hex(text);
}

}  // namespace

std::optional<PciAddress> PciAddress::from_parts(unsigned long domain, unsigned long bus,
                                                 unsigned long slot, unsigned long function) {
    if (domain > 0xffffffff || bus > 0xff || slot > 0x1f || function > 7) return std::nullopt;
    return PciAddress{static_cast<std::uint32_t>(domain), static_cast<std::uint8_t>(bus),
                      static_cast<std::uint8_t>(slot), static_cast<std::uint8_t>(function)};
}

std::optional<PciAddress> PciAddress::parse(std::string_view text) {
    std::string node_device;  // pci_0000_01_00_0 → 0000:01:00.0
    if (text.starts_with("pci_")) {
        node_device = std::string(text.substr(4));
        auto last = node_device.find_last_of('_');
        if (node_device.size() < 10 || last != node_device.size() - 2) return std::nullopt;
        node_device[last] = '.';
        node_device[node_device.size() - 5] = node_device[node_device.size() - 5] == '_' ? ':' : '!';
        node_device[node_device.size() - 8] = node_device[node_device.size() - 8] == '_' ? ':' : '!';
        text = node_device;
    }
    std::string_view domain_part = "0000";
    if (text.size() > 7) {
        if (text[text.size() - 8] != ':') return std::nullopt;
        domain_part = text.substr(0, text.size() - 8);
        text.remove_prefix(text.size() - 7);
    }
    if (text.size() != 7 || text[2] != ':' || text[5] != '.') return std::nullopt;
    auto domain = parse_domain(domain_part);
    auto bus = parse_hex_field(text.substr(0, 2), 2);
    auto slot = parse_hex_field(text.substr(3, 2), 2);
    auto function = parse_hex_field(text.substr(6, 1), 1);
    if (!domain || !bus || !slot || !function) return std::nullopt;
    return from_parts(*domain, *bus, *slot, *function);
}

bool same_slot(const PciAddress& a, const PciAddress& b) {
    return a.domain == b.domain && a.bus == b.bus && a.slot == b.slot;
}

std::string PciAddress::str() const {
    char text[24];  // "ffffffff:ff:1f.7": an 8-digit domain needs 17 bytes
    std::snprintf(text, sizeof text, "%04x:%02x:%02x.%x", domain, bus, slot, function);
    return text;
}

}  // namespace vfio_hook
