// fuzz-config: parse_config_file(text, "fuzz") on arbitrary bytes. Besides not crashing:
//   - every error names the place: it starts with "fuzz:LINE:" where LINE is a decimal number
//     between 1 and the number of lines in the text, and that line is not blank or a comment;
//   - it names the right line: the lines before LINE parse without error, and LINE alone gives
//     the same error as "fuzz:1:";
//   - an error is one line (no '\n'), as core/expected.hpp promises;
//   - accepted settings are within the documented ranges (write-deadline-ms 10..600000,
//     settle-deadline-ms 1..600000, lock-deadline-ms 1..3600000, log-level debug/info/warn/error);
//   - the accepted settings, written back as a config file, parse to the same settings.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config_file.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* fuzz_target_name = "fuzz-config";
constexpr const char* source = "fuzz";

using namespace vfio_hook;
using fuzz::printable;

// Where the 1-based line `number` of the text starts, split on '\n' as the parser does.
std::size_t start_of_line(std::string_view text, unsigned long number) {
    std::size_t start = 0;
    for (unsigned long i = 1; i < number; ++i) {
        auto end = text.find('\n', start);
        if (end == std::string_view::npos) return text.size();
        start = end + 1;
    }
    return start;
}

std::string_view line_of(std::string_view text, unsigned long number) {
    std::string_view rest = text.substr(start_of_line(text, number));
    return rest.substr(0, rest.find('\n'));
}

bool blank_or_comment(std::string_view line) {
    line = line.substr(0, line.find('#'));
    return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string written(const Settings& settings) {
    return "write-deadline-ms = " + std::to_string(settings.write_deadline.count()) +
           "\nsettle-deadline-ms = " + std::to_string(settings.settle_deadline.count()) +
           "\nlock-deadline-ms = " + std::to_string(settings.lock_deadline.count()) +
           "\nallow-boot-vga = " + (settings.allow_boot_vga ? "yes" : "no") +
           "\nfirmware-errors = " + (settings.refuse_on_firmware_errors ? "refuse" : "warn") +
           "\nlog-level = " + settings.log_level + "\n";
}

bool same(const Settings& a, const Settings& b) {
    return a.write_deadline == b.write_deadline && a.settle_deadline == b.settle_deadline &&
           a.lock_deadline == b.lock_deadline && a.allow_boot_vga == b.allow_boot_vga &&
           a.refuse_on_firmware_errors == b.refuse_on_firmware_errors && a.log_level == b.log_level;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_config_file(text, source);
    if (!parsed) {
        const std::string& error = parsed.error();
        std::string prefix = std::string(source) + ":";
        FUZZ_CHECK(error.rfind(prefix, 0) == 0, "error does not name the source: '" + printable(error) + "'");
        std::size_t digits = 0;
        while (prefix.size() + digits < error.size() &&
               error[prefix.size() + digits] >= '0' && error[prefix.size() + digits] <= '9') {
            ++digits;
        }
        FUZZ_CHECK(digits > 0 && digits < 10 && prefix.size() + digits < error.size() &&
                       error[prefix.size() + digits] == ':',
                   "error has no line number: '" + printable(error) + "'");
        unsigned long line = std::stoul(error.substr(prefix.size(), digits));
        std::size_t lines = 1;
        for (char c : text) lines += c == '\n';
        FUZZ_CHECK(line >= 1 && line <= lines, "error names line " + std::to_string(line) + " of " +
                                                   std::to_string(lines) + ": '" + printable(error) + "'");
        FUZZ_CHECK(!blank_or_comment(line_of(text, line)),
                   "error names a blank or comment line: '" + printable(error) + "'");
        FUZZ_CHECK(error.find('\n') == std::string::npos, "error is not one line: '" + printable(error) + "'");

        auto before = parse_config_file(text.substr(0, start_of_line(text, line)), source);
        FUZZ_CHECK(before.ok(), "error '" + printable(error) + "' but the lines before fail with '" +
                                    (before.ok() ? std::string() : printable(before.error())) + "'");
        std::string alone_expected = prefix + "1" + error.substr(prefix.size() + digits);
        auto alone = parse_config_file(line_of(text, line), source);
        FUZZ_CHECK(!alone.ok() && alone.error() == alone_expected,
                   "error '" + printable(error) + "' but its line alone gives '" +
                       (alone.ok() ? std::string("no error") : printable(alone.error())) + "'");
        return 0;
    }
    const Settings& settings = *parsed;
    auto in = [](auto duration, long low, long high) {
        return duration.count() >= low && duration.count() <= high;
    };
    FUZZ_CHECK(in(settings.write_deadline, 10, 600000), std::to_string(settings.write_deadline.count()));
    FUZZ_CHECK(in(settings.settle_deadline, 1, 600000), std::to_string(settings.settle_deadline.count()));
    FUZZ_CHECK(in(settings.lock_deadline, 1, 3600000), std::to_string(settings.lock_deadline.count()));
    FUZZ_CHECK(settings.log_level == "debug" || settings.log_level == "info" ||
                   settings.log_level == "warn" || settings.log_level == "error",
               "log level '" + printable(settings.log_level) + "'");

    std::string again_text = written(settings);
    auto again = parse_config_file(again_text, source);
    FUZZ_CHECK(again.ok(), "written back, the settings do not parse: " +
                               (again.ok() ? std::string() : again.error()) + "\n" + again_text);
    FUZZ_CHECK(same(settings, *again), "written back, the settings parse differently:\n" + again_text);
    return 0;
}
