#include "core/domain_edit.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "core/xml_document.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>

namespace vfio_hook {
namespace {

using xml::child;
using xml::children;
using xml::Document;
using xml::named;
using xml::text;

constexpr std::string_view our_alias_prefix = "ua-vfio-hook-";

// An absent attribute reads as "".
std::string attribute(xmlNodePtr node, const char* name) { return xml::attribute(node, name).value_or(""); }

Expected<Document> parse(std::string_view xml, const std::string& what) {
    // Blanks dropped so the output is indented afresh, the same way before and after (for the diff).
    auto document = xml::read_document(xml, what, XML_PARSE_NOBLANKS);
    if (!document) return Error{document.error()};
    if (!named(xmlDocGetRootElement(document->get()), "domain")) return Error{what + " is not a libvirt domain definition"};
    return document;
}

std::string serialize(xmlNodePtr node) {
    std::unique_ptr<xmlBuffer, decltype(&xmlBufferFree)> buffer(xmlBufferCreate(), &xmlBufferFree);
    xmlNodeDump(buffer.get(), node->doc, node, 0, 1);
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buffer.get()))) + "\n";
}

// The host addresses of the PCI <hostdev>s in <devices>, each with its element; an error names
// the first hostdev whose address cannot be read (missing bus, slot or function; not a number).
Expected<std::vector<std::pair<xmlNodePtr, PciAddress>>> pci_hostdevs(xmlNodePtr devices, const std::string& what) {
    std::vector<std::pair<xmlNodePtr, PciAddress>> found;
    for (xmlNodePtr node : children(devices)) {
        if (!named(node, "hostdev")) continue;
        auto address = xml::host_pci_address(node);
        if (!address) continue;
        if (!*address) return Error{what + ": " + address->error()};
        found.emplace_back(node, address->value());
    }
    return found;
}

bool ours(xmlNodePtr hostdev) {
    return attribute(child(hostdev, "alias"), "name").starts_with(our_alias_prefix);
}

std::string hex(unsigned value, int digits) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "0x%0*x", digits, value);
    return buffer;
}

void add_hostdev(xmlNodePtr devices, const PciAddress& address) {
    xmlNodePtr hostdev = xmlNewNode(nullptr, BAD_CAST "hostdev");
    xmlNewProp(hostdev, BAD_CAST "mode", BAD_CAST "subsystem");
    xmlNewProp(hostdev, BAD_CAST "type", BAD_CAST "pci");
    xmlNewProp(hostdev, BAD_CAST "managed", BAD_CAST "no");
    xmlNodePtr source = xmlNewChild(hostdev, nullptr, BAD_CAST "source", nullptr);
    xmlNodePtr where = xmlNewChild(source, nullptr, BAD_CAST "address", nullptr);
    xmlNewProp(where, BAD_CAST "domain", BAD_CAST hex(address.domain, 4).c_str());
    xmlNewProp(where, BAD_CAST "bus", BAD_CAST hex(address.bus, 2).c_str());
    xmlNewProp(where, BAD_CAST "slot", BAD_CAST hex(address.slot, 2).c_str());
    xmlNewProp(where, BAD_CAST "function", BAD_CAST hex(address.function, 1).c_str());
    // A user alias (ua-…) survives libvirt's round trip: it is how unassign knows its own.
    std::string alias = std::string(our_alias_prefix) + address.str();
    std::replace(alias.begin(), alias.end(), ':', '-');
    std::replace(alias.begin(), alias.end(), '.', '-');
    xmlNewProp(xmlNewChild(hostdev, nullptr, BAD_CAST "alias", nullptr), BAD_CAST "name", BAD_CAST alias.c_str());
    // After the last hostdev, or at the end of <devices>.
    xmlNodePtr last = nullptr;
    for (xmlNodePtr each : children(devices)) {
        if (named(each, "hostdev")) last = each;
    }
    if (last) {
        xmlAddNextSibling(last, hostdev);
    } else {
        xmlAddChild(devices, hostdev);
    }
}

// The emulated display and sound, in the order they must go (libvirt rejects SPICE audio
// without SPICE graphics, so sound and audio leave before graphics).
struct DisplayPart {
    const char* element;
    bool spice_only;  // channels and USB redirection: only the SPICE ones
};
constexpr DisplayPart display_parts[] = {{"sound", false},   {"audio", false},  {"graphics", false},
                                         {"video", false},   {"channel", true}, {"redirdev", true}};

bool is_display_part(xmlNodePtr node, const DisplayPart& part) {
    if (!named(node, part.element)) return false;
    // libvirt ≥ 11 adds <audio type='none'/> to a VM with no display: a backend that plays
    // nothing, not an emulated device; taking it out would change the definition every run.
    if (text(node->name) == "audio" && attribute(node, "type") == "none") return false;
    return !part.spice_only || attribute(node, "type") == "spicevmc";
}

