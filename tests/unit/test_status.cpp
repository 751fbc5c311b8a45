// `vfio-hook status` over the chain a start goes through (src/cli/status.cpp, host/start_chain,
// host/last_runs): the hook libvirt runs, the daemon, the VMs naming each GPU with a verdict each,
// their last prepare and release; and `status --json`'s keys, kept stable (schema 1).

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "fake_host.hpp"

using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// The desktop: the iGPU drives the host, the NVIDIA card and its audio are free.
struct StatusDesktop : Desktop {
    StatusDesktop() {
        process(1234, "Xorg", {"/dev/dri/card0"});
    }
    // libvirt defines one VM per XML, answers `list --all --uuid` and `dumpxml` of each.
    void define(const std::vector<std::pair<std::string, std::string>>& vms) {
        std::set<std::string> uuids;
        for (const auto& [uuid, xml] : vms) {
            uuids.insert(uuid);
            virsh_answers["dumpxml"].push_back(xml);
        }
        libvirt_active = uuids;
    }
    void daemon_socket(const std::string& name) {
        fs::create_directories(root() / "run/libvirt");
        std::ofstream(root() / "run/libvirt" / name) << "";
    }
};

const std::string allow_boot_vga =
    "<vh:vfio-hook xmlns:vh=\"https://vfio-hook.org/xmlns/domain/1\"><vh:allow-boot-vga>yes</vh:allow-boot-vga></vh:vfio-hook>";

// A JSON reader just strict enough to fail on what is not JSON: collects every key as a path
// ("gpus[].held_by[].pid") and every string value, so a test can compare the exact key set.
class JsonKeys {
public:
    explicit JsonKeys(const std::string& text) : text_(text) {
        value("");
        space();
        if (at_ != text_.size()) fail("trailing bytes");
    }
    std::set<std::string> keys;
    std::vector<std::string> strings;

private:
    void fail(const std::string& why) { throw std::runtime_error("not JSON at byte " + std::to_string(at_) + ": " + why); }
    void space() {
        while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
    }
    void expect(char c) {
        space();
        if (at_ >= text_.size() || text_[at_] != c) fail(std::string("expected ") + c);
        ++at_;
    }
    std::string string() {
        expect('"');
        std::string text;
        while (at_ < text_.size() && text_[at_] != '"') {
            if (static_cast<unsigned char>(text_[at_]) < 0x20) fail("control character in a string");
            if (text_[at_] == '\\') ++at_;
            text += text_[at_++];
        }
        expect('"');
        return text;
    }
    void value(const std::string& path) {
        space();
        if (at_ >= text_.size()) fail("no value");
        char c = text_[at_];
        if (c == '{') return object(path);
        if (c == '[') return array(path);
        if (c == '"') return strings.push_back(string());
        for (const char* word : {"true", "false", "null"}) {
            if (text_.compare(at_, std::strlen(word), word) == 0) {
                at_ += std::strlen(word);
                return;
            }
        }
        std::size_t start = at_;
        while (at_ < text_.size() && (std::isdigit(static_cast<unsigned char>(text_[at_])) || text_[at_] == '-')) ++at_;
        if (at_ == start) fail("not a value");
    }
    void object(const std::string& path) {
        expect('{');
        space();
        if (text_[at_] == '}') return void(++at_);
        for (;;) {
            std::string key = string();
            keys.insert(path.empty() ? key : path + "." + key);
            expect(':');
            value(path.empty() ? key : path + "." + key);
            space();
            if (text_[at_] == '}') return void(++at_);
            expect(',');
        }
    }
    void array(const std::string& path) {
        expect('[');
        space();
        if (text_[at_] == ']') return void(++at_);
        for (;;) {
            value(path + "[]");
            space();
            if (text_[at_] == ']') return void(++at_);
            expect(',');
        }
    }
    const std::string& text_;
    std::size_t at_ = 0;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(status_chain)

BOOST_AUTO_TEST_CASE(status_names_the_installed_hook_and_the_daemon_that_answers) {
    StatusDesktop host;
    install_hook(host);
    host.daemon_socket("virtqemud-sock");
    host.define({{uuid_a, domain_xml("win11", uuid_a, {"0000:01:00.0"})}});
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 0, status.out);
    BOOST_TEST(contains(status.out, "hook:       /etc/libvirt/hooks/qemu -> this vfio-hook " VFIO_HOOK_VERSION "\n"),
               status.out);
    BOOST_TEST(contains(status.out, "libvirt:    virtqemud answers, 1 VM(s) defined\n"), status.out);
    BOOST_TEST(contains(status.out, "    named by VM(s): win11\n"), status.out);
    BOOST_TEST(contains(status.out, "VM win11 (0000:01:00.0): could start now\n"), status.out);
    BOOST_TEST(contains(status.out, "\nready\n"), status.out);
    // Read-only questions only: the list and each definition.
    for (const auto& call : host.virsh_calls) BOOST_TEST((call[2] == "list" || call[2] == "dumpxml"), call[2]);
}

