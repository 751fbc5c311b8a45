// Resizable BAR per VM (issue 26, point 5): `vfio-hook set VM rebar smallest|largest|SIZE`, the
// size set while the device has no driver, the recorded size back before its host driver binds,
// and a resize that fails only ever a warning. The fake kernel's resourceN_resize answers EBUSY
// while a driver is bound, as pci-sysfs.c does.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <algorithm>
#include <cerrno>

#include "core/rebar.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

const char* card = "0000:03:00.0";

std::string metadata(const std::string& rebar) {
    return "<vh:vfio-hook xmlns:vh='https://vfio-hook.org/xmlns/domain/1'><vh:rebar>" + rebar +
           "</vh:rebar></vh:vfio-hook>";
}

// An RX 7900 XTX whose BAR 0 takes 256 MB to 32 GB (bits 8 to 15) and is at 32 GB now (the
// firmware's ReBAR on), BAR 2 fixed.
struct ReBarCard : FakeHost {
    ReBarCard() {
        device(card, 0x030000, "amdgpu", 14, 0x1002, 0x744c).resizable_bar(card, 0, 0xff00, 15);
    }
    // The position in the write log of the first line that contains `part` (size(): none).
    std::size_t written_at(const std::string& part) {
        const auto& log = kernel().write_log();
        return static_cast<std::size_t>(std::find_if(log.begin(), log.end(), [&](const std::string& line) {
                                            return contains(line, part);
                                        }) - log.begin());
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(rebar)

BOOST_AUTO_TEST_CASE(the_vm_s_size_is_set_while_unbound_and_the_recorded_size_is_back_before_the_host_driver) {
    ReBarCard host;
    std::string vm = domain_xml("win11", uuid_a, {card}, false, metadata("smallest"));
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(card) == "vfio-pci");
    BOOST_TEST(host.bar_bit(card, 0) == 8u);  // 256 MB
    BOOST_TEST(!contains(prepare.err, "warning"), prepare.err);
    // After the unbind, before vfio-pci's probe.
    BOOST_TEST(host.written_at("drivers/amdgpu/unbind") < host.written_at("resource0_resize <- 8"));
    BOOST_TEST(host.written_at("resource0_resize <- 8") < host.written_at("drivers_probe"));
    auto record = read(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"));
    BOOST_TEST(contains(record, "device 0000:03:00.0 amdgpu 14 power=on d3cold=1 bar0=15"), record);

    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of(card) == "amdgpu", release.err);
    BOOST_TEST(host.bar_bit(card, 0) == 15u);  // 32 GB again
    BOOST_TEST(!contains(release.err, "warning"), release.err);
    BOOST_TEST(!contains(release.err, "failed"), release.err);
    BOOST_TEST(host.written_at("drivers/vfio-pci/unbind") < host.written_at("resource0_resize <- 15"));
    BOOST_TEST(host.written_at("resource0_resize <- 15") < host.written_at("drivers/amdgpu/bind"));
}

BOOST_AUTO_TEST_CASE(a_resize_that_fails_is_a_warning_and_the_device_moves_and_comes_home) {
    ReBarCard host;
    host.kernel().fail_write("resource0_resize", ENOSPC, 1);
    std::string vm = domain_xml("win11", uuid_a, {card}, false, metadata("largest"));
    host.resizable_bar(card, 0, 0xff00, 8);
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(contains(prepare.err, "vfio-hook: warning: 0000:03:00.0: resizing BAR 0 to 32 GB failed: writing "),
               prepare.err);
    BOOST_TEST(contains(prepare.err, "; the device moves all the same"), prepare.err);
    BOOST_TEST(host.driver_of(card) == "vfio-pci");
    BOOST_TEST(host.bar_bit(card, 0) == 8u);
    auto release = host.hook("win11", "release", "end", vm);
    BOOST_TEST(host.driver_of(card) == "amdgpu", release.err);
    // Nothing to put back: the size never changed.
    BOOST_TEST(host.written_at("resource0_resize <- 8") == host.kernel().write_log().size());
    BOOST_TEST(host.records().empty());
}

// vfio-pci will not take it: the rollback puts the recorded size back before amdgpu binds again.
BOOST_AUTO_TEST_CASE(a_failed_start_puts_the_size_back_with_the_device) {
    ReBarCard host;
    host.kernel().refuse_probe("vfio-pci");
    auto prepare = host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {card}, false, metadata("smallest")));
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(host.driver_of(card) == "amdgpu", prepare.err);
    BOOST_TEST(host.bar_bit(card, 0) == 15u);
    BOOST_TEST(host.written_at("resource0_resize <- 15") < host.written_at("drivers/amdgpu/bind"));
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_size_the_bar_cannot_take_is_a_warning_naming_the_sizes_it_takes) {
    ReBarCard host;
    std::string vm = domain_xml("win11", uuid_a, {card}, false, metadata("64G"));
    auto check = host.run({"check", "-"}, vm);
    BOOST_TEST(contains(check.out, "warning: 0000:03:00.0: rebar 64G: BAR 0 takes 256 MB to 32 GB, not 64G; left as it is"),
               check.out);
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(contains(prepare.err, "BAR 0 takes 256 MB to 32 GB, not 64G"), prepare.err);
    BOOST_TEST(host.written_at("resize") == host.kernel().write_log().size());
}

