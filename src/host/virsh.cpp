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
    return answer;
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
