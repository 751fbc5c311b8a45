#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include "core/domain_xml.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// As virt-manager writes it (q35, OVMF), live XML with libvirt-assigned guest addresses.
const char* virt_manager_xml = R"(<domain type='kvm' id='3'>
  <name>win11</name>
  <uuid>4DEA22B3-1D52-D8F3-2516-782E98AB3FA0</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://microsoft.com/win/11"/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='KiB'>16777216</memory>
  <vcpu placement='static'>8</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/win11_VARS.fd</nvram>
  </os>
  <features><acpi/><apic/><hyperv mode='custom'><relaxed state='on'/></hyperv><smm state='on'/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='/var/lib/libvirt/images/win11.qcow2'/>
      <target dev='sda' bus='sata'/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='pci' index='1' model='pcie-root-port'>
      <model name='pcie-root-port'/>
      <target chassis='1' port='0x10'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0' multifunction='on'/>
    </controller>
    <interface type='network'>
      <mac address='52:54:00:6b:3c:58'/>
      <source network='default'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </interface>
    <interface type='hostdev' managed='yes'>
      <mac address='52:54:00:6d:90:02'/>
      <source>
        <address type='pci' domain='0x0000' bus='0x04' slot='0x10' function='0x1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x0a' slot='0x00' function='0x0'/>
      </source>
      <alias name='hostdev0'/>
      <rom bar='on'/>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='no'>
      <source>
        <address domain='0x0000' bus='0x0a' slot='0x00' function='0x1'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source><vendor id='0x046d'/><product id='0xc52b'/></source>
      <address type='usb' bus='0' port='1'/>
    </hostdev>
  </devices>
</domain>
)";

}  // namespace

BOOST_AUTO_TEST_SUITE(domain_xml)

