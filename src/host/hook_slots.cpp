#include "host/hook_slots.hpp"

#include <sys/stat.h>

#include <filesystem>

namespace vfio_hook {
namespace {

namespace fs = std::filesystem;

constexpr const char* main_hook_path = "etc/libvirt/hooks/qemu";
constexpr const char* drop_in_dir = "etc/libvirt/hooks/qemu.d";

bool in_qemu_d(const fs::path& directory) { return directory.filename() == "qemu.d"; }

// libvirt runs a hook that is a regular file with any execute bit (virFileIsExecutable), links
// followed.
bool executable_file(const struct stat& info) {
    return S_ISREG(info.st_mode) && (info.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH));
}

// The running program's own file: /proc/self/exe is the real one whatever argv[0] says (and
// whatever --root a test gives: the program is not part of the host being looked at).
bool is_this_program(const struct stat& info) {
    struct stat self;
    return ::stat("/proc/self/exe", &self) == 0 && self.st_dev == info.st_dev && self.st_ino == info.st_ino;
}

}  // namespace

HookSlot slot_of(std::string_view argv0) {
    fs::path path(argv0);
    if (path.filename() == "qemu") return HookSlot::main_hook;
    if (in_qemu_d(path.parent_path())) return HookSlot::drop_in;
    std::error_code error;
    // /etc/libvirt/hooks reached through a link, or a copy of the binary in qemu.d run by another name.
    if (path.has_parent_path() && in_qemu_d(fs::canonical(path.parent_path(), error))) return HookSlot::drop_in;
    if (in_qemu_d(fs::read_symlink("/proc/self/exe", error).parent_path())) return HookSlot::drop_in;
    return HookSlot::by_hand;
}

MainHookKind main_hook_kind(const HostPaths& paths) {
    struct stat info;
    if (::stat((paths.root / main_hook_path).c_str(), &info) != 0 || !executable_file(info)) return MainHookKind::absent;
    return is_this_program(info) ? MainHookKind::this_program : MainHookKind::other_program;
}

MainHook read_main_hook(const HostPaths& paths) {
    MainHook hook{main_hook_kind(paths), "/" + std::string(main_hook_path), ""};
    std::error_code error;
    if (hook.kind != MainHookKind::absent) hook.resolved = fs::canonical(paths.root / main_hook_path, error).string();
    return hook;
}

bool runs_qemu_d_layout(const HostPaths& paths, std::string_view argv0) {
    HookSlot slot = slot_of(argv0);
    // As hooks/qemu, what hooks/qemu is needs no look.
    return vfio_hook_runs_qemu_d_layout(slot, slot == HookSlot::main_hook ? MainHookKind::this_program
                                                                           : main_hook_kind(paths));
}

std::string installed_as(const HostPaths& paths) {
    if (main_hook_kind(paths) == MainHookKind::this_program) return "/" + std::string(main_hook_path);
    std::error_code error;
    for (fs::directory_iterator entry(paths.root / drop_in_dir, error), end; !error && entry != end;
         entry.increment(error)) {
        struct stat info;
        if (::stat(entry->path().c_str(), &info) == 0 && executable_file(info) && is_this_program(info))
            return "/" + std::string(drop_in_dir) + "/" + entry->path().filename().string();
    }
    return "";
}

}  // namespace vfio_hook