// qemu:///system's definitions are libvirt's own files: read there, one virsh (the list) in all
// instead of one per VM; a file libvirt does not list is not a VM of it.
BOOST_AUTO_TEST_CASE(status_reads_the_system_definitions_from_libvirts_files_and_asks_virsh_once) {
    StatusDesktop host;
    install_hook(host);
    fs::create_directories(host.root() / "etc/libvirt/qemu");
    std::ofstream(host.root() / "etc/libvirt/qemu/win11.xml") << domain_xml("win11", uuid_a, {"0000:01:00.0"});
    std::ofstream(host.root() / "etc/libvirt/qemu/stale.xml") << domain_xml("stale", uuid_b, {"0000:01:00.0"});
    host.libvirt_active = std::set<std::string>{uuid_a};
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 0, status.out);
    BOOST_TEST(contains(status.out, "    named by VM(s): win11\n"), status.out);
    BOOST_TEST(!contains(status.out, "stale"), status.out);
    BOOST_TEST(host.virsh_calls.size() == 1u);
}

BOOST_AUTO_TEST_CASE(status_without_the_hook_is_not_ready_and_says_run_install_sh) {
    StatusDesktop host;
    host.daemon_socket("libvirt-sock");
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 1, status.out);
    BOOST_TEST(contains(status.out, "hook:       not installed\n"), status.out);
    BOOST_TEST(contains(status.out, "libvirtd answers"), status.out);
    BOOST_TEST(contains(status.out, "not ready:\n  libvirt runs no vfio-hook: neither /etc/libvirt/hooks/qemu nor "
                                    "/etc/libvirt/hooks/qemu.d/vfio-hook is one; run install.sh as root "
                                    "(sudo ./install.sh), or install the vfio-hook package\n"),
               status.out);
    // Another program as hooks/qemu (a dispatcher) is named, and still no vfio-hook runs.
    fs::create_directories(host.root() / "etc/libvirt/hooks");
    std::ofstream(host.root() / "etc/libvirt/hooks/qemu") << "#!/bin/sh\n";
    fs::permissions(host.root() / "etc/libvirt/hooks/qemu", fs::perms::owner_all);
    auto dispatcher = host.run({"status"});
    BOOST_TEST(dispatcher.status == 1);
    BOOST_TEST(contains(dispatcher.out, "hook:       not installed (/etc/libvirt/hooks/qemu is another program, "),
               dispatcher.out);
}

