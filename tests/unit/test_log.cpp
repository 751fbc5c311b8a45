#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fake_host.hpp"
#include "host/log.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

BOOST_AUTO_TEST_SUITE(journald)

BOOST_AUTO_TEST_CASE(datagrams_use_the_native_protocol_with_binary_values_for_newlines) {
    auto datagram = journald_datagram({{"MESSAGE", "one"}, {"DOMAIN", "a\nb"}});
    std::string expected = "MESSAGE=one\nDOMAIN\n";
    expected += std::string("\x03\0\0\0\0\0\0\0", 8) + "a\nb\n";
    BOOST_TEST(datagram == expected);
}

BOOST_AUTO_TEST_CASE(hook_runs_log_structured_fields_to_the_journal_socket) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14);
    std::filesystem::create_directories(host.root() / "run/systemd/journal");
    auto socket_path = (host.root() / "run/systemd/journal/socket").string();
    int journal = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
    BOOST_TEST_REQUIRE(::bind(journal, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);

    auto run = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:01:00.0"}));
    BOOST_TEST(run.status == 0);
    char buffer[65536];
    std::string all;
    ssize_t n;
    while ((n = ::recv(journal, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) all += std::string(buffer, n) + "\n--\n";
    ::close(journal);
    BOOST_TEST(all.find("SYSLOG_IDENTIFIER=vfio-hook") != std::string::npos, all);
    BOOST_TEST(all.find("DOMAIN=win11") != std::string::npos);
    BOOST_TEST(all.find("DOMAIN_UUID=" + std::string(uuid_a)) != std::string::npos);
    BOOST_TEST(all.find("OPERATION=prepare") != std::string::npos);
    BOOST_TEST(all.find("PCI_ADDRESS=0000:01:00.0") != std::string::npos);
    BOOST_TEST(all.find("DRIVER_FROM=nvidia") != std::string::npos);
    BOOST_TEST(all.find("DRIVER_TO=vfio-pci") != std::string::npos);
    BOOST_TEST(all.find("PRIORITY=6") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_move_and_each_prepare_and_release_log_how_long_they_took) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).audio("0000:01:00.1", "snd_hda_intel", 14);
    std::filesystem::create_directories(host.root() / "run/systemd/journal");
    auto socket_path = (host.root() / "run/systemd/journal/socket").string();
    int journal = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
    BOOST_TEST_REQUIRE(::bind(journal, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    std::string xml = domain_xml("win11", uuid_a, {"0000:01:00.0"});
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", xml).status == 0);
    BOOST_TEST_REQUIRE(host.hook("win11", "release", "end", xml).status == 0);
    std::vector<std::string> entries;
    char buffer[65536];
    ssize_t n;
    while ((n = ::recv(journal, buffer, sizeof buffer, MSG_DONTWAIT)) > 0) entries.emplace_back(buffer, n);
    ::close(journal);
    auto with = [&](const std::string& a, const std::string& b) {
        return std::count_if(entries.begin(), entries.end(), [&](const std::string& entry) {
            return entry.find(a) != std::string::npos && entry.find(b) != std::string::npos;
        });
    };
    BOOST_TEST(with("PCI_ADDRESS=0000:01:00.0\nDRIVER_FROM=nvidia\nDRIVER_TO=vfio-pci", "DURATION_MS=") == 1);
    BOOST_TEST(with("PCI_ADDRESS=0000:01:00.1\nDRIVER_FROM=vfio-pci\nDRIVER_TO=snd_hda_intel", "DURATION_MS=") == 1);
    BOOST_TEST(with("OPERATION=prepare", "DEVICE_COUNT=2") == 1);
    BOOST_TEST(with("OPERATION=release", "DEVICE_COUNT=2") == 1);
    BOOST_TEST(with("DOMAIN=win11", "MESSAGE=release done: 2 device(s) home in ") == 1);
}

BOOST_AUTO_TEST_SUITE_END()
