// fuzz-kernel-log: parse_kmsg() and problems_about() on arbitrary bytes read as /dev/kmsg text.
// Besides not crashing:
//   - parse_kmsg never yields more lines than the text has, every line has a priority 0..7 and
//     a message without '\n';
//   - every parsed line is a fixed point: "PRI,SEQ,0,-;MESSAGE" parses back to the same
//     sequence, priority and message;
//   - problems_about() returns, in order, exactly the lines for which mentions_device() and
//     reports_driver_problem() both hold;
//   - a problem line that names a device's full address (0000:01:00.0, any case), or starts with
//     "DRIVER:" for the device's driver, is never missed for that device.
// Devices asked about: a few fixed (address, driver) pairs, and the first full PCI address and
// leading "word:" of each of the first 8 parsed lines that have either.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/kernel_log.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* fuzz_target_name = "fuzz-kernel-log";

using namespace vfio_hook;
using fuzz::printable;

struct Asked {
    PciAddress address;
    std::optional<DriverName> driver;
};

std::optional<PciAddress> first_full_address(std::string_view message) {
    for (std::size_t i = 0; i + 12 <= message.size(); ++i) {
        if (message[i + 4] != ':') continue;
        if (auto address = PciAddress::parse(message.substr(i, 12))) return address;
    }
    return std::nullopt;
}

std::optional<DriverName> leading_word(std::string_view message) {
    auto colon = message.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 32) return std::nullopt;
    return DriverName(message.substr(0, colon));
}

std::string describe(const KernelLogLine& line) {
    return std::to_string(line.priority) + "," + std::to_string(line.sequence) + ";" +
           printable(line.message);
}

// `problem[i]`: reports_driver_problem(lines[i].message), worked out once per input.
void check_problems(const std::vector<KernelLogLine>& lines, const std::vector<bool>& problem,
                    const Asked& asked, const KernelLogLine* must_find) {
    auto problems = problems_about(lines, asked.address, asked.driver);
    std::string who = asked.address.str() + " (driver " +
                      (asked.driver ? "'" + printable(*asked.driver) + "'" : std::string("none")) + ")";
    std::size_t next = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& line = lines[i];
        if (!problem[i] || !mentions_device(line, asked.address, asked.driver)) continue;
        FUZZ_CHECK(next < problems.size(), "problems_about " + who + " misses " + describe(line));
        const auto& got = problems[next++];
        FUZZ_CHECK(got.sequence == line.sequence && got.priority == line.priority &&
                       got.message == line.message,
                   "problems_about " + who + " gave " + describe(got) + " for " + describe(line));
    }
    FUZZ_CHECK(next == problems.size(),
               "problems_about " + who + " returned lines that are not problems about it");
    if (must_find) {
        bool found = false;
        for (const auto& line : problems) {
            found = found || (line.sequence == must_find->sequence &&
                              line.priority == must_find->priority && line.message == must_find->message);
        }
        FUZZ_CHECK(found, "problem line " + describe(*must_find) + " is missed for " + who);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto lines = parse_kmsg(text);

    std::size_t newlines = 0;
    for (char c : text) newlines += c == '\n';
    FUZZ_CHECK(lines.size() <= newlines + 1, std::to_string(lines.size()) + " lines from " +
                                                 std::to_string(newlines + 1));
    for (const auto& line : lines) {
        FUZZ_CHECK(line.priority >= 0 && line.priority <= 7, describe(line));
        FUZZ_CHECK(line.message.find('\n') == std::string::npos, describe(line));
        std::string record = std::to_string(line.priority) + "," + std::to_string(line.sequence) +
                             ",0,-;" + line.message;
        auto again = parse_kmsg_record(record);
        FUZZ_CHECK(again.has_value(), "'" + printable(record) + "' does not parse again");
        FUZZ_CHECK(again->sequence == line.sequence && again->priority == line.priority &&
                       again->message == line.message,
                   "'" + printable(record) + "' parses again as " + describe(*again));
    }

    static const std::vector<Asked> fixed = {
        {*PciAddress::parse("0000:01:00.0"), DriverName("nvidia")},
        {*PciAddress::parse("0000:01:00.1"), DriverName("snd_hda_intel")},
        {*PciAddress::parse("0000:03:00.0"), DriverName("amdgpu")},
        {*PciAddress::parse("0000:00:02.0"), std::nullopt},
    };
    std::vector<bool> problem;
    for (const auto& line : lines) problem.push_back(reports_driver_problem(line.message));
    for (const auto& asked : fixed) check_problems(lines, problem, asked, nullptr);

    std::size_t derived = 0;
    for (std::size_t i = 0; i < lines.size() && derived < 8; ++i) {
        const auto& line = lines[i];
        auto address = first_full_address(line.message);
        auto driver = leading_word(line.message);
        if (!address && !driver) continue;
        ++derived;
        // The line names this address (or names none and begins with this driver's "name:"): if it reports a
        // problem, it is a problem about that device.
        Asked asked{address.value_or(*PciAddress::parse("0000:ff:1f.7")), driver};
        check_problems(lines, problem, asked, problem[i] ? &line : nullptr);
    }
    return 0;
}
