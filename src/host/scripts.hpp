#pragma once
// Runs the user's hook.d scripts for one libvirt event (see core/script_plan.hpp for the layout
// and the rules): each opened, checked once more and run from that open file, in its own process
// group, the domain XML on stdin, the libvirt arguments and VFIO_HOOK_* in its environment, both
// output streams to the log line by line (never to libvirt: for migrate/restore libvirt reads the
// hook's stdout as XML), under a deadline that kills the group.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/pci_address.hpp"
#include "core/problem.hpp"
#include "core/script_plan.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

struct ScriptEvent {
    std::string domain_name;
    std::string domain_uuid;  // "" when unknown
    std::string operation;
    std::string sub_operation;
    std::string extra;
    std::vector<PciAddress> addresses;  // the PCI devices of the event (VFIO_HOOK_PCI_ADDRESSES)
};

// A few stat calls and nothing else: whether any script directory exists for the event. The hook
// calls this for every event of every VM.
// `with_qemu_d_layout`: see script_directories.
bool script_directory_exists(const HostPaths& paths, const std::string& domain_name,
                             const std::string& operation, const std::string& sub_operation,
                             bool with_qemu_d_layout = true);

// Lists the candidate directories (stat of each directory on their path and of each entry).
ScriptPlan find_scripts(const HostPaths& paths, const std::string& domain_name, const std::string& operation,
                        const std::string& sub_operation, bool with_qemu_d_layout = true);

// Tests only: called with each script's name once its file is open and checked, just before it
// is started: where a swap of the file (a `mv` over it) must come too late to be what runs.
extern std::function<void(const std::string& script)> before_script_exec_for_tests;

// Runs them in order. The problem has one line per failed script ("SCRIPT exited 3: <its last
// stderr line>"); with `stop_at_first_failure` the scripts after a failed one do not run.
Problem run_scripts(const std::vector<std::string>& scripts, const ScriptEvent& event, const std::string& domain_xml,
                    std::chrono::milliseconds deadline, bool stop_at_first_failure);

}  // namespace vfio_hook
