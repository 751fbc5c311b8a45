#include "core/domain_xml.hpp"
#include "core/problem.hpp"
#include "core/xml_document.hpp"
#include "core/pci_device.hpp"

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <set>

namespace vfio_hook {
namespace {

using Reader = std::unique_ptr<xmlTextReader, decltype(&xmlFreeTextReader)>;

using xml::attribute;
using xml::text;

// <hostdev mode='subsystem' type='pci'> and <interface type='hostdev'>: the host address is the
// one under <source>; the element's own <address type='pci'> is where the guest sees the device.
std::optional<Expected<HostPciDevice>> parse_device_element(xmlNodePtr node) {
    auto address = xml::host_pci_address(node);
    if (!address) return std::nullopt;
    if (!*address) return Expected<HostPciDevice>(Error{address->error()});
    // Issue 26: <driver model='…'/> names the VFIO variant driver; it becomes a sysfs path part.
    xmlNodePtr driver = xml::child(node, "driver");
    auto model = driver ? attribute(driver, "model") : std::nullopt;
    if (model && !is_kernel_driver_name(*model)) {
        return Expected<HostPciDevice>(Error{"<" + text(node->name) + "> on line " + std::to_string(xmlGetLineNo(node)) +
                                             ": <driver model='" + model->substr(0, 64) + "'> is not a driver name"});
    }
    return Expected<HostPciDevice>(
        HostPciDevice{address->value(), attribute(node, "managed").value_or("no") == "yes", text(node->name), model});
}

std::optional<bool> parse_yes_no(const std::string& text) {
    if (text == "yes" || text == "true" || text == "1") return true;
    if (text == "no" || text == "false" || text == "0") return false;
    return std::nullopt;
}

Expected<DomainSettings> parse_settings(xmlNodePtr node) {
    DomainSettings settings;
    for (xmlNodePtr child = node->children; child; child = child->next) {
        if (child->type != XML_ELEMENT_NODE) continue;
        std::string name = text(child->name);
        std::string value = xml::owned(xmlNodeGetContent(child));
        if (auto problem = apply_domain_setting(settings, name, value)) {
            return Error{"<metadata> line " + std::to_string(xmlGetLineNo(child)) + ": <" + name + ">" +
                         value + "</" + name + ">: " + problem.message()};
        }
    }
    return settings;
}

class DomainReader {
public:
    enum class Scope { everything, identity, dry_run };
    DomainReader(std::string_view xml, Scope scope)
        : scope_(scope),
          reader_(xmlReaderForMemory(xml.data(), static_cast<int>(xml.size()), nullptr, nullptr,
                                     xml::parse_options() | XML_PARSE_NOCDATA),
                  &xmlFreeTextReader) {
        if (reader_) xmlTextReaderSetStructuredErrorHandler(reader_.get(), xml::remember_first_error, &errors_);
    }

    Expected<Domain> read() {
        if (!reader_) return Error{"domain XML: the XML reader could not be created"};
        std::vector<std::string> path;
        int status;
        while ((status = xmlTextReaderRead(reader_.get())) == 1) {
            if (xml::is_doctype(xmlTextReaderCurrentNode(reader_.get())))
                return Error{xml::doctype_refusal("domain XML").message()};
            if (xmlTextReaderNodeType(reader_.get()) != XML_READER_TYPE_ELEMENT) continue;
            int depth = xmlTextReaderDepth(reader_.get());
            path.resize(static_cast<std::size_t>(depth));
            std::string name = text(xmlTextReaderConstLocalName(reader_.get()));
            if (auto problem = visit(path, name)) return Error{problem.message()};
            if (!xmlTextReaderIsEmptyElement(reader_.get())) path.push_back(name);
        }
        if (auto problem = xml::refuse_errors(errors_, "domain XML", status < 0)) return Error{problem.message()};
        return finish();
    }

private:
    Problem visit(const std::vector<std::string>& path, const std::string& name) {
        if (path.empty()) {
            if (name != "domain") return "domain XML: root element is <" + name + ">, expected <domain>";
            seen_root_ = true;
            return {};
        }
        if (path.size() == 1 && (name == "name" || name == "uuid")) {
            std::string text = xml::owned(xmlTextReaderReadString(reader_.get()));
            (name == "name" ? name_ : uuid_text_) = text;
            return {};
        }
        if (scope_ == Scope::identity) return {};
        if (path.size() == 2 && path[1] == "devices" && (name == "hostdev" || name == "interface")) {
            xmlNodePtr node = xmlTextReaderExpand(reader_.get());
            if (!node) return {};  // the reader reports the parse error
            auto device = parse_device_element(node);
            if (!device) return {};
            if (!*device) return "domain XML: " + device->error();
            add_device(device->value());
            return {};
        }
        if (path.size() == 2 && path[1] == "metadata") return visit_metadata(name);
        return {};
    }