BOOST_AUTO_TEST_CASE(host_addresses_come_from_source_not_from_the_guest_address) {
    auto domain = parse_domain_xml(virt_manager_xml);
    BOOST_TEST_REQUIRE(domain.ok(), (domain.ok() ? "" : domain.error()));
    BOOST_TEST(domain->name == "win11");
    BOOST_TEST(domain->uuid.str() == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
    BOOST_TEST_REQUIRE(domain->pci_devices.size() == 3u);
    BOOST_TEST(domain->pci_devices[0].address.str() == "0000:04:10.1");
    BOOST_TEST(domain->pci_devices[0].element == "interface");
    BOOST_TEST(domain->pci_devices[1].address.str() == "0000:0a:00.0");
    BOOST_TEST(domain->pci_devices[1].managed);
    BOOST_TEST(domain->pci_devices[2].address.str() == "0000:0a:00.1");
    BOOST_TEST(!domain->pci_devices[2].managed);
}

BOOST_AUTO_TEST_CASE(a_domain_without_hostdevs_has_no_pci_devices) {
    auto domain = parse_domain_xml("<domain><name>plain</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><devices><disk/></devices></domain>");
    BOOST_TEST_REQUIRE(domain.ok());
    BOOST_TEST(domain->pci_devices.empty());
}

BOOST_AUTO_TEST_CASE(decimal_octal_and_mixed_case_hex_read_as_libvirt_reads_them) {
    auto domain = parse_domain_xml(R"(<domain><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><devices>
      <hostdev mode='subsystem' type='pci'><source><address domain='0' bus='10' slot='0X1F' function='07'/></source></hostdev>
      <hostdev mode='subsystem' type='pci'><source><address bus='0xAb' slot='0x00' function='0x0'/></source></hostdev>
      <hostdev mode='subsystem' type='pci'><source><address bus='0xab' slot='0x00' function='0x0'/></source></hostdev>
    </devices></domain>)");
    BOOST_TEST_REQUIRE(domain.ok(), (domain.ok() ? "" : domain.error()));
    BOOST_TEST_REQUIRE(domain->pci_devices.size() == 2u);  // the duplicate is listed once
    BOOST_TEST(domain->pci_devices[0].address.str() == "0000:0a:1f.7");
    BOOST_TEST(domain->pci_devices[1].address.str() == "0000:ab:00.0");
}

BOOST_AUTO_TEST_CASE(out_of_range_addresses_are_refused_naming_the_element_and_line) {
    for (const char* address : {"bus='0x100' slot='0' function='0'", "bus='0' slot='0' function='8'",
                                "bus='0' slot='0x20' function='0'", "bus='-1' slot='0' function='0'",
                                "bus='zz' slot='0' function='0'", "slot='0' function='0'"}) {
        std::string xml = std::string("<domain><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><devices>\n"
                                      "<hostdev mode='subsystem' type='pci'><source><address ") +
                          address + "/></source></hostdev></devices></domain>";
        auto domain = parse_domain_xml(xml);
        BOOST_TEST_REQUIRE(!domain.ok(), address);
        BOOST_TEST(domain.error().find("<hostdev> on line 2") != std::string::npos, domain.error());
    }
}

// The hook and `check FILE` read a hostdev without bus, slot or function as an error naming it,
// as assign does (test_domain_edit): never as device 0 on that bus, which could be another device.
BOOST_AUTO_TEST_CASE(check_refuses_a_hostdev_without_bus_slot_or_function) {
    Desktop host;
    for (const char* missing : {"bus", "slot", "function"}) {
        std::string address = std::string("domain='0x0000' bus='0x01' slot='0x00' function='0x0'");
        address.erase(address.find(std::string(missing) + "="), std::string(missing).size() + 7);
        fs::path file = host.root() / "win11.xml";
        std::ofstream(file) << "<domain><name>win11</name><uuid>" << uuid_a << "</uuid><devices>\n"
                            << "<hostdev mode='subsystem' type='pci'><source><address " << address
                            << "/></source></hostdev></devices></domain>\n";
        auto check = host.run({"check", file.string()});
        BOOST_TEST(check.status != 0, missing);
        BOOST_TEST(contains(check.err, "<hostdev> on line 2: <source><address> has no '" + std::string(missing) + "' attribute"),
                   check.err);
        BOOST_TEST(std::count(check.err.begin(), check.err.end(), '\n') == 1, check.err);
    }
}

BOOST_AUTO_TEST_CASE(empty_and_malformed_input_give_one_clear_line) {
    auto empty = parse_domain_xml("  \n");
    BOOST_TEST_REQUIRE(!empty.ok());
    BOOST_TEST(empty.error().find("empty") != std::string::npos);
    auto broken = parse_domain_xml("<domain><name>x</name>\n<devices><hostdev></devices></domain>");
    BOOST_TEST_REQUIRE(!broken.ok());
    BOOST_TEST(broken.error().find("not well-formed: line 2") != std::string::npos, broken.error());
    BOOST_TEST(broken.error().find('\n') == std::string::npos);
    auto wrong_root = parse_domain_xml("<network><name>x</name></network>");
    BOOST_TEST(!wrong_root.ok());
    auto no_uuid = parse_domain_xml("<domain><name>x</name></domain>");
    BOOST_TEST_REQUIRE(!no_uuid.ok());
    BOOST_TEST(no_uuid.error().find("<uuid>") != std::string::npos);
    auto bad_uuid = parse_domain_xml("<domain><name>x</name><uuid>../../etc/passwd</uuid></domain>");
    BOOST_TEST(!bad_uuid.ok());
}

// libxml2 is built without ICU and iconv (docs/lean-binary.md): its built-in encodings still read,
// any other is named in one line.
BOOST_AUTO_TEST_CASE(built_in_encodings_read_and_others_are_named) {
    std::string utf8 = "<domain><name>caf\xc3\xa9</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>";
    std::string utf16 = "\xff\xfe";  // UTF-16LE with its byte-order mark
    for (unsigned char c : std::string("<?xml version='1.0' encoding='UTF-16'?>") + "<domain><name>caf")
        utf16 += {static_cast<char>(c), '\0'};
    utf16 += {'\xe9', '\0'};
    for (unsigned char c : std::string("</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>"))
        utf16 += {static_cast<char>(c), '\0'};
    for (const auto& xml : {utf8, utf16}) {
        auto domain = parse_domain_xml(xml);
        BOOST_TEST_REQUIRE(domain.ok(), (domain.ok() ? "" : domain.error()));
        BOOST_TEST(domain.value().name == "caf\xc3\xa9");
    }
    auto koi8 = parse_domain_xml("<?xml version='1.0' encoding='KOI8-R'?>\n<domain><name>x</name></domain>");
    BOOST_TEST_REQUIRE(!koi8.ok());
    BOOST_TEST(koi8.error().find("declares encoding 'KOI8-R', which vfio-hook does not read") != std::string::npos,
               koi8.error());
}

BOOST_AUTO_TEST_CASE(entity_tricks_are_refused_without_reading_files_or_expanding) {
    const char* external = R"(<?xml version="1.0"?>
<!DOCTYPE domain [ <!ENTITY secret SYSTEM "file:///etc/shadow"> ]>
<domain><name>&secret;</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>)";
    auto parsed = parse_domain_xml(external);
    BOOST_TEST_REQUIRE(!parsed.ok());
    BOOST_TEST(parsed.error().find("DOCTYPE") != std::string::npos, parsed.error());

    std::string bomb = "<?xml version='1.0'?>\n<!DOCTYPE domain [\n<!ENTITY a0 'dos'>\n";
    for (int i = 1; i < 12; ++i) {
        std::string refs;
        for (int j = 0; j < 10; ++j) refs += "&a" + std::to_string(i - 1) + ";";
        bomb += "<!ENTITY a" + std::to_string(i) + " '" + refs + "'>\n";
    }
    bomb += "]>\n<domain><name>&a11;</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid></domain>";
    auto start = std::chrono::steady_clock::now();
    auto exploded = parse_domain_xml(bomb);
    BOOST_TEST(!exploded.ok());
    BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(5)));

    auto network = parse_domain_xml(R"(<!DOCTYPE domain SYSTEM "http://127.0.0.1:9/x.dtd"><domain/>)");
    BOOST_TEST(!network.ok());
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error_not_a_crash) {
    std::string deep = "<domain><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>";
    for (int i = 0; i < 100000; ++i) deep += "<x>";
    for (int i = 0; i < 100000; ++i) deep += "</x>";
    deep += "</domain>";
    auto parsed = parse_domain_xml(deep);
    BOOST_TEST(!parsed.ok());
}

