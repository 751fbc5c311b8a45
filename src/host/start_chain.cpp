#include "host/start_chain.hpp"

#include <cctype>
#include <filesystem>
#include <set>
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

std::string lowercase(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

// qemu:///system keeps each persistent definition as /etc/libvirt/qemu/NAME.xml, the very
// document `dumpxml --inactive` prints. Reading them spares one virsh per VM (tens of ms each on
// hardware, a second under an emulated CPU). Only the domains libvirt listed count; the rest
// (transient ones, files we may not read) are asked of virsh. Takes the found ones out of `uuids`.
void read_definition_files(const HostPaths& paths, std::set<std::string>& uuids, LibvirtView& view) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths.libvirt_domain_xml_dir(), error)) {
        if (entry.path().extension() != ".xml") continue;
        auto domain = parse_domain_xml(read_text_file(entry.path(), 16 << 20));
        if (!domain || !uuids.count(domain->uuid.str())) continue;
        uuids.erase(domain->uuid.str());
        view.domains.push_back(*domain);
    }
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
    std::set<std::string> uuids;
    std::istringstream lines(*listed);
    for (std::string uuid; lines >> uuid;) uuids.insert(lowercase(uuid));
    if (uri == default_libvirt_uri) read_definition_files(paths, uuids, view);
    for (const auto& uuid : uuids) {
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
