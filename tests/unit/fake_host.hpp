#pragma once
// A fake host for unit tests: a real directory tree shaped like sysfs, /proc and /dev under a
// temp dir, so the real reading code runs; and a fake kernel that reacts to sysfs writes the way
// the kernel does (moving `driver` links), with failures to inject.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "core/pci_address.hpp"
#include "host/hand_over.hpp"
#include "host/sysfs.hpp"

namespace vfio_hook::testing {

// One of each for every test file: whether `part` occurs in `text`, a whole file's bytes, a PCI
// address from text known to be one, and whether the tests run as root (real device nodes).
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
inline std::string read(const std::filesystem::path& file) {
    std::ifstream stream(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(stream), {});
}
inline PciAddress at(const char* text) { return *PciAddress::parse(text); }
bool is_root();

// Thrown by the fake kernel to simulate the hook being killed between two writes.
struct SimulatedCrash : std::runtime_error {
    SimulatedCrash() : std::runtime_error("simulated crash") {}
};

class FakeKernel : public KernelInterface {
public:
    explicit FakeKernel(std::filesystem::path root) : root_(std::move(root)) {}

    WriteResult write_within(const std::filesystem::path& file, std::string_view value,
                             std::chrono::milliseconds deadline) override;
    ReadResult read_blocking(const std::filesystem::path& file) override;
    WriteResult map_consoles(const std::filesystem::path& fb_node, unsigned framebuffer) override;
    bool load_module(const std::string& name) override;
    std::chrono::milliseconds deadline() const override { return std::chrono::milliseconds(50); }

    // Injection. `file_suffix` matches the end of the written path ("drivers/bochs-drm/unbind").
    void fail_write(const std::string& file_suffix, int error, int times = 1000);
    void hang_write(const std::string& file_suffix);  // reports timed_out, changes nothing
    // A read whose kernel handler blocks (console_lock, a stuck driver): reports timed_out.
    void hang_read(const std::string& file_suffix) { read_hangs_.insert(file_suffix); }
    // Deadlines the writes were given, per file suffix written (for the bind-deadline tests).
    std::vector<std::pair<std::string, long>> write_deadlines;
    // The driver's probe fails for any device, printing `log_message` (if any) to the kernel log.
    void refuse_probe(const std::string& driver, const std::string& log_message = "");
    void crash_after(int writes) { crash_after_ = writes; }
    // Runs `action` (once) just before the first write to a file ending in `file_suffix`: to
    // change the world in the middle of a run (make the state directory refuse a save).
    void when_written(const std::string& file_suffix, std::function<void()> action) {
        actions_.emplace_back(file_suffix, std::move(action));
    }
    void refuse_module_load() { module_loads_ = false; }

    int writes() const { return writes_; }
    const std::vector<std::string>& write_log() const { return log_; }

    // The drivers whose ID tables match each device, in the order a reprobe (drivers_probe with
    // no driver_override) tries them: the first whose probe succeeds takes the device. Binding
    // by name works for any of them. nouveau and nvidia both claim an NVIDIA card; vfio-pci
    // claims one too once driverctl gives it the card's ID (new_id).
    std::map<std::string, std::vector<std::string>> matching_drivers;

