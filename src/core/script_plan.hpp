#pragma once
// Which of the user's hook.d scripts run for one libvirt event, in what order, and which are
// refused, decided from a listing of the candidate directories (names, owners, modes) that the
// boundary read. Pure: no file is opened here.
//
// Layout (no legal domain name can collide with it: names are one component under vm/):
//   /etc/vfio-hook/hook.d/all/OPERATION/SUB-OP/*       every VM
//   /etc/vfio-hook/hook.d/vm/NAME/OPERATION/SUB-OP/*   one VM, by its libvirt name
//   /etc/libvirt/hooks/qemu.d/NAME/OPERATION/SUB-OP/*  VFIO-Tools' layout, where it exists and
//                                                      no other program runs it (hook_placement)

#include <optional>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace vfio_hook {

// One file system entry as stat() saw it.
struct EntryInfo {
    std::string path;
    unsigned uid = 0;
    unsigned mode = 0;  // st_mode: type and permission bits
    // For an entry that is a symbolic link: every directory a lookup of it reads on the way to its
    // target, links followed (each a real directory, as lstat() saw it). Whoever may write one of
    // them may make the link lead to another file.
    std::vector<EntryInfo> way = {};
    // For a directory on a link's way: the owners of the entries looked up in it. A directory
    // others may write is still safe with the sticky bit when it and all of these are trusted
    // (NixOS's /nix/store, root:nixbld 1775): only they may remove or rename those entries.
    std::vector<unsigned> looked_up_owners = {};
};

// A candidate directory: the directories from the tree's root down to it (each must be safe),
// then what it holds.
struct ScriptDirectory {
    std::vector<EntryInfo> ancestors;  // root of the tree first, the directory itself last
    std::vector<EntryInfo> entries;
};

struct [[nodiscard]] ScriptPlan {
    std::vector<std::string> scripts;  // in the order they run
    std::vector<std::string> refusals;  // one line each: "FILE is writable by group or others"
};

// `trusted_uid`: who may own scripts besides root (the uid vfio-hook runs as; root in production).
ScriptPlan plan_scripts(const std::vector<ScriptDirectory>& directories, unsigned trusted_uid);

// Whether the file opened to be run may run (fstat() of the open file, `path` its name in hook.d):
// the rule of plan_scripts (owner, not writable by others), and a regular, executable file.
Problem opened_script_problem(const EntryInfo& opened, unsigned trusted_uid);

// The candidate directories for an event, relative to the root, in the order they run.
// Empty when the domain name could not be one directory name ("", ".", "..", or with a '/').
// Without `with_qemu_d_layout`, the qemu.d layout is left out (the program in hooks/qemu runs it).
std::vector<std::string> script_directories(const std::string& domain_name, const std::string& operation,
                                            const std::string& sub_operation, bool with_qemu_d_layout = true);

}  // namespace vfio_hook
