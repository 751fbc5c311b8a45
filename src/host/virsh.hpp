#pragma once
// The admin commands' one door to libvirt: virsh, spawned with an argv array (never a shell
// string) under a deadline. The hook never includes this: a hook that calls back into libvirt
// deadlocks it.

#include <chrono>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/expected.hpp"

namespace vfio_hook {

inline constexpr const char* default_libvirt_uri = "qemu:///system";

// Runs `virsh ARGS...`; its stdout, or one line saying why not (not installed, libvirt not
// running, its stderr, or the deadline).
Expected<std::string> run_virsh(const std::vector<std::string>& args, std::chrono::milliseconds deadline);

// What every command says when no libvirt daemon answers on the URI, with one exit status (1)
// wherever it happens: check --domain, assign, unassign, set, get, recover.
inline constexpr std::string_view libvirt_unreachable_hint = "is libvirtd (or virtqemud) running?";
// virsh's failure ("virsh failed: error: Failed to connect socket to …") in one line, with the
// hint when libvirt could not be reached.
std::string explain_virsh_failure(const std::string& why);
bool libvirt_unreachable(const std::string& error);

// How the commands reach virsh: run_virsh in production, a stand-in in tests.
using Virsh = std::function<Expected<std::string>(const std::vector<std::string>& args)>;

// UUIDs of the domains libvirt counts as active on `uri`. libvirt makes a domain active before it
// runs the prepare hook, so a VM between its prepare and its QEMU opening the group is listed.
Expected<std::set<std::string>> active_domain_uuids(const Virsh& virsh, const std::string& uri);

}  // namespace vfio_hook
