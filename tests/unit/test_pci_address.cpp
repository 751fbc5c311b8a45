#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/pci_address.hpp"

using vfio_hook::PciAddress;

BOOST_AUTO_TEST_SUITE(pci_address)

BOOST_AUTO_TEST_CASE(full_and_short_forms_parse_to_the_canonical_text) {
    BOOST_TEST(PciAddress::parse("0000:01:00.0")->str() == "0000:01:00.0");
    BOOST_TEST(PciAddress::parse("01:00.1")->str() == "0000:01:00.1");
    BOOST_TEST(PciAddress::parse("000A:0B:1F.7")->str() == "000a:0b:1f.7");
}

BOOST_AUTO_TEST_CASE(out_of_range_and_malformed_addresses_are_rejected) {
    for (const char* text : {"0000:01:20.0", "0000:01:00.8", "0000:1:00.0", "0000:01:00", "",
                             "0000:01:00.0 ", "../../etc", "0000:0g:00.0", "00000:01:00.0"}) {
        BOOST_TEST(!PciAddress::parse(text).has_value(), text);
    }
}

BOOST_AUTO_TEST_CASE(from_parts_checks_every_field) {
    BOOST_TEST(PciAddress::from_parts(0, 0xff, 0x1f, 7).has_value());
    BOOST_TEST(!PciAddress::from_parts(0, 0x100, 0, 0).has_value());
    BOOST_TEST(!PciAddress::from_parts(0, 0, 0x20, 0).has_value());
    BOOST_TEST(!PciAddress::from_parts(0, 0, 0, 8).has_value());
    BOOST_TEST(PciAddress::from_parts(0x10000, 0, 0, 0).has_value());  // Intel VMD
    BOOST_TEST(!PciAddress::from_parts(0x100000000UL, 0, 0, 0).has_value());
}

BOOST_AUTO_TEST_CASE(virsh_node_device_names_and_vmd_domains_parse_too) {
    BOOST_TEST(PciAddress::parse("pci_0000_01_00_1")->str() == "0000:01:00.1");
    BOOST_TEST(PciAddress::parse("pci_10000_e1_00_0")->str() == "10000:e1:00.0");
    BOOST_TEST(PciAddress::parse("10000:e1:00.0")->str() == "10000:e1:00.0");
    // The widest domain the parser takes prints whole (the fuzzer found it cut to "…:00." once).
    BOOST_TEST(PciAddress::parse("ffffffff:ff:1f.7")->str() == "ffffffff:ff:1f.7");
    for (const char* text : {"pci_0000_01_00", "pci_0000:01:00.0", "pci_", "pci_0000_01_00_0_", "010000:e1:00.0",
                             "123456789:00:00.0", "pci_00000_01_00_0"}) {
        BOOST_TEST(!PciAddress::parse(text).has_value(), text);
    }
}

BOOST_AUTO_TEST_SUITE_END()
