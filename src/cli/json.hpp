#pragma once
// The few JSON shapes `status --json` and `check --json` print. Writing them by hand keeps the
// binary free of a JSON library for two flat documents; the keys are documented in the man page.

#include <optional>
#include <string>
#include <string_view>

namespace vfio_hook {

// A JSON string literal, quotes included, with control characters escaped and each byte that is
// not UTF-8 as U+FFFD: the document stays valid JSON whatever bytes a name holds.
std::string json_string(std::string_view text);

inline std::string json_bool(bool value) { return value ? "true" : "false"; }
// null, never "", for a value that is not known.
inline std::string json_or_null(const std::optional<std::string>& text) { return text ? json_string(*text) : "null"; }
inline std::string json_or_null(const std::string& text) { return text.empty() ? "null" : json_string(text); }
inline std::string json_or_null(const char* text) { return json_or_null(std::string(text)); }

template <typename Container, typename Render>
std::string json_array(const Container& items, Render render) {
    std::string out = "[";
    for (const auto& item : items) {
        if (out.size() > 1) out += ',';
        out += render(item);
    }
    return out + "]";
}

}  // namespace vfio_hook
