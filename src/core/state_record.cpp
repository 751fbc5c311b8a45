#include "core/state_record.hpp"

#include <charconv>
#include <sstream>

#include "core/domain_uuid.hpp"
#include "core/problem.hpp"

namespace vfio_hook {
namespace {

constexpr std::string_view header = "vfio-hook-record 1";

// Domain names may hold spaces and newlines; the record is line-based, so escape them.
std::string escape(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (c <= ' ' || c == '%' || c >= 0x7f) {
            char hex[4];
            std::snprintf(hex, sizeof hex, "%%%02X", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

std::string unescape(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        unsigned value = 0;
        if (text[i] == '%' && i + 2 < text.size() + 0 &&
            std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16).ec == std::errc{}) {
            out += static_cast<char>(value);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// "bar0=8": BAR 0 was 2^8 MB (256 MB) before the VM (issue 26).
std::optional<BarSize> parse_bar_size(std::string_view field) {
    auto equals = field.find('=');
    if (!field.starts_with("bar") || equals == std::string_view::npos) return std::nullopt;
    unsigned bar = 0, bit = 0;
    auto [bar_end, bar_ec] = std::from_chars(field.data() + 3, field.data() + equals, bar);
    auto [bit_end, bit_ec] = std::from_chars(field.data() + equals + 1, field.data() + field.size(), bit);
    if (bar_ec != std::errc{} || bar_end != field.data() + equals || bar > 5) return std::nullopt;
    if (bit_ec != std::errc{} || bit_end != field.data() + field.size() || bit > 63) return std::nullopt;
    return BarSize{bar, bit};
}

// "device ADDRESS DRIVER|- GROUP|- [override=NAME] [power=on|auto] [d3cold=0|1] [vfio=NAME]
// [barN=BIT]...", after the key. Issue 26's fields: a record without them (an older version's)
// restores nothing and gives back from vfio-pci.
Problem parse_device_field(RecordedDevice& device, const std::string& field) {
    if (field == "power=on" || field == "power=auto") {
        device.power_control = field.substr(6);
        return {};
    }
    if (field == "d3cold=0" || field == "d3cold=1") {
        device.d3cold_allowed = field.substr(7);
        return {};
    }
    if (field.starts_with("vfio=")) {
        if (!is_kernel_driver_name(field.substr(5))) return "invalid driver name '" + field.substr(5) + "'";
        device.vfio_driver = field.substr(5);
        return {};
    }
    if (auto size = parse_bar_size(field)) {
        device.bar_sizes.push_back(*size);
        return {};
    }
    if (!field.starts_with("override=")) return "unknown device field '" + field + "'";
    std::string name = field.substr(9);
    if (!is_kernel_driver_name(name)) return "invalid driver name '" + name + "'";
    device.original_override = name;
    return {};
}

Expected<RecordedDevice> parse_device_line(std::istringstream& words) {
    std::string address_text, driver, group_text;
    words >> address_text >> driver >> group_text;
    auto address = PciAddress::parse(address_text);
    if (!address) return Error{"invalid PCI address '" + address_text + "'"};
    if (driver.empty()) return Error{"device line without a driver field"};
    RecordedDevice device{*address, std::nullopt, std::nullopt};
    if (driver != "-") {
        if (!is_kernel_driver_name(driver)) return Error{"invalid driver name '" + driver + "'"};
        device.original_driver = driver;
    }
    unsigned group = 0;
    auto [end, ec] = std::from_chars(group_text.data(), group_text.data() + group_text.size(), group);
    if (ec == std::errc{} && end == group_text.data() + group_text.size()) {
        device.group = group;
    } else if (group_text != "-") {
        return Error{"invalid IOMMU group '" + group_text + "'"};
    }
    std::string field;
    while (words >> field) {
        if (auto problem = parse_device_field(device, field)) return Error{problem.message()};
    }
    return device;
}

// "console GPU vtcon vtconN" or "console GPU framebuffer NAME DRIVER", after the key.
Expected<ConsoleStep> parse_console_line(std::istringstream& words) {
    std::string address_text, kind, name, driver;
    words >> address_text >> kind >> name >> driver;
    auto gpu = PciAddress::parse(address_text);
    if (!gpu) return Error{"invalid PCI address '" + address_text + "'"};
    // Names become sysfs path components, like driver names: the same rule.
    if (!is_kernel_driver_name(name)) return Error{"invalid console name '" + name + "'"};
    if (kind == "vtcon" && name.starts_with("vtcon")) return ConsoleStep{*gpu, ConsoleStep::Kind::vtconsole, name, ""};
    if (kind == "framebuffer" && is_kernel_driver_name(driver))
        return ConsoleStep{*gpu, ConsoleStep::Kind::firmware_framebuffer, name, driver};
    return Error{"invalid console step '" + kind + " " + name + " " + driver + "'"};
}

}  // namespace

bool is_valid_owner(std::string_view owner) {
    if (owner == manual_owner) return true;
    auto uuid = DomainUuid::parse(owner);
    return uuid && uuid->str() == owner;
}

const RecordedDevice* StateRecord::find(const PciAddress& address) const {
    for (const auto& device : devices) {
        if (device.address == address) return &device;
    }
    return nullptr;
}

std::string StateRecord::owner_label() const {
    if (owner == manual_owner) return "a manual `vfio-hook bind`";
    return "domain '" + domain_name + "' (uuid " + owner + ")";
}

std::string ConsoleStep::describe() const {
    return kind == Kind::vtconsole ? "fbcon on " + name : name + " (" + driver + ")";
}

std::string serialize_record(const StateRecord& record) {
    std::string text(header);
    text += "\nowner " + record.owner + "\ndomain " + escape(record.domain_name) + "\n";
    for (const auto& device : record.devices) {
        text += "device " + device.address.str() + " " + device.original_driver.value_or("-") + " " +
                (device.group ? std::to_string(*device.group) : std::string("-")) +
                (device.original_override ? " override=" + *device.original_override : std::string()) +
                (device.power_control ? " power=" + *device.power_control : std::string()) +
                (device.d3cold_allowed ? " d3cold=" + *device.d3cold_allowed : std::string()) +
                (device.vfio_driver ? " vfio=" + *device.vfio_driver : std::string());
        for (const auto& size : device.bar_sizes)
            text += " bar" + std::to_string(size.bar) + "=" + std::to_string(size.bit);
        text += "\n";
    }
    if (record.kernel_log_mark) text += "kernel-log-mark " + std::to_string(record.kernel_log_mark) + "\n";
    for (const auto& step : record.console) {
        text += "console " + step.gpu.str() + " " +
                (step.kind == ConsoleStep::Kind::vtconsole ? "vtcon " + step.name
                                                           : "framebuffer " + step.name + " " + step.driver) +
                "\n";
    }
    return text;
}

Expected<StateRecord> parse_record(std::string_view text, const std::string& source) {
    std::istringstream lines{std::string(text)};
    std::string line;
    int number = 0;
    auto fail = [&](const std::string& what) {
        return Error{source + ":" + std::to_string(number) + ": " + what};
    };
    StateRecord record;
    while (std::getline(lines, line)) {
        ++number;
        if (number == 1) {
            if (line != header) return fail("not a vfio-hook record (expected '" + std::string(header) + "')");
            continue;
        }
        std::istringstream words(line);
        std::string key;
        words >> key;
        if (key == "owner") {
            words >> record.owner;
            if (!is_valid_owner(record.owner)) return fail("invalid owner '" + record.owner + "'");
        } else if (key == "domain") {
            std::string name;
            words >> name;
            record.domain_name = unescape(name);
        } else if (key == "device") {
            auto device = parse_device_line(words);
            if (!device) return fail(device.error());
            record.devices.push_back(*device);
        } else if (key == "console") {
            auto step = parse_console_line(words);
            if (!step) return fail(step.error());
            record.console.push_back(*step);
        } else if (key == "kernel-log-mark") {
            std::string number;
            words >> number;
            auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), record.kernel_log_mark);
            if (ec != std::errc{} || end != number.data() + number.size()) return fail("invalid kernel-log-mark '" + number + "'");
        } else if (!key.empty()) {
            return fail("unknown field '" + key + "'");
        }
    }
    if (number == 0) return Error{source + ": empty record"};
    if (record.owner.empty()) return Error{source + ": record has no owner"};
    return record;
}

}  // namespace vfio_hook