BOOST_AUTO_TEST_CASE(status_says_when_libvirt_does_not_answer_and_goes_on) {
    StatusDesktop host;
    install_hook(host);
    host.libvirt_active = vfio_hook::Error{"virsh failed: error: failed to connect to the hypervisor"};
    auto status = host.run({"status"});
    BOOST_TEST(status.status == 0, status.out);
    BOOST_TEST(contains(status.out, "libvirt:    not answering (virsh failed: error: failed to connect to the "
                                    "hypervisor); is libvirtd (or virtqemud) running?\n"),
               status.out);
    BOOST_TEST(contains(status.out, "a VM could take it now"), status.out);
    // virsh's connection failure already asks (virsh.cpp): asked once, not twice.
    host.libvirt_active = vfio_hook::Error{"virsh failed: error: Failed to connect socket (is libvirtd (or virtqemud) running?)"};
    auto asked = host.run({"status"});
    auto first = asked.out.find("is libvirtd (or virtqemud) running?");
    BOOST_TEST((first != std::string::npos && asked.out.find("is libvirtd (or virtqemud) running?", first + 1) == std::string::npos),
               asked.out);
}

// A single-GPU host: the only GPU is the boot display, Xorg holds it. Not "add a second GPU"
// for ever: the VM that allows the boot VGA and stops the display manager first could start.
BOOST_AUTO_TEST_CASE(a_single_gpu_host_gets_a_verdict_per_vm) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).boot_vga("0000:01:00.0").drm_node("0000:01:00.0", "card0");
    host.audio("0000:01:00.1", "snd_hda_intel", 14);
    host.process(1234, "Xorg", {"/dev/dri/card0"});
    install_hook(host);
    host.libvirt_active = std::set<std::string>{uuid_a};
    host.virsh_answers["dumpxml"] = {domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:01:00.1"}, false, allow_boot_vga)};
    auto without_script = host.run({"status"});
    BOOST_TEST(without_script.status == 1, without_script.out);
    BOOST_TEST(contains(without_script.out, "VM win11 (0000:01:00.0): would be refused now:\n    0000:01:00.0: is held "
                                            "open by pid 1234 (Xorg)"),
               without_script.out);
    BOOST_TEST(contains(without_script.out, "no GPU could be given to a VM now"), without_script.out);

    fs::create_directories(host.root() / "etc/vfio-hook/hook.d/vm/win11/prepare/begin");
    host.virsh_answers["dumpxml"] = {domain_xml("win11", uuid_a, {"0000:01:00.0", "0000:01:00.1"}, false, allow_boot_vga)};
    auto with_script = host.run({"status"});
    BOOST_TEST(with_script.status == 0, with_script.out);
    BOOST_TEST(contains(with_script.out, "VM win11 (0000:01:00.0): could start: its hook.d prepare scripts run first "
                                         "and must free the GPU from:\n    0000:01:00.0: is held open by pid 1234"),
               with_script.out);
    BOOST_TEST(!contains(with_script.out, "no GPU could be given"), with_script.out);
    BOOST_TEST(!contains(with_script.out, "add a second GPU"), with_script.out);
}

BOOST_AUTO_TEST_CASE(status_shows_each_vms_last_prepare_and_release_with_result_and_duration) {
    StatusDesktop host;
    install_hook(host);
    std::string xml = domain_xml("win11", uuid_a, {"0000:01:00.0"});
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", xml).status == 0);
    auto running = host.run({"status"});
    BOOST_TEST(contains(running.out, "last prepare of win11: done in "), running.out);
    BOOST_TEST(!contains(running.out, "last release of win11"), running.out);
    BOOST_TEST_REQUIRE(host.hook("win11", "release", "end", xml).status == 0);
    auto stopped = host.run({"status"});
    BOOST_TEST(contains(stopped.out, "last release of win11: done in "), stopped.out);
    // A refused start is a last prepare too.
    host.process(4321, "obs", {"/dev/dri/card1"});
    BOOST_TEST(host.hook("win11", "prepare", "begin", xml).status == 1);
    auto json = host.run({"status", "--json"});
    BOOST_TEST(contains(json.out, "\"operation\":\"prepare\",\"result\":\"not started\",\"duration_ms\":"), json.out);
}

