// fuzz-kernel-log: parse_kmsg() and problems_about() on arbitrary bytes read as /dev/kmsg text.
// Besides not crashing:
//   - parse_kmsg never yields more lines than the text has, every line has a priority 0..7 and
//     a message without '\n';
//   - every parsed line is a fixed point: "PRI,SEQ,0,-;MESSAGE" parses back to the same
//     sequence, priority and message;
//   - reports_driver_problem() and mentions_device() agree, line by line, with an independent
//     statement of the rules written here (namespace `rules`: plain loops, no code shared with
//     core/kernel_log.cpp), so a wrong classification cannot hide behind itself;
//   - problems_about() returns, in order, exactly the lines that those rules call a problem
//     about the device;
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

// The rules, as a reader of the kernel log would state them. Deliberately naive: ASCII case
// folding by hand, substring search by brute force, addresses matched character by character.
namespace rules {

char folded(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// `phrase` is lower case.
bool says(std::string_view message, std::string_view phrase) {
    for (std::size_t start = 0; start + phrase.size() <= message.size(); ++start) {
        std::size_t i = 0;
        while (i < phrase.size() && folded(message[start + i]) == phrase[i]) ++i;
        if (i == phrase.size()) return true;
    }
    return false;
}

// A message reports that a driver failed a device when it says, in any case, one of these
// (missing firmware, a failed probe or init, power-state and AER errors, a device not ready, a
// device stuck in D3 or fallen off the bus), or says both "probe" and "failed" anywhere in it.
bool reports_problem(std::string_view message) {
    static constexpr std::string_view phrases[] = {
        "firmware unavailable", "failed to load firmware", "direct firmware load",
        "rminitadapter failed", "probe with driver", "probe failed", "failed to probe",
        "unable to change power state", "aer:", "not ready", "init failed", "failed to initialize",
        "stuck in d3", "fallen off the bus",
    };
    for (std::string_view phrase : phrases) {
        if (says(message, phrase)) return true;
    }
    return says(message, "probe") && says(message, "failed");
}

bool hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    return folded(c) - 'a' + 10;
}

// The PCI address written at `message[at]` ("DDDD:BB:SS.F" in hex digits of any case, slot at
// most 1f, function at most 7), in lower case; "" when there is none.
std::string address_at(std::string_view message, std::size_t at) {
    static constexpr std::string_view shape = "hhhh:hh:hh.h";
    if (at + shape.size() > message.size()) return "";
    std::string text;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        char c = message[at + i];
        if (shape[i] == 'h' ? !hex_digit(c) : c != shape[i]) return "";
        text += folded(c);
    }
    int slot = hex_value(text[8]) * 16 + hex_value(text[9]);
    int function = hex_value(text[11]);
    if (slot > 0x1f || function > 7) return "";
    return text;
}

// Every PCI address the message names, in lower case. The domain is every hex digit before the
// bus's colon: the kernel prints it with %04x, so a VMD domain is 10000 and "0000:01:00.0" inside
// "10000:01:00.0" is not named. A domain of more than four digits with a leading zero, or of more
// than eight, is not one the kernel prints: nothing is named there.
std::vector<std::string> named_addresses(std::string_view message) {
    std::vector<std::string> named;
    for (std::size_t at = 0; at < message.size(); ++at) {
        std::string address = address_at(message, at);
        if (address.empty()) continue;
        std::size_t start = at;
        while (start > 0 && hex_digit(message[start - 1])) --start;
        if (start == at) {
            named.push_back(address);
            continue;
        }
        std::size_t digits = at - start + 4;
        if (digits > 8 || message[start] == '0') continue;
        std::string longer;
        for (std::size_t i = start; i < at; ++i) longer += folded(message[i]);
        named.push_back(longer + address);
    }
    return named;
}

// A line that names PCI addresses (`named`) is about those devices only; a line that names none
// is about every device of the driver it starts with, followed by ':' or ' ' ("nvidia: ...",
// "snd-hda-intel ..."), in any case, with '-' and '_' taken as the same.
bool is_about(std::string_view message, const std::vector<std::string>& named,
              const PciAddress& address, const std::optional<DriverName>& driver) {
    if (!named.empty()) {
        for (const auto& text : named) {
            if (text == address.str()) return true;
        }
        return false;
    }
    if (!driver) return false;
    const std::string& name = *driver;
    if (message.size() <= name.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        char a = folded(message[i]), b = folded(name[i]);
        bool dash_or_underscore = (a == '-' || a == '_') && (b == '-' || b == '_');
        if (a != b && !dash_or_underscore) return false;
    }
    return message[name.size()] == ':' || message[name.size()] == ' ';
}

}  // namespace rules

struct Asked {
    PciAddress address;
    std::optional<DriverName> driver;
};

std::optional<DriverName> leading_word(std::string_view message) {
    auto colon = message.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 32) return std::nullopt;
    return DriverName(message.substr(0, colon));
}

std::string describe(const KernelLogLine& line) {
    return std::to_string(line.priority) + "," + std::to_string(line.sequence) + ";" +
           printable(line.message);
}

// What the rules say of a line whatever the device, worked out once per input.
struct Judged {
    bool problem;                    // rules::reports_problem(message)
    std::vector<std::string> named;  // rules::named_addresses(message)
};

void check_problems(const std::vector<KernelLogLine>& lines, const std::vector<Judged>& judged,
                    const Asked& asked, const KernelLogLine* must_find) {
    auto problems = problems_about(lines, asked.address, asked.driver);
    std::string who = asked.address.str() + " (driver " +
                      (asked.driver ? "'" + printable(*asked.driver) + "'" : std::string("none")) + ")";
    std::size_t next = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& line = lines[i];
        bool about = rules::is_about(line.message, judged[i].named, asked.address, asked.driver);
        FUZZ_CHECK(mentions_device(line, asked.address, asked.driver) == about,
                   "mentions_device says " + std::string(about ? "no" : "yes") + " for " + who +
                       ", the rules say " + (about ? "yes" : "no") + ": " + describe(line));
        if (!judged[i].problem || !about) continue;
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
    std::vector<Judged> judged;
    for (const auto& line : lines) {
        bool expected = rules::reports_problem(line.message);
        FUZZ_CHECK(reports_driver_problem(line.message) == expected,
                   "reports_driver_problem says " + std::string(expected ? "no" : "yes") +
                       ", the rules say " + (expected ? "yes" : "no") + ": " + describe(line));
        judged.push_back({expected, rules::named_addresses(line.message)});
    }
    for (const auto& asked : fixed) check_problems(lines, judged, asked, nullptr);

    std::size_t derived = 0;
    for (std::size_t i = 0; i < lines.size() && derived < 8; ++i) {
        const auto& line = lines[i];
        // The first address the rules say the line names (a longer domain included).
        std::optional<PciAddress> address;
        for (const auto& text : judged[i].named) {
            if ((address = PciAddress::parse(text))) break;
        }
        auto driver = leading_word(line.message);
        if (!address && !driver) continue;
        ++derived;
        // The line names this address (or names none and begins with this driver's "name:"): if it reports a
        // problem, it is a problem about that device.
        Asked asked{address.value_or(*PciAddress::parse("0000:ff:1f.7")), driver};
        check_problems(lines, judged, asked, judged[i].problem ? &line : nullptr);
    }
    return 0;
}
