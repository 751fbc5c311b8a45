#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/state_record.hpp"

using namespace vfio_hook;

BOOST_AUTO_TEST_SUITE(state_record)

BOOST_AUTO_TEST_CASE(a_record_survives_a_round_trip_with_a_hostile_domain_name) {
    StateRecord record{"4dea22b3-1d52-d8f3-2516-782e98ab3fa0", "win 11/../x\nowner manual%", {}};
    record.devices.push_back({*PciAddress::parse("0000:01:00.0"), "nvidia", 14});
    record.devices.push_back({*PciAddress::parse("0000:01:00.1"), std::nullopt, std::nullopt});
    auto text = serialize_record(record);
    auto parsed = parse_record(text, "r.record");
    BOOST_TEST_REQUIRE(parsed.ok(), (parsed.ok() ? "" : parsed.error()));
    BOOST_TEST(parsed->owner == record.owner);
    BOOST_TEST(parsed->domain_name == record.domain_name);
    BOOST_TEST_REQUIRE(parsed->devices.size() == 2u);
    BOOST_TEST(parsed->devices[0].original_driver.value() == "nvidia");
    BOOST_TEST(parsed->devices[0].group.value() == 14u);
    BOOST_TEST(!parsed->devices[1].original_driver.has_value());
}

BOOST_AUTO_TEST_CASE(corrupt_records_are_errors_naming_file_and_line) {
    auto bad_address = parse_record("vfio-hook-record 1\nowner manual\ndevice 0000:01:00.9 nvidia 1\n", "x.record");
    BOOST_TEST_REQUIRE(!bad_address.ok());
    BOOST_TEST(bad_address.error().find("x.record:3") != std::string::npos, bad_address.error());
    BOOST_TEST(!parse_record("", "x").ok());
    BOOST_TEST(!parse_record("something else\n", "x").ok());
    BOOST_TEST(!parse_record("vfio-hook-record 1\nowner ../../etc\n", "x").ok());
}

BOOST_AUTO_TEST_CASE(only_canonical_uuids_and_manual_are_valid_owners) {
    BOOST_TEST(is_valid_owner("manual"));
    BOOST_TEST(is_valid_owner("4dea22b3-1d52-d8f3-2516-782e98ab3fa0"));
    BOOST_TEST(!is_valid_owner("4DEA22B3-1D52-D8F3-2516-782E98AB3FA0"));
    BOOST_TEST(!is_valid_owner("win11"));
    BOOST_TEST(!is_valid_owner("../lock"));
}

BOOST_AUTO_TEST_SUITE_END()
