#include "core/domain_uuid.hpp"

#include <cctype>

namespace vfio_hook {

std::optional<DomainUuid> DomainUuid::parse(std::string_view text) {
    std::string hex;
    for (char c : text) {
        if (c == '-' || c == ' ') continue;  // libvirt tolerates dashes and spaces between bytes
        if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
        hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (hex.size() != 32) return std::nullopt;
    return DomainUuid(hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' +
                      hex.substr(16, 4) + '-' + hex.substr(20));
}

}  // namespace vfio_hook
