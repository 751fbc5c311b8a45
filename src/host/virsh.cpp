#include "host/virsh.hpp"

#include <cctype>
#include <sstream>

#include "host/program.hpp"

namespace vfio_hook {

Expected<std::string> run_virsh(const std::vector<std::string>& args, std::chrono::milliseconds deadline) {
    std::vector<std::string> argv{"virsh"};
    argv.insert(argv.end(), args.begin(), args.end());
    // virsh's answers are read by their English labels ("Persistent:"): never a translation.
    auto answer = run_program(argv, deadline, {"LC_ALL=C", "LANGUAGE="});
    if (answer) return answer;
    const std::string& why = answer.error();
    if (why.starts_with("cannot run virsh")) return Error{why + " (is libvirt-clients installed?)"};
    if (why.starts_with("virsh did not finish within"))
        return Error{"virsh did not answer within " + std::to_string(deadline.count()) + " ms (is libvirtd stuck?)"};
    return Error{explain_virsh_failure(why)};
}

std::string explain_virsh_failure(const std::string& why) {
    // virsh's last stderr line when nothing listens on the URI's socket (libvirt 9 to 11:
    // "error: Failed to connect socket to '/var/run/libvirt/virtqemud-sock': No such file or
    // directory", or "Connection refused"); its first is "failed to connect to the hypervisor".
    bool unreachable = why.find("Failed to connect socket") != std::string::npos ||
                       why.find("failed to connect to the hypervisor") != std::string::npos;
    return unreachable ? why + " (" + std::string(libvirt_unreachable_hint) + ")" : why;
}

bool libvirt_unreachable(const std::string& error) {
    return error.find(libvirt_unreachable_hint) != std::string::npos;
}

Expected<std::set<std::string>> active_domain_uuids(const Virsh& virsh, const std::string& uri) {
    auto listed = virsh({"-c", uri, "list", "--uuid"});
    if (!listed) return Error{listed.error()};
    std::set<std::string> uuids;
    std::istringstream lines(*listed);
    std::string line;
    while (lines >> line) {
        for (char& c : line) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        uuids.insert(line);  // records are named by the canonical lower-case UUID
    }
    return uuids;
}

}  // namespace vfio_hook
