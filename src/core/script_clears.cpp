#include "core/script_clears.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

namespace vfio_hook {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// The script's text without its shell comments: a `#` that starts a word comments out the rest of
// its line. A script that only speaks of the display manager ("# keeps running") stops nothing.
std::string without_comments(std::string_view text) {
    std::string out;
    bool in_comment = false;
    for (std::size_t at = 0; at < text.size(); ++at) {
        char c = text[at];
        if (c == '\n') in_comment = false;
        else if (c == '#' && (at == 0 || std::isspace(static_cast<unsigned char>(text[at - 1])) || text[at - 1] == ';'))
            in_comment = true;
        if (!in_comment) out += c;
    }
    return out;
}

bool mentions(std::string_view file_name, std::string_view text, std::initializer_list<std::string_view> words) {
    std::string name = lower(file_name), body = lower(without_comments(text));
    return std::any_of(words.begin(), words.end(), [&](std::string_view word) {
        return name.find(word) != std::string::npos || body.find(word) != std::string::npos;
    });
}

// The units display-manager.service is an alias of (each display manager installs its own).
bool is_display_manager(std::string_view unit) {
    constexpr std::array<std::string_view, 13> units{
        "display-manager.service", "gdm.service",  "gdm3.service",  "sddm.service", "lightdm.service",
        "lxdm.service",            "xdm.service",  "slim.service",  "greetd.service", "ly.service",
        "cosmic-greeter.service",  "entrance.service", "nodm.service"};
    return std::find(units.begin(), units.end(), unit) != units.end();
}

}  // namespace

std::vector<ScriptClears> what_script_clears(std::string_view file_name, std::string_view text) {
    std::vector<ScriptClears> found;
    // display-manager.service is the alias every display manager's unit installs (gdm, sddm,
    // lightdm): what hook.d/stop-display-manager stops.
    if (mentions(file_name, text, {"display-manager", "display manager", "display_manager"}))
        found.push_back(ScriptClears::display_manager);
    if (mentions(file_name, text, {"nvidia-persistenced"})) found.push_back(ScriptClears::nvidia_persistenced);
    return found;
}

bool clears(ScriptClears what, const Holder& holder) {
    switch (what) {
        case ScriptClears::display_manager:
            // Its stop ends its own service and the sessions it started; another system
            // service (ollama, a render daemon) keeps the node, and the start is refused.
            if (holder.unit.kind == SystemdUnit::Kind::system_service && !is_display_manager(holder.unit.name))
                return false;
            return holder.node.starts_with("/dev/dri/") || holder.node.starts_with("/dev/fb");
        case ScriptClears::nvidia_persistenced:
            // /proc/PID/comm keeps 15 characters: "nvidia-persiste".
            return holder.command.starts_with("nvidia-persiste");
    }
    return false;
}

}  // namespace vfio_hook
