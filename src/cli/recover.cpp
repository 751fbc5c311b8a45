// `vfio-hook recover`: gives back every recorded device whose VM is gone (no process has its
// /dev/vfio/N open) — after a crash, a hung write, or a release that failed — and reports the rest.

#include "cli/commands.hpp"
#include "host/log.hpp"

namespace vfio_hook {

int run_recover(Host& host, std::ostream& out) {
    auto lock = HookLock::acquire(host.paths, host.settings.lock_deadline);
    if (!lock) {
        tell_user(spdlog::level::err, lock.error());
        return 1;
    }
    StateJournal journal(host.paths);
    std::vector<std::string> unreadable;
    auto records = journal.load_all(&unreadable);
    int status = 0;
    for (const auto& problem : unreadable) {
        tell_user(spdlog::level::err, "unreadable record: " + problem);
        status = 1;
    }
    if (records.empty() && unreadable.empty()) out << "nothing to recover: no device is recorded as moved\n";
    for (const auto& record : records) {
        auto report = release_owner(host, record.owner);
        out << record.owner_label() << ":\n";
        for (const auto& line : report.restored) out << "  " << line << "\n";
        for (const auto& line : report.kept) out << "  kept: " << line << "\n";
        for (const auto& line : report.problems) {
            out << "  problem: " << line << "\n";
            status = 1;
        }
    }
    return status;
}

}  // namespace vfio_hook