BOOST_AUTO_TEST_CASE(check_shows_each_resize_it_would_make) {
    ReBarCard host;
    auto check = host.run({"check", "-"}, domain_xml("win11", uuid_a, {card}, false, metadata("8G")));
    BOOST_TEST(check.status == 0, check.err);
    BOOST_TEST(contains(check.out, "  rebar 0000:03:00.0 BAR 0: 32 GB -> 8 GB\n"), check.out);
    BOOST_TEST(host.kernel().writes() == 0);
}

// A VM without the setting reads no BAR and writes none: the record has no sizes.
BOOST_AUTO_TEST_CASE(a_vm_without_the_setting_leaves_the_bars_alone) {
    ReBarCard host;
    std::string vm = domain_xml("win11", uuid_a, {card});
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", vm).status == 0);
    BOOST_TEST(host.bar_bit(card, 0) == 15u);
    auto record = read(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"));
    BOOST_TEST(!contains(record, "bar0="), record);
    BOOST_TEST(!contains(host.run({"check", "-"}, vm).out, "rebar"));
}

// The e2e guest's devices have no resizable BAR: one line says so, and the VM starts.
BOOST_AUTO_TEST_CASE(a_vm_whose_devices_have_no_resizable_bar_gets_one_warning) {
    FakeHost host;
    host.gpu("0000:01:00.0", "bochs-drm", 6).audio("0000:01:00.1", "snd_hda_intel", 6);
    std::string vm = domain_xml("win11", uuid_a, {"0000:01:00.0"}, false, metadata("largest"));
    auto prepare = host.hook("win11", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(contains(prepare.err, "vfio-hook: warning: rebar largest: no device of this VM has a resizable BAR (no "
                                     "resourceN_resize: no ReBAR capability, or a kernel before 6.1); nothing resized\n"),
               prepare.err);
    BOOST_TEST(prepare.err.find("warning") == prepare.err.rfind("warning"), prepare.err);  // one line
    BOOST_TEST(host.hook("win11", "release", "end", vm).status == 0);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "bochs-drm");
}

BOOST_AUTO_TEST_CASE(set_rebar_writes_the_vm_s_metadata_and_get_shows_it) {
    FakeHost host;
    host.virsh_answers["metadata"] = {std::string("")};
    auto set = host.run({"set", "win11", "rebar", "8G"});
    BOOST_TEST(set.status == 0, set.err);
    BOOST_TEST_REQUIRE(host.virsh_calls.size() == 2u);
    BOOST_TEST(contains(host.virsh_calls[1][10], "<rebar>8G</rebar>"), host.virsh_calls[1][10]);
    auto bad = host.run({"set", "win11", "rebar", "3G"});
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(contains(bad.err, "expected smallest, largest or a power-of-two size such as 256M, 8G or 16G, or no"), bad.err);
    host.virsh_answers["metadata"] = {std::string("<vfio-hook><rebar>smallest</rebar></vfio-hook>")};
    BOOST_TEST(contains(host.run({"get", "win11"}).out, "rebar = smallest\n"));
}

// The Resizable BAR capability lists 1 MB to 128 TB (its bits 4 to 31; the kernel's bitmap bits
// 0 to 27): a larger size no BAR can take is bad input, refused at `set` and never written.
BOOST_AUTO_TEST_CASE(set_rebar_refuses_a_size_above_what_the_capability_can_name) {
    FakeHost host;
    host.virsh_answers["metadata"] = {std::string("")};
    BOOST_TEST(host.run({"set", "win11", "rebar", "128T"}).status == 0);
    auto calls = host.virsh_calls.size();
    auto bad = host.run({"set", "win11", "rebar", "256T"});
    BOOST_TEST(bad.status == 2, bad.err);
    BOOST_TEST(contains(bad.err, "at most 128T"), bad.err);
    BOOST_TEST(host.virsh_calls.size() == calls);
}

BOOST_AUTO_TEST_CASE(sizes_read_as_the_kernel_counts_them) {
    BOOST_TEST(parse_rebar_setting("256M")->bit == 8u);
    BOOST_TEST(parse_rebar_setting("16GiB")->bit == 14u);
    BOOST_TEST(parse_rebar_setting("1T")->bit == 20u);
    BOOST_TEST(!parse_rebar_setting("0M"));
    BOOST_TEST(!parse_rebar_setting("8"));
    BOOST_TEST(parse_rebar_setting("8G")->str() == "8G");
    BOOST_TEST(rebar_target(*parse_rebar_setting("largest"), 0x3f00).value_or(0) == 13u);
    BOOST_TEST(!rebar_target(*parse_rebar_setting("512M"), 0x0100));
    BOOST_TEST(bar_size_from_resource("0x00000000c0000000 0x00000000cfffffff 0x000000000014220c\n", 0) == 256ULL << 20);
    BOOST_TEST(bar_size_from_resource("0x0000000000000000 0x0000000000000000 0x0000000000000000\n", 0) == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
