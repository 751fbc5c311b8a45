#include "core/kernel_log.hpp"
#include "core/stuck_device.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace vfio_hook {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Module names use '_' where driver names use '-' and the other way round (snd_hda_intel).
std::string normalised_driver(std::string_view name) {
    std::string out = lower(name);
    std::replace(out.begin(), out.end(), '-', '_');
    return out;
}

}  // namespace

std::optional<KernelLogLine> parse_kmsg_record(std::string_view record) {
    auto semicolon = record.find(';');
    if (semicolon == std::string_view::npos || record.empty() || record[0] == ' ') return std::nullopt;
    std::string_view prefix = record.substr(0, semicolon);
    unsigned priority_facility = 0;
    std::uint64_t sequence = 0;
    auto comma = prefix.find(',');
    if (comma == std::string_view::npos) return std::nullopt;
    if (std::from_chars(prefix.data(), prefix.data() + comma, priority_facility).ec != std::errc{})
        return std::nullopt;
    auto rest = prefix.substr(comma + 1);
    auto comma2 = rest.find(',');
    if (std::from_chars(rest.data(), rest.data() + std::min(comma2, rest.size()), sequence).ec !=
        std::errc{})
        return std::nullopt;
    std::string_view message = record.substr(semicolon + 1);
    while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
    return KernelLogLine{sequence, static_cast<int>(priority_facility & 7), std::string(message)};
}

std::vector<KernelLogLine> parse_kmsg(std::string_view text) {
    std::vector<KernelLogLine> lines;
    while (!text.empty()) {
        auto end = text.find('\n');
        std::string_view record = text.substr(0, end);
        if (auto line = parse_kmsg_record(record)) lines.push_back(std::move(*line));
        if (end == std::string_view::npos) break;
        text.remove_prefix(end + 1);
    }
    return lines;
}

namespace {

// Every PCI address the message names ("0000:01:00.0"), in any case. The domain is read whole:
// a VMD domain's "10000:01:00.0" (the kernel prints %04x, so 5 digits there) is not 0000:01:00.0.
std::vector<PciAddress> addresses_in(std::string_view message) {
    std::vector<PciAddress> found;
    for (std::size_t i = 0; i + 12 <= message.size(); ++i) {
        if (message[i + 4] != ':' || message[i + 7] != ':' || message[i + 10] != '.') continue;
        std::size_t start = i;
        while (start > 0 && std::isxdigit(static_cast<unsigned char>(message[start - 1]))) --start;
        if (auto address = PciAddress::parse(message.substr(start, i + 12 - start))) found.push_back(*address);
    }
    return found;
}

}  // namespace

// A line that names PCI addresses is about those devices only, even when it starts with the
// name of a driver other devices use too (bochs-drm drives two cards); a line that names none is
// about every device of the driver it starts with.
bool mentions_device(const KernelLogLine& line, const PciAddress& address,
                     const std::optional<DriverName>& driver) {
    auto named = addresses_in(line.message);
    if (!named.empty()) return std::find(named.begin(), named.end(), address) != named.end();
    if (!driver) return false;
    std::string prefix = normalised_driver(*driver);
    std::string head = normalised_driver(line.message.substr(0, prefix.size() + 1));
    return head == prefix + ":" || head == prefix + " ";
}

bool reports_driver_problem(std::string_view message) {
    static constexpr std::array patterns = {
        "firmware unavailable",     "failed to load firmware",  "direct firmware load",
        "rminitadapter failed",     "probe with driver",        "probe failed",
        "failed to probe",          "unable to change power state", "aer:",
        "not ready",                "init failed",              "failed to initialize",
    };
    std::string text = lower(message);
    if (text.find("probe") != std::string::npos && text.find("failed") != std::string::npos)
        return true;
    if (says_device_stuck(message)) return true;  // issue 26
    return std::any_of(patterns.begin(), patterns.end(),
                       [&](const char* pattern) { return text.find(pattern) != std::string::npos; });
}

bool reports_missing_firmware(std::string_view message) {
    std::string text = lower(message);
    return text.find("firmware unavailable") != std::string::npos ||
           text.find("failed to load firmware") != std::string::npos ||
           text.find("direct firmware load") != std::string::npos;
}

std::vector<KernelLogLine> problems_about(const std::vector<KernelLogLine>& lines,
                                          const PciAddress& address,
                                          const std::optional<DriverName>& driver) {
    std::vector<KernelLogLine> found;
    for (const auto& line : lines) {
        if (mentions_device(line, address, driver) && reports_driver_problem(line.message))
            found.push_back(line);
    }
    return found;
}

}  // namespace vfio_hook
