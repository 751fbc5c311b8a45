// VFIO variant drivers (issue 26, point 6): a hostdev's <driver model='…'/> is honoured; otherwise
// the driver is chosen as libvirt chooses it (modules.alias, fewest wildcards), vfio-pci the
// fallback; the record keeps which, so release and recover find it.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <algorithm>

#include "core/vfio_driver.hpp"
#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

const char* gh200 = "0009:01:00.0";

// modules.alias as a 6.12 kernel has it: vfio-pci matches everything; nvgrace-gpu its GH200
// IDs; a made-up variant that matches any NVIDIA device, with more wildcards.
const std::string aliases =
    "alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau\n"
    "alias vfio_pci:v*d*sv*sd*bc*sc*i* vfio_pci\n"
    "alias vfio_pci:v000010DEd*sv*sd*bc*sc*i* nvidia_any_vfio_pci\n"
    "alias vfio_pci:v000010DEd00002342sv*sd*bc*sc*i* nvgrace_gpu_vfio_pci\n";

// A GH200 on the host's nvidia driver; nvgrace-gpu-vfio-pci's module is installed, not loaded,
// and its driver directory is spelled with dashes.
struct GraceHopper : FakeHost {
    GraceHopper() {
        device(gh200, 0x030200, "nvidia", 20, 0x10de, 0x2342);
        modules_alias(aliases);
        vfio_variant("nvgrace_gpu_vfio_pci", "nvgrace-gpu-vfio-pci");
        vfio_variant("nvidia_any_vfio_pci", "nvidia_any_vfio_pci");
    }
    bool has_vfio_device() { return fs::exists(root() / "sys/bus/pci/devices" / gh200 / "vfio-dev"); }
};

std::string with_driver_model(std::string xml, const std::string& model) {
    auto at = xml.find("      <source>");
    return xml.insert(at, "      <driver name='vfio' model='" + model + "'/>\n");
}

