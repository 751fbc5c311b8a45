#include "host/record_store.hpp"
#include "core/problem.hpp"
#include "host/visibility.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <thread>

namespace vfio_hook {
namespace fs = std::filesystem;
namespace {

std::string errno_text(const std::string& what, const fs::path& file) {
    return what + " " + file.string() + ": " + std::strerror(errno);
}

Problem read_whole(const fs::path& file, std::string& text) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_text("cannot open", file);
    char buffer[8192];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    if (n < 0) return errno_text("cannot read", file);
    return {};
}

Problem make_dir(const fs::path& dir) {
    if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return {};
    return errno_text("cannot create", dir);
}

}  // namespace

fs::path RecordStore::file_of(const std::string& owner) const {
    return paths_.records_dir() / (owner + ".record");
}

Problem RecordStore::ensure_dirs() const {
    std::error_code error;
    fs::create_directories(paths_.state_dir().parent_path(), error);
    if (auto problem = make_dir(paths_.state_dir())) return problem;
    return make_dir(paths_.records_dir());
}

bool RecordStore::empty() const {
    std::unique_ptr<DIR, int (*)(DIR*)> directory(::opendir(paths_.records_dir().c_str()), &::closedir);
    if (!directory) return errno == ENOENT;  // unreadable: assume there may be records
    while (const dirent* entry = ::readdir(directory.get())) {
        if (std::string_view(entry->d_name).ends_with(".record")) return false;
    }
    return true;
}

bool RecordStore::has_record(const std::string& owner) const {
    struct stat info;
    return is_valid_owner(owner) && ::stat(file_of(owner).c_str(), &info) == 0;
}

Expected<std::optional<StateRecord>> RecordStore::load(const std::string& owner) const {
    if (!is_valid_owner(owner)) return Error{"invalid record owner '" + owner + "'"};
    fs::path file = file_of(owner);
    std::string text;
    if (auto problem = read_whole(file, text)) {
        if (errno == ENOENT) return std::optional<StateRecord>();
        return Error{problem.message()};
    }
    auto record = parse_record(text, file.string());
    if (!record) return Error{record.error()};
    if (record->owner != owner) return Error{file.string() + ": owner field does not match the file name"};
    return std::optional<StateRecord>(*record);
}

std::vector<StateRecord> RecordStore::load_all(std::vector<std::string>* problems) const {
    std::vector<StateRecord> records;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths_.records_dir(), error)) {
        auto name = entry.path().filename().string();
        if (!name.ends_with(".record")) continue;
        auto loaded = load(name.substr(0, name.size() - 7));
        if (!loaded) {
            if (problems) problems->push_back(loaded.error());
        } else if (*loaded) {
            records.push_back(**loaded);
        }
    }
    return records;
}

Problem RecordStore::save(const StateRecord& record) const {
    if (!is_valid_owner(record.owner)) return "invalid record owner '" + record.owner + "'";
    if (auto problem = ensure_dirs()) return problem;
    fs::path file = file_of(record.owner);
    fs::path temporary = file;
    temporary += ".tmp";
    std::string text = serialize_record(record);
    if (!write_private_file(temporary, text, false) || ::rename(temporary.c_str(), file.c_str()) != 0) {
        auto problem = errno_text("cannot write", file);
        ::unlink(temporary.c_str());
        return problem;
    }
    int dir = ::open(paths_.records_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return {};
}

std::vector<std::string> RecordStore::discard_unfinished_saves() const {
    std::vector<std::string> discarded;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths_.records_dir(), error)) {
        if (entry.path().filename().string().ends_with(".record.tmp")) discarded.push_back(entry.path().string());
    }
    for (const auto& file : discarded) ::unlink(file.c_str());
    return discarded;
}

Problem RecordStore::remove(const std::string& owner) const {
    if (!is_valid_owner(owner)) return "invalid record owner '" + owner + "'";
    fs::path file = file_of(owner);
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) return errno_text("cannot remove", file);
    int dir = ::open(paths_.records_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        ::fsync(dir);
        ::close(dir);
    }
    return {};
}

std::map<std::string, std::string> RecordStore::versions() const {
    std::map<std::string, std::string> found;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(paths_.records_dir(), error)) {
        auto name = entry.path().filename().string();
        struct stat info {};
        if (!name.ends_with(".record") || ::stat(entry.path().c_str(), &info) != 0) continue;
        found[name.substr(0, name.size() - 7)] =
            std::to_string(info.st_ino) + ":" + std::to_string(info.st_mtim.tv_sec) + "." +
            std::to_string(info.st_mtim.tv_nsec) + ":" + std::to_string(info.st_ctim.tv_sec) + "." +
            std::to_string(info.st_ctim.tv_nsec) + ":" + std::to_string(info.st_size);
    }
    return found;
}

Expected<HookLock> HookLock::acquire(const HostPaths& paths, std::chrono::milliseconds deadline) {
    std::error_code ignored;
    fs::create_directories(paths.state_dir(), ignored);
    ::chmod(paths.state_dir().c_str(), 0700);
    int fd = ::open(paths.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    // Not root: the state directory is root's (0700), and EACCES from its lock says nothing.
    if (fd < 0 && ::geteuid() != 0 && (errno == EACCES || errno == EPERM))
        return Error{std::string("needs root (") + run_as_root + ")"};
    if (fd < 0) return Error{errno_text("cannot open the lock", paths.lock_file())};
    auto until = std::chrono::steady_clock::now() + deadline;
    auto pause = std::chrono::milliseconds(1);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            auto problem = errno_text("cannot lock", paths.lock_file());
            ::close(fd);
            return Error{problem};
        }
        if (std::chrono::steady_clock::now() >= until) {
            ::close(fd);
            return Error{"another vfio-hook run held " + paths.lock_file().string() + " for over " +
                         std::to_string(deadline.count()) + " ms; gave up (see journalctl -t vfio-hook)"};
        }
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
    return HookLock(fd);
}

HookLock::~HookLock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace vfio_hook
