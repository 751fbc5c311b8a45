#pragma once
// A libvirt domain UUID, validated so it is safe to use as a file name (names never are).

#include <optional>
#include <string>
#include <string_view>

namespace vfio_hook {

class DomainUuid {
public:
    // Accepts the 8-4-4-4-12 hex form (any case; libvirt also accepts it without dashes).
    static std::optional<DomainUuid> parse(std::string_view text);
    const std::string& str() const { return text_; }
    bool operator==(const DomainUuid&) const = default;

private:
    explicit DomainUuid(std::string text) : text_(std::move(text)) {}
    std::string text_;  // canonical: lower case, with dashes
};

}  // namespace vfio_hook
