#include "host/log.hpp"

#include <limits.h>
#include <poll.h>
#include <spdlog/sinks/base_sink.h>
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

std::ostream* user_stream = nullptr;
std::size_t dropped = 0;

// stderr is libvirt's pipe in hook mode: a full pipe must not make us wait and a closed one must
// not kill us (SIGPIPE is ignored in main). A line that cannot be written now is dropped, and
// counted.
void write_stderr_line(const std::string& line) {
    if (user_stream) {
        *user_stream << line << '\n' << std::flush;
        return;
    }
    pollfd descriptor{2, POLLOUT, 0};
    if (::poll(&descriptor, 1, 0) != 1 || !(descriptor.revents & POLLOUT)) {
        ++dropped;
        return;
    }
    // A pipe that polls writable has room for PIPE_BUF bytes: a write of at most that never blocks.
    std::string text = line.substr(0, PIPE_BUF - 1) + "\n";
    if (::write(2, text.data(), text.size()) < 0) ++dropped;
}

// Lines that reach stderr only: the sink used where there is no journal.
class StderrSink : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        write_stderr_line("vfio-hook: " + std::string(message.payload.data(), message.payload.size()));
    }
    void flush_() override {}
};

class JournaldSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit JournaldSink(std::string socket_path) : socket_path_(std::move(socket_path)) {
        // Non-blocking: with journald's queue full a blocking send waits in unix_wait_for_peer,
        // and the hook would wait there holding /run/vfio-hook/lock.
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    }
    ~JournaldSink() override {
        if (fd_ >= 0) ::close(fd_);
    }
    bool send(const std::string& datagram) {
        if (fd_ < 0 || socket_path_.size() >= sizeof(sockaddr_un{}.sun_path)) return false;
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
        return ::sendto(fd_, datagram.data(), datagram.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                        reinterpret_cast<sockaddr*>(&address), sizeof address) >= 0;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        std::string line(message.payload.data(), message.payload.size());
        if (!send(journald_datagram(fields_for(message.level, line)))) write_stderr_line("vfio-hook: " + line);
    }
    void flush_() override {}

private:
    std::string socket_path_;
    int fd_ = -1;
};

std::shared_ptr<spdlog::logger> the_logger;
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
    // Admin commands print their own results on stdout; their log would only repeat them, unless
    // the person at the terminal asked for more (--log-level debug): then it is on stderr too,
    // journal or not.
    bool asked_for_more = !options.hook_mode && options.level <= spdlog::level::debug;
    if (std::filesystem::exists(paths.journald_socket(), error)) {
        journal = std::make_shared<JournaldSink>(paths.journald_socket().string());
        sinks.push_back(journal);
        if (asked_for_more) sinks.push_back(std::make_shared<StderrSink>());
    } else {
        auto stderr_sink = std::make_shared<StderrSink>();
        if (!options.hook_mode && !asked_for_more) stderr_sink->set_level(spdlog::level::warn);
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
    write_stderr_line(line);
    if (journal) journal->send(journald_datagram(fields_for(level, line)));
}

std::size_t dropped_log_lines() { return dropped; }

void log_with_fields(spdlog::level::level_enum level, const std::string& message, const LogFields& extra) {
    if (!journal || level < logger().level()) {
        logger().log(level, "{}", message);
        return;
    }
    auto fields = fields_for(level, message);
    fields.insert(fields.end(), extra.begin(), extra.end());
    if (!journal->send(journald_datagram(fields))) write_stderr_line("vfio-hook: " + message);
}

}  // namespace vfio_hook
