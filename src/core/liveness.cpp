#include "core/liveness.hpp"

#include <set>
#include <sstream>

namespace vfio_hook {
namespace {

// PCI configuration header offsets (PCI Local Bus Specification 3.0, 6.1; include/uapi/linux/pci_regs.h).
constexpr std::size_t vendor_offset = 0x00;
constexpr std::size_t status_offset = 0x06;
constexpr unsigned status_has_capabilities = 0x10;
constexpr std::size_t header_type_offset = 0x0e;
constexpr std::size_t capability_pointer_offset = 0x34;
constexpr unsigned capability_id_power_management = 0x01;
constexpr std::size_t pmcsr_offset_in_capability = 4;

unsigned byte_at(std::string_view bytes, std::size_t offset) {
    return static_cast<unsigned char>(bytes[offset]);
}

unsigned word_at(std::string_view bytes, std::size_t offset) {
    return byte_at(bytes, offset) | (byte_at(bytes, offset + 1) << 8);
}

// The PM capability's status register, bits 1:0, when the list reaches one inside `bytes`.
std::optional<unsigned> power_state_of(std::string_view bytes) {
    if (bytes.size() <= capability_pointer_offset) return std::nullopt;
    if (!(word_at(bytes, status_offset) & status_has_capabilities)) return std::nullopt;
    std::size_t at = byte_at(bytes, capability_pointer_offset) & ~3u;
    // At most 48 capabilities fit in the 192 bytes after the header: a loop ends there.
    for (int hops = 0; hops < 48 && at >= 0x40 && at + 1 < bytes.size(); ++hops) {
        if (byte_at(bytes, at) == capability_id_power_management) {
            std::size_t pmcsr = at + pmcsr_offset_in_capability;
            if (pmcsr + 1 >= bytes.size()) return std::nullopt;
            return word_at(bytes, pmcsr) & 3u;
        }
        at = byte_at(bytes, at + 1) & ~3u;
    }
    return std::nullopt;
}

}  // namespace

Liveness judge_config_space(std::string_view bytes) {
    Liveness liveness;
    if (bytes.size() < 2) {
        liveness.why = "its config space could not be read";
        return liveness;
    }
    if (word_at(bytes, vendor_offset) == 0xffff) {
        liveness.state = Liveness::State::gone;
        liveness.why = "its config space reads vendor 0xffff (it does not answer)";
        return liveness;
    }
    if (bytes.size() > header_type_offset && (byte_at(bytes, header_type_offset) & 0x7f) == 0x7f) {
        liveness.state = Liveness::State::gone;
        liveness.why = "its config space reads header type 0x7f (it does not answer)";
        return liveness;
    }
    liveness.power_state = power_state_of(bytes);
    liveness.state = Liveness::State::alive;
    return liveness;
}

std::string Liveness::power_state_name() const {
    static const char* names[] = {"D0", "D1", "D2", "D3hot"};
    return power_state ? names[*power_state & 3u] : "";
}

bool reset_is_per_function(std::string_view reset_methods) {
    static const std::set<std::string> per_function = {"device_specific", "acpi", "flr", "af_flr", "pm"};
    std::istringstream words{std::string(reset_methods)};
    std::string method;
    bool any = false;
    while (words >> method) {
        if (!per_function.count(method)) return false;
        any = true;
    }
    return any;
}

}  // namespace vfio_hook
