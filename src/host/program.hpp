#pragma once
// Runs another program the admin commands need (virsh, an initramfs tool): argv, never a shell
// string, stdin from /dev/null, in its own process group so that the deadline kills it whole.

#include <chrono>
#include <string>
#include <vector>

#include "core/expected.hpp"

namespace vfio_hook {

// argv[0] is looked up in PATH unless it holds a slash. Its stdout, or one line saying why not
// (cannot run it, killed at the deadline, or its exit status with its last line on stderr).
// `extra_environment` entries ("NAME=value") replace the inherited ones of the same name.
Expected<std::string> run_program(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                                  const std::vector<std::string>& extra_environment = {});

}  // namespace vfio_hook