    // The console, as the kernel keeps it. A GPU's driver registers framebuffer fbN while bound
    // (device → {N, driver}); fbcon serves the "frame buffer" vtconsoles while any framebuffer is
    // registered: the kernel unbinds it by itself when the last one goes and binds it back when
    // one registers (unless `fbcon_follows_framebuffers` is off, as for a driver without fbdev
    // emulation). Writing 1 to a vtconsole's bind is accepted and ignored (measured on 6.1/7.2);
    // FBIOPUT_CON2FBMAP (map_consoles) to a registered framebuffer binds it back. A firmware
    // framebuffer's platform device (device → name) is deleted when any driver takes its GPU.
    std::map<std::string, std::pair<unsigned, std::string>> framebuffers;
    std::map<std::string, std::string> firmware_framebuffers;
    bool fbcon_follows_framebuffers = true;
    // What 6.1/6.12 do when the last framebuffer goes: fbcon unregisters (its vtconsole
    // disappears) and registers again, at the lowest free vtconN, with the next framebuffer.
    bool fbcon_unregisters_without_framebuffers = false;
    std::vector<std::string> console_maps;  // "fb0" per map_consoles call
    // The drivers built on vfio_pci_core (vfio-pci and its variants): bound, the device has
    // vfio-dev/vfioN (drivers/vfio/vfio_main.c). FakeHost::vfio_variant adds one.
    std::set<std::string> vfio_drivers{"vfio-pci"};
    // A module whose driver directory is named otherwise (nvgrace_gpu_vfio_pci → its driver);
    // `load_module` makes the directory of any other name as it is.
    std::map<std::string, std::string> module_drivers;
    std::vector<std::string> loaded_modules;  // every load_module call's name
    // What FBIOPUT_CON2FBMAP answers for one VT (1..63), as RealKernel::map_consoles sends it
    // once per VT: an errno per VT, 0 (mapped) for every VT not named. map_consoles reports the
    // first VT's errno, as RealKernel does; fbcon binds if any VT was mapped.
    std::map<unsigned, int> console_map_errors;
    // Devices the platform lets sleep in D3cold (ACPI power resources), and whether each comes
    // back from it: vfio-pci's idle suspend right after its bind takes such a device to D3cold
    // while its `d3cold_allowed` is 1 (D3hot otherwise), and whatever resumes it (`power/control`
    // = on, a `d3cold_allowed` write, vfio-pci's unbind) either wakes it to D0 or, for one that
    // does not come back (the RX 9000 reports), leaves its config space reading all ones and logs
    // pci_power_up()'s "Unable to change power state from D3cold to D0, device inaccessible".
    std::map<std::string, bool> d3cold_platform;  // address → wakes from D3cold

private:
    void set_fbcon(bool bound);
    void register_fbcon();
    bool fbcon_unregistered_ = false;
    void driver_bound(const std::string& address, const std::string& driver);
    void driver_unbound(const std::string& address);
    // Runtime PM as vfio-pci drives it (fake_real_gpu.cpp): `power/control` auto at bind, on at unbind.
    void runtime_pm_follows(const std::string& address, const std::string& driver, bool bound);
    void runtime_resume(const std::string& address);  // see d3cold_platform
    // A vfio_pci_core driver's `vfio-dev/vfioN` under the device while bound (fake_real_gpu.cpp).
    void vfio_device_follows(const std::string& address, const std::string& driver, bool bound);
    // `resourceN_resize` (fake_real_gpu.cpp): EBUSY while bound, EINVAL for a size not in the
    // bitmap, else the BAR's `resource` line takes the size. True when `file` is one.
    bool resize_write(const std::filesystem::path& file, const std::string& value, WriteResult& result);
    std::filesystem::path device_dir(const std::string& address) const;
    std::optional<std::string> driver_of(const std::string& address) const;
    bool try_bind(const std::string& address, const std::string& driver);

    std::filesystem::path root_;
    std::map<std::string, std::pair<int, int>> failures_;  // suffix → errno, times left
    std::set<std::string> hangs_;
    std::vector<std::pair<std::string, std::function<void()>>> actions_;
    std::set<std::string> read_hangs_;
    std::map<std::string, std::string> refusing_drivers_;  // driver → what it logs
    int log_sequence_ = 1000;
    int crash_after_ = -1;
    bool module_loads_ = true;
    int writes_ = 0;
    std::vector<std::string> log_;
};

class FakeHost {
public:
    FakeHost();
    ~FakeHost();
    FakeHost(const FakeHost&) = delete;
    FakeHost& operator=(const FakeHost&) = delete;

