// The hook's lock (/run/vfio-hook/lock): one vfio-hook run at a time moves devices. These tests
// hold it as another run would and check what prepare and release do when they cannot take it.

#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "fake_host.hpp"

using namespace vfio_hook;
using namespace vfio_hook::testing;

namespace {

// The shared Desktop, with the lock to hold.
struct Pair : Desktop {
    std::filesystem::path lock_file() const { return root() / "run/vfio-hook/lock"; }
    // The hook as libvirt calls it, waiting at most `lock_deadline_ms` for the lock.
    Run hook_with_lock_deadline(const std::string& operation, const std::string& sub,
                                const std::string& xml, const std::string& lock_deadline_ms) {
        return run({"--lock-deadline-ms", lock_deadline_ms, "hook", "win11", operation, sub, "-"}, xml);
    }
};

// The lock as another vfio-hook run holds it. flock() locks belong to an open file description,
// so this one, opened separately in the same process, keeps the run under test out.
class HeldLock {
public:
    explicit HeldLock(const std::filesystem::path& file) {
        std::filesystem::create_directories(file.parent_path());
        fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0 || ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            if (fd_ >= 0) ::close(fd_);
            throw std::runtime_error("cannot lock " + file.string());
        }
    }
    ~HeldLock() { ::close(fd_); }
    HeldLock(const HeldLock&) = delete;
    HeldLock& operator=(const HeldLock&) = delete;

private:
    int fd_ = -1;
};

const std::string gpu_only = domain_xml("win11", uuid_a, {"0000:01:00.0"});

}  // namespace

BOOST_AUTO_TEST_SUITE(lock)

BOOST_AUTO_TEST_CASE(prepare_that_cannot_take_the_lock_fails_naming_it_and_moves_nothing) {
    Pair host;
    {
        HeldLock other_run(host.lock_file());
        auto prepare = host.hook_with_lock_deadline("prepare", "begin", gpu_only, "30");
        BOOST_TEST(prepare.status == 1);
        BOOST_TEST(prepare.err.find(host.lock_file().string()) != std::string::npos, prepare.err);
        BOOST_TEST(host.kernel().writes() == 0);
        BOOST_TEST(host.records().empty());
        BOOST_TEST(host.home());
    }
    // Once the other run is done, the same call goes through.
    auto prepare = host.hook_with_lock_deadline("prepare", "begin", gpu_only, "30");
    BOOST_TEST(prepare.status == 0, prepare.err);
    BOOST_TEST(host.on_vfio());
}

// libvirt ignores release's exit status and has no retry: the devices stay recorded, the user is
// told so, and `vfio-hook recover` brings them home later.
BOOST_AUTO_TEST_CASE(release_that_cannot_take_the_lock_exits_zero_and_keeps_the_devices_recorded) {
    Pair host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    int writes_before = host.kernel().writes();
    {
        HeldLock other_run(host.lock_file());
        auto release = host.hook_with_lock_deadline("release", "end", gpu_only, "30");
        BOOST_TEST(release.status == 0);
        BOOST_TEST(release.out.empty());
        BOOST_TEST(release.err.find("its devices stay recorded for `vfio-hook recover`") != std::string::npos,
                   release.err);
        BOOST_TEST(release.err.find(host.lock_file().string()) != std::string::npos, release.err);
        BOOST_TEST(host.kernel().writes() == writes_before);
        BOOST_TEST(host.on_vfio());
        BOOST_TEST(host.records() == std::vector<std::string>{std::string(uuid_a) + ".record"});
    }
    auto recover = host.run({"recover"});
    BOOST_TEST(recover.status == 0, recover.out + recover.err);
    BOOST_TEST(host.home());
    BOOST_TEST(host.records().empty());
}

BOOST_AUTO_TEST_CASE(recover_that_cannot_take_the_lock_fails_and_gives_nothing_back) {
    Pair host;
    BOOST_TEST_REQUIRE(host.hook("win11", "prepare", "begin", gpu_only).status == 0);
    int writes_before = host.kernel().writes();
    HeldLock other_run(host.lock_file());  // a VM's prepare, in the middle of moving its devices
    auto recover = host.run({"--lock-deadline-ms", "30", "recover"});
    BOOST_TEST(recover.status == 1);
    BOOST_TEST(recover.err.find(host.lock_file().string()) != std::string::npos, recover.err);
    BOOST_TEST(host.kernel().writes() == writes_before);
    BOOST_TEST(host.on_vfio());
    BOOST_TEST(host.records() == std::vector<std::string>{std::string(uuid_a) + ".record"});
}

BOOST_AUTO_TEST_CASE(bind_that_cannot_take_the_lock_fails_and_moves_nothing) {
    Pair host;
    HeldLock other_run(host.lock_file());
    auto bind = host.run({"--lock-deadline-ms", "30", "bind", "0000:01:00.0"});
    BOOST_TEST(bind.status == 1);
    BOOST_TEST(bind.err.find(host.lock_file().string()) != std::string::npos, bind.err);
    BOOST_TEST(host.kernel().writes() == 0);
    BOOST_TEST(host.records().empty());
    BOOST_TEST(host.home());
}

BOOST_AUTO_TEST_SUITE_END()
