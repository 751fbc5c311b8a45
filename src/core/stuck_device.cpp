#include "core/stuck_device.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace vfio_hook {

bool says_device_stuck(std::string_view message) {
    std::string text(message);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    static constexpr std::array patterns = {"unable to change power state from d3cold to d0", "stuck in d3",
                                            "fallen off the bus"};
    if (std::any_of(patterns.begin(), patterns.end(),
                    [&](const char* pattern) { return text.find(pattern) != std::string::npos; }))
        return true;
    return text.find("not ready") != std::string::npos && text.find("giving up") != std::string::npos;
}

std::vector<std::string> stuck_device_lines(const std::vector<KernelLogLine>& lines, std::uint64_t after,
                                            const std::vector<PciAddress>& addresses, std::uint64_t until) {
    std::vector<std::string> found;
    for (const auto& line : lines) {
        if (line.sequence <= after || line.sequence > until || !says_device_stuck(line.message)) continue;
        for (const auto& address : addresses) {
            // By the addresses the line names, not by substring: 10000:01:00.0 ends in ours.
            if (!mentions_device(line, address, std::nullopt)) continue;
            found.push_back(address.str() + ": kernel log: \"" + line.message + "\"");
            break;
        }
    }
    return found;
}

}  // namespace vfio_hook
