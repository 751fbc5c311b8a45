#pragma once
// How a VM's last prepare or release went, as the hook leaves it for `status`: the records under
// /run/vfio-hook/records exist only while devices are given, so after a release nothing else
// says whether it worked. One small file per domain UUID and operation, "key=value" lines.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vfio_hook {

struct LastRun {
    std::string uuid;
    std::string name;       // the domain's name at the time (for messages only)
    std::string operation;  // "prepare" or "release"
    std::string result;     // "done", "failed" or "refused"
    std::int64_t duration_ms = 0;
    std::int64_t finished = 0;  // seconds since the epoch
};

std::string serialize_last_run(const LastRun& run);
// nullopt when the text is not a whole last-run file (a torn or foreign file is ignored).
std::optional<LastRun> parse_last_run(std::string_view text);

}  // namespace vfio_hook
