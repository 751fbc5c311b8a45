#include "core/mount_table.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <set>
#include <sstream>

namespace vfio_hook {
namespace {

// File systems whose revalidation may wait on something outside this host (a server, a FUSE
// daemon): never touched by the scan that runs with the hook's lock held.
bool is_remote_or_fuse(std::string_view type) {
    constexpr std::array<std::string_view, 15> remote = {"nfs",    "nfs4",     "cifs",  "smb3",  "smbfs",
                                                         "ceph",   "afs",      "9p",    "gfs2",  "ocfs2",
                                                         "lustre", "glusterfs", "fuse", "fuseblk", "virtiofs"};
    if (type.starts_with("fuse.")) return true;
    return std::find(remote.begin(), remote.end(), type) != remote.end();
}

// mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c, show_mountinfo
// -> seq_path_root(..., " \t\n\\")).
std::string unescape(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && text.size() - i >= 4) {
            auto digit = [](char c) { return c >= '0' && c <= '7'; };
            if (digit(text[i + 1]) && digit(text[i + 2]) && digit(text[i + 3])) {
                out += static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0'));
                i += 3;
                continue;
            }
        }
        out += text[i];
    }
    return out;
}

bool has_option(std::string_view options, std::string_view wanted) {
    std::size_t start = 0;
    while (start <= options.size()) {
        std::size_t comma = options.find(',', start);
        if (comma == std::string_view::npos) comma = options.size();
        if (options.substr(start, comma - start) == wanted) return true;
        start = comma + 1;
    }
    return false;
}

}  // namespace

MountTable MountTable::parse(std::string_view mountinfo) {
    MountTable table;
    std::istringstream lines{std::string(mountinfo)};
    std::string line;
    while (std::getline(lines, line)) {
        // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER-OPTIONS
        std::istringstream words(line);
        std::string id, parent, numbers, root, point, options, word;
        if (!(words >> id >> parent >> numbers >> root >> point >> options)) continue;
        while (words >> word && word != "-") {
        }
        std::string type;
        if (word != "-" || !(words >> type)) continue;
        bool safe = !has_option(options, "nodev") && !is_remote_or_fuse(type);
        table.mounts_.push_back({unescape(point), safe});
    }
    // Longest first; among equal points the later line is the mount on top (mounted last).
    std::stable_sort(table.mounts_.begin(), table.mounts_.end(),
                     [](const Mount& a, const Mount& b) { return a.point.size() > b.point.size(); });
    std::vector<Mount> top;
    std::set<std::string> seen;
    for (auto it = table.mounts_.rbegin(); it != table.mounts_.rend(); ++it) {
        if (seen.insert(it->point).second) top.push_back(*it);
    }
    std::reverse(top.begin(), top.end());  // back to longest first
    table.mounts_ = std::move(top);
    return table;
}

bool MountTable::may_stat(std::string_view path) const {
    for (const auto& mount : mounts_) {
        const std::string& point = mount.point;
        bool under = point == "/" ? path.starts_with("/")
                                  : path.starts_with(point) && (path.size() == point.size() || path[point.size()] == '/');
        if (under) return mount.safe_to_stat;
    }
    return true;
}

std::optional<HiddenPids> proc_hides_pids(std::string_view mountinfo, std::string_view point) {
    std::optional<HiddenPids> hidden;
    std::istringstream lines{std::string(mountinfo)};
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string id, parent, numbers, root, mount_point, options, word;
        if (!(words >> id >> parent >> numbers >> root >> mount_point >> options)) continue;
        while (words >> word && word != "-") {
        }
        std::string type, source, super_options;
        if (word != "-" || !(words >> type >> source >> super_options)) continue;
        if (type != "proc" || unescape(mount_point) != point) continue;
        hidden.reset();  // the later line is the mount on top
        HiddenPids found;
        std::istringstream fields(super_options);
        std::string option;
        while (std::getline(fields, option, ',')) {
            if (option.starts_with("hidepid=")) found.hidepid = option.substr(8);
            unsigned gid = 0;
            if (option.starts_with("gid=") &&
                std::from_chars(option.data() + 4, option.data() + option.size(), gid).ec == std::errc{})
                found.gid = gid;
        }
        const auto& value = found.hidepid;
        if (value == "2" || value == "invisible" || value == "4" || value == "ptraceable") hidden = found;
    }
    return hidden;
}

}  // namespace vfio_hook
