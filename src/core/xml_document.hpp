#pragma once
// The one way vfio-hook reads XML from outside (a domain definition from libvirt or the user, a
// backup, what `virsh metadata` prints): libxml2 with network, DTD loading and entity expansion
// off, a DOCTYPE refused, an encoding libxml2 cannot read named, a size limit; and the accessors
// domain_xml and domain_edit share, with the one reader of a device's host PCI address.

#include <libxml/tree.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.hpp"
#include "core/pci_address.hpp"
#include "core/problem.hpp"

namespace vfio_hook::xml {

// Largest document we read; libvirt's own definitions are kilobytes.
inline constexpr std::size_t max_bytes = 64 * 1024 * 1024;

// No network, no DTD loading, entities left as references (XML_PARSE_NOENT is not given), and
// libxml2's own printing off: its errors are collected (ParseErrors) and said in one line.
int parse_options();

// The first error libxml2 reports while parsing, and the encoding it could not read if that was it.
struct ParseErrors {
    std::string first;
    int first_code = 0;
    std::string encoding;
};
// A structured error handler (xmlStructuredErrorFunc) filling the ParseErrors `arg` points to.
void remember_first_error(void* arg, xmlErrorPtr error);

// Before parsing: `what` ("domain XML") is over max_bytes.
Problem refuse_size(std::string_view xml, const std::string& what);
// After parsing: `node` is the document's DOCTYPE (libvirt never writes one; refused outright),
// and the refusal to give for it.
bool is_doctype(const xmlNode* node);
Problem doctype_refusal(const std::string& what);
// After parsing: the refusal the collected errors call for (an encoding libxml2 is built without,
// or "not well-formed" with the first error), none when there were none.
Problem refuse_errors(const ParseErrors& errors, const std::string& what, bool failed);

using Document = std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)>;
// A whole document in memory, parsed with parse_options() | extra_options, after the refusals
// above; errors start with `what`. Whether the root is the right element is the caller's.
Expected<Document> read_document(std::string_view xml, const std::string& what, int extra_options = 0);

// Accessors. text() of a null string is "", owned() frees what libxml2 allocated.
std::string text(const xmlChar* value);
std::string owned(xmlChar* value);
std::optional<std::string> attribute(const xmlNode* node, const char* name);
bool named(const xmlNode* node, std::string_view name);  // an element with this name
xmlNodePtr child(const xmlNode* node, std::string_view name);  // the first such child element
std::vector<xmlNodePtr> children(const xmlNode* node);         // the child elements

// The host PCI address a device element names: <hostdev mode='subsystem' type='pci'> and
// <interface type='hostdev'>, whose <source><address> holds it (the element's own <address> is
// where the guest sees the device). nullopt for any other element (a USB hostdev, an emulated NIC);
// an error naming the element and its line when <source><address> is missing, lacks bus, slot or
// function (libvirt writes all four; only the domain defaults to 0), or holds what is not a number
// in range. Numbers are read as libvirt reads them, base 0: "0x1f", "31" and "037" are one slot.
std::optional<Expected<PciAddress>> host_pci_address(const xmlNode* device);

}  // namespace vfio_hook::xml
