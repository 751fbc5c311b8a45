// fuzz-domain-xml: parse_domain_xml() on arbitrary bytes. Besides not crashing (ASan, UBSan,
// leaks), a domain it accepts must hold what the hook relies on:
//   - every PCI address is in range (slot <= 0x1f, function <= 7) and round-trips through
//     PciAddress::parse(address.str());
//   - no address appears twice;
//   - every device came from <hostdev> or <interface>;
//   - the UUID is canonical (lower-case 8-4-4-4-12) and round-trips through DomainUuid::parse,
//     since it becomes a file name under /run/vfio-hook/records/.
//   - it declares no DOCTYPE (parse_domain_xml refuses every document that does): "<!DOCTYPE"
//     appears, if at all, only inside a comment, a CDATA section or a processing instruction;
//   - the same document with "<!DOCTYPE domain>" put in front of it (after the BOM and XML
//     declaration, if any) is refused.
// A refusal must carry a non-empty message on one line (no '\n' or '\r'), as core/expected.hpp
// promises, whatever libxml2 says and whatever text of the input the message quotes.

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/domain_xml.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* fuzz_target_name = "fuzz-domain-xml";

using namespace vfio_hook;
using fuzz::printable;

bool canonical_uuid(const std::string& text) {
    if (text.size() != 36) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        char c = text[i];
        if (dash_position ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

// Where the text declares a DOCTYPE: the first "<!DOCTYPE" that is not inside a comment, a CDATA
// section or a processing instruction, which may quote it; npos if there is none. The scan
// stops at the first NUL byte, where libxml2 stops reading.
std::size_t doctype_declaration(std::string_view xml) {
    xml = xml.substr(0, xml.find('\0'));
    struct Quoting {
        std::string_view open, close;
    };
    static constexpr Quoting quoting[] = {{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}};
    std::size_t at = 0;
    while ((at = xml.find('<', at)) != std::string_view::npos) {
        std::string_view rest = xml.substr(at);
        if (rest.starts_with("<!DOCTYPE")) return at;
        std::size_t next = at + 1;
        for (const auto& [open, close] : quoting) {
            if (!rest.starts_with(open)) continue;
            auto end = xml.find(close, at + open.size());
            if (end == std::string_view::npos) return std::string_view::npos;
            next = end + close.size();
            break;
        }
        at = next;
    }
    return std::string_view::npos;
}

// The document with "<!DOCTYPE domain>" where a DOCTYPE goes: after the byte-order mark and the
// XML declaration (<?xml ...?>) if there are any, else at the very start.
std::string with_doctype(std::string_view xml) {
    std::size_t at = xml.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    std::string_view rest = xml.substr(at);
    if (rest.size() > 5 && rest.starts_with("<?xml") &&
        (rest[5] == ' ' || rest[5] == '\t' || rest[5] == '\r' || rest[5] == '\n')) {
        auto end = rest.find("?>");
        if (end != std::string_view::npos) at += end + 2;
    }
    return std::string(xml.substr(0, at)) + "<!DOCTYPE domain>" + std::string(xml.substr(at));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view xml(reinterpret_cast<const char*>(data), size);
    auto parsed = parse_domain_xml(xml);
    if (!parsed) {
        FUZZ_CHECK(!parsed.error().empty(), "a refusal without a message");
        FUZZ_CHECK(parsed.error().find_first_of("\r\n") == std::string::npos,
                   "the refusal is not one line: '" + printable(parsed.error()) + "'");
        return 0;
    }
    const Domain& domain = *parsed;

    auto doctype = doctype_declaration(xml);
    FUZZ_CHECK(doctype == std::string_view::npos,
               "a document declaring a DOCTYPE at byte " + std::to_string(doctype) + " was accepted");
    auto doctyped = with_doctype(xml);
    FUZZ_CHECK(!parse_domain_xml(doctyped),
               "the accepted document with a DOCTYPE put in front is accepted too: '" +
                   printable(doctyped, 200) + "'");

    const std::string& uuid = domain.uuid.str();
    FUZZ_CHECK(canonical_uuid(uuid), "uuid '" + printable(uuid) + "' is not canonical");
    auto uuid_again = DomainUuid::parse(uuid);
    FUZZ_CHECK(uuid_again.has_value(), "uuid '" + uuid + "' does not parse again");
    FUZZ_CHECK(*uuid_again == domain.uuid,
               "uuid '" + uuid + "' parses again as '" + uuid_again->str() + "'");

    std::vector<PciAddress> addresses;
    for (const auto& device : domain.pci_devices) {
        const PciAddress& address = device.address;
        std::string text = address.str();
        FUZZ_CHECK(address.slot <= 0x1f && address.function <= 7,
                   "address " + text + " is out of range");
        // 0000:01:00.0; a VMD domain above ffff takes up to 8 hex digits, never a leading zero.
        std::size_t domain_digits = text.size() - 8;
        FUZZ_CHECK(text.size() >= 12 && text.size() <= 16 &&
                       (domain_digits == 4 ? address.domain <= 0xffff : address.domain > 0xffff && text[0] != '0'),
                   "address prints as '" + printable(text) + "'");
        auto again = PciAddress::parse(text);
        FUZZ_CHECK(again.has_value(), "address " + text + " does not parse again");
        FUZZ_CHECK(*again == address, "address " + text + " parses again as " + again->str());
        FUZZ_CHECK(device.element == "hostdev" || device.element == "interface",
                   "device " + text + " from element <" + printable(device.element) + ">");
        addresses.push_back(address);
    }
    std::sort(addresses.begin(), addresses.end());
    auto duplicate = std::adjacent_find(addresses.begin(), addresses.end());
    FUZZ_CHECK(duplicate == addresses.end(), "address " + duplicate->str() + " is listed twice");
    return 0;
}