// A device put back from a backup gets its guest address anew: libvirt may have given its old
// slot to another device since ("Attempted double use of PCI Address").
void forget_guest_address(xmlNodePtr node) {
    for (xmlNodePtr each : children(node)) {
        if (!named(each, "address")) continue;
        xmlUnlinkNode(each);
        xmlFreeNode(each);
    }
}

// libvirt (≥ 7.2) keeps one audio backend per id and puts `<audio id='1' type='none'/>` in
// place of a removed SPICE one; `<sound>`/`<audio id='1'/>` points at a backend by that id. A
// backend coming back from a backup takes the place of the one with its id: a second
// `<audio id='1'>` is refused by `virsh define`.
xmlNodePtr audio_with_id(xmlNodePtr devices, const std::string& id) {
    for (xmlNodePtr node : children(devices)) {
        if (named(node, "audio") && attribute(node, "id") == id) return node;
    }
    return nullptr;
}

std::string describe(xmlNodePtr node) {
    std::string kind = attribute(node, "model");
    if (kind.empty()) kind = attribute(node, "type");
    if (kind.empty()) kind = attribute(child(node, "model"), "type");
    return text(node->name) + (kind.empty() ? "" : " " + kind);
}

void remove_display(xmlNodePtr devices, DomainEdit& edit) {
    for (const auto& part : display_parts) {
        for (xmlNodePtr node : children(devices)) {
            if (!is_display_part(node, part)) continue;
            edit.removed.push_back(describe(node));
            xmlUnlinkNode(node);
            xmlFreeNode(node);
        }
    }
    bool agent = false, network = false;
    for (xmlNodePtr node : children(devices)) {
        network |= named(node, "interface");
        agent |= named(node, "channel") && attribute(child(node, "target"), "name") == "org.qemu.guest_agent.0";
    }
    if (!agent && !network) {
        edit.warnings.push_back("with no display, no network interface and no qemu-guest-agent channel, there "
                                "is no way into this VM but its GPU's own outputs");
    }
}

xmlNodePtr devices_of(xmlDocPtr document) {
    xmlNodePtr root = xmlDocGetRootElement(document);
    xmlNodePtr devices = child(root, "devices");
    return devices ? devices : xmlNewChild(root, nullptr, BAD_CAST "devices", nullptr);
}

}  // namespace

Expected<DomainEdit> assign_devices(std::string_view xml, const std::vector<PciAddress>& devices, bool headless) {
    auto document = parse(xml, "the domain definition");
    if (!document) return Error{document.error()};
    DomainEdit edit;
    edit.before = serialize(xmlDocGetRootElement(document->get()));
    xmlNodePtr list = devices_of(document->get());
    auto hostdevs = pci_hostdevs(list, "the domain definition");
    if (!hostdevs) return Error{hostdevs.error()};
    std::vector<PciAddress> present;
    for (const auto& [node, address] : *hostdevs) present.push_back(address);
    for (const auto& address : devices) {
        if (std::find(present.begin(), present.end(), address) != present.end()) continue;
        add_hostdev(list, address);
        present.push_back(address);
        edit.added.push_back("hostdev " + address.str());
    }
    if (headless) remove_display(list, edit);
    edit.xml = serialize(xmlDocGetRootElement(document->get()));
    return edit;
}

Expected<DomainEdit> unassign_devices(std::string_view xml, const std::optional<std::vector<PciAddress>>& only,
                                      const std::optional<std::string>& restore_from) {
    auto document = parse(xml, "the domain definition");
    if (!document) return Error{document.error()};
    DomainEdit edit;
    edit.before = serialize(xmlDocGetRootElement(document->get()));
    xmlNodePtr list = devices_of(document->get());
    auto hostdevs = pci_hostdevs(list, "the domain definition");
    if (!hostdevs) return Error{hostdevs.error()};
    for (const auto& [node, address] : *hostdevs) {
        bool chosen = only ? std::find(only->begin(), only->end(), address) != only->end() : ours(node);
        if (!chosen) continue;
        edit.removed.push_back("hostdev " + address.str());
        xmlUnlinkNode(node);
        xmlFreeNode(node);
    }
    if (restore_from) {
        auto backup = parse(*restore_from, "the backup");
        if (!backup) return Error{backup.error()};
        std::vector<std::string> current;
        for (xmlNodePtr node : children(list)) {
            xmlNodePtr bare = xmlDocCopyNode(node, document->get(), 1);
            forget_guest_address(bare);
            current.push_back(serialize(bare));
            xmlFreeNode(bare);
        }
        // Back in the reverse of the order they left: graphics before SPICE audio.
        for (auto part = std::rbegin(display_parts); part != std::rend(display_parts); ++part) {
            for (xmlNodePtr node : children(devices_of(backup->get()))) {
                if (!is_display_part(node, *part)) continue;
                xmlNodePtr copy = xmlDocCopyNode(node, document->get(), 1);
                forget_guest_address(copy);
                if (std::find(current.begin(), current.end(), serialize(copy)) != current.end()) {
                    xmlFreeNode(copy);
                    continue;
                }
                if (xmlNodePtr same_id = named(copy, "audio") ? audio_with_id(list, attribute(copy, "id")) : nullptr) {
                    edit.removed.push_back(describe(same_id));
                    xmlReplaceNode(same_id, copy);
                    xmlFreeNode(same_id);
                } else {
                    xmlAddChild(list, copy);
                }
                edit.added.push_back(describe(node));
            }
        }
    }
    edit.xml = serialize(xmlDocGetRootElement(document->get()));
    return edit;
}

