// fuzz-cli: the whole command line, run_cli(), on arbitrary argv words, config file and stdin,
// against a small fake sysfs tree in a temp dir (a boot VGA, a GPU and its audio in one group)
// and a kernel whose every write fails (so no device moves, and rollback paths run). The input
// is three parts separated by 0x01 bytes: argv words (one per line), the config file, stdin.
// Besides not crashing:
//   - no exception escapes run_cli (it would be an abort() in the real binary's hook);
//   - the exit code is 0, 1 or 2, as the man page promises;
//   - `hook` never writes on stdout (libvirt parses it as XML for migrate/restore), whatever its
//     four words (a domain called `--version` is a domain);
//   - every line written on stderr starts "vfio-hook" (or is a refusal's indented reason).
// Never the real root: words starting with --root or --config are dropped, the harness gives
// its own; the libvirt positional form (argv[0] .../hooks/qemu) is not used, it means "/".

#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli.hpp"
#include "fuzz_check.hpp"

namespace {

constexpr const char* fuzz_target_name = "fuzz-cli";
namespace fs = std::filesystem;
using namespace vfio_hook;
using fuzz::printable;

struct FailingKernel : KernelInterface {
    WriteResult write_within(const fs::path&, std::string_view, std::chrono::milliseconds) override {
        return {WriteResult::Status::failed, EIO};
    }
    ReadResult read_blocking(const fs::path& file) override {
        std::ifstream stream(file);
        if (!stream) return {};
        std::string text((std::istreambuf_iterator<char>(stream)), {});
        while (!text.empty() && text.back() == '\n') text.pop_back();
        return {ReadResult::Status::ok, text};
    }
    WriteResult map_consoles(const fs::path&, unsigned) override { return {WriteResult::Status::failed, ENODEV}; }
    bool load_module(const std::string&) override { return true; }
    std::chrono::milliseconds deadline() const override { return std::chrono::milliseconds(20); }
};

void write(const fs::path& file, const std::string& text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
}

void device(const fs::path& root, const std::string& address, const std::string& class_code,
            const std::string& driver, int group) {
    fs::path dir = root / "sys/bus/pci/devices" / address;
    write(dir / "class", class_code + "\n");
    write(dir / "vendor", "0x10de\n");
    write(dir / "device", "0x2684\n");
    write(dir / "config", "");
    write(dir / "driver_override", "(null)\n");
    fs::create_directories(root / "sys/bus/pci/drivers" / driver);
    fs::create_directory_symlink(root / "sys/bus/pci/drivers" / driver, dir / "driver");
    fs::path group_dir = root / "sys/kernel/iommu_groups" / std::to_string(group) / "devices";
    fs::create_directories(group_dir);
    fs::create_directory_symlink(dir, group_dir / address);
    fs::create_directory_symlink(group_dir.parent_path(), dir / "iommu_group");
}

const fs::path& fake_root() {
    static const fs::path root = [] {
        std::string pattern = (fs::temp_directory_path() / "vfio-hook-fuzz-cli-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) std::abort();
        fs::path dir(pattern);
        device(dir, "0000:00:02.0", "0x030000", "i915", 2);
        write(dir / "sys/bus/pci/devices/0000:00:02.0/boot_vga", "1\n");
        device(dir, "0000:01:00.0", "0x030000", "nvidia", 14);
        device(dir, "0000:01:00.1", "0x040300", "snd_hda_intel", 14);
        fs::create_directories(dir / "sys/bus/pci/drivers/vfio-pci");
        fs::create_directories(dir / "proc");
        write(dir / "dev/kmsg", "");
        write(dir / "proc/cmdline", "intel_iommu=on\n");
        return dir;
    }();
    return root;
}

std::vector<std::string> split(std::string_view text, char separator) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        auto end = text.find(separator, start);
        parts.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return parts;
        start = end + 1;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto parts = split(input, '\x01');
    parts.resize(3);
    const fs::path& root = fake_root();
    fs::path config = root / "fuzz.conf";
    write(config, parts[1]);

    std::vector<std::string> args{"vfio-hook", "--root", root.string(), "--config", config.string()};
    // The hook command: `hook` as the first word that is not an option, with only `--key=value`
    // options before it (a bare `--connect` would take it as its value). libvirt's four words
    // after it are data, whatever they look like (a VM may be called `--version`).
    bool hook_command = false, asks_for_help = false, options_only = true;
    std::size_t hook_data_left = 0;
    for (auto& word : split(parts[0], '\n')) {
        if (word.empty() || word.starts_with("--root") || word.starts_with("--config")) continue;
        if (args.size() >= 40) break;
        args.push_back(word);
        if (hook_data_left > 0) {
            --hook_data_left;
            continue;
        }
        if (options_only && word == "hook") {
            hook_command = true;
            hook_data_left = 4;
        }
        if (!word.starts_with("-") || word.find('=') == std::string::npos) options_only = false;
        // CLI11 answers these wherever they stand (-V, --version, --help, -h; help): on stdout,
        // rightly.
        if (word == "help" || word.starts_with("--version") ||
            (word.starts_with("-") && (word.find('h') != std::string::npos || word.find('V') != std::string::npos)))
            asks_for_help = true;
    }
    // `hook -h` with nothing after it is never libvirt's call (it passes three words or more):
    // it is help, on stdout.
    if (hook_command && args.size() >= 2 && args[args.size() - 2] == "hook" &&
        (args.back() == "-h" || args.back() == "--help"))
        asks_for_help = true;
    std::ostringstream out, err;
    CliEnvironment environment{
        [](const Settings&) { return std::make_unique<FailingKernel>(); },
        [&]() -> Expected<std::string> { return parts[2]; },
        [](const std::vector<std::string>& virsh_args) -> Expected<std::string> {
            if (virsh_args.size() > 2 && virsh_args[2] == "list") return std::string("\n");
            return Error{"virsh failed: error: failed to get domain"};
        },
        out, err};
    int status = -1;
    try {
        status = run_cli(args, environment);
    } catch (const std::exception& error) {
        FUZZ_CHECK(false, "uncaught exception: " + std::string(error.what()) + " for " + printable(parts[0]));
    }
    FUZZ_CHECK(status == 0 || status == 1 || status == 2,
               "exit code " + std::to_string(status) + " for " + printable(parts[0]));
    // Only when the hook command itself ran: a `help hook` prints help on stdout, as it should.
    bool ran_hook = hook_command && !asks_for_help && status != 2;
    FUZZ_CHECK(!ran_hook || out.str().empty(), "the hook printed on stdout: " + printable(out.str()));
    std::istringstream lines(err.str());
    std::string line;
    while (std::getline(lines, line)) {
        FUZZ_CHECK(line.starts_with("vfio-hook") || line.starts_with("  "),
                   "stderr line not in vfio-hook's voice: " + printable(line) + " for " + printable(parts[0]));
    }
    std::error_code ignored;
    fs::remove_all(root / "run", ignored);  // each input starts with no records
    return 0;
}
