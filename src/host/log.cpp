#include "host/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>

namespace vfio_hook {
namespace {

LogContext context;
struct DeviceFields {
    std::string address, from, to;
};
std::optional<DeviceFields> device_fields;

int syslog_priority(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::critical: return 2;
        case spdlog::level::err: return 3;
        case spdlog::level::warn: return 4;
        case spdlog::level::info: return 6;
        default: return 7;
    }
}

std::vector<std::pair<std::string, std::string>> fields_for(spdlog::level::level_enum level,
                                                            std::string message) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"MESSAGE", std::move(message)},
        {"PRIORITY", std::to_string(syslog_priority(level))},
        {"SYSLOG_IDENTIFIER", "vfio-hook"},
    };
    if (!context.domain.empty()) fields.emplace_back("DOMAIN", context.domain);
    if (!context.domain_uuid.empty()) fields.emplace_back("DOMAIN_UUID", context.domain_uuid);
    if (!context.operation.empty()) fields.emplace_back("OPERATION", context.operation);
    if (device_fields) {
        fields.emplace_back("PCI_ADDRESS", device_fields->address);
        if (!device_fields->from.empty()) fields.emplace_back("DRIVER_FROM", device_fields->from);
        if (!device_fields->to.empty()) fields.emplace_back("DRIVER_TO", device_fields->to);
    }
    return fields;
}

class JournaldSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit JournaldSink(std::string socket_path) : socket_path_(std::move(socket_path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    ~JournaldSink() override {
        if (fd_ >= 0) ::close(fd_);
    }
    bool send(const std::string& datagram) {
        if (fd_ < 0 || socket_path_.size() >= sizeof(sockaddr_un{}.sun_path)) return false;
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
        return ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL,
                        reinterpret_cast<sockaddr*>(&address), sizeof address) >= 0;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        send(journald_datagram(
            fields_for(message.level, std::string(message.payload.data(), message.payload.size()))));
    }
    void flush_() override {}

private:
    std::string socket_path_;
    int fd_ = -1;
};

std::shared_ptr<spdlog::logger> the_logger;
std::ostream* user_stream = nullptr;
std::shared_ptr<JournaldSink> journal;

}  // namespace

std::string journald_datagram(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string datagram;
    for (const auto& [key, value] : fields) {
        if (value.find('\n') == std::string::npos) {
            datagram += key + "=" + value + "\n";
            continue;
        }
        // Values with newlines use the binary form: KEY\n, little-endian 64-bit length, value\n.
        datagram += key + "\n";
        std::uint64_t size = value.size();
        for (int i = 0; i < 8; ++i) datagram += static_cast<char>((size >> (8 * i)) & 0xff);
        datagram += value + "\n";
    }
    return datagram;
}

void setup_logging(const HostPaths& paths, const LogOptions& options) {
    std::error_code error;
    std::vector<spdlog::sink_ptr> sinks;
    journal.reset();
    if (std::filesystem::exists(paths.journald_socket(), error)) {
        journal = std::make_shared<JournaldSink>(paths.journald_socket().string());
        sinks.push_back(journal);
    } else {
        auto stderr_sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
        stderr_sink->set_pattern("vfio-hook: %v");
        // Admin commands print their own results on stdout; their log would only repeat them.
        if (!options.hook_mode) stderr_sink->set_level(spdlog::level::warn);
        sinks.push_back(stderr_sink);
    }
    the_logger = std::make_shared<spdlog::logger>("vfio-hook", sinks.begin(), sinks.end());
    the_logger->set_level(options.level);
}

void set_log_context(const LogContext& new_context) { context = new_context; }

spdlog::logger& logger() {
    if (!the_logger) setup_logging(HostPaths{}, LogOptions{});
    return *the_logger;
}

DeviceLogFields::DeviceLogFields(const PciAddress& address, const std::optional<std::string>& from,
                                 const std::optional<std::string>& to) {
    device_fields = DeviceFields{address.str(), from.value_or(""), to.value_or("")};
}

DeviceLogFields::~DeviceLogFields() { device_fields.reset(); }

void set_user_stream(std::ostream* stream) { user_stream = stream; }

void tell_user(spdlog::level::level_enum level, const std::string& line) {
    if (user_stream) {
        *user_stream << line << '\n' << std::flush;
    } else {
        std::fprintf(stderr, "%s\n", line.c_str());
        std::fflush(stderr);
    }
    if (journal) journal->send(journald_datagram(fields_for(level, line)));
}

}  // namespace vfio_hook
