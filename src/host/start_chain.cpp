#include "host/start_chain.hpp"

#include <filesystem>
#include <sstream>

#include "host/hook_slots.hpp"

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

// Another copy of vfio-hook (a package's, an older install's) is named vfio-hook where it lives.
bool is_a_vfio_hook(const fs::path& file) {
    std::error_code error;
    return fs::canonical(file, error).filename() == "vfio-hook";
}

std::string on_host(const HostPaths& paths, const fs::path& path) {
    return "/" + path.lexically_relative(paths.root).string();
}

}  // namespace

HookInstalled read_hook_installed(const HostPaths& paths) {
    HookInstalled installed;
    installed.path = installed_as(paths);
    installed.this_binary = !installed.path.empty();
    if (installed.this_binary) return installed;
    fs::path main_hook = paths.root / "etc/libvirt/hooks/qemu";
    std::error_code error;
    if (fs::exists(main_hook, error) && is_a_vfio_hook(main_hook)) {
        installed.path = on_host(paths, main_hook);
        installed.resolved = on_host(paths, fs::canonical(main_hook, error));
        return installed;
    }
    if (MainHook hook = read_main_hook(paths); hook.kind == MainHookKind::other_program)
        installed.other_program = on_host(paths, fs::path(hook.resolved));
    fs::path drop_in = paths.root / "etc/libvirt/hooks/qemu.d/vfio-hook";
    if (fs::exists(drop_in, error) && is_a_vfio_hook(drop_in)) {
        installed.path = on_host(paths, drop_in);
        installed.resolved = on_host(paths, fs::canonical(drop_in, error));
    }
    return installed;
}

LibvirtView read_libvirt(const HostPaths& paths, const Virsh& virsh, const std::string& uri) {
    LibvirtView view;
    std::error_code error;
    // The modular daemons (Debian 13's default) answer qemu:/// on virtqemud-sock; libvirtd, the
    // monolithic one, on libvirt-sock (which virtproxyd also serves beside virtqemud).
    if (fs::exists(paths.root / "run/libvirt/virtqemud-sock", error)) {
        view.daemon = "virtqemud";
    } else if (fs::exists(paths.root / "run/libvirt/libvirt-sock", error)) {
        view.daemon = "libvirtd";
    }
    auto listed = virsh({"-c", uri, "list", "--all", "--uuid"});
    if (!listed) {
        view.unreachable = listed.error();
        return view;
    }
    std::istringstream lines(*listed);
    std::string uuid;
    while (lines >> uuid) {
        auto xml = virsh({"-c", uri, "dumpxml", "--inactive", "--domain", uuid});
        auto domain = xml ? parse_domain_xml(*xml) : Expected<Domain>(Error{xml.error()});
        if (domain) {
            view.domains.push_back(*domain);
        } else {
            view.unreadable.push_back(uuid + ": " + domain.error());
        }
    }
    return view;
}

}  // namespace vfio_hook
