#pragma once
// The one logging sink of vfio-hook: journald's native protocol when its socket exists (with
// structured fields DOMAIN, DOMAIN_UUID, OPERATION, PCI_ADDRESS, DRIVER_FROM, DRIVER_TO), else
// stderr. Lines the user must read (refusals, failures) go to stderr in any case. Logging never
// waits: a line the journal will not take now goes to stderr, and one stderr will not take now
// is dropped and counted.

#include <spdlog/spdlog.h>

#include <optional>
#include <ostream>
#include <string>

#include "core/pci_address.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

struct LogContext {
    std::string domain;
    std::string domain_uuid;
    std::string operation;
};

struct LogOptions {
    bool hook_mode = false;
    spdlog::level::level_enum level = spdlog::level::info;
};

void setup_logging(const HostPaths& paths, const LogOptions& options);
void set_log_context(const LogContext& context);
spdlog::logger& logger();

// Fields attached to every line logged while it lives.
class DeviceLogFields {
public:
    DeviceLogFields(const PciAddress& address, const std::optional<std::string>& from,
                    const std::optional<std::string>& to);
    ~DeviceLogFields();
    DeviceLogFields(const DeviceLogFields&) = delete;
    DeviceLogFields& operator=(const DeviceLogFields&) = delete;
};

// A log entry with fields of its own besides the context's (DURATION_MS, DEVICE_COUNT, ...).
using LogFields = std::vector<std::pair<std::string, std::string>>;
void log_with_fields(spdlog::level::level_enum level, const std::string& message, const LogFields& extra);

// A line for the user: always on stderr (or the stream set for tests), and in the journal when
// there is one.
void tell_user(spdlog::level::level_enum level, const std::string& line);
void set_user_stream(std::ostream* stream);
// Lines neither journald nor stderr would take at once (nothing here ever waits for them).
std::size_t dropped_log_lines();

// The native-protocol datagram for one entry (exposed for tests).
std::string journald_datagram(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace vfio_hook
