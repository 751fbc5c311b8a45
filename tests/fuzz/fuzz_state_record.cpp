// fuzz-state-record: parse_record() on arbitrary bytes. The record is what puts a device back
// after a crash, so what it accepts must survive being written and read again:
//   - on success the owner is valid (a canonical domain UUID or "manual");
//   - serialize_record() of it parses again, to an identical record (owner, domain name, and per
//     device address, original driver and IOMMU group, in order);
//   - serializing that second record gives the same text (serialization is a fixed point).
// On failure the message names the file: it starts with "fuzz:" (the source passed in), and it
// is one line.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/state_record.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* fuzz_target_name = "fuzz-state-record";
constexpr const char* source = "fuzz";

using namespace vfio_hook;
using fuzz::printable;

std::string describe(const StateRecord& record) {
    std::string out = "owner '" + printable(record.owner) + "' domain '" +
                      printable(record.domain_name) + "'";
    for (const auto& device : record.devices) {
        out += " [" + device.address.str() + " " +
               (device.original_driver ? "'" + printable(*device.original_driver) + "'" : "-") +
               " " + (device.group ? std::to_string(*device.group) : "-") + "]";
    }
    return out;
}

bool same(const StateRecord& a, const StateRecord& b) {
    if (a.owner != b.owner || a.domain_name != b.domain_name || a.devices.size() != b.devices.size())
        return false;
    for (std::size_t i = 0; i < a.devices.size(); ++i) {
        const auto& x = a.devices[i];
        const auto& y = b.devices[i];
        if (x.address != y.address || x.original_driver != y.original_driver || x.group != y.group)
            return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto first = parse_record(text, source);
    if (!first) {
        FUZZ_CHECK(first.error().rfind(std::string(source) + ":", 0) == 0,
                   "error does not name the source: '" + printable(first.error()) + "'");
        FUZZ_CHECK(first.error().find('\n') == std::string::npos,
                   "error is not one line: '" + printable(first.error()) + "'");
        return 0;
    }
    FUZZ_CHECK(is_valid_owner(first->owner), "accepted owner '" + printable(first->owner) + "'");

    std::string written = serialize_record(*first);
    auto second = parse_record(written, source);
    FUZZ_CHECK(second.ok(), "the serialized record does not parse: " +
                                (second.ok() ? std::string() : printable(second.error())) +
                                "\nrecord:  " + describe(*first) +
                                "\nwritten: " + printable(written));
    FUZZ_CHECK(same(*first, *second), "the record changes when written and read again:\nread:    " +
                                          describe(*first) + "\nwritten: " + printable(written) +
                                          "\nread back: " + describe(*second));
    std::string rewritten = serialize_record(*second);
    FUZZ_CHECK(rewritten == written, "serialization is not a fixed point:\nfirst:  " +
                                         printable(written) + "\nsecond: " + printable(rewritten));
    return 0;
}
