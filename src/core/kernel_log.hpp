#pragma once
// Kernel log lines (as /dev/kmsg hands them out) and the judgement of which ones say that a
// driver failed a device: missing firmware, failed probe, power-state and AER errors.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/pci_device.hpp"

namespace vfio_hook {

struct KernelLogLine {
    std::uint64_t sequence = 0;
    int priority = 6;  // syslog level: 0 emerg … 7 debug
    std::string message;
};

// One /dev/kmsg record: "PRI,SEQ,USEC,FLAGS[,…];MESSAGE". Continuation lines (" KEY=value")
// and anything else malformed give nullopt.
std::optional<KernelLogLine> parse_kmsg_record(std::string_view record);
std::vector<KernelLogLine> parse_kmsg(std::string_view text);

bool mentions_device(const KernelLogLine& line, const PciAddress& address,
                     const std::optional<DriverName>& driver);
bool reports_driver_problem(std::string_view message);
// A driver that could not load its firmware (nouveau's "pmu: firmware unavailable").
bool reports_missing_firmware(std::string_view message);
// Lines about this device (its address, or its driver's prefix) that report a problem.
std::vector<KernelLogLine> problems_about(const std::vector<KernelLogLine>& lines,
                                          const PciAddress& address,
                                          const std::optional<DriverName>& driver);

}  // namespace vfio_hook