    // Our settings live in one wrapper element of our namespace. What merely looks like them is
    // ignored, but said: libvirt keeps a foreign namespace silently, and a user would never know
    // why allow-boot-vga "does nothing".
    Problem visit_metadata(const std::string& name) {
        std::string ns = text(xmlTextReaderConstNamespaceUri(reader_.get()));
        bool setting_name = name == "allow-boot-vga" || name == "firmware-errors" || name == "allow-host-critical" ||
                            name == "power-guard" || name == "rebar";
        if (ns == metadata_namespace && setting_name) {
            warnings_.push_back("<metadata> holds <" + name + "> without its wrapper: it is ignored; "
                                "put it inside <vh:vfio-hook xmlns:vh=\"" + std::string(metadata_namespace) + "\">");
            return {};
        }
        if (ns == metadata_namespace) {
            xmlNodePtr node = xmlTextReaderExpand(reader_.get());
            if (!node) return {};
            auto settings = parse_settings(node);
            if (!settings) return "domain XML: " + settings.error();
            settings_ = *settings;
            return {};
        }
        if (setting_name || name == "vfio-hook" || ns.find("vfio-hook") != std::string::npos) {
            warnings_.push_back("<metadata> holds <" + name + "> in " +
                                (ns.empty() ? std::string("no namespace") : "namespace '" + ns + "'") +
                                ": it is ignored; vfio-hook reads namespace '" + std::string(metadata_namespace) + "'");
        }
        return {};
    }

    void add_device(const HostPciDevice& device) {
        if (seen_.insert(device.address).second) devices_.push_back(device);
    }

    Expected<Domain> finish() {
        if (!seen_root_) return Error{"domain XML is empty: expected a <domain> document"};
        auto uuid = DomainUuid::parse(uuid_text_);
        // A hand-written definition before `virsh define` (libvirt adds the <uuid> then).
        if (!uuid && scope_ == Scope::dry_run && uuid_text_.find_first_not_of(" \t\r\n") == std::string::npos)
            uuid = DomainUuid::parse("00000000-0000-0000-0000-000000000000");
        if (!uuid) {
            return Error{"domain XML: <uuid> is missing or invalid ('" + uuid_text_.substr(0, 64) +
                         "')"};
        }
        return Domain{name_, *uuid, devices_, settings_, warnings_};
    }

