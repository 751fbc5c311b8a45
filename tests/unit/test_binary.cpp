// The built vfio-hook binary, run the way libvirt runs it: through main(), as
// /etc/libvirt/hooks/qemu or as a script in hooks/qemu.d/, with the domain XML on stdin.
// Only calls it must answer at once run here: prepare and release through the real binary would
// act on this machine's /sys.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fake_host.hpp"

extern char** environ;

using namespace vfio_hook::testing;
namespace fs = std::filesystem;

namespace {

// A temp dir with hooks/qemu and hooks/qemu.d/vfio-hook, both links to the built binary.
class HookDir {
public:
    HookDir() {
        std::string pattern = (fs::temp_directory_path() / "vfio-hook-binary-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = pattern;
        fs::create_directories(dir_ / "hooks/qemu.d");
        fs::create_symlink(VFIO_HOOK_BINARY, qemu());
        fs::create_symlink(VFIO_HOOK_BINARY, qemu_d_script());
    }
    ~HookDir() {
        std::error_code error;
        fs::remove_all(dir_, error);
    }
    HookDir(const HookDir&) = delete;
    HookDir& operator=(const HookDir&) = delete;

    fs::path qemu() const { return dir_ / "hooks/qemu"; }
    fs::path qemu_d_script() const { return dir_ / "hooks/qemu.d/vfio-hook"; }
    const fs::path& dir() const { return dir_; }

private:
    fs::path dir_;
};

struct Exit {
    int status;  // the exit status, or 128 + the signal that killed it
    std::string out;
    std::string err;
};

// Runs `program args...` (argv[0] = the program's path, as libvirt passes it) with `stdin_text`
// on stdin; stdin, stdout and stderr are files in `scratch`, so nothing can block on a pipe.
Exit run_program(const fs::path& program, const std::vector<std::string>& args,
                 const std::string& stdin_text, const fs::path& scratch) {
    fs::path in = scratch / "stdin", out = scratch / "stdout", err = scratch / "stderr";
    std::ofstream(in, std::ios::binary | std::ios::trunc) << stdin_text;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> words{program.string()};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int spawned = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) throw std::runtime_error("posix_spawn " + program.string() + " failed");
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) throw std::runtime_error("waitpid failed");
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return {code, read(out), read(err)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(binary)

// For migrate and restore libvirt reads the hook's stdout as a replacement domain XML: a single
// byte there would break them. Every other call must be answered at once, with exit 0.
BOOST_AUTO_TEST_CASE(as_libvirts_qemu_hook_every_other_call_exits_zero_with_nothing_on_stdout) {
    HookDir hooks;
    std::string xml = domain_xml("win11", uuid_a, {"0000:01:00.0"});
    const std::vector<std::vector<std::string>> calls = {
        {"win11", "migrate", "begin", "-"},   {"win11", "restore", "begin", "-"},
        {"win11", "started", "begin", "-"},   {"win11", "start", "begin", "-"},
        {"win11", "stopped", "end", "-"},     {"win11", "reconnect", "begin", "-"},
        {"win11", "attach", "begin", "-"},    {"win11", "future-op", "begin", "-"},
        {"--help", "migrate", "begin", "-"},  {"--version", "restore", "begin", "-"},
    };
    for (const auto& program : {hooks.qemu(), hooks.qemu_d_script()}) {
        for (const auto& call : calls) {
            auto run = run_program(program, call, xml, hooks.dir());
            std::string what = program.lexically_relative(hooks.dir()).string() + " " + call[0] + " " + call[1] + " " + call[2];
            BOOST_TEST(run.status == 0, what << ": " << run.err);
            BOOST_TEST(run.out.empty(), what << " printed: " << run.out);
        }
    }
}

// The hook's own lines, through main()'s streams: a refusal on stderr, where `virsh start` shows
// it, and nothing on stdout. --root keeps it on a fake tree (the refusal writes nothing anyway).
BOOST_AUTO_TEST_CASE(the_hook_binary_prints_nothing_on_stdout_and_its_refusal_on_stderr) {
    FakeHost host;
    host.gpu("0000:01:00.0", "nvidia", 14).drm_node("0000:01:00.0", "card1");
    host.process(1234, "Xorg", {"/dev/dri/card1"});
    std::string xml = domain_xml("win11", uuid_a, {"0000:01:00.0"});
    auto run = run_program(VFIO_HOOK_BINARY, {"--root", host.root().string(), "hook", "win11", "prepare", "begin", "-"},
                           xml, host.root());
    BOOST_TEST(run.status == 1, run.err);
    BOOST_TEST(run.out.empty(), "stdout: " << run.out);
    BOOST_TEST(run.err.find("0000:01:00.0: is held open by pid 1234 (Xorg) on /dev/dri/card1") != std::string::npos,
               run.err);
    BOOST_TEST(host.driver_of("0000:01:00.0") == "nvidia");
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_SUITE_END()
