#pragma once
// How Boost.Test prints our types when an assertion fails.

#include <boost/test/unit_test.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/pci_address.hpp"
#include "host/sysfs.hpp"

namespace vfio_hook {
inline std::ostream& boost_test_print_type(std::ostream& out, const PciAddress& address) {
    return out << address.str();
}
inline std::ostream& boost_test_print_type(std::ostream& out, const WriteResult::Status& status) {
    return out << WriteResult{status, 0}.describe();
}
}  // namespace vfio_hook

namespace std {
inline std::ostream& boost_test_print_type(std::ostream& out, const std::optional<std::string>& text) {
    return out << (text ? *text : std::string("(none)"));
}
inline std::ostream& boost_test_print_type(std::ostream& out, const std::vector<std::string>& items) {
    for (const auto& item : items) out << item << ' ';
    return out;
}
}  // namespace std