BOOST_AUTO_TEST_CASE(a_huge_domain_with_thousands_of_devices_parses) {
    std::string xml = "<domain><name>big</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><devices>";
    for (int i = 0; i < 50000; ++i) {
        xml += "<hostdev mode='subsystem' type='pci'><source><address domain='" + std::to_string(i / 256) +
               "' bus='" + std::to_string(i % 256) + "' slot='0x00' function='0x0'/></source>"
               "<address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></hostdev>";
    }
    xml += "</devices></domain>";
    BOOST_TEST(xml.size() > 8'000'000u);
    auto parsed = parse_domain_xml(xml);
    BOOST_TEST_REQUIRE(parsed.ok(), (parsed.ok() ? "" : parsed.error()));
    BOOST_TEST(parsed->pci_devices.size() == 50000u);
}

BOOST_AUTO_TEST_CASE(our_metadata_sets_per_vm_settings) {
    auto domain = parse_domain_xml(R"(<domain><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
      <metadata><vh:vfio-hook xmlns:vh="https://vfio-hook.org/xmlns/domain/1">
        <vh:allow-boot-vga>yes</vh:allow-boot-vga><vh:firmware-errors>refuse</vh:firmware-errors>
      </vh:vfio-hook></metadata></domain>)");
    BOOST_TEST_REQUIRE(domain.ok(), (domain.ok() ? "" : domain.error()));
    BOOST_TEST(domain->settings.allow_boot_vga.value_or(false));
    BOOST_TEST(domain->settings.refuse_on_firmware_errors.value_or(false));

    auto unknown = parse_domain_xml(R"(<domain><name>d</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
      <metadata><vh:vfio-hook xmlns:vh="https://vfio-hook.org/xmlns/domain/1"><vh:alow-boot-vga>yes</vh:alow-boot-vga>
      </vh:vfio-hook></metadata></domain>)");
    BOOST_TEST_REQUIRE(!unknown.ok());
    BOOST_TEST(unknown.error().find("alow-boot-vga") != std::string::npos);
}

