#include "core/refusal.hpp"

namespace vfio_hook {

std::string Refusal::line() const {
    std::string text = address ? address->str() + ": " + reason : reason;
    if (!fix.empty()) text += "; " + fix;
    return text;
}

std::string render_lines(const std::vector<Refusal>& refusals) {
    std::string text;
    for (const auto& refusal : refusals) text += refusal.line() + "\n";
    return text;
}

}  // namespace vfio_hook