bool has_display(std::string_view xml) {
    auto document = parse(xml, "the definition");
    if (!document) return false;
    for (xmlNodePtr node : children(child(xmlDocGetRootElement(document->get()), "devices"))) {
        for (const auto& part : display_parts) {
            if (is_display_part(node, part)) return true;
        }
    }
    return false;
}

namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto end = text.find('\n');
        lines.push_back(text.substr(0, end));
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    }
    return lines;
}

struct DiffLine {
    char mark;  // ' ', '+' or '-'
    std::string_view text;
    std::size_t a, b;  // 1-based line numbers before and after this line
};

// Longest common subsequence, then the edit script (a domain definition is a few hundred lines).
std::vector<DiffLine> edit_script(const std::vector<std::string_view>& a, const std::vector<std::string_view>& b) {
    std::vector<std::vector<unsigned>> common(a.size() + 1, std::vector<unsigned>(b.size() + 1, 0));
    for (std::size_t i = a.size(); i-- > 0;) {
        for (std::size_t j = b.size(); j-- > 0;) {
            common[i][j] = a[i] == b[j] ? common[i + 1][j + 1] + 1 : std::max(common[i + 1][j], common[i][j + 1]);
        }
    }
    std::vector<DiffLine> script;
    std::size_t i = 0, j = 0;
    while (i < a.size() || j < b.size()) {
        if (i < a.size() && j < b.size() && a[i] == b[j]) {
            script.push_back({' ', a[i], ++i, ++j});
        } else if (j < b.size() && (i == a.size() || common[i][j + 1] >= common[i + 1][j])) {
            script.push_back({'+', b[j], i, ++j});
        } else {
            script.push_back({'-', a[i], ++i, j});
        }
    }
    return script;
}

constexpr std::size_t diff_context = 3;

// Where the hunk holding the change at `k` ends: it extends while changes are closer than twice
// the context, and keeps no more than the context after its last change.
std::size_t hunk_end(const std::vector<DiffLine>& script, std::size_t k) {
    std::size_t end = k;
    for (std::size_t gap = 0; end < script.size() && gap <= 2 * diff_context; ++end) {
        gap = script[end].mark == ' ' ? gap + 1 : 0;
    }
    while (end > k && script[end - 1].mark == ' ' && end - k > 0) {
        std::size_t trailing = 0;
        for (std::size_t t = end; t > 0 && script[t - 1].mark == ' '; --t) ++trailing;
        if (trailing <= diff_context) break;
        --end;
    }
    return end;
}

// "@@ -A,N +B,M @@" and the hunk's lines.
std::string hunk(const std::vector<DiffLine>& script, std::size_t start, std::size_t end) {
    std::size_t a_count = 0, b_count = 0;
    for (std::size_t t = start; t < end; ++t) {
        if (script[t].mark != '+') ++a_count;
        if (script[t].mark != '-') ++b_count;
    }
    std::size_t a_start = script[start].mark == '+' ? script[start].a + 1 : script[start].a;
    std::size_t b_start = script[start].mark == '-' ? script[start].b + 1 : script[start].b;
    std::string out = "@@ -" + std::to_string(a_count ? a_start : a_start - 1) + "," + std::to_string(a_count) + " +" +
                      std::to_string(b_count ? b_start : b_start - 1) + "," + std::to_string(b_count) + " @@\n";
    for (std::size_t t = start; t < end; ++t) out += script[t].mark + std::string(script[t].text) + "\n";
    return out;
}

}  // namespace

std::string unified_diff(std::string_view before, std::string_view after, const std::string& name_before,
                         const std::string& name_after) {
    auto script = edit_script(lines_of(before), lines_of(after));
    std::string out;
    for (std::size_t k = 0; k < script.size();) {
        if (script[k].mark == ' ') {
            ++k;
            continue;
        }
        // A hunk from `diff_context` lines before this change.
        std::size_t start = k >= diff_context ? k - diff_context : 0, end = hunk_end(script, k);
        if (out.empty()) out = "--- " + name_before + "\n+++ " + name_after + "\n";
        out += hunk(script, start, end);
        k = end;
    }
    return out;
}

}  // namespace vfio_hook
