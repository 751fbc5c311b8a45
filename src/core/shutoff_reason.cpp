#include "core/shutoff_reason.hpp"

#include <array>
#include <utility>

namespace vfio_hook {

ShutoffReason parse_shutoff_reason(std::string_view argument) {
    static constexpr std::array<std::pair<std::string_view, ShutoffReason>, 9> names{{
        {"unknown", ShutoffReason::unknown},
        {"shutdown", ShutoffReason::shutdown},
        {"destroyed", ShutoffReason::destroyed},
        {"crashed", ShutoffReason::crashed},
        {"migrated", ShutoffReason::migrated},
        {"saved", ShutoffReason::saved},
        {"failed", ShutoffReason::failed},
        {"from snapshot", ShutoffReason::from_snapshot},
        {"daemon", ShutoffReason::daemon},
    }};
    for (const auto& [name, reason] : names) {
        if (argument == name) return reason;
    }
    return ShutoffReason::not_given;
}

}  // namespace vfio_hook
