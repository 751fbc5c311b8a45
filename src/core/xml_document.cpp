#include "core/xml_document.hpp"

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include <cerrno>
#include <cstdlib>

namespace vfio_hook::xml {
namespace {

// libvirt reads these attributes with base 0 (virStrToLong_uip): "0x1f", "31" and "037" all work.
std::optional<unsigned long> parse_number(const std::string& text) {
    if (text.empty() || text[0] == '-' || text[0] == '+' || text[0] == ' ') return std::nullopt;
    errno = 0;
    char* end = nullptr;
    unsigned long value = std::strtoul(text.c_str(), &end, 0);
    if (errno != 0 || *end != '\0') return std::nullopt;
    return value;
}

Expected<PciAddress> parse_source_address(const xmlNode* address, const std::string& where) {
    unsigned long parts[4] = {0, 0, 0, 0};
    const char* names[4] = {"domain", "bus", "slot", "function"};
    for (int i = 0; i < 4; ++i) {
        auto text = attribute(address, names[i]);
        if (!text) {
            if (i == 0) continue;  // libvirt defaults the PCI domain to 0
            return Error{where + ": <source><address> has no '" + names[i] + "' attribute"};
        }
        auto number = parse_number(*text);
        if (!number) {
            return Error{where + ": <source><address " + names[i] + "='" + *text +
                         "'> is not a number"};
        }
        parts[i] = *number;
    }
    auto parsed = PciAddress::from_parts(parts[0], parts[1], parts[2], parts[3]);
    if (!parsed) {
        return Error{where + ": <source><address> is out of range (domain ≤ 0xffffffff, bus ≤ 0xff, "
                             "slot ≤ 0x1f, function ≤ 7)"};
    }
    return *parsed;
}

// xmlReadMemory takes no error handler of its own (libxml2 2.9): the thread's structured handler
// collects into `errors` for as long as this lives.
class CollectErrors {
public:
    explicit CollectErrors(ParseErrors& errors) { xmlSetStructuredErrorFunc(&errors, remember_first_error); }
    ~CollectErrors() { xmlSetStructuredErrorFunc(nullptr, nullptr); }
    CollectErrors(const CollectErrors&) = delete;
    CollectErrors& operator=(const CollectErrors&) = delete;
};

}  // namespace

int parse_options() { return XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING; }

void remember_first_error(void* arg, xmlErrorPtr error) {
    auto* errors = static_cast<ParseErrors*>(arg);
    if (!error || error->level < XML_ERR_ERROR || !errors->first.empty()) return;
    std::string text = error->message ? error->message : "unknown error";
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    errors->first = "line " + std::to_string(error->line) + ": " + text;
    errors->first_code = error->code;
    if (error->code == XML_ERR_UNSUPPORTED_ENCODING && error->str1) errors->encoding = error->str1;
}

Problem refuse_size(std::string_view xml, const std::string& what) {
    if (xml.size() <= max_bytes) return {};
    return what + " is " + std::to_string(xml.size() >> 20) + " MiB, over the 64 MiB limit: refusing";
}

bool is_doctype(const xmlNode* node) {
    return node && (node->type == XML_DTD_NODE || node->type == XML_DOCUMENT_TYPE_NODE);
}

Problem doctype_refusal(const std::string& what) {
    return what + " declares a DOCTYPE; libvirt never writes one, refusing";
}

Problem refuse_errors(const ParseErrors& errors, const std::string& what, bool failed) {
    if (errors.first_code == XML_ERR_UNSUPPORTED_ENCODING) {
        // libxml2 is built with its own encodings only (docs/lean-binary.md): no ICU, no iconv.
        return what + " declares encoding '" + errors.encoding.substr(0, 64) +
               "', which vfio-hook does not read (UTF-8, UTF-16, ISO-8859-1, ASCII; libvirt "
               "writes UTF-8): give it as UTF-8, refusing";
    }
    if (failed || !errors.first.empty()) {
        return what + " is not well-formed: " + (errors.first.empty() ? std::string("parse error") : errors.first);
    }
    return {};
}

Expected<Document> read_document(std::string_view xml, const std::string& what, int extra_options) {
    if (auto problem = refuse_size(xml, what)) return Error{problem.message()};
    ParseErrors errors;
    Document document(nullptr, &xmlFreeDoc);
    {
        CollectErrors collect(errors);
        document.reset(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                                     parse_options() | extra_options));
    }
    for (const xmlNode* node = document ? document->children : nullptr; node; node = node->next) {
        if (is_doctype(node)) return Error{doctype_refusal(what).message()};
    }
    if (auto problem = refuse_errors(errors, what, !document)) return Error{problem.message()};
    return document;
}

std::string text(const xmlChar* value) { return value ? reinterpret_cast<const char*>(value) : ""; }

std::string owned(xmlChar* value) {
    std::string result = text(value);
    xmlFree(value);
    return result;
}

std::optional<std::string> attribute(const xmlNode* node, const char* name) {
    if (!node) return std::nullopt;
    xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
    if (!value) return std::nullopt;
    return owned(value);
}

bool named(const xmlNode* node, std::string_view name) {
    return node && node->type == XML_ELEMENT_NODE && text(node->name) == name;
}

xmlNodePtr child(const xmlNode* node, std::string_view name) {
    for (xmlNodePtr each = node ? node->children : nullptr; each; each = each->next) {
        if (named(each, name)) return each;
    }
    return nullptr;
}

std::vector<xmlNodePtr> children(const xmlNode* node) {
    std::vector<xmlNodePtr> found;
    for (xmlNodePtr each = node ? node->children : nullptr; each; each = each->next) {
        if (each->type == XML_ELEMENT_NODE) found.push_back(each);
    }
    return found;
}

std::optional<Expected<PciAddress>> host_pci_address(const xmlNode* device) {
    std::string element = text(device->name);
    auto type = attribute(device, "type").value_or("");
    if (element == "hostdev" && (type != "pci" || attribute(device, "mode").value_or("subsystem") != "subsystem"))
        return std::nullopt;
    if (element == "interface" && type != "hostdev") return std::nullopt;
    if (element != "hostdev" && element != "interface") return std::nullopt;
    std::string where = "<" + element + "> on line " + std::to_string(xmlGetLineNo(device));
    xmlNodePtr address = child(child(device, "source"), "address");
    if (!address) return Expected<PciAddress>(Error{where + " has no <source><address>"});
    auto address_type = attribute(address, "type");
    if (address_type && *address_type != "pci") return std::nullopt;  // e.g. a USB hostdev
    return parse_source_address(address, where);
}

}  // namespace vfio_hook::xml
