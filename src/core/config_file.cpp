#include "core/config_file.hpp"
#include "core/problem.hpp"

#include <charconv>

namespace vfio_hook {
namespace {

std::string_view trim(std::string_view text) {
    auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    auto last = text.find_last_not_of(" \t\r");
    return text.substr(first, last - first + 1);
}

Problem parse_milliseconds(std::string_view value, long low, long high, std::chrono::milliseconds& into) {
    long number = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (ec != std::errc{} || end != value.data() + value.size() || number < low || number > high) {
        return "expected a number of milliseconds from " + std::to_string(low) + " to " +
               std::to_string(high);
    }
    into = std::chrono::milliseconds(number);
    return {};
}

Problem parse_bool(std::string_view value, bool& into) {
    if (value == "yes" || value == "true" || value == "on" || value == "1") {
        into = true;
    } else if (value == "no" || value == "false" || value == "off" || value == "0") {
        into = false;
    } else {
        return "expected yes or no";
    }
    return {};
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
    static const std::vector<ConfigKey> keys = {
        {"write-deadline-ms", "how long one sysfs write (unbind, bind, drivers_probe) may block"},
        {"bind-deadline-ms", "how long giving a device back to its host driver may take (the driver's probe loads its firmware)"},
        {"settle-deadline-ms", "how long to wait for a driver to appear on a device after a write"},
        {"lock-deadline-ms", "how long to wait for another vfio-hook run to finish"},
        {"script-deadline-ms", "how long one hook.d script may run before its process group is killed"},
        {"allow-boot-vga", "allow moving the host's boot display (single-GPU setups): yes or no", true},
        {"firmware-errors", "what kernel-log firmware/probe errors for a device do at prepare: warn or refuse"},
        {"log-level", "debug, info, warn or error"},
    };
    return keys;
}

Problem apply_setting(Settings& settings, std::string_view key, std::string_view value) {
    if (key == "write-deadline-ms") return parse_milliseconds(value, 10, 600000, settings.write_deadline);
    if (key == "bind-deadline-ms") return parse_milliseconds(value, 10, 600000, settings.bind_deadline);
    if (key == "settle-deadline-ms") return parse_milliseconds(value, 1, 600000, settings.settle_deadline);
    if (key == "lock-deadline-ms") return parse_milliseconds(value, 1, 3600000, settings.lock_deadline);
    if (key == "script-deadline-ms") return parse_milliseconds(value, 10, 3600000, settings.script_deadline);
    if (key == "allow-boot-vga") return parse_bool(value, settings.allow_boot_vga);
    if (key == "firmware-errors") {
        if (value != "warn" && value != "refuse") return std::string("expected warn or refuse");
        settings.refuse_on_firmware_errors = value == "refuse";
        return {};
    }
    if (key == "log-level") {
        if (value != "debug" && value != "info" && value != "warn" && value != "error")
            return std::string("expected debug, info, warn or error");
        settings.log_level = std::string(value);
        return {};
    }
    std::string known;
    for (const auto& entry : config_keys()) known += (known.empty() ? "" : ", ") + std::string(entry.name);
    return "unknown key (known keys: " + known + ")";
}

namespace {

// Errors quote the file; keep them one printable line.
std::string printable(std::string_view text) {
    std::string out(text.substr(0, 80));
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return out;
}

}  // namespace

Expected<Settings> parse_config_file(std::string_view text, const std::string& source, Settings base) {
    int number = 0;
    while (!text.empty()) {
        ++number;
        auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        auto hash = line.find('#');
        if (hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) continue;
        auto where = source + ":" + std::to_string(number) + ": ";
        auto equals = line.find('=');
        if (equals == std::string_view::npos) {
            return Error{where + "expected 'key = value', got '" + printable(line) + "'"};
        }
        std::string_view key = trim(line.substr(0, equals));
        std::string_view value = trim(line.substr(equals + 1));
        if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
            value = value.substr(1, value.size() - 2);
        if (auto problem = apply_setting(base, key, value)) {
            return Error{where + "'" + printable(key) + " = " + printable(value) + "': " + problem.message()};
        }
    }
    return base;
}

}  // namespace vfio_hook
