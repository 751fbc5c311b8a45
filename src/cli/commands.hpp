#pragma once
// One function per command; each renders its result and returns the exit code.

#include <optional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "host/hand_over.hpp"

namespace vfio_hook {

struct HookCall {
    std::string domain;  // as libvirt passes it: for messages only, never for paths
    std::string operation;
    std::string sub_operation;
};

int run_hook(Host& host, const HookCall& call, const std::string& domain_xml);
int run_check(Host& host, const std::string& domain_xml, const std::string& source, std::ostream& out);
int run_status(Host& host, bool json, std::ostream& out);
int run_bind(Host& host, const std::vector<PciAddress>& addresses, std::ostream& out);
int run_restore(Host& host, const std::vector<PciAddress>& addresses, bool force, std::ostream& out);
// `active_domains`: libvirt's answer to which VMs are active (or why it could not say).
int run_recover(Host& host, const Expected<std::set<std::string>>& active_domains, std::ostream& out);

}  // namespace vfio_hook