std::string record_of(const FakeHost& host) {
    return read(host.root() / "run/vfio-hook/records" / (std::string(uuid_a) + ".record"));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(vfio_variant_driver)

BOOST_AUTO_TEST_CASE(the_variant_with_the_fewest_wildcards_is_loaded_bound_recorded_and_left_at_release) {
    GraceHopper host;
    std::string vm = domain_xml("gh200", uuid_a, {gh200});
    auto check = host.run({"check", "-"}, vm);
    BOOST_TEST(contains(check.out, "  vfio  0009:01:00.0: nvgrace_gpu_vfio_pci (modules.alias)\n"), check.out);
    auto prepare = host.hook("gh200", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(gh200) == "nvgrace-gpu-vfio-pci");
    BOOST_TEST(host.override_of(gh200) == "nvgrace-gpu-vfio-pci");
    BOOST_TEST(host.has_vfio_device());
    const auto& loaded = host.kernel().loaded_modules;
    BOOST_TEST((std::find(loaded.begin(), loaded.end(), "nvgrace_gpu_vfio_pci") != loaded.end()));
    BOOST_TEST(contains(record_of(host), "device 0009:01:00.0 nvidia 20 power=on d3cold=1 vfio=nvgrace-gpu-vfio-pci"),
               record_of(host));

    auto release = host.hook("gh200", "release", "end", vm);
    BOOST_TEST(release.status == 0);
    BOOST_TEST(host.driver_of(gh200) == "nvidia", release.err);
    BOOST_TEST(host.override_of(gh200) == "");
    BOOST_TEST(!host.has_vfio_device());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(a_hostdev_s_driver_model_is_honoured) {
    GraceHopper host;
    std::string vm = with_driver_model(domain_xml("gh200", uuid_a, {gh200}), "vfio-pci");
    auto prepare = host.hook("gh200", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(host.driver_of(gh200) == "vfio-pci");
    BOOST_TEST(!contains(record_of(host), "vfio="), record_of(host));
    BOOST_TEST(host.hook("gh200", "release", "end", vm).status == 0);
    BOOST_TEST(host.driver_of(gh200) == "nvidia");

    std::string other = with_driver_model(domain_xml("gh200", uuid_a, {gh200}), "nvidia_any_vfio_pci");
    BOOST_TEST_REQUIRE(host.hook("gh200", "prepare", "begin", other).status == 0);
    BOOST_TEST(host.driver_of(gh200) == "nvidia_any_vfio_pci");
}

BOOST_AUTO_TEST_CASE(a_driver_model_that_will_not_load_refuses_and_moves_nothing) {
    GraceHopper host;
    host.kernel().refuse_module_load();
    std::string vm = with_driver_model(domain_xml("gh200", uuid_a, {gh200}), "nvgrace_gpu_vfio_pci");
    auto prepare = host.hook("gh200", "prepare", "begin", vm);
    BOOST_TEST(prepare.status == 1);
    BOOST_TEST(contains(prepare.err, "0009:01:00.0: the VFIO driver nvgrace_gpu_vfio_pci (the domain's <driver model>) "
                                     "is not available and `modprobe nvgrace_gpu_vfio_pci` failed"),
               prepare.err);
    BOOST_TEST(contains(prepare.err, "nothing was moved"), prepare.err);
    BOOST_TEST(host.driver_of(gh200) == "nvidia");
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_CASE(a_variant_from_modules_alias_that_will_not_load_falls_back_to_vfio_pci) {
    GraceHopper host;
    host.kernel().refuse_module_load();
    std::string vm = domain_xml("gh200", uuid_a, {gh200});
    auto prepare = host.hook("gh200", "prepare", "begin", vm);
    BOOST_TEST_REQUIRE(prepare.status == 0, prepare.err);
    BOOST_TEST(contains(prepare.err, "; using vfio-pci"), prepare.err);
    BOOST_TEST(host.driver_of(gh200) == "vfio-pci");
}

// A variant whose module loads but whose driver will not take the device (its probe fails): the
// start is refused, and the device is back on its host driver with nothing recorded.
BOOST_AUTO_TEST_CASE(a_variant_that_refuses_the_device_rolls_the_start_back) {
    GraceHopper host;
    host.kernel().refuse_probe("nvgrace-gpu-vfio-pci");
    std::string vm = domain_xml("gh200", uuid_a, {gh200});
    auto prepare = host.hook("gh200", "prepare", "begin", vm);
    BOOST_TEST(prepare.status == 1, prepare.err);
    BOOST_TEST(contains(prepare.err, "did not bind to nvgrace-gpu-vfio-pci"), prepare.err);
    BOOST_TEST(host.driver_of(gh200) == "nvidia");
    BOOST_TEST(host.override_of(gh200) == "");
    BOOST_TEST(host.records().empty());
}

// A give-back that fails puts the device back on the driver it had with the VM, its variant.
BOOST_AUTO_TEST_CASE(a_failed_give_back_leaves_it_on_its_variant) {
    GraceHopper host;
    std::string vm = domain_xml("gh200", uuid_a, {gh200});
    BOOST_TEST_REQUIRE(host.hook("gh200", "prepare", "begin", vm).status == 0);
    host.kernel().refuse_probe("nvidia");
    auto release = host.hook("gh200", "release", "end", vm);
    BOOST_TEST(contains(release.err, "; left on nvgrace-gpu-vfio-pci; still recorded"), release.err);
    BOOST_TEST(host.driver_of(gh200) == "nvgrace-gpu-vfio-pci");
}

// `vfio-hook bind` parks a device on vfio-pci, whatever modules.alias says: recover and restore
// know a parked device by that driver.
BOOST_AUTO_TEST_CASE(a_device_parked_by_hand_goes_to_vfio_pci) {
    GraceHopper host;
    auto bind = host.run({"bind", gh200});
    BOOST_TEST_REQUIRE(bind.status == 0, bind.err);
    BOOST_TEST(host.driver_of(gh200) == "vfio-pci");
    BOOST_TEST(contains(host.run({"recover"}).out, "parked: 0009:01:00.0 stays on vfio-pci"));
    BOOST_TEST(host.driver_of(gh200) == "vfio-pci");
}

BOOST_AUTO_TEST_CASE(without_modules_alias_it_is_vfio_pci) {
    GraceHopper host;
    fs::remove_all(host.root() / "lib/modules");
    std::string vm = domain_xml("gh200", uuid_a, {gh200});
    BOOST_TEST_REQUIRE(host.hook("gh200", "prepare", "begin", vm).status == 0);
    BOOST_TEST(host.driver_of(gh200) == "vfio-pci");
    BOOST_TEST(host.has_vfio_device());
}

BOOST_AUTO_TEST_CASE(the_choice_follows_libvirt_s_rule) {
    std::string modalias = "pci:v000010DEd00002342sv000010DEsd00001234bc03sc02i00";
    BOOST_TEST(choose_vfio_driver(std::nullopt, modalias, aliases).module == "nvgrace_gpu_vfio_pci");
    BOOST_TEST(choose_vfio_driver(std::nullopt, "pci:v000010DEd00002684sv000010DEsd00001234bc03sc02i00", aliases).module ==
               "nvidia_any_vfio_pci");
    BOOST_TEST(choose_vfio_driver(std::nullopt, "pci:v00001002d0000744Csv00001002sd00001234bc03sc00i00", aliases).is_vfio_pci());
    BOOST_TEST(choose_vfio_driver(std::string("mlx5_vfio_pci"), modalias, aliases).module == "mlx5_vfio_pci");
    BOOST_TEST(choose_vfio_driver(std::nullopt, modalias, "").is_vfio_pci());
}

BOOST_AUTO_TEST_CASE(a_driver_model_that_is_not_a_driver_name_is_refused) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nouveau", 6);
    std::string vm = with_driver_model(domain_xml("vm", uuid_a, {"0000:01:00.0"}), "../../x");
    auto prepare = host.hook("vm", "prepare", "begin", vm);
    BOOST_TEST(prepare.status != 0);
    BOOST_TEST(contains(prepare.err, "<driver model='../../x'> is not a driver name"), prepare.err);
    BOOST_TEST(host.kernel().writes() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
