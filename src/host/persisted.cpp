#include "host/persisted.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace vfio_hook {

const PersistManifest* PersistedDevices::find(const PciAddress& address) const {
    auto found = std::find_if(manifests.begin(), manifests.end(),
                              [&](const PersistManifest& manifest) { return manifest.address == address; });
    return found == manifests.end() ? nullptr : &*found;
}

PersistedDevices load_persisted(const HostPaths& paths) {
    PersistedDevices persisted;
    std::error_code error;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(paths.root / persist_manifest_dir, error)) {
        if (entry.path().filename().string().find(".tmp") == std::string::npos) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        auto manifest = PersistManifest::parse(read_text_file(file, 64 << 10));
        if (manifest && manifest->address.str() == file.filename().string()) {
            persisted.manifests.push_back(*manifest);
        } else {
            persisted.unreadable.push_back(file.string() + ": " +
                                           (manifest ? "its address is not its file name" : manifest.error()));
        }
    }
    return persisted;
}

InitramfsTool detect_initramfs_tool(const HostPaths& paths) {
    auto has = [&](const char* program) { return ::access((paths.root / program).c_str(), X_OK) == 0; };
    if (has("usr/sbin/update-initramfs")) return InitramfsTool::initramfs_tools;
    if (has("usr/bin/dracut") || has("usr/sbin/dracut")) return InitramfsTool::dracut;
    if (has("usr/bin/mkinitcpio")) return InitramfsTool::mkinitcpio;
    return InitramfsTool::none;
}

Expected<bool> write_config_file(const HostPaths& paths, const std::filesystem::path& relative,
                                 const std::string& text, unsigned mode) {
    auto file = paths.root / relative;
    std::error_code error;
    std::filesystem::create_directories(file.parent_path(), error);
    if (error) return Error{"cannot create " + file.parent_path().string() + ": " + error.message()};
    auto temporary = file;
    temporary += ".tmp";
    if (!write_private_file(temporary, text, false) || ::chmod(temporary.c_str(), mode) != 0 ||
        ::rename(temporary.c_str(), file.c_str()) != 0) {
        std::string why = std::strerror(errno);
        ::unlink(temporary.c_str());
        return Error{"cannot write " + file.string() + ": " + why};
    }
    return true;
}

Expected<bool> remove_config_file(const HostPaths& paths, const std::filesystem::path& relative) {
    auto file = paths.root / relative;
    if (::unlink(file.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
        return Error{"cannot remove " + file.string() + ": " + std::strerror(errno)};
    }
    return true;
}

Expected<std::vector<std::string>> write_shared_boot_files(const HostPaths& paths, InitramfsTool tool,
                                                           const std::vector<PciAddress>& persisted) {
    std::vector<std::string> done;
    auto apply = [&](const std::filesystem::path& relative, const std::string& text, unsigned mode) -> Expected<bool> {
        auto result = text.empty() ? remove_config_file(paths, relative) : write_config_file(paths, relative, text, mode);
        if (result) done.push_back((text.empty() ? "removed " : "wrote ") + on_host(relative));
        return result;
    };
    auto modules = apply(persist_modules_load_path, persisted.empty() ? "" : persist_modules_load(), 0644);
    if (!modules) return Error{modules.error()};
    if (auto config = initramfs_config_path(tool)) {
        auto written = apply(*config, initramfs_config(tool, persisted),
                             tool == InitramfsTool::initramfs_tools ? 0755 : 0644);
        if (!written) return Error{written.error()};
    }
    return done;
}

}  // namespace vfio_hook
