// vfio-hook's entry point: answers libvirt's hook calls it has nothing to do for before touching
// anything else (it runs for every lifecycle event of every VM), and wires the real host for the
// rest.

#include <csignal>
#include <cstring>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/commands.hpp"
#include "host/virsh.hpp"

int main(int argc, char** argv) {
    if (argc >= 4 && vfio_hook::invoked_as_libvirt_hook(argv[0]) &&
        !vfio_hook::hook_has_work(vfio_hook::HostPaths{}, {argv[1], argv[2], argv[3], ""}))
        return 0;
    // libvirtd restarting mid-start, or an OpenRC/runit host with no reader on our stderr: a
    // write to a dead pipe must cost a log line (EPIPE), never kill us between two moves.
    std::signal(SIGPIPE, SIG_IGN);
    vfio_hook::CliEnvironment environment{
        [](const vfio_hook::Settings& settings) {
            return std::make_unique<vfio_hook::RealKernel>(settings.write_deadline);
        },
        vfio_hook::read_all_stdin,
        [](const std::vector<std::string>& args) {
            return vfio_hook::run_virsh(args, std::chrono::milliseconds(15000));
        },
        std::cout, std::cerr};
    try {
        return vfio_hook::run_cli(std::vector<std::string>(argv, argv + argc), environment);
    } catch (const std::exception& error) {
        // A bug, or memory running out: one line naming it rather than abort()'s core dump.
        std::cerr << "vfio-hook: internal error: " << error.what() << "\n";
        return 1;
    }
}
