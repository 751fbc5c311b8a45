#pragma once
// What the fuzz harnesses share: an invariant check that explains itself and then abort()s, so
// libFuzzer saves the input as a crash.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace vfio_hook::fuzz {

// The text with every byte outside printable ASCII as \xNN, for messages about fuzzed input.
inline std::string printable(std::string_view text, std::size_t limit = 2000) {
    std::string out;
    for (unsigned char c : text.substr(0, limit)) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (text.size() > limit) out += "...";
    return out;
}

[[noreturn]] inline void violated(const char* target, const std::string& what) {
    std::fprintf(stderr, "\n%s: INVARIANT VIOLATED: %s\n", target, what.c_str());
    std::fflush(stderr);
    std::abort();
}

}  // namespace vfio_hook::fuzz

// FUZZ_CHECK(condition, message-expression): the message is only built when the check fails.
#define FUZZ_CHECK(condition, message)                                                  \
    do {                                                                                \
        if (!(condition)) ::vfio_hook::fuzz::violated(fuzz_target_name,                \
                                                      std::string(#condition) + ": " + \
                                                          std::string(message));       \
    } while (0)
