#include <boost/test/unit_test.hpp>

#include "test_printing.hpp"

#include "core/mount_table.hpp"

using namespace vfio_hook;

BOOST_AUTO_TEST_SUITE(mount_table)

// Lines as a Debian 12 desktop's /proc/self/mountinfo has them (fs/proc_namespace.c,
// show_mountinfo: ID PARENT MAJ:MIN ROOT POINT OPTIONS OPTIONAL... - TYPE SOURCE SUPER-OPTIONS).
constexpr const char* desktop =
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
    "23 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8135716k,mode=755\n"
    "26 22 0:23 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,mode=755\n"
    "40 22 0:40 / /home/alice/nas rw,relatime shared:20 - nfs4 nas:/export rw,vers=4.2,hard\n"
    "41 22 0:41 / /home/alice/my\\040files rw,nosuid,nodev,relatime shared:21 - fuse.sshfs alice@box: rw\n"
    "42 22 0:42 / /srv/container-root rw,relatime shared:22 - overlay overlay rw,lowerdir=/a\n"
    "43 22 0:43 / /srv/container-root rw,nodev,relatime shared:23 - cifs //nas/x rw\n";

BOOST_AUTO_TEST_CASE(files_on_network_fuse_and_nodev_mounts_are_never_stated) {
    auto table = MountTable::parse(desktop);
    BOOST_TEST(!table.may_stat("/home/alice/nas/game.iso"));  // nfs4: a dead server hangs a stat
    BOOST_TEST(!table.may_stat("/home/alice/my files/notes"));  // FUSE, its name escaped as \040
    BOOST_TEST(!table.may_stat("/run/user/1000/bus"));  // nodev: no device can be open there
    // the cifs mount was mounted last on the same point: it is what a path there reaches
    BOOST_TEST(!table.may_stat("/srv/container-root/gpu"));
}

BOOST_AUTO_TEST_CASE(files_on_local_mounts_that_allow_devices_are_stated) {
    auto table = MountTable::parse(desktop);
    BOOST_TEST(table.may_stat("/sandbox/gpu"));  // the root file system: a node made with mknod
    BOOST_TEST(table.may_stat("/dev/dri/card1"));
    BOOST_TEST(table.may_stat("/home/alice/nasty"));  // not under /home/alice/nas: a name, not a prefix
    BOOST_TEST(MountTable::parse("").may_stat("/anything"));  // nothing known: stat as before
}

BOOST_AUTO_TEST_SUITE_END()
