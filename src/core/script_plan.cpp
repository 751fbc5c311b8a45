#include "core/script_plan.hpp"
#include "core/problem.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace vfio_hook {
namespace {

bool one_component(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
}

bool trusted(unsigned uid, unsigned trusted_uid) { return uid == 0 || uid == trusted_uid; }

// A sticky directory: others may add names to it, but only an entry's owner, the directory's
// owner or root may remove or rename one (fs/namei.c may_delete() -> check_sticky()). So the
// entries the lookup passed through, all trusted, stay what they are.
bool sticky_over_trusted(const EntryInfo& entry, unsigned trusted_uid) {
    if (!S_ISDIR(entry.mode) || !(entry.mode & S_ISVTX) || entry.looked_up_owners.empty()) return false;
    return std::all_of(entry.looked_up_owners.begin(), entry.looked_up_owners.end(),
                       [&](unsigned uid) { return trusted(uid, trusted_uid); });
}

// A script runs as root: whoever may change it, or a directory above it, may run anything as
// root. So: owned by root (or by us), and writable by nobody else.
Problem unsafe(const EntryInfo& entry, unsigned trusted_uid) {
    // A link's own owner and mode say nothing about where it points (a directory anyone may
    // write, say), and nothing on the way there is checked: a real directory is asked for.
    if (S_ISLNK(entry.mode)) return entry.path + " is a symbolic link: make it a real directory";
    if (entry.uid != 0 && entry.uid != trusted_uid)
        return entry.path + " is owned by uid " + std::to_string(entry.uid) + ", not root";
    if ((entry.mode & (S_IWGRP | S_IWOTH)) && !sticky_over_trusted(entry, trusted_uid))
        return entry.path + " is writable by group or others";
    return {};
}

std::string name_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A script reached through links: its own rule, then every directory on the way to it.
std::vector<std::string> problems_of(const EntryInfo& script, unsigned trusted_uid) {
    std::vector<std::string> problems;
    for (const auto& directory : script.way) {
        if (auto problem = unsafe(directory, trusted_uid))
            problems.push_back(problem.message() + " (" + script.path + " leads through it)");
    }
    if (auto problem = unsafe(script, trusted_uid)) problems.push_back(problem.message());
    return problems;
}

}  // namespace

Problem opened_script_problem(const EntryInfo& opened, unsigned trusted_uid) {
    if (!S_ISREG(opened.mode)) return opened.path + " is no longer a regular file";
    if (!(opened.mode & S_IXUSR)) return opened.path + " is no longer executable";
    return unsafe(opened, trusted_uid);
}

std::vector<std::string> script_directories(const std::string& domain_name, const std::string& operation,
                                            const std::string& sub_operation, bool with_qemu_d_layout) {
    if (!one_component(domain_name) || !one_component(operation) || !one_component(sub_operation)) return {};
    std::string event = operation + "/" + sub_operation;
    std::vector<std::string> directories = {"etc/vfio-hook/hook.d/all/" + event,
                                            "etc/vfio-hook/hook.d/vm/" + domain_name + "/" + event};
    if (with_qemu_d_layout) directories.push_back("etc/libvirt/hooks/qemu.d/" + domain_name + "/" + event);
    return directories;
}

ScriptPlan plan_scripts(const std::vector<ScriptDirectory>& directories, unsigned trusted_uid) {
    ScriptPlan plan;
    for (const auto& directory : directories) {
        // Dotfiles, READMEs, *.disabled examples, subdirectories: not scripts, never run.
        std::vector<EntryInfo> candidates;
        for (const auto& entry : directory.entries) {
            if (!name_of(entry.path).starts_with(".") && S_ISREG(entry.mode) && (entry.mode & S_IXUSR))
                candidates.push_back(entry);
        }
        if (candidates.empty()) continue;
        std::size_t refused = plan.refusals.size();
        for (const auto& ancestor : directory.ancestors) {
            if (auto problem = unsafe(ancestor, trusted_uid)) plan.refusals.push_back(problem.message());
        }
        for (const auto& candidate : candidates) {
            for (auto& problem : problems_of(candidate, trusted_uid)) plan.refusals.push_back(std::move(problem));
        }
        if (plan.refusals.size() != refused) continue;  // nothing of an unsafe directory runs
        std::sort(candidates.begin(), candidates.end(),
                  [](const EntryInfo& a, const EntryInfo& b) { return name_of(a.path) < name_of(b.path); });
        for (const auto& script : candidates) plan.scripts.push_back(script.path);
    }
    return plan;
}

}  // namespace vfio_hook
