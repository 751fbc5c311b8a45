#pragma once
// What an action that can fail returns: nothing when it worked, else the one-line message that
// names the thing and the fix (and, where more happened since, further lines: a rollback's, the
// record's). The one shape for actions; values come back as Expected<T> (core/expected.hpp).
// [[nodiscard]]: the compiler lists every result that is dropped.

#include <string>
#include <utility>
#include <vector>

namespace vfio_hook {

// What the caller may still do after a failed device move.
enum class ProblemKind {
    failed,      // the step did not happen
    hung,        // a write is still stuck in the kernel: any further write would block too
    device_home  // the device is home on its driver; only its old driver_override is not back
};

class [[nodiscard]] Problem {
public:
    Problem() = default;  // none: it worked
    Problem(std::string line, ProblemKind kind = ProblemKind::failed) : kind_(kind) {
        lines_.push_back(std::move(line));
    }
    Problem(const char* line, ProblemKind kind = ProblemKind::failed) : Problem(std::string(line), kind) {}
    static Problem none() { return {}; }

    // True when something went wrong: `if (auto problem = save(record)) ...`.
    explicit operator bool() const { return !lines_.empty(); }
    const std::string& message() const { return lines_.front(); }
    const std::vector<std::string>& lines() const { return lines_; }
    ProblemKind kind() const { return kind_; }
    bool hung() const { return kind_ == ProblemKind::hung; }
    bool device_home() const { return kind_ == ProblemKind::device_home; }

    // A further line about what happened after the first (a rollback's, the record's).
    Problem& add_line(std::string line) {
        lines_.push_back(std::move(line));
        return *this;
    }
    // Another problem's lines after these; a none adds nothing.
    Problem& merge(const Problem& other) {
        if (lines_.empty()) kind_ = other.kind_;
        lines_.insert(lines_.end(), other.lines_.begin(), other.lines_.end());
        return *this;
    }

private:
    std::vector<std::string> lines_;
    ProblemKind kind_ = ProblemKind::failed;
};

}  // namespace vfio_hook