    // Devices. `driver` "" means no driver. The driver also becomes the one driver that matches
    // the device (see FakeKernel::matching_drivers).
    FakeHost& device(const std::string& address, std::uint32_t class_code, const std::string& driver,
                     std::optional<unsigned> group, std::uint16_t vendor = 0x10de,
                     std::uint16_t device_id = 0x2684);
    FakeHost& gpu(const std::string& address, const std::string& driver, unsigned group) {
        return device(address, 0x030000, driver, group);
    }
    FakeHost& audio(const std::string& address, const std::string& driver, unsigned group) {
        return device(address, 0x040300, driver, group, 0x10de, 0x22ba);
    }
    FakeHost& bridge(const std::string& address, unsigned group) {
        return device(address, 0x060400, "pcieport", group, 0x8086, 0x1901);
    }
    FakeHost& boot_vga(const std::string& address);
    FakeHost& drm_node(const std::string& address, const std::string& name);   // card1, renderD128
    FakeHost& sound_card(const std::string& address, const std::string& card, const std::vector<std::string>& nodes);
    FakeHost& driver(const std::string& name);  // an available (loaded) driver
    // Another (loaded) driver that claims the device and that a reprobe tries before the others.
    FakeHost& claimed_first_by(const std::string& address, const std::string& driver);
    FakeHost& process(int pid, const std::string& command, const std::vector<std::string>& open_nodes);
    // /proc/PID/cgroup as the kernel shows it ("0::/system.slice/foo.service\n" on cgroup v2).
    FakeHost& cgroup(int pid, const std::string& text);
    FakeHost& user(unsigned uid, const std::string& name);  // a line of /etc/passwd
    FakeHost& kernel_log(const std::string& message, int priority = 3);
    FakeHost& no_iommu();
    // SR-IOV: virtfnN links from the PF to each VF (and sriov_numvfs), as the kernel makes them.
    FakeHost& virtual_functions(const std::string& pf, const std::vector<std::string>& vfs);
    // A driver_override set before vfio-hook came (driverctl's persistent override).
    FakeHost& preset_override(const std::string& address, const std::string& driver);
    // A node's device number as sysfs shows it (`dev` = "MAJ:MIN" under the device's sysfs
    // dir, e.g. "drm/card1") and, as root, a real character device at /dev/PATH under the root.
    FakeHost& node_number(const std::string& address, const std::string& sysfs_subdir, unsigned major,
                          unsigned minor, const std::string& dev_path);
    // A character device at PATH under the root (root only): a container's own name for a node.
    FakeHost& char_device(const std::string& path, unsigned major, unsigned minor);
    // A real character device (/dev/full) reachable at PATH under the root, a path without /dev/
    // in it, as a sandbox's bind mount names the GPU's node (bwrap --dev-bind, docker --device
    // /dev/dri/card1:/gpu). A symlink stands in for the mount: a process_in_root fd on PATH reads
    // back as PATH, and stat() through it reaches the device. Needs no root.
    FakeHost& node_outside_dev(const std::string& path, const std::string& real_node);
    // A process whose fds open files under the fake root (real stat() then sees them).
    FakeHost& process_in_root(int pid, const std::string& command, const std::vector<std::string>& paths);
    // The host's console on a GPU: its driver's framebuffer fbN registered now, fbcon bound on
    // vtcon1 (vtcon0 is the dummy console).
    FakeHost& console_on(const std::string& address, unsigned framebuffer);
    // The GPU's driver's fbdev emulation registered framebuffer fbN (no console on it): the class
    // device /sys/class/graphics/fbN with its `device` link to the GPU and `dev` 29:N, and
    // /dev/fbN; it goes with the driver and comes back when that driver binds again.
    FakeHost& framebuffer(const std::string& address, unsigned framebuffer);
    // A firmware framebuffer inside the GPU's BAR 0, driven by `kernel_driver` (efifb, efidrm,
    // vesafb, vesadrm, simplefb or simpledrm), with the platform device, platform driver and
    // /proc/iomem regions the kernel gives it (the table in fake_host.cpp quotes the source).
    FakeHost& firmware_framebuffer(const std::string& address, const std::string& kernel_driver);
    std::string vtcon_bind(const std::string& vtcon = "vtcon1") const;
    // /proc/driver/nvidia/gpus/ADDRESS/information with its "Device Minor".
    FakeHost& nvidia_minor(const std::string& address, unsigned minor);
    // An i2c adapter i2c-N (a DDC bus, a DP AUX channel, an SMBus) whose parent is the device,
    // or the device's `under` child (a DRM connector: "drm/card1/card1-HDMI-A-1"), with its
    // i2c-dev node /dev/i2c-N as the kernel lays them out (the facts are quoted in fake_host.cpp).
    FakeHost& i2c_adapter(const std::string& address, unsigned number, const std::string& under = "");