// The hook's null path skips the parse only when this says so: every way a PCI device can be
// named must say no, and the parse must agree wherever it says yes.
BOOST_AUTO_TEST_CASE(the_null_path_check_never_misses_a_pci_device) {
    auto domain = [](const std::string& devices) {
        return "<domain type='kvm'><name>d</name><uuid>6b696c6c-7465-7374-0000-000000000001</uuid><devices>" +
               devices + "</devices></domain>\n";
    };
    const std::string pci_source = "<source><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>";
    const std::string usb = "<hostdev mode='subsystem' type='usb' managed='yes'><source><vendor id='0x046d'/>"
                            "<product id='0xc52b'/></source><alias name='hostdev0'/></hostdev>";
    BOOST_TEST(surely_without_pci_hostdevs(domain("")));
    BOOST_TEST(surely_without_pci_hostdevs(domain(usb)));
    BOOST_TEST(surely_without_pci_hostdevs(domain("<interface type='network'><source network='default'/></interface>")));
    for (const std::string& pci : {
             "<hostdev mode='subsystem' type='pci' managed='no'>" + pci_source + "</hostdev>",
             "<hostdev\n  mode=\"subsystem\"\n  type = \"pci\">" + pci_source + "</hostdev>",
             "<interface type='hostdev' managed='yes'>" + pci_source + "</interface>",
             "<interface type=\"hostdev\">" + pci_source + "</interface>",
             "<hostdev mode='subsystem'>" + pci_source + "</hostdev>",  // no type: cannot tell
             usb + "<hostdev mode='subsystem' type='pci'>" + pci_source + "</hostdev>",
         }) {
        BOOST_TEST(!surely_without_pci_hostdevs(domain(pci)), pci);
    }
    // Cut short (a partial read): whatever is missing could have been a hostdev.
    BOOST_TEST(!surely_without_pci_hostdevs("<domain type='kvm'><name>d</name><devices>"));
    BOOST_TEST(!surely_without_pci_hostdevs(""));
    // Where it says yes, the parse finds no PCI device either (virt-manager's domain minus its PCI hostdevs).
    std::ifstream file(std::string(VFIO_HOOK_SOURCE_DIR) + "/bench/data/virt-manager-win11.xml");
    std::string whole((std::istreambuf_iterator<char>(file)), {});
    BOOST_TEST_REQUIRE(!whole.empty());
    BOOST_TEST(!surely_without_pci_hostdevs(whole));
    BOOST_TEST(parse_domain_xml(whole)->pci_devices.size() > 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(domain_xml_errors)

BOOST_AUTO_TEST_CASE(errors_stay_one_line_whatever_the_input_quotes) {
    for (const char* xml : {"<domain><name>x</name><uuid>ab\ncd</uuid></domain>",
                            "<domain><name>x</name><uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><metadata>"
                            "<vh:vfio-hook xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\"><vh:allow-boot-vga>y\nes"
                            "</vh:allow-boot-vga></vh:vfio-hook></metadata></domain>",
                            "<domain>\n<name>x</name>\n<\n"}) {
        auto parsed = parse_domain_xml(xml);
        BOOST_TEST_REQUIRE(!parsed.ok());
        BOOST_TEST(parsed.error().find('\n') == std::string::npos, parsed.error());
    }
}

BOOST_AUTO_TEST_SUITE_END()
