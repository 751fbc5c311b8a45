#pragma once
// The state records on disk, one file per owner under /run/vfio-hook/records/ (named by domain
// UUID, never by name), written atomically and fsync'd; and the lock that serialises hook runs
// that move devices.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/expected.hpp"
#include "core/problem.hpp"
#include "core/state_record.hpp"
#include "host/host_paths.hpp"

namespace vfio_hook {

// The directory of state records: one record per owner, what each moved and from where.
class RecordStore {
public:
    explicit RecordStore(const HostPaths& paths) : paths_(paths) {}

    // A cheap stat: lets hook runs with nothing to do skip the lock.
    bool has_record(const std::string& owner) const;
    // No record of anyone (one directory read): nothing can be waiting to go home.
    bool empty() const;
    Expected<std::optional<StateRecord>> load(const std::string& owner) const;
    // Every readable record; unreadable ones are reported in `problems` (file: why).
    std::vector<StateRecord> load_all(std::vector<std::string>* problems = nullptr) const;
    // Which version of each owner's record is on disk (inode, mtime and ctime to the ns, size):
    // every save renames a new file over the old one, so a record saved since shows another.
    std::map<std::string, std::string> versions() const;
    // Write-to-temp, fsync, rename, fsync the directory: after a crash the record is either the
    // old one or the new one, never a torn mix. Returns the problem, or none.
    Problem save(const StateRecord& record) const;
    Problem remove(const std::string& owner) const;
    // A save killed before its rename leaves OWNER.record.tmp: never a record (nothing moves
    // before the rename), so whoever holds the lock deletes it. Returns the files deleted.
    std::vector<std::string> discard_unfinished_saves() const;
    std::filesystem::path file_of(const std::string& owner) const;

private:
    Problem ensure_dirs() const;
    const HostPaths& paths_;
};

// flock on /run/vfio-hook/lock, polled until a deadline so a stuck run elsewhere cannot hang
// libvirt here. Released when destroyed (and by the kernel if we die).
class HookLock {
public:
    static Expected<HookLock> acquire(const HostPaths& paths, std::chrono::milliseconds deadline);
    HookLock(HookLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
    HookLock& operator=(HookLock&&) = delete;
    ~HookLock();

private:
    explicit HookLock(int fd) : fd_(fd) {}
    int fd_;
};

}  // namespace vfio_hook
