#pragma once
// The few JSON shapes `status --json` and `check --json` print. Writing them by hand keeps the
// binary free of a JSON library for two flat documents; the keys are documented in the man page.

#include <string>
#include <string_view>

namespace vfio_hook {

// A JSON string literal, quotes included, with control characters escaped and each byte that is
// not UTF-8 as U+FFFD: the document stays valid JSON whatever bytes a name holds.
std::string json_string(std::string_view text);

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
