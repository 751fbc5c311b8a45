#include "core/systemd_unit.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <vector>

namespace vfio_hook {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    while (true) {
        auto end = text.find(separator);
        parts.push_back(text.substr(0, end));
        if (end == std::string_view::npos) return parts;
        text.remove_prefix(end + 1);
    }
}

std::optional<unsigned> number_between(std::string_view text, std::string_view prefix, std::string_view suffix) {
    if (!text.starts_with(prefix) || !text.ends_with(suffix) || text.size() <= prefix.size() + suffix.size())
        return std::nullopt;
    text = text.substr(prefix.size(), text.size() - prefix.size() - suffix.size());
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// systemd's cgroup path of the process: v1's name=systemd hierarchy wins (on a hybrid host
// both name the same unit), else the unified `0::` line.
std::string_view systemd_path(std::string_view proc_cgroup) {
    std::string_view unified;
    for (auto line : split(proc_cgroup, '\n')) {
        auto fields = split(line, ':');
        if (fields.size() < 3) continue;
        std::string_view path = line.substr(fields[0].size() + fields[1].size() + 2);
        if (fields[1] == "name=systemd") return path;
        if (fields[0] == "0" && fields[1].empty()) unified = path;
    }
    return unified;
}

}  // namespace

SystemdUnit systemd_unit_of(std::string_view proc_cgroup) {
    SystemdUnit unit;
    bool in_user_manager = false;
    for (auto part : split(systemd_path(proc_cgroup), '/')) {
        if (part.empty()) continue;
        if (auto uid = number_between(part, "user-", ".slice")) unit.uid = *uid;
        if (part.ends_with(".slice")) continue;
        if (!in_user_manager) {
            if (auto uid = number_between(part, "user@", ".service")) {
                unit.uid = *uid;
                in_user_manager = true;
                continue;
            }
        }
        // systemd names units with these only (unit_name_is_valid()); a user may make a cgroup of
        // another name in its delegated subtree, and that is no unit to name.
        bool unit_like = std::all_of(part.begin(), part.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '_' || c == '.' || c == '\\' ||
                   c == '-' || c == '@';
        });
        if (!unit_like) return unit;
        if (part.ends_with(".service")) {
            unit.kind = in_user_manager ? SystemdUnit::Kind::user_service : SystemdUnit::Kind::system_service;
            unit.name = std::string(part);
        } else if (!in_user_manager && part.starts_with("session-") && part.ends_with(".scope")) {
            unit.kind = SystemdUnit::Kind::session;  // logind's ids: "3", or "c1" for a greeter
            unit.name = std::string(part.substr(8, part.size() - 8 - 6));
        }
        return unit;  // a scope, init.scope, a container's payload: no unit to name
    }
    return unit;
}

std::string user_name_of(std::string_view passwd, unsigned uid) {
    for (auto line : split(passwd, '\n')) {
        auto fields = split(line, ':');
        if (fields.size() >= 3 && number_between(fields[2], "", "") == uid) return std::string(fields[0]);
    }
    return "";
}

}  // namespace vfio_hook
