#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "fake_host.hpp"
#include "host/record_store.hpp"
#include "host/sysfs.hpp"

using namespace vfio_hook;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "vfio-hook-sysfs-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

// Lets a helper stuck opening `fifo` for writing finish.
void unblock(const fs::path& fifo) {
    int fd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    if (fd >= 0) {
        ::usleep(50000);
        ::close(fd);
    }
}

// Lets a helper stuck opening `fifo` for reading finish (it then reads end-of-file).
void unblock_reader(const fs::path& fifo) {
    int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sysfs_writer)

BOOST_AUTO_TEST_CASE(a_write_that_returns_reports_success_or_the_kernel_error) {
    TempDir dir;
    RealKernel kernel(2000ms);
    std::ofstream(dir.path / "driver_override") << "";
    BOOST_TEST(kernel.write(dir.path / "driver_override", "vfio-pci").ok());
    std::ifstream file(dir.path / "driver_override");
    std::string text;
    file >> text;
    BOOST_TEST(text == "vfio-pci");
    auto missing = kernel.write(dir.path / "no/such/file", "x");
    BOOST_TEST(missing.status == WriteResult::Status::failed);
    BOOST_TEST(missing.error == ENOENT);
    BOOST_TEST(missing.describe() == "No such file or directory");
}

BOOST_AUTO_TEST_CASE(a_write_that_blocks_returns_timed_out_at_the_deadline) {
    TempDir dir;
    fs::path fifo = dir.path / "unbind";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    RealKernel kernel(200ms);
    auto start = std::chrono::steady_clock::now();
    auto result = kernel.write(fifo, "0000:01:00.0");  // no reader: the open blocks, like a stuck remove()
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(result.status == WriteResult::Status::timed_out);
    BOOST_TEST((took >= 200ms));
    BOOST_TEST((took < 3s));
    unblock(fifo);
}

// A bind runs the driver's probe (firmware loading): it is given the longer bind deadline, and the
// writer must wait that long, not its own default.
BOOST_AUTO_TEST_CASE(a_write_given_a_longer_deadline_waits_that_long) {
    TempDir dir;
    fs::path fifo = dir.path / "bind";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    RealKernel kernel(100ms);
    auto start = std::chrono::steady_clock::now();
    auto result = kernel.write_within(fifo, "0000:01:00.0", 600ms);
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST((result.status == WriteResult::Status::timed_out));
    BOOST_TEST((took >= 600ms), std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    BOOST_TEST((took < 3s));
    unblock(fifo);
}

// vtconsole's bind and the NVIDIA proc files are read in a helper: what the kernel answers comes
// back as it is, and a read that never returns comes back timed out at the deadline.
BOOST_AUTO_TEST_CASE(a_read_that_blocks_returns_timed_out_at_the_deadline) {
    TempDir dir;
    std::ofstream(dir.path / "bind") << "1\n";
    RealKernel kernel(200ms);
    auto read = kernel.read_blocking(dir.path / "bind");
    BOOST_TEST((read.status == ReadResult::Status::ok));
    BOOST_TEST(read.text == "1");
    BOOST_TEST((kernel.read_blocking(dir.path / "absent").status == ReadResult::Status::absent));

    fs::path fifo = dir.path / "information";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto start = std::chrono::steady_clock::now();
    auto blocked = kernel.read_blocking(fifo);  // no writer: the open blocks, like a wedged driver
    auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST((blocked.status == ReadResult::Status::timed_out));
    BOOST_TEST(blocked.text.empty());
    BOOST_TEST((took >= 200ms));
    BOOST_TEST((took < 3s));
    unblock_reader(fifo);
}

// libvirt reads the hook's stdout and stderr until EOF; a helper stuck in the kernel must hold
// neither, nor our lock, once the hook has given up on it and exited.
BOOST_AUTO_TEST_CASE(a_stuck_helper_holds_neither_the_callers_pipes_nor_the_lock) {
    TempDir dir;
    fs::path fifo = dir.path / "unbind";
    BOOST_TEST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    HostPaths paths{dir.path};
    int output[2];
    BOOST_TEST_REQUIRE(::pipe(output) == 0);
    pid_t hook = ::fork();
    if (hook == 0) {
        ::dup2(output[1], 1);
        ::dup2(output[1], 2);
        ::close(output[0]);
        ::close(output[1]);
        auto lock = HookLock::acquire(paths, 1000ms);
        RealKernel kernel(200ms);
        auto result = kernel.write(fifo, "0000:01:00.0");
        ::_exit(result.status == WriteResult::Status::timed_out ? 0 : 3);
    }
    ::close(output[1]);
    auto start = std::chrono::steady_clock::now();
    bool eof = false;
    while (std::chrono::steady_clock::now() - start < 5s) {
        pollfd descriptor{output[0], POLLIN, 0};
        if (::poll(&descriptor, 1, 100) > 0) {
            char byte;
            if (::read(output[0], &byte, 1) == 0) {
                eof = true;
                break;
            }
        }
    }
    auto took = std::chrono::steady_clock::now() - start;
    int status = 0;
    ::waitpid(hook, &status, 0);
    BOOST_TEST(eof);
    BOOST_TEST((took < 3s));
    BOOST_TEST((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    auto relocked = HookLock::acquire(paths, 500ms);
    BOOST_TEST(relocked.ok());
    ::close(output[0]);
    unblock(fifo);
}

BOOST_AUTO_TEST_CASE(the_lock_is_exclusive_and_times_out_with_a_clear_message) {
    TempDir dir;
    HostPaths paths{dir.path};
    auto first = HookLock::acquire(paths, 100ms);
    BOOST_TEST_REQUIRE(first.ok());
    auto second = HookLock::acquire(paths, 100ms);
    BOOST_TEST_REQUIRE(!second.ok());
    BOOST_TEST(second.error().find("lock") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
