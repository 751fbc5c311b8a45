#include "host/last_runs.hpp"

#include <cstdio>
#include <filesystem>

#include "core/domain_uuid.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;

void save_last_run(const HostPaths& paths, const LastRun& run) {
    // The UUID names the file: it must be one, never a path.
    auto uuid = DomainUuid::parse(run.uuid);
    if (!uuid || (run.operation != "prepare" && run.operation != "release")) return;
    fs::path dir = paths.state_dir() / "last";
    std::error_code error;
    fs::create_directories(dir, error);
    fs::path file = dir / (uuid->str() + "." + run.operation);
    fs::path temporary = file;
    temporary += ".tmp";
    if (!write_private_file(temporary, serialize_last_run(run), false) ||
        std::rename(temporary.c_str(), file.c_str()) != 0)
        fs::remove(temporary, error);
}

std::vector<LastRun> load_last_runs(const HostPaths& paths) {
    std::vector<LastRun> runs;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths.state_dir() / "last", error)) {
        if (entry.path().extension() == ".tmp") continue;
        if (auto run = parse_last_run(read_text_file(entry.path(), 4096))) runs.push_back(*run);
    }
    return runs;
}

}  // namespace vfio_hook