// The keys of `status --json` (schema 1), exactly: a key that goes or changes meaning raises the
// schema (and this list); each is documented in the man page. null, never "", for no value.
BOOST_AUTO_TEST_CASE(status_json_has_exactly_the_documented_keys_of_schema_1) {
    StatusDesktop host;
    install_hook(host);
    host.reset_methods("0000:01:00.0", "flr bus");
    host.define({{uuid_a, domain_xml("win11", uuid_a, {"0000:01:00.0"})}});
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", domain_xml("win11", uuid_a, {"0000:01:00.0"})).status == 0);
    host.kernel_log("nvidia 0000:01:00.0: firmware unavailable");
    host.process(4321, "obs", {"/dev/dri/card0"});
    auto run = host.run({"status", "--json"});
    JsonKeys json(run.out);
    const std::set<std::string> device = {"address", "kind", "vendor_device", "driver", "vfio_device", "iommu_group",
                                          "boot_vga", "console", "power_state", "reset_methods", "resizable_bars"};
    std::set<std::string> expected = {
        "schema", "ready", "unseen", "iommu", "iommu.enabled", "iommu.groups", "iommu.kernel_parameters",
        "vfio_pci_loaded", "hook", "hook.installed", "hook.path", "hook.version", "hook.other_copy",
        "hook.other_program", "libvirt", "libvirt.reachable", "libvirt.daemon", "libvirt.error",
        "libvirt.unreadable_definitions", "hook_scripts", "vms", "vms[].name", "vms[].uuid", "vms[].gpus",
        "vms[].could_start", "vms[].prepare_scripts", "vms[].refusals", "last_runs", "last_runs[].uuid",
        "last_runs[].name", "last_runs[].operation", "last_runs[].result", "last_runs[].duration_ms",
        "last_runs[].finished", "blacklisted", "vfio_pci_ids", "persisted", "driverctl_overrides", "gpus",
        "gpus[].companions", "gpus[].vm", "gpus[].vms", "gpus[].could_be_taken", "gpus[].held_by",
        "gpus[].held_by[].pid", "gpus[].held_by[].command", "gpus[].held_by[].node", "gpus[].held_by[].unit",
        "gpus[].held_by[].unit_kind", "gpus[].blockers",
        "gpus[].blockers[].address", "gpus[].blockers[].problem", "gpus[].blockers[].fix",
        "gpus[].kernel_log_problems", "consoles_given", "warnings", "problems", "problems[].address",
        "problems[].problem", "problems[].fix"};
    for (const auto& key : device) {
        expected.insert("gpus[]." + key);
        expected.insert("gpus[].companions[]." + key);
    }
    BOOST_TEST(json.keys == expected, run.out);
    for (const auto& key : json.keys) {
        if (!expected.count(key)) BOOST_TEST_ERROR("undocumented key " << key);
    }
    for (const auto& key : expected) {
        if (!json.keys.count(key)) BOOST_TEST_ERROR("missing key " << key);
    }
    BOOST_TEST(contains(run.out, "\"schema\":1,"), run.out);
    BOOST_TEST(contains(run.out, "\"reset_methods\":[\"flr\",\"bus\"]"), run.out);
    BOOST_TEST(!contains(run.out, ":\"\""), run.out);
    // Each key is in the man page's STATUS JSON section.
    std::ifstream file(std::string(VFIO_HOOK_SOURCE_DIR) + "/man/vfio-hook.8.scd");
    std::string man(std::istreambuf_iterator<char>(file), {});
    auto section = man.find("# STATUS JSON");
    BOOST_TEST_REQUIRE(section != std::string::npos);
    std::string documented = man.substr(section, man.find("\n# ", section + 1) - section);
    for (const auto& key : expected) {
        std::string last = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
        BOOST_TEST(contains(documented, "*" + last + "*"), key << " is not in the man page's STATUS JSON");
    }
}

