#include "core/pci_address.hpp"

#include <charconv>
#include <cstdio>

namespace vfio_hook {
namespace {

std::optional<unsigned long> parse_hex_field(std::string_view text, std::size_t digits) {
    if (text.size() != digits) return std::nullopt;
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::optional<PciAddress> PciAddress::from_parts(unsigned long domain, unsigned long bus,
                                                 unsigned long slot, unsigned long function) {
    if (domain > 0xffff || bus > 0xff || slot > 0x1f || function > 7) return std::nullopt;
    return PciAddress{static_cast<std::uint16_t>(domain), static_cast<std::uint8_t>(bus),
                      static_cast<std::uint8_t>(slot), static_cast<std::uint8_t>(function)};
}

std::optional<PciAddress> PciAddress::parse(std::string_view text) {
    std::string_view domain_part = "0000";
    if (text.size() == 12) {
        if (text[4] != ':') return std::nullopt;
        domain_part = text.substr(0, 4);
        text.remove_prefix(5);
    }
    if (text.size() != 7 || text[2] != ':' || text[5] != '.') return std::nullopt;
    auto domain = parse_hex_field(domain_part, 4);
    auto bus = parse_hex_field(text.substr(0, 2), 2);
    auto slot = parse_hex_field(text.substr(3, 2), 2);
    auto function = parse_hex_field(text.substr(6, 1), 1);
    if (!domain || !bus || !slot || !function) return std::nullopt;
    return from_parts(*domain, *bus, *slot, *function);
}

std::string PciAddress::str() const {
    char text[16];
    std::snprintf(text, sizeof text, "%04x:%02x:%02x.%x", domain, bus, slot, function);
    return text;
}

}  // namespace vfio_hook
