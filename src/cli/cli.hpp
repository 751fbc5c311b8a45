#pragma once
// The command line of vfio-hook: the libvirt hook call and the admin commands, over a kernel
// interface that main() makes real and tests make fake.

#include <functional>
#include <iosfwd>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "core/settings.hpp"
#include "host/sysfs.hpp"
#include "host/virsh.hpp"

namespace vfio_hook {

struct CliEnvironment {
    std::function<std::unique_ptr<KernelInterface>(const Settings&)> make_kernel;
    std::function<Expected<std::string>()> read_stdin;
    // The admin commands' door to libvirt (never the hook's): run_virsh in production.
    Virsh virsh;
    std::ostream& out;
    std::ostream& err;
};

// Every command, in the order `vfio-hook help` lists them: the one list the parser's "unknown
// command", `help COMMAND` and the tests go by.
const std::vector<std::string>& command_names();

// libvirt runs the hook as …/hooks/qemu or …/hooks/qemu.d/NAME.
bool invoked_as_libvirt_hook(std::string_view argv0);
// The only libvirt operations the hook acts on; every other one is answered 0 at once.
bool hook_acts_on(std::string_view operation, std::string_view sub_operation);

// args[0] is the program name. Returns the process exit code.
int run_cli(const std::vector<std::string>& args, CliEnvironment& environment);

Expected<std::string> read_all_stdin();

}  // namespace vfio_hook