// Issue 26's fields: a GPU's resizable BARs, whether a VFIO driver owns it, and the systemd
// unit behind each holder, so a script can say `systemctl stop` without parsing the fix.
BOOST_AUTO_TEST_CASE(status_json_carries_resizable_bars_vfio_ownership_and_the_holders_unit) {
    StatusDesktop host;
    install_hook(host);
    host.resizable_bar("0000:01:00.0", 0, 0x3f00, 8);  // 256 MB now; 256 MB .. 8 GB
    host.process(777, "nvidia-persistenced", {"/dev/dri/card1"});
    host.cgroup(777, "0::/system.slice/nvidia-persistenced.service\n");
    auto run = host.run({"status", "--json"});
    BOOST_TEST(contains(run.out, "\"resizable_bars\":[{\"bar\":0,\"size_mb\":256,\"sizes_mb\":[256,512,1024,2048,4096,8192]}]"),
               run.out);
    BOOST_TEST(contains(run.out, "\"vfio_device\":false"), run.out);
    BOOST_TEST(contains(run.out, "\"pid\":777,\"command\":\"nvidia-persistenced\",\"node\":\"/dev/dri/card1\","
                                 "\"unit\":\"nvidia-persistenced.service\",\"unit_kind\":\"system_service\""),
               run.out);
    BOOST_TEST(contains(run.out, "\"pid\":1234,\"command\":\"Xorg\",\"node\":\"/dev/dri/card0\",\"unit\":null,\"unit_kind\":null"),
               run.out);
}

// Reading `resourceN_resize` resumes a device the kernel has in D3cold (pci-sysfs.c
// __resource_resize_show -> pci_config_pm_runtime_get): status, which only looks, must not wake
// a laptop's sleeping dGPU (nor hang on one that does not come back). Its BARs are listed, their
// sizes_mb null: not read; the current size comes from `resource`, which wakes nothing.
BOOST_AUTO_TEST_CASE(status_does_not_wake_a_gpu_asleep_in_d3cold_to_read_its_bar_sizes) {
    StatusDesktop host;
    install_hook(host);
    host.resizable_bar("0000:01:00.0", 0, 0x3f00, 8);
    std::ofstream(host.root() / "sys/bus/pci/devices/0000:01:00.0/power_state", std::ios::trunc) << "D3cold\n";
    auto run = host.run({"status", "--json"});
    BOOST_TEST(contains(run.out, "\"resizable_bars\":[{\"bar\":0,\"size_mb\":256,\"sizes_mb\":null}]"), run.out);
}

// /proc/PID/comm holds whatever bytes a process gave prctl(PR_SET_NAME): any user can name a
// holder with bytes that are not UTF-8. JSON is UTF-8 (RFC 8259): a parser (python's json, jq)
// rejects the whole document over one such byte, so status --json must stay valid.
BOOST_AUTO_TEST_CASE(status_json_stays_valid_utf8_whatever_bytes_a_holders_name_holds) {
    StatusDesktop host;
    install_hook(host);
    host.process(666, "gpu\xff\xfe" "burn\xc3", {"/dev/dri/card1"});
    host.process(667, "caf\xc3\xa9", {"/dev/dri/card1"});  // UTF-8 itself stays as it is
    auto run = host.run({"status", "--json"});
    auto valid_utf8 = [](const std::string& text) {
        for (std::size_t at = 0; at < text.size();) {
            auto byte = static_cast<unsigned char>(text[at]);
            std::size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xe ? 3 : (byte >> 3) == 0x1e ? 4 : 0;
            if (length == 0 || at + length > text.size()) return false;
            for (std::size_t next = 1; next < length; ++next) {
                if ((static_cast<unsigned char>(text[at + next]) >> 6) != 0x2) return false;
            }
            at += length;
        }
        return true;
    };
    BOOST_TEST(valid_utf8(run.out));
    BOOST_TEST(contains(run.out, "\"pid\":666,\"command\":\"gpu\\ufffd\\ufffdburn\\ufffd\""), run.out);
    BOOST_TEST(contains(run.out, "\"pid\":667,\"command\":\"caf\xc3\xa9\""), run.out);
}

BOOST_AUTO_TEST_SUITE_END()
