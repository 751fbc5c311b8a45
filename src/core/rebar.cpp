#include "core/rebar.hpp"

#include <charconv>
#include <sstream>

namespace vfio_hook {
namespace {

// 128 TB = 2^27 MB: the capability's sizes are its bits 4 to 31 (PCI_REBAR_CAP_SIZES), the
// kernel's bitmap those shifted down (bit 0 = 1 MB); no BAR can take a larger one.
constexpr unsigned max_bit = 27;

// "0x00000000e0000000" as the kernel prints `resource`; nullopt for anything else.
std::optional<std::uint64_t> parse_hex(std::string_view text) {
    if (text.starts_with("0x")) text.remove_prefix(2);
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

std::string rebar_size_text(unsigned bit) {
    if (bit >= 20) return std::to_string(1ULL << (bit - 20)) + " TB";
    if (bit >= 10) return std::to_string(1ULL << (bit - 10)) + " GB";
    return std::to_string(1ULL << bit) + " MB";
}

std::string RebarSetting::str() const {
    if (kind == Kind::smallest) return "smallest";
    if (kind == Kind::largest) return "largest";
    if (bit >= 20) return std::to_string(1ULL << (bit - 20)) + "T";
    if (bit >= 10) return std::to_string(1ULL << (bit - 10)) + "G";
    return std::to_string(1ULL << bit) + "M";
}

Expected<RebarSetting> parse_rebar_setting(std::string_view text) {
    if (text == "smallest") return RebarSetting{RebarSetting::Kind::smallest, 0};
    if (text == "largest") return RebarSetting{RebarSetting::Kind::largest, 0};
    std::uint64_t number = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    unsigned shift = 0;
    if (unit == "M" || unit == "MB" || unit == "MiB") shift = 0;
    else if (unit == "G" || unit == "GB" || unit == "GiB") shift = 10;
    else if (unit == "T" || unit == "TB" || unit == "TiB") shift = 20;
    else ec = std::errc::invalid_argument;
    bool power_of_two = number != 0 && (number & (number - 1)) == 0;
    if (ec != std::errc{} || !power_of_two)
        return Error{"expected smallest, largest or a power-of-two size such as 256M, 8G or 16G"};
    unsigned bit = shift;
    while (number > 1) {
        number >>= 1;
        ++bit;
    }
    if (bit > max_bit) return Error{"expected a size of at most 128T"};
    return RebarSetting{RebarSetting::Kind::size, bit};
}

std::optional<unsigned> rebar_bit_of_size(std::uint64_t bytes) {
    if (bytes < (1ULL << 20) || (bytes & (bytes - 1)) != 0) return std::nullopt;
    unsigned bit = 0;
    for (std::uint64_t megabytes = bytes >> 20; megabytes > 1; megabytes >>= 1) ++bit;
    return bit;
}

std::vector<unsigned> rebar_supported_bits(std::uint64_t bitmap) {
    std::vector<unsigned> bits;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if (bitmap & (1ULL << bit)) bits.push_back(bit);
    }
    return bits;
}

std::optional<unsigned> rebar_target(const RebarSetting& setting, std::uint64_t bitmap) {
    auto bits = rebar_supported_bits(bitmap);
    if (bits.empty()) return std::nullopt;
    switch (setting.kind) {
        case RebarSetting::Kind::smallest: return bits.front();
        case RebarSetting::Kind::largest: return bits.back();
        case RebarSetting::Kind::size: break;
    }
    if (setting.bit < 64 && (bitmap & (1ULL << setting.bit))) return setting.bit;
    return std::nullopt;
}

std::uint64_t bar_size_from_resource(std::string_view resource, unsigned bar) {
    std::istringstream lines{std::string(resource)};
    std::string line;
    for (unsigned index = 0; std::getline(lines, line); ++index) {
        if (index != bar) continue;
        std::istringstream words(line);
        std::string start_text, end_text;
        words >> start_text >> end_text;
        auto start = parse_hex(start_text);
        auto end = parse_hex(end_text);
        if (!start || !end || *end <= *start) return 0;
        return *end - *start + 1;
    }
    return 0;
}

}  // namespace vfio_hook
