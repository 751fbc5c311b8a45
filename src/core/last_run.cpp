#include "core/last_run.hpp"

#include <charconv>
#include <map>
#include <sstream>

namespace vfio_hook {
namespace {

std::optional<std::int64_t> number(const std::string& text) {
    std::int64_t value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::string serialize_last_run(const LastRun& run) {
    return "uuid=" + run.uuid + "\nname=" + run.name + "\noperation=" + run.operation + "\nresult=" + run.result +
           "\nduration_ms=" + std::to_string(run.duration_ms) + "\nfinished=" + std::to_string(run.finished) + "\n";
}

std::optional<LastRun> parse_last_run(std::string_view text) {
    std::map<std::string, std::string> fields;
    std::istringstream lines{std::string(text)};
    std::string line;
    while (std::getline(lines, line)) {
        auto equals = line.find('=');
        if (equals != std::string::npos) fields[line.substr(0, equals)] = line.substr(equals + 1);
    }
    for (const char* key : {"uuid", "name", "operation", "result", "duration_ms", "finished"}) {
        if (!fields.count(key)) return std::nullopt;
    }
    auto duration = number(fields["duration_ms"]), finished = number(fields["finished"]);
    if (!duration || !finished) return std::nullopt;
    return LastRun{fields["uuid"], fields["name"], fields["operation"], fields["result"], *duration, *finished};
}

}  // namespace vfio_hook