    // Real GPUs (issue 26; fake_real_gpu.cpp). Every device's live `config` is a 256-byte config
    // space with a PM capability in D0 (fake_config_space). The function stops answering: its
    // `config` reads all ones, as the kernel returns for a device that fell off the bus or did not
    // leave D3cold; the cached `vendor` file still shows the real ID. answers_again undoes it.
    FakeHost& stops_answering(const std::string& address);
    FakeHost& answers_again(const std::string& address);
    FakeHost& pm_state(const std::string& address, unsigned state);  // PMCSR bits 1:0 (3 = D3hot)
    // `reset_method` as the kernel lists it; `reset` exists only when some method does.
    FakeHost& reset_methods(const std::string& address, const std::string& methods);
    // Every device has `power/control` = on (pci_pm_init's default) and `d3cold_allowed` = 1; a
    // driver that enables runtime PM (amdgpu, nouveau) leaves `auto`.
    FakeHost& power_control(const std::string& address, const std::string& value);
    std::string power_control_of(const std::string& address) const;
    // A resizable BAR: `resourceN_resize` with `bitmap` (bit n = 2^n MB supported) and BAR N's
    // line in `resource` at 2^current_bit MB (issue 26, point 5).
    FakeHost& resizable_bar(const std::string& address, unsigned bar, std::uint64_t bitmap, unsigned current_bit);
    unsigned bar_bit(const std::string& address, unsigned bar) const;  // BAR N's size as a bit, from `resource`
    // /lib/modules/$(uname -r)/modules.alias holding `lines` (issue 26, point 6).
    FakeHost& modules_alias(const std::string& lines);
    // A VFIO variant driver: its module `module` loadable (not loaded), its driver directory
    // named `driver` once loaded, built on vfio_pci_core (vfio-dev/ while bound).
    FakeHost& vfio_variant(const std::string& module, const std::string& driver);

    const std::filesystem::path& root() const { return root_; }
    HostPaths paths() const { return HostPaths{root_}; }
    FakeKernel& kernel() { return kernel_; }
    std::optional<std::string> driver_of(const std::string& address) const;
    std::string override_of(const std::string& address) const;
    std::vector<std::string> records() const;  // file names under run/vfio-hook/records
    // What `virsh list --uuid` answers the admin commands (default: libvirt runs, nothing active).
    Expected<std::set<std::string>> libvirt_active = std::set<std::string>{};
    // Every virsh call the admin commands made, and canned answers by virsh command ("dumpxml",
    // "metadata"); a command without an answer fails as virsh would with no such domain.
    std::vector<std::vector<std::string>> virsh_calls;
    std::map<std::string, std::vector<Expected<std::string>>> virsh_answers;
    std::vector<std::string> defined;  // the XML of each `virsh define FILE`, read at the call
    std::vector<unsigned> defined_modes;  // that FILE's permission bits at the call

    // Runs the real command line, as `vfio-hook --root ROOT ARGS...` with `stdin` on stdin.
    struct Run {
        int status;
        std::string out;
        std::string err;
    };
    Run run(const std::vector<std::string>& args, const std::string& stdin_text = "");
    // The command line exactly as given (args[0] is the program name), without --root.
    Run run_exactly(const std::vector<std::string>& args, const std::string& stdin_text = "");
    // Runs as libvirt does: `qemu DOMAIN OP SUB EXTRA`, but against this fake root.
    Run hook(const std::string& domain, const std::string& operation, const std::string& sub,
             const std::string& xml);

private:
    std::filesystem::path root_;
    FakeKernel kernel_;
    std::uint64_t log_sequence_ = 100;
};

// A config space as sysfs `config` returns it: the header, a capability list holding the PM
// capability at 0x40 with its PMCSR power state `pm_state`.
std::string fake_config_space(std::uint16_t vendor, std::uint16_t device, std::uint32_t class_code,
                              unsigned pm_state = 0);

// The desktop most tests pass through: an Intel iGPU that drives the host's console (boot VGA,
// card0), a root port (group 1), and the NVIDIA card to give the VM, alone in group 14: its GPU
// (card1, renderD129) and its HDMI audio (sound card1).
struct Desktop : FakeHost {
    Desktop();
    // Both functions back on their own drivers with no override left, the iGPU untouched.
    bool home() const;
    bool on_vfio() const;
};

// A libvirt domain XML giving the listed host PCI addresses as <hostdev>s.
std::string domain_xml(const std::string& name, const std::string& uuid,
                       const std::vector<std::string>& addresses, bool managed = false,
                       const std::string& metadata = "");

inline constexpr const char* uuid_a = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0";
inline constexpr const char* uuid_b = "9b1c5c1e-0c1a-4f5e-9a7e-2f0b6f1a7c11";

// libvirt's hook as install.sh leaves it: /etc/libvirt/hooks/qemu, a link to this very program
// (the test binary is /proc/self/exe, which is what `status` compares against).
inline void install_hook(const FakeHost& host) {
    std::filesystem::create_directories(host.root() / "etc/libvirt/hooks");
    std::filesystem::create_symlink(std::filesystem::read_symlink("/proc/self/exe"), host.root() / "etc/libvirt/hooks/qemu");
}

}  // namespace vfio_hook::testing