    Scope scope_;
    Reader reader_;
    xml::ParseErrors errors_;
    bool seen_root_ = false;
    std::string name_;
    std::string uuid_text_;
    std::vector<HostPciDevice> devices_;
    std::set<PciAddress> seen_;
    DomainSettings settings_;
    std::vector<std::string> warnings_;
};

// Errors quote the input; they must stay one line whatever the input holds.
std::string one_line(std::string text) {
    for (char& c : text) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    return text;
}

Expected<Domain> parse_domain(std::string_view xml, DomainReader::Scope scope) {
    if (xml.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return Error{"domain XML is empty: expected a <domain> document"};
    }
    if (auto problem = xml::refuse_size(xml, "domain XML")) return Error{problem.message()};
    auto domain = DomainReader(xml, scope).read();
    if (!domain) return Error{one_line(domain.error())};
    return domain;
}

}  // namespace

Problem apply_domain_setting(DomainSettings& settings, std::string_view key, std::string_view value) {
    if (key == "allow-boot-vga") {
        settings.allow_boot_vga = parse_yes_no(std::string(value));
        return settings.allow_boot_vga ? Problem::none() : Problem("expected yes or no");
    }
    if (key == "firmware-errors") {
        if (value != "warn" && value != "refuse") return "expected warn or refuse";
        settings.refuse_on_firmware_errors = value == "refuse";
        return {};
    }
    if (key == "allow-host-critical") {
        bool drop = value.starts_with("-");
        auto address = PciAddress::parse(drop ? value.substr(1) : value);
        if (!address) return "expected a PCI address such as 0000:00:1f.3";
        if (drop) {
            settings.allowed_host_critical.erase(*address);
        } else {
            settings.allowed_host_critical.insert(*address);
        }
        return {};
    }
    if (key == "power-guard") {
        settings.power_guard = parse_yes_no(std::string(value));
        return settings.power_guard ? Problem::none() : Problem("expected yes or no");
    }
    if (key == "rebar") {  // issue 26
        if (value == "no") {
            settings.rebar.reset();
            return {};
        }
        auto rebar = parse_rebar_setting(value);
        if (!rebar) return rebar.error() + ", or no";
        settings.rebar = *rebar;
        return {};
    }
    return "unknown setting (known: allow-boot-vga, firmware-errors, allow-host-critical, power-guard, rebar)";
}

std::string serialize_settings(const DomainSettings& settings) {
    std::string xml = "<vfio-hook>";
    if (settings.allow_boot_vga)
        xml += std::string("<allow-boot-vga>") + (*settings.allow_boot_vga ? "yes" : "no") + "</allow-boot-vga>";
    if (settings.refuse_on_firmware_errors)
        xml += std::string("<firmware-errors>") + (*settings.refuse_on_firmware_errors ? "refuse" : "warn") +
               "</firmware-errors>";
    for (const auto& address : settings.allowed_host_critical)
        xml += "<allow-host-critical>" + address.str() + "</allow-host-critical>";
    if (settings.power_guard)
        xml += std::string("<power-guard>") + (*settings.power_guard ? "yes" : "no") + "</power-guard>";
    if (settings.rebar) xml += "<rebar>" + settings.rebar->str() + "</rebar>";
    return xml + "</vfio-hook>";
}

Expected<DomainSettings> parse_settings_element(std::string_view xml) {
    if (xml.find_first_not_of(" \t\r\n") == std::string_view::npos) return DomainSettings{};
    auto document = xml::read_document(xml, "settings XML");
    if (!document) return Error{one_line(document.error())};
    if (!xmlDocGetRootElement(document->get())) return Error{"settings XML is not well-formed"};
    auto settings = parse_settings(xmlDocGetRootElement(document->get()));
    if (!settings) return Error{one_line(settings.error())};
    return settings;
}

Expected<Domain> parse_domain_xml(std::string_view xml) {
    return parse_domain(xml, DomainReader::Scope::everything);
}

bool surely_without_pci_hostdevs(std::string_view xml) {
    auto end = xml.find_last_not_of(" \t\r\n");
    if (end == std::string_view::npos || !xml.substr(0, end + 1).ends_with("</domain>")) return false;
    for (auto at = xml.find("hostdev"); at != std::string_view::npos; at = xml.find("hostdev", at + 1)) {
        // An attribute value that is exactly 'hostdev' or "hostdev": <interface type='hostdev'>
        // (not <alias name='hostdev0'/>).
        bool quoted = at > 0 && (xml[at - 1] == '\'' || xml[at - 1] == '"');
        if (quoted && at + 7 < xml.size() && xml[at + 7] == xml[at - 1]) return false;
        if (at == 0 || xml[at - 1] != '<') continue;  // </hostdev>, <alias name='hostdev0'/>, text
        auto close = xml.find('>', at);
        if (close == std::string_view::npos) return false;
        std::string tag;
        for (char c : xml.substr(at, close - at)) {
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') tag += c;
        }
        auto type = tag.find("type=");
        if (type == std::string::npos || type + 5 >= tag.size()) return false;
        char quote = tag[type + 5];
        auto value_end = tag.find(quote, type + 6);
        if ((quote != '\'' && quote != '"') || value_end == std::string::npos) return false;
        if (tag.substr(type + 6, value_end - type - 6) == "pci") return false;
    }
    return true;
}

Expected<Domain> parse_domain_identity(std::string_view xml) {
    return parse_domain(xml, DomainReader::Scope::identity);
}

Expected<DryRunDomain> parse_domain_xml_for_dry_run(std::string_view xml) {
    auto domain = parse_domain(xml, DomainReader::Scope::dry_run);
    if (!domain) return Error{domain.error()};
    return DryRunDomain{*domain, parse_domain_identity(xml).ok()};
}

}  // namespace vfio_hook
