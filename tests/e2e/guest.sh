#!/bin/bash
# vfio-hook end-to-end scenarios. Runs inside the test guest booted by tests/e2e/run.
#
#   guest.sh list                   "name seconds" per scenario (also read by the host side)
#   guest.sh main                   set up libvirtd with the hook, run the selected scenarios
#   guest.sh run-one NAME RESFILE   one scenario; main runs it under `timeout`
#
# Output contract (serial console, grepped by the host): exactly one line per scenario,
# "PASS name" or "FAIL name: reason"; everything else starts with "#"; "E2E-DONE" at the end.
#
# The guest's hardware (see README.md): 0000:00:02.0 boot VGA (bochs-drm, must never move);
# 0000:01:00.0 display controller (bochs-drm) + 0000:01:00.1 HDMI-class audio (snd_hda_intel)
# in one IOMMU group behind root port 0000:00:03.0; 0000:03:01.0 audio (snd_hda_intel) and
# 0000:03:02.0 network (e1000), two slots behind the PCIe-to-PCI bridge 0000:02:00.0 and so in
# one IOMMU group. Groups and card numbers are read from sysfs. The kernel runs with
# fbcon=map:01: fbcon draws VT1 on fb0 (00:02.0) and VT2 on fb1 (01:00.0), so it stays bound
# when fb0 goes away (see the single-gpu scenarios).
set -uo pipefail

# name and in-guest time bound (seconds); this is the run order (--only keeps it too).
# firmware-in-status runs last: the kernel-log line it plants stays for the rest of the boot.
# single-gpu-firmware-fb runs first: it needs the boot VGA as the UEFI firmware left it (efifb, no
# native driver), and the reset after it gives 00:02.0 to bochs-drm as the others expect.
SCENARIOS="
single-gpu-firmware-fb 120
gpu-only-destroy 60
gpu-only-shutdown 75
three-cycles 120
no-hostdevs 60
managed-yes 75
release-with-bad-metadata 75
boot-vga-refused 45
missing-device-refused 45
group-companion-refused 45
holder-refused 90
second-vm-refused 90
hung-unbind 120
kill-during-prepare 120
two-starts-at-once 90
install-and-hook-d 420
install-beside-dispatcher 420
deb-package 420
deb-upgrade-while-running 240
assign-headless 240
readme-path 420
single-gpu 150
single-gpu-console-comes-back 90
single-gpu-dm-does-not-stop 90
standin-ddc-holder 90
standin-persistenced 60
standin-shared-nodes 75
standin-remove-race 150
standin-probe-fails 90
shutoff-reason 120
power-guard 180
persist 240
status-chain 60
firmware-in-status 45
"

VGA=0000:00:02.0
GPU=0000:01:00.0
AUD=0000:01:00.1
RP=0000:00:03.0
PB_AUD=0000:03:01.0 # behind the PCI bridge: one IOMMU group, two unrelated slots
PB_NIC=0000:03:02.0
PB_BRIDGE=0000:02:00.0
MISSING=0000:0a:00.0
NV=0000:04:00.0 # QEMU's secondary QXL: no driver until the stand-in NVIDIA driver takes it
SYS=/sys/bus/pci/devices
E2E=/e2e
DOMS=$E2E/domains
STATE_DIR=/run/vfio-hook
PB_HOME="$PB_AUD=snd_hda_intel $PB_NIC=e1000"
HOME_STATE="$VGA=bochs-drm $GPU=bochs-drm $AUD=snd_hda_intel $PB_HOME"
VFIO_STATE="$VGA=bochs-drm $GPU=vfio-pci $AUD=vfio-pci $PB_HOME"
META_NS=https://vfio-hook.org/xmlns/domain/1
LIBVIRTD_LOG=/var/log/libvirt/libvirtd.log
# libvirt's util.command debug messages: every hook call with its stderr, i.e. the hook's own log
# (no journald in the guest, so the hook logs to stderr, which libvirt keeps only at debug level)
COMMAND_LOG=/var/log/libvirt/commands.log
COMMAND_LOG_WANTED=/tmp/e2e.command-log # exists: libvirtd writes $COMMAND_LOG
HOOKD=/etc/vfio-hook/hook.d
CONSOLE_FOUND=/tmp/e2e.console # the console as setup found it: "FBCON_VT FB0_DEVICE FB1_DEVICE"
DM_PIDS=/run/e2e-dm.pids       # display-manager stand-ins, killed by the reset whatever happened
FWFB_MODE=/run/e2e.fwfb        # exists: 00:02.0 is kept driverless, its console on the firmware framebuffer
export LIBVIRT_DEFAULT_URI=qemu:///system
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------- small helpers
now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
since() { local d=$(($(now_ms) - $1)); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }
oneline() { tr '\n' ' ' <<<"$1" | sed 's/  */ /g; s/ $//'; }
prefixed() { sed "s/^/$1/"; } # PREFIX: stdin with PREFIX before each line

drv() {
    local l
    if l=$(readlink "$SYS/$1/driver" 2>/dev/null); then echo "${l##*/}"; else echo none; fi
}
ovr() {
    local o
    o=$(cat "$SYS/$1/driver_override" 2>/dev/null) || o='?'
    [ "$o" = "(null)" ] && o=
    echo "$o"
}
# state and is_home run in polling loops under TCG, where every exec costs tens of ms:
# one readlink for the five driver links, one cat for the five overrides.
WATCHED="$VGA $GPU $AUD $PB_AUD $PB_NIC"
state() {
    local out=() l d i=0 text=
    # readlink -m prints the link's target, or the path itself when there is no driver link
    for l in $(readlink -m "$SYS/$VGA/driver" "$SYS/$GPU/driver" "$SYS/$AUD/driver" \
        "$SYS/$PB_AUD/driver" "$SYS/$PB_NIC/driver"); do
        case $l in */drivers/*) out+=("${l##*/}") ;; *) out+=(none) ;; esac
    done
    for d in $WATCHED; do text+=" $d=${out[i]}"; i=$((i + 1)); done
    echo "${text# }"
}
overrides() {
    echo "driver_override: $GPU='$(ovr $GPU)' $AUD='$(ovr $AUD)' $PB_AUD='$(ovr $PB_AUD)' $PB_NIC='$(ovr $PB_NIC)'"
}
is_home() {
    [ "$(state)" = "$HOME_STATE" ] || return 1
    # reading driver_override waits for the device lock: never call this while an unbind may hang
    [ "$(cat "$SYS/$VGA/driver_override" "$SYS/$GPU/driver_override" "$SYS/$AUD/driver_override" \
        "$SYS/$PB_AUD/driver_override" "$SYS/$PB_NIC/driver_override" \
        2>/dev/null | tr -d '\n')" = "(null)(null)(null)(null)(null)" ]
}
group_of() { local l; l=$(readlink "$SYS/$1/iommu_group" 2>/dev/null) && echo "${l##*/}"; }
group_members() { # GROUP -> "N: ADDR (DRIVER) ADDR (DRIVER)..."
    local f text="$1:"
    for f in /sys/kernel/iommu_groups/"$1"/devices/*; do text+=" ${f##*/} ($(drv "${f##*/}"))"; done
    echo "$text"
}
drm_card() { # ADDR -> cardN (read fresh: numbers can change when the driver rebinds)
    local c
    for c in "$SYS/$1"/drm/card*; do [ -e "$c" ] && { echo "${c##*/}"; return 0; }; done
    return 1
}
records() { # per-domain records the hook left behind, one per line
    find "$STATE_DIR/records" -mindepth 1 2>/dev/null
}

# A sysfs write that may block forever (unbind): run it aside, wait at most SECS.
bounded_write() { # VALUE FILE SECS
    (printf '%s\n' "$1" >"$2") 2>/dev/null &
    local p=$! i=0
    while kill -0 "$p" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt $(($3 * 10)) ]; then
            echo "write of '$1' to $2 still blocked after $3 s"
            return 1
        fi
        sleep 0.1
    done
    wait "$p"
}

valid_json() { # stdin
    if command -v python3 >/dev/null; then
        python3 -c 'import json,sys; json.load(sys.stdin)'
        return
    fi
    # No python3 (the Debian 13 root is minbase): a small recursive-descent checker.
    awk '
    function bad(m) { printf "invalid JSON at offset %d: %s\n", p, m > "/dev/stderr"; failed = 1; exit 1 }
    function ws() { while (p <= n && index(" \t\r\n", substr(s, p, 1))) p++ }
    function str(   c) {
        p++
        while (p <= n) {
            c = substr(s, p, 1)
            if (c == "\\") { p += 2; continue }
            if (c == "\"") { p++; return }
            p++
        }
        bad("unterminated string")
    }
    function num(   q) {
        q = p
        while (p <= n && index("+-0123456789.eE", substr(s, p, 1))) p++
        if (p == q) bad("value expected")
    }
    function val(   c) {
        ws(); c = substr(s, p, 1)
        if (c == "{") obj()
        else if (c == "[") arr()
        else if (c == "\"") str()
        else if (substr(s, p, 4) == "true" || substr(s, p, 4) == "null") p += 4
        else if (substr(s, p, 5) == "false") p += 5
        else num()
    }
    function obj(   c) {
        p++; ws()
        if (substr(s, p, 1) == "}") { p++; return }
        while (1) {
            ws(); if (substr(s, p, 1) != "\"") bad("key expected")
            str(); ws(); if (substr(s, p, 1) != ":") bad("colon expected")
            p++; val(); ws(); c = substr(s, p, 1); p++
            if (c == "}") return
            if (c != ",") bad("comma or } expected")
        }
    }
    function arr(   c) {
        p++; ws()
        if (substr(s, p, 1) == "]") { p++; return }
        while (1) {
            val(); ws(); c = substr(s, p, 1); p++
            if (c == "]") return
            if (c != ",") bad("comma or ] expected")
        }
    }
    { s = s $0 "\n" }
    END {
        if (failed) exit 1
        n = length(s); p = 1; ws()
        if (p > n) bad("empty input")
        val(); ws()
        if (p <= n) bad("trailing text")
    }'
}

# ---------------------------------------------------------------- verdicts (run-one)
NAME=
RES=
FIRST_FAIL=
fail() { # record the verdict and stop the scenario
    echo "FAIL: $*"
    [ -s "$RES" ] || echo "FAIL $NAME: $*" >"$RES"
    exit 1
}
soft_fail() { # note a failure but carry on (to finish cleaning up / gather facts)
    echo "FAIL: $*"
    [ -n "$FIRST_FAIL" ] || FIRST_FAIL=$*
}
pass() {
    [ -z "$FIRST_FAIL" ] || fail "$FIRST_FAIL"
    [ -s "$RES" ] || echo "PASS $NAME" >"$RES"
    exit 0
}

# ---------------------------------------------------------------- expectations
expect() { # PHASE GPU-DRIVER AUDIO-DRIVER (the cards behind the bridge never move)
    local want="$VGA=bochs-drm $GPU=$2 $AUD=$3 $PB_HOME" got
    got=$(state)
    [ "$got" = "$want" ] || fail "$1: drivers are [$got], expected [$want]"
    echo "$1: $got"
}
expect_vfio() { expect "$1" vfio-pci vfio-pci; }
wait_home() { # PHASE [SECONDS]: devices back on their own drivers, overrides empty
    local t0 lim=${2:-5}
    t0=$(now_ms)
    while ! is_home; do
        if [ $(($(now_ms) - t0)) -ge $((lim * 1000)) ]; then
            fail "$1: not home after $lim s: [$(state)], $(overrides)"
        fi
        sleep 0.1
    done
    echo "$1: home after $(since "$t0") s: $(state)"
}
expect_unchanged() { # PHASE: home, immediately
    is_home || fail "$1: something moved: [$(state)], $(overrides), VGA override '$(ovr $VGA)'"
    echo "$1: unchanged: $(state)"
}
no_records() { # PHASE DOMAIN: nothing per-domain left under /run/vfio-hook
    local r uuid left
    r=$(records)
    uuid=$(awk -v d="$2" '$1 == d { print $2 }' /tmp/e2e.uuids 2>/dev/null)
    # last/UUID.prepare and .release stay on purpose: `status` shows each VM's last run from them.
    left=$(find "$STATE_DIR" -mindepth 1 -path "$STATE_DIR/last" -prune -o -print 2>/dev/null |
        grep -e "$2" ${uuid:+-e "$uuid"} || true)
    echo "$1: /run/vfio-hook holds: $(find "$STATE_DIR" -mindepth 1 2>/dev/null | tr '\n' ' ')"
    [ -z "$r$left" ] || fail "$1: records left behind: $(oneline "$(sort -u <<<"$r
$left")")"
}

# ---------------------------------------------------------------- libvirt wrappers
# Every virsh exec costs 1-4 s in this guest (TCG, and TCG again for the nested QEMU), so the
# domains are defined once at setup and "is it still running" is read from libvirt's status
# file (/run/libvirt/qemu/NAME.xml exists exactly while the domain is active).
DOMAINS="gpu-only gpu-only-b no-hostdevs managed-yes boot-vga missing-device group-companion headless single-gpu single-gpu-meta standin"
DOMAIN_NAMES="e2e-gpu e2e-gpu-b e2e-plain e2e-managed e2e-bootvga e2e-missing e2e-companion e2e-headless e2e-single e2e-single-meta e2e-nv"
define_all() {
    local cmds='' t
    for t in $DOMAINS; do cmds+="define $DOMS/$t.xml; "; done
    virsh "$cmds" >/dev/null
}
domstate() { timeout 20 virsh domstate "$1" 2>&1 | head -n 1; }
active() { [ -e "/run/libvirt/qemu/$1.xml" ]; }
wait_inactive() { # DOMAIN SECONDS
    local t0
    t0=$(now_ms)
    while active "$1"; do
        [ $(($(now_ms) - t0)) -lt $(($2 * 1000)) ] || return 1
        sleep 0.2
    done
}
vstart() { # DOMAIN: must start
    local t0 out
    t0=$(now_ms)
    out=$(timeout 60 virsh start "$1" 2>&1) ||
        fail "virsh start $1 failed after $(since "$t0") s: $(oneline "$out")"
    echo "virsh start $1: ok in $(since "$t0") s"
    active "$1" || fail "$1 is not active after virsh start"
}
ERR=
vstart_refused() { # DOMAIN [SECONDS]: must fail; the error text is left in $ERR
    local t0 rc=0 lim=${2:-60}
    t0=$(now_ms)
    ERR=$(timeout "$lim" virsh start "$1" 2>&1) || rc=$?
    echo "virsh start $1: exit $rc after $(since "$t0") s: $(oneline "$ERR")"
    [ "$rc" != 0 ] || fail "virsh start $1 succeeded; it should have been refused"
    [ "$rc" != 124 ] || fail "virsh start $1 did not return within $lim s"
    ! active "$1" || fail "$1 is active after a refused start"
}
vdestroy() { # DOMAIN
    local t0 out
    t0=$(now_ms)
    out=$(timeout 60 virsh destroy "$1" 2>&1) ||
        fail "virsh destroy $1 failed after $(since "$t0") s: $(oneline "$out")"
    echo "virsh destroy $1: ok in $(since "$t0") s"
}
# The "shutdown path". The test domains boot nothing, so nothing answers an ACPI power button.
# Ask politely first (virsh shutdown --mode acpi), then make QEMU quit by itself through QMP
# ("quit"): QEMU emits SHUTDOWN and exits, and libvirt handles that exactly like a guest that
# powered itself off (qemuProcessStop with reason "shutdown", not libvirt killing it on destroy),
# calling the hook's "stopped end" and "release end". There is no fallback: if QEMU does not go
# away by itself, or libvirt records any other reason than "shutdown" (a destroy), the path under
# test never ran and the scenario fails.
vshutdown() { # DOMAIN
    local t0 out reason
    t0=$(now_ms)
    out=$(timeout 20 virsh shutdown --mode acpi "$1" 2>&1) ||
        echo "virsh shutdown --mode acpi $1: $(oneline "$out")"
    if wait_inactive "$1" 2; then
        echo "ACPI shutdown was honoured"
    else
        echo "ACPI shutdown not honoured in 2 s (nothing booted); QMP quit"
        out=$(timeout 20 virsh qemu-monitor-command "$1" '{"execute":"quit"}' 2>&1) ||
            echo "qemu-monitor-command quit: $(oneline "$out")"
        wait_inactive "$1" 20 ||
            fail "$1 still active 20 s after QMP quit: the shutdown path did not end it"
    fi
    reason=$(timeout 20 virsh domstate --reason "$1" 2>&1 | head -n 1)
    echo "$1 stopped in $(since "$t0") s: $reason"
    [ "$reason" = "shut off (shutdown)" ] ||
        fail "libvirt says '$reason' for $1, expected 'shut off (shutdown)': the shutdown path did not end it"
}

# ---------------------------------------------------------------- persist's udev
# There is no systemd in the guest: udevd runs only for the persist scenario, as a daemon.
udevd_start() {
    local b
    for b in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do
        [ -x "$b" ] || continue
        "$b" --daemon 2>&1 | prefixed "# udevd: "
        udevadm settle -t 10 2>/dev/null
        return 0
    done
    return 1
}
udevd_stop() {
    pkill -x systemd-udevd 2>/dev/null && echo "# stopped systemd-udevd"
    return 0
}

# ---------------------------------------------------------------- the scenarios
# The initramfs step runs against a stub: a real rebuild takes minutes under TCG, and a second
# boot of this guest would not use it (its kernel and initramfs come from tests/e2e/run). A real
# boot adds the device as the rescan does here, before any GPU driver is loaded, so the rule's
# driver_override alone keeps the host driver off it; here bochs-drm is loaded and binds in the
# kernel first, so this also proves the rule's persist-apply taking it back.
wait_drivers() { # "GPU-DRIVER AUD-DRIVER" SECONDS
    local t0
    t0=$(now_ms)
    until [ "$(drv $GPU) $(drv $AUD)" = "$1" ]; do
        [ $(($(now_ms) - t0)) -lt $(($2 * 1000)) ] || return 1
        sleep 0.2
    done
}
rescan_gpu() {
    echo 1 >"$SYS/$AUD/remove"
    echo 1 >"$SYS/$GPU/remove"
    echo 1 >/sys/bus/pci/rescan
    udevadm settle -t 60 2>&1 | prefixed "# settle: "
}
sc_persist() {
    local out rc=0 before after
    expect_unchanged before
    printf '#!/bin/sh\necho "$@" >>/run/e2e-initramfs-calls\n' >/usr/sbin/update-initramfs
    chmod 755 /usr/sbin/update-initramfs
    rm -f /run/e2e-initramfs-calls
    before=$(find /etc -type f | sort)
    out=$(timeout 120 vfio-hook persist "$GPU" 2>&1) || rc=$?
    prefixed "#   persist: " <<<"$out"
    [ "$rc" = 0 ] || fail "vfio-hook persist $GPU exited $rc: $(oneline "$out")"
    [ "$(cat /run/e2e-initramfs-calls 2>/dev/null)" = "-u -k all" ] ||
        fail "update-initramfs was not run as update-initramfs -u -k all: $(cat /run/e2e-initramfs-calls 2>&1)"
    wait_drivers "vfio-pci vfio-pci" 10 || fail "not on vfio-pci after persist: $(state)"
    udevd_start || fail "no systemd-udevd in this guest"
    rescan_gpu
    wait_drivers "vfio-pci vfio-pci" 30 || fail "after a rescan with the rule in place: $(state), $(overrides)"
    [ "$(ovr $GPU)" = vfio-pci ] || fail "the rule did not set driver_override: $(overrides)"
    echo "after the rescan: $(state), $(overrides)"
    vstart e2e-gpu
    vdestroy e2e-gpu
    sleep 2
    [ "$(drv $GPU) $(drv $AUD)" = "vfio-pci vfio-pci" ] || fail "a persisted device left vfio-pci when the VM stopped: $(state)"
    out=$(vfio-hook status 2>&1)
    grep -qF "vfio-hook persist: $GPU, $AUD" <<<"$out" || fail "status does not list them: $(oneline "$out")"
    rc=0
    out=$(timeout 120 vfio-hook unpersist "$GPU" 2>&1) || rc=$?
    prefixed "#   unpersist: " <<<"$out"
    [ "$rc" = 0 ] || fail "vfio-hook unpersist $GPU exited $rc: $(oneline "$out")"
    wait_home "after unpersist"
    after=$(find /etc -type f | sort)
    [ "$before" = "$after" ] || fail "unpersist left files: $(oneline "$(diff <(echo "$before") <(echo "$after"))")"
    rescan_gpu
    wait_drivers "bochs-drm snd_hda_intel" 30 || fail "after unpersist and a rescan: $(state), $(overrides)"
    udevd_stop
    rm -f /usr/sbin/update-initramfs /run/e2e-initramfs-calls
    pass
}

sc_gpu_only_destroy() {
    expect_unchanged before
    vstart e2e-gpu
    expect_vfio running
    vdestroy e2e-gpu
    wait_home "after destroy"
    no_records "after destroy" e2e-gpu
    pass
}

# Issue 26: release's fourth argument as libvirt really passes it, for `virsh destroy` and for a
# QEMU killed with SIGKILL (libvirt >= 10.5: destroyed, crashed; Debian 12's 9.0: -), read from
# the hook's own "release done" line; the devices come home both times (after `crashed` the
# liveness check is strict: the real config space must answer). Two VM cycles: ~20-40 s.
libvirt_passes_shutoff_reason() {
    local version
    version=$(virsh version 2>/dev/null | awk '/Using library: libvirt/ { print $4 }')
    echo "libvirt $version" >&2
    [ -n "$version" ] && printf '10.5.0\n%s\n' "$version" | sort -V -C
}
release_reason_is() { # PHASE MARK REASON
    local lines
    lines=$(hook_log_since "$2")
    prefixed '  | ' <<<"$(grep -a 'release done' <<<"$lines")"
    grep -qF "(libvirt's shutoff reason: $3)" <<<"$lines" ||
        fail "$1: the hook's log has no release with shutoff reason '$3'"
}
sc_shutoff_reason() {
    local destroyed=- crashed=- mark qemu_pid
    if libvirt_passes_shutoff_reason; then destroyed=destroyed crashed=crashed; fi
    expect_unchanged before
    mark=$(log_mark)
    vstart e2e-gpu
    expect_vfio running
    vdestroy e2e-gpu
    wait_home "after destroy"
    release_reason_is "after destroy" "$mark" "$destroyed"
    mark=$(log_mark)
    vstart e2e-gpu
    qemu_pid=$(cat /run/libvirt/qemu/e2e-gpu.pid 2>/dev/null) || fail "no pid file for e2e-gpu's QEMU"
    kill -9 "$qemu_pid"
    wait_inactive e2e-gpu 30 || fail "e2e-gpu still active 30 s after its QEMU got SIGKILL"
    echo "libvirt says: $(timeout 20 virsh domstate --reason e2e-gpu 2>&1 | head -n 1)"
    wait_home "after SIGKILL of QEMU"
    release_reason_is "after SIGKILL" "$mark" "$crashed"
    no_records "after SIGKILL" e2e-gpu
    pass
}

# Issue 26: the power guard on the real device: vfio-pci's bind turns power/control auto (5.19+),
# the guard sets on while the VM has it, and release puts back what was there; then one cycle
# with `power-guard no` for vfio-pci's own value. Two VM cycles: ~20-40 s (120 s under load).
power_controls() { echo "$(cat "$SYS/$GPU/power/control") $(cat "$SYS/$AUD/power/control")"; }
# d3cold_allowed (CONFIG_PM + CONFIG_ACPI: Debian's kernels have it): the guard sets 0 before the
# vfio-pci bind, whose idle suspend would otherwise come first; "- -" where the kernel has none.
d3colds() { echo "$(cat "$SYS/$GPU/d3cold_allowed" 2>/dev/null || echo -) $(cat "$SYS/$AUD/d3cold_allowed" 2>/dev/null || echo -)"; }
sc_power_guard() {
    local before during after unguarded d3_before d3_during d3_after d3_kernel out mark lines
    expect_unchanged before
    # The guest's emulated display and audio functions have no PM capability, so pci_pm_init()
    # leaves their d3cold_allowed 0 (measured); set 1 (a real GPU's) so the guard's 0 is seen.
    d3_kernel=$(d3colds)
    if [ "$d3_kernel" != "- -" ]; then echo 1 > "$SYS/$GPU/d3cold_allowed"; echo 1 > "$SYS/$AUD/d3cold_allowed"; fi
    before=$(power_controls)
    d3_before=$(d3colds)
    vstart e2e-gpu
    expect_vfio running
    during=$(power_controls)
    d3_during=$(d3colds)
    vdestroy e2e-gpu
    wait_home "after destroy"
    after=$(power_controls)
    d3_after=$(d3colds)
    echo "power/control of $GPU $AUD: before '$before', while the VM ran '$during', after '$after'"
    echo "d3cold_allowed of $GPU $AUD: before '$d3_before', while the VM ran '$d3_during', after '$d3_after'"
    [ "$during" = "on on" ] || fail "while the VM ran: '$during', expected 'on on'"
    [ "$after" = "$before" ] || fail "after the VM: '$after', expected what was there before: '$before'"
    if [ "$d3_before" != "- -" ]; then
        [ "$d3_during" = "0 0" ] || fail "d3cold_allowed while the VM ran: '$d3_during', expected '0 0'"
        [ "$d3_after" = "$d3_before" ] || fail "d3cold_allowed after the VM: '$d3_after', expected '$d3_before'"
    fi
    # What vfio-pci itself leaves without the guard (auto since 5.19), and that it is put back too.
    vfio-hook set e2e-gpu power-guard no >/dev/null || fail "vfio-hook set e2e-gpu power-guard no failed"
    # Issue 26, points 5 and 6, in the same VM cycle: `rebar largest` on devices without a
    # resizable BAR (QEMU's bochs-display and ich9-intel-hda have none) is one warning and the VM
    # starts; a hostdev naming <driver model='vfio-pci'/> (libvirt 10+ keeps it, 9.0 drops it) moves as before.
    vfio-hook set e2e-gpu rebar largest >/dev/null || fail "vfio-hook set e2e-gpu rebar largest failed"
    timeout 30 virsh dumpxml --inactive e2e-gpu >/tmp/e2e-gpu-before-model.xml
    sed "s|<source>|<driver name='vfio' model='vfio-pci'/><source>|" /tmp/e2e-gpu-before-model.xml >/tmp/e2e-gpu-model.xml
    out=$(timeout 30 virsh define /tmp/e2e-gpu-model.xml 2>&1) || fail "virsh define with <driver model='vfio-pci'/>: $(oneline "$out")"
    mark=$(log_mark)
    vstart e2e-gpu
    unguarded=$(power_controls)
    [ "$(d3colds)" = "$d3_before" ] || fail "power-guard no changed d3cold_allowed: '$(d3colds)', was '$d3_before'"
    echo "resizable BARs: $(find "$SYS/$GPU/" "$SYS/$AUD/" -maxdepth 1 -name 'resource*_resize' | wc -l); driver model in the live XML: $(timeout 30 virsh dumpxml e2e-gpu | grep -o "<driver name='vfio'[^>]*>" | head -n 1)"
    expect_vfio "with rebar largest and <driver model='vfio-pci'/>"
    vdestroy e2e-gpu
    wait_home "after the unguarded VM"
    lines=$(hook_log_since "$mark")
    prefixed '  | ' <<<"$(grep -a 'rebar' <<<"$lines")"
    [ "$(grep -ac 'warning: rebar largest: no device of this VM has a resizable BAR' <<<"$lines")" = 1 ] ||
        fail "rebar largest: expected one warning that no device has a resizable BAR"
    out=$(timeout 30 virsh define /tmp/e2e-gpu-before-model.xml 2>&1) || fail "cannot define e2e-gpu as before: $(oneline "$out")"
    vfio-hook set e2e-gpu rebar no >/dev/null
    vfio-hook set e2e-gpu power-guard yes >/dev/null
    after=$(power_controls)
    echo "power-guard no: while the VM ran '$unguarded' (vfio-pci's own), after '$after'"
    [ "$after" = "$before" ] || fail "after the unguarded VM: '$after', expected '$before'"
    if [ "$d3_kernel" != "- -" ]; then
        echo "${d3_kernel% *}" > "$SYS/$GPU/d3cold_allowed"; echo "${d3_kernel#* }" > "$SYS/$AUD/d3cold_allowed"
    fi
    no_records "after destroy" e2e-gpu
    pass
}

sc_gpu_only_shutdown() {
    expect_unchanged before
    vstart e2e-gpu
    expect_vfio running
    vshutdown e2e-gpu
    wait_home "after shutdown"
    no_records "after shutdown" e2e-gpu
    pass
}

sc_three_cycles() {
    local i
    expect_unchanged before
    for i in 1 2 3; do
        vstart e2e-gpu
        expect_vfio "cycle $i running"
        echo "cycle $i records: $(records | tr '\n' ' ')"
        vdestroy e2e-gpu
        wait_home "cycle $i after destroy"
    done
    no_records "after the last stop" e2e-gpu
    pass
}

sc_no_hostdevs() {
    expect_unchanged before
    vstart e2e-plain
    expect_unchanged running
    vdestroy e2e-plain
    expect_unchanged "after destroy"
    no_records "after destroy" e2e-plain
    pass
}

sc_managed_yes() {
    expect_unchanged before
    vstart e2e-managed
    expect_vfio running
    vdestroy e2e-managed
    wait_home "after destroy"
    no_records "after destroy" e2e-managed
    pass
}

# The release hook reads the live XML on stdin. vfio-hook metadata that does not parse
# (allow-boot-vga must be yes or no), set on the running domain, must not keep its devices.
sc_release_with_bad_metadata() {
    local out
    expect_unchanged before
    vstart e2e-gpu
    expect_vfio running
    # one virsh call (each costs 1-4 s here): set the live metadata, then print the live XML
    out=$(timeout 30 virsh "metadata e2e-gpu --uri $META_NS --key vfio --live --set '<settings><allow-boot-vga>maybe</allow-boot-vga></settings>'; dumpxml e2e-gpu" 2>&1)
    if ! grep -qF "$META_NS" <<<"$out" || ! grep -q 'allow-boot-vga>maybe</' <<<"$out"; then
        fail "the live XML of e2e-gpu does not carry the bad metadata: $(oneline "$out")"
    fi
    echo "live XML: $(oneline "$(grep -e "$META_NS" -e 'allow-boot-vga' <<<"$out")")"
    vdestroy e2e-gpu
    wait_home "after destroy"
    no_records "after destroy" e2e-gpu
    pass
}

sc_boot_vga_refused() {
    expect_unchanged before
    vstart_refused e2e-bootvga
    grep -qF "$VGA" <<<"$ERR" || fail "the error does not name $VGA: $(oneline "$ERR")"
    grep -qi boot <<<"$ERR" || fail "the error does not say 'boot': $(oneline "$ERR")"
    expect_unchanged "after the refusal"
    pass
}

sc_missing_device_refused() {
    expect_unchanged before
    [ ! -e "$SYS/$MISSING" ] || fail "$MISSING exists in this guest"
    vstart_refused e2e-missing
    grep -qF "$MISSING" <<<"$ERR" || fail "the error does not name $MISSING: $(oneline "$ERR")"
    expect_unchanged "after the refusal"
    pass
}

# 0000:03:01.0 and 0000:03:02.0 share an IOMMU group only because they sit behind one PCI
# bridge. A VM given one of them must be refused, naming the other one and its driver: moving an
# unrelated card of another slot to vfio-pci behind the user's back is not an option.
sc_group_companion_refused() {
    expect_unchanged before
    echo "group $(group_members "$(group_of $PB_AUD)")"
    vstart_refused e2e-companion
    grep -qF "$PB_NIC" <<<"$ERR" || fail "the error does not name $PB_NIC: $(oneline "$ERR")"
    grep -qw e1000 <<<"$ERR" || fail "the error does not name $PB_NIC's driver e1000: $(oneline "$ERR")"
    expect_unchanged "after the refusal"
    no_records "after the refusal" e2e-companion
    pass
}

sc_holder_refused() {
    local card holder
    expect_unchanged before
    card=$(drm_card $GPU) || fail "$GPU has no DRM card node"
    # shellcheck disable=SC2217 # the point: a process that holds the card open, as Xorg would
    sleep 600 <"/dev/dri/$card" >/dev/null 2>&1 &
    holder=$!
    sleep 0.2
    echo "pid $holder holds /dev/dri/$card"
    vstart_refused e2e-gpu
    grep -qw "$holder" <<<"$ERR" || fail "the error does not name the holder pid $holder: $(oneline "$ERR")"
    expect_unchanged "after the refusal"
    kill "$holder"
    wait "$holder" 2>/dev/null
    # The same card under a path without /dev/ (what bwrap --dev-bind or docker --device
    # /dev/dri/card1:/gpu give a sandbox): only the device number tells it is the GPU's.
    local node=/tmp/e2e-gpu-node major minor
    read -r major minor <<<"$(stat -c '%t %T' "/dev/dri/$card")" || fail "stat /dev/dri/$card failed"
    mknod "$node" c "$((0x$major))" "$((0x$minor))" || fail "mknod $node failed"
    # shellcheck disable=SC2217
    sleep 600 <"$node" >/dev/null 2>&1 &
    holder=$!
    sleep 0.2
    echo "pid $holder holds $node ($(stat -c '%t:%T' "$node"), /dev/dri/$card's numbers)"
    vstart_refused e2e-gpu
    grep -qw "$holder" <<<"$ERR" || fail "a holder through $node is not named (pid $holder): $(oneline "$ERR")"
    expect_unchanged "after the refusal (node outside /dev)"
    kill "$holder"
    wait "$holder" 2>/dev/null
    rm -f "$node"
    vstart e2e-gpu
    expect_vfio "running (holder gone)"
    vdestroy e2e-gpu
    wait_home "after destroy"
    pass
}

sc_second_vm_refused() {
    expect_unchanged before
    echo "uuids: $(tr '\n' ' ' </tmp/e2e.uuids)"
    vstart e2e-gpu
    expect_vfio "A running"
    vstart_refused e2e-gpu-b 20
    grep -qF "$GPU" <<<"$ERR" || fail "B's error does not name $GPU: $(oneline "$ERR")"
    active e2e-gpu || fail "A is not active after B's refused start"
    expect_vfio "right after B's refusal"
    sleep 1
    expect_vfio "1 s after B's refusal"
    vdestroy e2e-gpu
    wait_home "after destroying A"
    pass
}

sc_firmware_in_status() {
    local out rc=0 json
    expect_unchanged before
    echo "<3>bochs-drm $GPU: firmware unavailable" >/dev/kmsg
    out=$(timeout 20 vfio-hook status 2>&1) || rc=$?
    echo "vfio-hook status: exit $rc"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" != 124 ] || fail "vfio-hook status did not return within 20 s"
    # status exits 0 only when the host is ready; a driver problem in the kernel log is a problem
    # (with its fix), so here the answer is "not ready", exit 1
    [ "$rc" = 1 ] || fail "vfio-hook status exited $rc, expected 1 (not ready: the kernel log reports a firmware problem on $GPU)"
    grep -q '^not ready' <<<"$out" || fail "status does not say 'not ready'"
    grep -qF "$GPU" <<<"$out" || fail "status does not mention $GPU"
    grep -qi firmware <<<"$out" || fail "status does not mention the firmware message"
    # The planted line names 0000:01:00.0 only; no status line about the boot VGA may carry it.
    if grep -F "$VGA" <<<"$out" | grep -qi firmware; then
        fail "status attributes the firmware line of $GPU to $VGA as well: $(oneline "$(grep -F "$VGA" <<<"$out" | grep -i firmware)")"
    fi
    rc=0
    json=$(timeout 20 vfio-hook status --json 2>/dev/null) || rc=$?
    echo "vfio-hook status --json: exit $rc, $(wc -c <<<"$json") bytes"
    sed 's/^/  | /' <<<"$json" | head -n 40
    [ "$rc" != 124 ] || fail "vfio-hook status --json did not return within 20 s"
    [ "$rc" = 1 ] || fail "vfio-hook status --json exited $rc, expected 1 (not ready)"
    valid_json <<<"$json" || fail "vfio-hook status --json is not valid JSON"
    grep -qF "$GPU" <<<"$json" || fail "status --json does not mention $GPU"
    pass
}

sc_hung_unbind() {
    local t0 rc out=/tmp/restore.out rcf=/tmp/restore.rc el
    expect_unchanged before
    vstart e2e-gpu
    expect_vfio running
    rm -f "$out" "$rcf"
    t0=$(now_ms)
    (
        timeout 30 vfio-hook restore --force "$GPU" 2>&1 | cat >"$out"
        echo "${PIPESTATUS[0]}" >"$rcf"
    ) >/dev/null 2>&1 &
    while [ ! -s "$rcf" ] && [ $(($(now_ms) - t0)) -lt 40000 ]; do sleep 0.1; done
    el=$(since "$t0")
    if [ ! -s "$rcf" ]; then
        soft_fail "restore --force: no EOF on its output 40 s after it started (a leftover process kept the pipe open)"
    else
        rc=$(cat "$rcf")
        echo "restore --force returned after $el s, exit $rc: $(oneline "$(cat "$out")")"
        [ "$rc" != 0 ] || soft_fail "restore --force exited 0 though the unbind hangs"
        [ "$rc" != 124 ] || soft_fail "restore --force ran into timeout 30 (no deadline of its own)"
        [ "${el%%.*}" -lt 12 ] || soft_fail "restore --force took $el s (deadline 5 s)"
        grep -qF "$GPU" "$out" || soft_fail "restore --force message does not name $GPU"
        grep -qi unbind "$out" || soft_fail "restore --force message does not say 'unbind'"
    fi
    # Only the driver links here: reading driver_override takes the device lock, which a
    # stuck unbind holds, so the read itself would hang until the VM lets go.
    echo "now: $(state)"
    t0=$(now_ms)
    if timeout 5 virsh list >/dev/null 2>&1; then
        echo "virsh list answered in $(since "$t0") s"
    else
        soft_fail "virsh list did not answer within 5 s"
    fi
    vdestroy e2e-gpu
    t0=$(now_ms)
    while ! is_home && [ $(($(now_ms) - t0)) -lt 10000 ]; do sleep 0.1; done
    if is_home; then
        echo "home $(since "$t0") s after destroy (the release hook did it): $(state)"
    else
        echo "not home 10 s after destroy: $(state), $(overrides); running vfio-hook recover"
        timeout 30 vfio-hook recover 2>&1 | sed 's/^/  | /'
        if is_home; then
            soft_fail "devices not home 10 s after destroy; 'vfio-hook recover' brought them home"
        else
            soft_fail "devices not home after destroy nor after recover: $(state), $(overrides)"
        fi
    fi
    pass
}

# One prepare straight from the command line (not through libvirt), SIGKILLed after D ms,
# then `vfio-hook recover`: whatever the kill interrupted, both functions must end on their
# own drivers with no override and no record. The scenario fails if no kill landed while the
# hook was still running (then it would have proved nothing).
recover_home() { # WHAT
    local out rc=0 left
    out=$(timeout 30 vfio-hook recover 2>&1) || rc=$?
    echo "  recover: exit $rc: $(oneline "$out")"
    [ "$rc" != 124 ] || fail "$1: vfio-hook recover did not return within 30 s"
    is_home || fail "$1: not home after recover: [$(state)], $(overrides)"
    left=$(records)
    [ -z "$left" ] || fail "$1: record left after recover: $(oneline "$left")"
}
bsleep() { # MILLISECONDS, without fork+exec (an exec of sleep costs ~100 ms under TCG)
    if [ -z "${SLEEP_FD:-}" ]; then
        local f=/tmp/.e2e-sleep.$$
        mkfifo "$f" && exec {SLEEP_FD}<>"$f" && rm -f "$f"
    fi
    [ "$1" -gt 0 ] || return 0
    read -r -t "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))" -u "$SLEEP_FD" _ || true
}
sc_kill_during_prepare() {
    local d rc t0 full p killed=0 what st comm
    local -A seen=()
    expect_unchanged before
    bsleep 0
    t0=$(now_ms)
    rc=0
    vfio-hook hook killtest prepare begin - <"$DOMS/killtest.xml" >/tmp/killtest.out 2>&1 || rc=$?
    full=$(($(now_ms) - t0))
    echo "uninterrupted prepare: exit $rc in $full ms: $(state)"
    [ "$rc" = 0 ] || fail "uninterrupted prepare failed (exit $rc): $(oneline "$(cat /tmp/killtest.out)")"
    expect_vfio "after an uninterrupted prepare"
    recover_home "after an uninterrupted prepare"
    # The moves themselves take ~50-100 ms here (the rest of an uninterrupted run is exec and
    # exit), hence the dense start of the grid.
    for d in 0 10 20 30 40 50 60 80 100 200; do
        # A simple command, not a function: then $! is the hook itself (bash forks and execs
        # it), not a subshell whose SIGKILL would leave the hook running on.
        vfio-hook hook killtest prepare begin - <"$DOMS/killtest.xml" >/tmp/killtest.out 2>&1 &
        p=$!
        bsleep "$d"
        comm=
        read -r comm 2>/dev/null <"/proc/$p/comm" # builtin: no fork before the kill
        kill -9 "$p" 2>/dev/null
        rc=0
        wait "$p" 2>/dev/null || rc=$?
        # (read once: the binary's forked sysfs writer may still finish a move after the kill)
        st=$(state)
        case $st in
            "$HOME_STATE") what="nothing moved yet" ;;
            "$VFIO_STATE") what="both on vfio-pci" ;;
            *) what="caught midway: $st" ;;
        esac
        if [ "$rc" = 137 ]; then
            killed=$((killed + 1))
            seen[${what%%:*}]=1
            echo "kill after $d ms: killed ${comm:-?} (pid $p), $what"
        elif [ "$rc" = 0 ]; then
            echo "kill after $d ms: too late (exit 0), $what"
        else
            fail "kill after $d ms: the hook exited $rc (neither 0 nor killed), $what; it said: $(oneline "$(cat /tmp/killtest.out)")"
        fi
        recover_home "kill after $d ms"
    done
    echo "$killed kills landed while the hook ran; outcomes seen: ${!seen[*]}"
    [ "$killed" -gt 0 ] || fail "no kill landed while the hook was running (the test proved nothing)"
    pass
}

# Which prepare hooks run right now: one scan of /proc with builtins only (no fork), setting
# HOOK_A / HOOK_B to the pid of `/etc/libvirt/hooks/qemu e2e-gpu[-b] prepare begin …` or "".
HOOK_A='' HOOK_B=''
prepares_in_flight() {
    local p a
    HOOK_A='' HOOK_B=''
    for p in /proc/[0-9]*; do
        a=()
        mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
        [[ ${a[0]:-} == */hooks/qemu && ${a[2]:-} == prepare && ${a[3]:-} == begin ]] || continue
        case ${a[1]:-} in
            e2e-gpu) HOOK_A=${p#/proc/} ;;
            e2e-gpu-b) HOOK_B=${p#/proc/} ;;
        esac
    done
}

# A and B are both given the GPU. The test holds the hook's lock while it starts both, waits
# until both prepare hooks are running at the same time (both blocked on the lock), and only
# then lets go: the two prepares certainly overlap, and the lock alone decides the winner.
sc_two_starts_at_once() {
    local rca rcb win lose lockfd t0 both='' seen_a='' seen_b=''
    expect_unchanged before
    rm -f /tmp/start.*
    mkdir -p "$STATE_DIR"
    exec {lockfd}>>"$STATE_DIR/lock"
    flock -x -w 10 "$lockfd" || fail "cannot take $STATE_DIR/lock within 10 s"
    echo "test holds $STATE_DIR/lock"
    # the starts must not inherit the lock's fd
    (exec {lockfd}>&-; timeout 90 virsh start e2e-gpu >/tmp/start.a.out 2>&1; echo $? >/tmp/start.a.rc) &
    (exec {lockfd}>&-; timeout 90 virsh start e2e-gpu-b >/tmp/start.b.out 2>&1; echo $? >/tmp/start.b.rc) &
    t0=$(now_ms)
    # the hook waits up to 60 s for the lock: let go well before that
    while [ $(($(now_ms) - t0)) -lt 40000 ]; do
        prepares_in_flight
        [ -z "$HOOK_A" ] || seen_a=$HOOK_A
        [ -z "$HOOK_B" ] || seen_b=$HOOK_B
        if [ -n "$HOOK_A" ] && [ -n "$HOOK_B" ]; then both=1; break; fi
        [ ! -e /tmp/start.a.rc ] || [ ! -e /tmp/start.b.rc ] || break
        sleep 0.1
    done
    if [ -n "$both" ]; then
        echo "both prepares in flight $(since "$t0") s after the starts: A pid $HOOK_A, B pid $HOOK_B; releasing the lock"
    fi
    flock -u "$lockfd"
    exec {lockfd}>&-
    [ -n "$both" ] ||
        fail "the two prepares were never in flight together (A's hook seen: ${seen_a:-never}, B's: ${seen_b:-never}, $(since "$t0") s)"
    wait
    rca=$(cat /tmp/start.a.rc) rcb=$(cat /tmp/start.b.rc)
    echo "A: exit $rca: $(oneline "$(cat /tmp/start.a.out)")"
    echo "B: exit $rcb: $(oneline "$(cat /tmp/start.b.out)")"
    if [ "$rca" = 0 ] && [ "$rcb" != 0 ]; then
        win=e2e-gpu lose=b
    elif [ "$rcb" = 0 ] && [ "$rca" != 0 ]; then
        win=e2e-gpu-b lose=a
    else
        fail "expected exactly one start to succeed: A exit $rca, B exit $rcb"
    fi
    echo "winner: $win"
    active "$win" || fail "winner $win is not active"
    expect_vfio "winner running"
    grep -qF "$GPU" "/tmp/start.$lose.out" ||
        fail "the loser's error does not name $GPU: $(oneline "$(cat "/tmp/start.$lose.out")")"
    vdestroy "$win"
    wait_home "after destroying the winner"
    pass
}

# ---------------------------------------------------------------- install.sh, hook.d (issue 13)
# The host side (run) passes E2E_INSTALL_SRC (the repository, whose install.sh runs here) and
# E2E_INSTALL_BUILD (a meson build directory made by this guest's own meson, with nothing left to
# compile), or E2E_INSTALL_PROBLEM when it has none.
HOOKD=/etc/vfio-hook/hook.d
HOOKD_VM=$HOOKD/vm/e2e-gpu
MANIFEST=/var/lib/vfio-hook/install-manifest

# The harness's own hook (setup() makes it; install-and-hook-d takes it away and puts it back).
harness_hook() {
    mkdir -p /usr/local/sbin /etc/libvirt/hooks
    ln -sfn "$E2E/vfio-hook" /usr/local/sbin/vfio-hook
    ln -sfn /usr/local/sbin/vfio-hook /etc/libvirt/hooks/qemu
}
harness_hook_in_place() {
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/local/sbin/vfio-hook ] &&
        [ "$(readlink /usr/local/sbin/vfio-hook)" = "$E2E/vfio-hook" ]
}
libvirtd_pid() { # (libvirtd writes its pid without a newline)
    local p=
    read -r p 2>/dev/null </run/libvirtd.pid
    [ -n "$p" ] && echo "$p"
}
# libvirtd looks for hooks when it starts and on SIGHUP (what install.sh sends without systemd).
reload_libvirtd() {
    local p
    p=$(libvirtd_pid) || return 1
    kill -HUP "$p" || return 1
    sleep 1
}

# A hook.d script that writes down what it was given and the GPU's drivers at its moment.
recorder() { # PATH
    cat >"$1" <<'EOF'
#!/bin/sh
# e2e install-and-hook-d: what this hook.d script was given, and the drivers at its moment.
drv() { l=$(readlink "/sys/bus/pci/devices/$1/driver") && echo "${l##*/}" || echo none; }
out=/tmp/hookd.$VFIO_HOOK_OPERATION.$VFIO_HOOK_SUB_OPERATION
{
    echo "argv=$*"
    echo "VFIO_HOOK_DOMAIN=$VFIO_HOOK_DOMAIN"
    echo "VFIO_HOOK_DOMAIN_UUID=$VFIO_HOOK_DOMAIN_UUID"
    echo "VFIO_HOOK_OPERATION=$VFIO_HOOK_OPERATION"
    echo "VFIO_HOOK_SUB_OPERATION=$VFIO_HOOK_SUB_OPERATION"
    echo "VFIO_HOOK_PCI_ADDRESSES=$VFIO_HOOK_PCI_ADDRESSES"
    echo "drivers=0000:01:00.0=$(drv 0000:01:00.0) 0000:01:00.1=$(drv 0000:01:00.1)"
    echo "stdin=$(grep -o '<name>[^<]*</name>' | head -n 1)"
} >"$out.new"
mv "$out.new" "$out"
echo "recorded $out"
EOF
    chmod 0755 "$1"
}
# check_recorded OP SUB ARGV-PREFIX ADDRESSES DRIVERS: the record of that script, line by line
# (ADDRESSES in sorted order: the hook gives them in its own)
check_recorded() {
    local f=/tmp/hookd.$1.$2 got want line
    [ -s "$f" ] || fail "the $1/$2 hook.d script did not run (no $f)"
    echo "$1/$2 script recorded: $(oneline "$(cat "$f")")"
    got=$(grep '^argv=' "$f")
    [[ $got == "argv=$3"* ]] || fail "$1/$2 script: $got, expected argv=$3…"
    for want in "VFIO_HOOK_DOMAIN=e2e-gpu" "VFIO_HOOK_DOMAIN_UUID=$UUID" "VFIO_HOOK_OPERATION=$1" \
        "VFIO_HOOK_SUB_OPERATION=$2" "VFIO_HOOK_PCI_ADDRESSES=$4" "drivers=$5" "stdin=<name>e2e-gpu</name>"; do
        line=$(grep -F "${want%%=*}=" "$f" | head -n 1)
        if [[ $line == VFIO_HOOK_PCI_ADDRESSES=* ]]; then
            line=VFIO_HOOK_PCI_ADDRESSES=$(tr ' ' '\n' <<<"${line#*=}" | sort | tr '\n' ' ')
            line=${line% }
        fi
        [ "$line" = "$want" ] || fail "$1/$2 script: '$line', expected '$want'"
    done
}

# The start of e2e-gpu (managed='no') refused by libvirt itself, no hook involved: when libvirtd
# calls a hook, a failure reads "Hook script execution failed" (and /etc/libvirt/hooks/qemu does
# not exist here, so a hook libvirtd still believed in would fail just so). Which of libvirt's
# own refusals it is depends on its memory: before any start in this boot, "Unmanaged PCI device
# 0000:01:00.0 must be manually detached from the host"; once a start through the hook has put
# the device in libvirtd's list of inactive host devices, that check is skipped and the start
# fails at the reset: "Unable to reset PCI device 0000:01:00.0: ... Active 0000:01:00.1 devices on
# bus with 0000:01:00.0, not doing bus reset".
refused_by_libvirt_itself() { # PHASE
    vstart_refused e2e-gpu
    if grep -qi -e 'hook' -e 'vfio-hook' <<<"$ERR"; then
        fail "$1: the start went through a hook: $(oneline "$ERR")"
    fi
    grep -qF -e "Unmanaged PCI device $GPU must be manually detached" -e "Unable to reset PCI device $GPU" <<<"$ERR" ||
        fail "$1: not libvirt's own refusal of the unmanaged $GPU: $(oneline "$ERR")"
    expect_unchanged "$1"
}

sc_install_and_hook_d() {
    local out rc pid path left='' home_drivers="$GPU=bochs-drm $AUD=snd_hda_intel" kind rest
    [ -n "${E2E_INSTALL_BUILD:-}" ] || fail "no build directory for install.sh: ${E2E_INSTALL_PROBLEM:-?}"
    umask 022
    UUID=$(awk '$1 == "e2e-gpu" { print $2 }' /tmp/e2e.uuids)
    expect_unchanged before
    # A machine without vfio-hook, and a libvirtd that knows it: from here on only a reload makes
    # libvirtd see a hook, so a start that works after install.sh proves install.sh reloaded it.
    rm -rf /etc/libvirt/hooks /usr/local/sbin/vfio-hook "$HOOKD"
    pid=$(libvirtd_pid) || fail "no libvirtd pid in /run/libvirtd.pid"
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd (pid $pid)"
    refused_by_libvirt_itself "without a hook"

    echo "running $E2E_INSTALL_SRC/install.sh --builddir $E2E_INSTALL_BUILD --no-deps"
    T0=$(now_ms) rc=0
    out=$(cd / && timeout 300 "$E2E_INSTALL_SRC/install.sh" --builddir "$E2E_INSTALL_BUILD" --no-deps 2>&1) || rc=$?
    echo "install.sh: exit $rc after $(since "$T0") s"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || fail "install.sh exited $rc: $(oneline "$(tail -n 3 <<<"$out")")"
    grep -qF "the hook: /etc/libvirt/hooks/qemu -> /usr/local/sbin/vfio-hook" <<<"$out" ||
        fail "install.sh did not say where the hook went"
    grep -qF "sent SIGHUP to libvirtd (pid $pid, from /run/libvirtd.pid)" <<<"$out" ||
        fail "install.sh did not say it reloaded libvirtd (pid $pid)"
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = libvirtd ] || fail "libvirtd (pid $pid) is gone after install.sh"
    [ -f /usr/local/sbin/vfio-hook ] && [ ! -L /usr/local/sbin/vfio-hook ] && [ -x /usr/local/sbin/vfio-hook ] ||
        fail "/usr/local/sbin/vfio-hook is not an executable file: $(ls -l /usr/local/sbin/vfio-hook 2>&1)"
    cmp -s /usr/local/sbin/vfio-hook "$E2E_INSTALL_BUILD/vfio-hook" ||
        fail "/usr/local/sbin/vfio-hook is not $E2E_INSTALL_BUILD/vfio-hook"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/local/sbin/vfio-hook ] ||
        fail "/etc/libvirt/hooks/qemu: $(ls -l /etc/libvirt/hooks/qemu 2>&1)"
    [ -s "$MANIFEST" ] || fail "no install manifest at $MANIFEST"

    # hook.d: a prepare/begin and a release/end script for e2e-gpu, root's, 0755; the release
    # one a link to a script elsewhere (run from the file it was checked as: execveat of a #!
    # script, the interpreter given /dev/fd/N, issue 23)
    mkdir -p "$HOOKD_VM/prepare/begin" "$HOOKD_VM/release/end" /usr/local/lib/e2e-hookd
    recorder "$HOOKD_VM/prepare/begin/10-record"
    recorder /usr/local/lib/e2e-hookd/release-record
    ln -sfn /usr/local/lib/e2e-hookd/release-record "$HOOKD_VM/release/end/10-record"
    rm -f /tmp/hookd.*
    vstart e2e-gpu
    expect_vfio running
    # prepare/begin runs before any check and move: it saw both functions on their own drivers
    check_recorded prepare begin "e2e-gpu prepare begin " "$GPU" "$home_drivers"
    vdestroy e2e-gpu
    wait_home "after destroy"
    # release/end runs after the devices are home; it is given the ones that came home
    check_recorded release end "e2e-gpu release end " "$GPU $AUD" "$home_drivers"
    no_records "after destroy" e2e-gpu

    # a world-writable script: refused by name, nothing of its directory runs, nothing moves
    rm -f /tmp/hookd.*
    recorder "$HOOKD_VM/prepare/begin/20-unsafe"
    chmod 0777 "$HOOKD_VM/prepare/begin/20-unsafe"
    vstart_refused e2e-gpu
    grep -qF "$HOOKD_VM/prepare/begin/20-unsafe" <<<"$ERR" ||
        fail "the error does not name the world-writable script: $(oneline "$ERR")"
    expect_unchanged "after the refusal"
    [ ! -e /tmp/hookd.prepare.begin ] || fail "a prepare script of the refused directory ran"
    echo "release/end script after the refused start: $([ -e /tmp/hookd.release.end ] && echo ran || echo 'did not run')"
    no_records "after the refusal" e2e-gpu

    # a script linked into a directory an ordinary user owns: refused by that directory's name
    # (its owner could swap the file between the check and the exec), nothing moves
    rm -f "$HOOKD_VM/prepare/begin/20-unsafe" /tmp/hookd.*
    rm -rf /home/e2e-alice && mkdir -p /home/e2e-alice
    recorder /home/e2e-alice/stop-dm
    chown -R 1000:1000 /home/e2e-alice
    ln -s /home/e2e-alice/stop-dm "$HOOKD_VM/prepare/begin/20-linked"
    vstart_refused e2e-gpu
    grep -qF "hook.d script not run: /home/e2e-alice is owned by uid 1000, not root" <<<"$ERR" ||
        fail "the error does not name the user's directory: $(oneline "$ERR")"
    expect_unchanged "after the refusal of the link"
    [ ! -e /tmp/hookd.prepare.begin ] || fail "a prepare script ran though one was linked into a user's directory"
    no_records "after the refusal of the link" e2e-gpu
    rm -rf /home/e2e-alice

    # --uninstall removes exactly what the manifest lists and reloads libvirtd
    rm -rf "$HOOKD" /usr/local/lib/e2e-hookd
    [ -z "$(records)" ] || fail "records left before --uninstall: $(oneline "$(records)")"
    cp "$MANIFEST" /tmp/e2e.manifest
    pid=$(libvirtd_pid) || fail "no libvirtd pid in /run/libvirtd.pid"
    T0=$(now_ms) rc=0
    out=$(cd / && timeout 120 "$E2E_INSTALL_SRC/install.sh" --uninstall 2>&1) || rc=$?
    echo "install.sh --uninstall: exit $rc after $(since "$T0") s"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || fail "install.sh --uninstall exited $rc: $(oneline "$(tail -n 3 <<<"$out")")"
    grep -qF "removed the hook /etc/libvirt/hooks/qemu" <<<"$out" || fail "--uninstall did not say it removed the hook"
    grep -qF "sent SIGHUP to libvirtd (pid $pid, from /run/libvirtd.pid)" <<<"$out" ||
        fail "--uninstall did not say it reloaded libvirtd (pid $pid)"
    while IFS=$'\t' read -r kind path rest; do
        case $kind in file | link | config | dir) ;; *) continue ;; esac
        if [ -e "$path" ] || [ -L "$path" ]; then left+=" $path"; fi
    done </tmp/e2e.manifest
    [ ! -e "$MANIFEST" ] || left+=" $MANIFEST"
    [ -z "$left" ] || fail "--uninstall left:$left"
    echo "--uninstall removed all $(grep -c $'^[a-z]*\t' /tmp/e2e.manifest) manifest entries"
    # libvirt's own refusal again: the reload made it forget the hook
    refused_by_libvirt_itself "after --uninstall"
    harness_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd to give it the harness's hook back"
    pass
}

# A stand-in for VFIO-Tools' hook helper (PassthroughPOST/VFIO-Tools, libvirt_hooks/qemu) as
# users install it at /etc/libvirt/hooks/qemu: with `set -e`, it runs every executable file of
# $(dirname $0)/qemu.d/$1/$2/$3 (find -L -maxdepth 1 -type f -executable) with the hook's own
# arguments, or that path itself when it is an executable file.
vfio_tools_dispatcher() { # PATH
    cat >"$1" <<'EOF'
#!/bin/bash
set -e
hookpath="$(dirname "$0")/qemu.d/$1/$2/$3"
if [ -f "$hookpath" ] && [ -s "$hookpath" ] && [ -x "$hookpath" ]; then
    "$hookpath" "$@"
elif [ -d "$hookpath" ]; then
    while read -r file; do
        if [ -n "$file" ]; then "$file" "$@"; fi
    done <<< "$(find -L "$hookpath" -maxdepth 1 -type f -executable -print)"
fi
EOF
    chmod 0755 "$1"
}
PACKAGED=/usr/sbin/vfio-hook # a distribution package's vfio-hook, for the second-install refusal

# Issue 23 (5 and 6): install.sh beside VFIO-Tools' dispatcher, and over a packaged vfio-hook.
sc_install_beside_dispatcher() {
    local out rc pid lines
    [ -n "${E2E_INSTALL_BUILD:-}" ] || fail "no build directory for install.sh: ${E2E_INSTALL_PROBLEM:-?}"
    [ ! -e "$PACKAGED" ] || fail "$PACKAGED exists before the scenario: $(ls -l "$PACKAGED")"
    umask 022
    expect_unchanged before
    rm -rf /etc/libvirt/hooks /usr/local/sbin/vfio-hook "$HOOKD" /tmp/e2e.dispatched
    mkdir -p /etc/libvirt/hooks/qemu.d/e2e-gpu/prepare/begin
    vfio_tools_dispatcher /etc/libvirt/hooks/qemu
    printf '#!/bin/sh\necho "dispatched $*" >>/tmp/e2e.dispatched\n' >/etc/libvirt/hooks/qemu.d/e2e-gpu/prepare/begin/10-append
    chmod 0755 /etc/libvirt/hooks/qemu.d/e2e-gpu/prepare/begin/10-append
    pid=$(libvirtd_pid) || fail "no libvirtd pid in /run/libvirtd.pid"

    echo "running $E2E_INSTALL_SRC/install.sh --builddir $E2E_INSTALL_BUILD --no-deps beside the dispatcher"
    T0=$(now_ms) rc=0
    out=$(cd / && timeout 300 "$E2E_INSTALL_SRC/install.sh" --builddir "$E2E_INSTALL_BUILD" --no-deps 2>&1) || rc=$?
    echo "install.sh: exit $rc after $(since "$T0") s"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || fail "install.sh exited $rc: $(oneline "$(tail -n 3 <<<"$out")")"
    grep -qF "the hook: /etc/libvirt/hooks/qemu.d/vfio-hook -> /usr/local/sbin/vfio-hook" <<<"$out" ||
        fail "install.sh did not put the hook into qemu.d"
    grep -qF "the scripts in /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/ are left to /etc/libvirt/hooks/qemu" <<<"$out" ||
        fail "install.sh did not say that the dispatcher runs the qemu.d layout"
    grep -qF "sent SIGHUP to libvirtd (pid $pid, from /run/libvirtd.pid)" <<<"$out" ||
        fail "install.sh did not say it reloaded libvirtd (pid $pid)"
    out=$(vfio-hook status 2>&1)
    grep -F "hook scripts:" <<<"$out"
    grep -qF "hook scripts: vfio-hook is /etc/libvirt/hooks/qemu.d/vfio-hook: it runs /etc/vfio-hook/hook.d/; /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/ is left to /etc/libvirt/hooks/qemu" <<<"$out" ||
        fail "status does not say who runs which layout: $(oneline "$(grep -F 'hook scripts' <<<"$out")")"

    vstart e2e-gpu
    expect_vfio running
    vdestroy e2e-gpu
    wait_home "after destroy"
    no_records "after destroy" e2e-gpu
    lines=$(cat /tmp/e2e.dispatched 2>/dev/null)
    echo "the qemu.d prepare/begin script wrote: $(oneline "$lines")"
    [ "$lines" = "dispatched e2e-gpu prepare begin -" ] ||
        fail "the qemu.d prepare/begin script did not run exactly once: $(oneline "$lines")"

    out=$(cd / && timeout 120 "$E2E_INSTALL_SRC/install.sh" --uninstall 2>&1) || fail "install.sh --uninstall: $(oneline "$out")"
    [ ! -e /etc/libvirt/hooks/qemu.d/vfio-hook ] || fail "--uninstall left qemu.d/vfio-hook"
    rm -rf /etc/libvirt/hooks /tmp/e2e.dispatched

    # A packaged vfio-hook as libvirt's hook, through a symlink: refused in one line naming it.
    install -m 0755 "$E2E_INSTALL_BUILD/vfio-hook" "$PACKAGED"
    mkdir -p /etc/libvirt/hooks
    ln -s "$PACKAGED" /etc/libvirt/hooks/qemu
    rc=0
    out=$(cd / && timeout 300 "$E2E_INSTALL_SRC/install.sh" --builddir "$E2E_INSTALL_BUILD" --no-deps 2>&1) || rc=$?
    echo "install.sh over hooks/qemu -> $PACKAGED: exit $rc"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 1 ] || fail "install.sh over a packaged vfio-hook exited $rc, not 1"
    [ "$(grep -c . <<<"$out")" = 1 ] || fail "install.sh's refusal is not one line: $(oneline "$out")"
    grep -qF "vfio-hook is already libvirt's hook: /etc/libvirt/hooks/qemu -> $PACKAGED;" <<<"$out" ||
        fail "the refusal does not name $PACKAGED: $out"
    [ ! -e /etc/libvirt/hooks/qemu.d ] && [ ! -e /usr/local/sbin/vfio-hook ] && [ ! -e "$MANIFEST" ] ||
        fail "install.sh changed something: $(ls -d /etc/libvirt/hooks/qemu.d /usr/local/sbin/vfio-hook "$MANIFEST" 2>/dev/null | tr '\n' ' ')"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = "$PACKAGED" ] || fail "hooks/qemu was changed"
    rm -f "$PACKAGED" /etc/libvirt/hooks/qemu
    harness_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd to give it the harness's hook back"
    pass
}

# ---------------------------------------------------------------- the Debian package (issue 28)
# The host side (run) puts the packages tests/deb/build made into $E2E/debs: the lowest version
# is the one installed, the highest the upgrade. Static, so the same files serve Debian 12 and 13.
DEB_DIR=$E2E/debs
deb_pick() { # lt|gt: the package with the lowest (lt) or highest (gt) version, in dpkg's order
    local f v best='' best_version=''
    for f in "$DEB_DIR"/vfio-hook_*.deb; do
        [ -f "$f" ] || continue
        v=$(dpkg-deb -f "$f" Version) || continue
        if [ -z "$best" ] || dpkg --compare-versions "$v" "$1" "$best_version"; then
            best=$f best_version=$v
        fi
    done
    echo "$best"
}
deb_first() { deb_pick lt; }
deb_last() { deb_pick gt; }
# DESCRIPTION COMMAND...: runs a dpkg command, its output in $OUT; fails the scenario if it fails
dpkg_step() {
    local what=$1 t0 rc=0
    shift
    t0=$(now_ms)
    OUT=$(cd / && DEBIAN_FRONTEND=noninteractive timeout 180 "$@" 2>&1) || rc=$?
    echo "$what ($*): exit $rc after $(since "$t0") s"
    sed 's/^/  | /' <<<"$OUT"
    [ "$rc" = 0 ] || fail "$what exited $rc: $(oneline "$(tail -n 3 <<<"$OUT")")"
}
said() { # TEXT WHAT: $OUT holds TEXT
    grep -qF -- "$1" <<<"$OUT" || fail "$2: no '$1' in: $(oneline "$OUT")"
}
deb_installed_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' vfio-hook 2>/dev/null; }
# Nothing vfio-hook's in libvirt's hooks, no package: a machine before installation.
without_any_hook() {
    rm -f /etc/libvirt/hooks/qemu /usr/local/sbin/vfio-hook
    rm -rf /etc/libvirt/hooks/qemu.d "$HOOKD"
    # man-db's trigger would rebuild its index under TCG after every dpkg call: minutes.
    rm -f /var/lib/man-db/auto-update
}
# The package's hook, as libvirt uses it: the GPU moves to vfio-pci and comes home.
start_and_stop_through_the_package() { # PHASE
    vstart e2e-gpu
    expect_vfio "$1: running"
    vdestroy e2e-gpu
    wait_home "$1: after destroy"
    no_records "$1: after destroy" e2e-gpu
}

sc_deb_package() {
    local deb pid list made='' left='' path foreign_sum
    deb=$(deb_first)
    [ -n "$deb" ] || fail "no vfio-hook_*.deb in $DEB_DIR: build it (tests/deb/build) or pass --debs DIR"
    [ -z "$(deb_installed_version)" ] || fail "vfio-hook is installed before the scenario: $(deb_installed_version)"
    umask 022
    expect_unchanged before
    pid=$(libvirtd_pid) || fail "no libvirtd pid in /run/libvirtd.pid"
    # What of the package's paths exists before it: those may stay after the purge.
    while read -r path; do
        [ -e "$path" ] || [ -L "$path" ] || made+="$path "
    done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|; s|/$||' | grep -v '^/$')

    # Over a vfio-hook install.sh-style (the harness's: hooks/qemu -> /usr/local/sbin/vfio-hook):
    # installed, but the hook is not; one line says how to take it over.
    dpkg_step "dpkg -i over another vfio-hook" dpkg -i "$deb"
    said "vfio-hook is already libvirt's hook: /etc/libvirt/hooks/qemu -> $E2E/vfio-hook; the package's hook is not installed: run that install's 'sudo ./install.sh --uninstall' (or remove that hook), then 'sudo dpkg-reconfigure vfio-hook'" "postinst over the harness's hook"
    [ "$(grep -c "vfio-hook is already" <<<"$OUT")" = 1 ] || fail "the takeover advice is not one line"
    harness_hook_in_place || fail "postinst changed the harness's hook: $(ls -l /etc/libvirt/hooks/qemu)"
    [ -x /usr/sbin/vfio-hook ] && /usr/sbin/vfio-hook --version >/dev/null || fail "/usr/sbin/vfio-hook does not run"
    # The advice, followed: the old hook removed, then dpkg-reconfigure puts the package's in place.
    without_any_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd (pid $pid)"
    refused_by_libvirt_itself "without a hook"
    dpkg_step "dpkg-reconfigure" dpkg-reconfigure vfio-hook
    said "the hook: /etc/libvirt/hooks/qemu -> /usr/sbin/vfio-hook" "postinst"
    said "sent SIGHUP to libvirtd (pid $pid, from /run/libvirtd.pid)" "postinst"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/sbin/vfio-hook ] || fail "hooks/qemu: $(ls -l /etc/libvirt/hooks/qemu 2>&1)"
    [ -f /etc/vfio-hook/vfio-hook.conf ] || fail "no conffile /etc/vfio-hook/vfio-hook.conf"
    start_and_stop_through_the_package "installed"

    # remove: the hook goes, libvirt forgets it, a start is refused as before installation
    dpkg_step "dpkg -r" dpkg -r vfio-hook
    said "removed the hook /etc/libvirt/hooks/qemu" "prerm"
    said "sent SIGHUP to libvirtd" "prerm"
    [ ! -e /etc/libvirt/hooks/qemu ] && [ ! -L /etc/libvirt/hooks/qemu ] || fail "dpkg -r left the hook"
    [ ! -e /usr/sbin/vfio-hook ] || fail "dpkg -r left /usr/sbin/vfio-hook"
    refused_by_libvirt_itself "after dpkg -r"

    # reinstall, then purge: nothing the package made is left
    dpkg_step "dpkg -i again" dpkg -i "$deb"
    said "the hook: /etc/libvirt/hooks/qemu -> /usr/sbin/vfio-hook" "postinst after remove"
    list=$(dpkg -L vfio-hook)
    echo "dpkg -L vfio-hook: $(grep -c . <<<"$list") paths"
    dpkg_step "dpkg -P" dpkg -P vfio-hook
    # every path dpkg listed that did not exist before the first install
    for path in $list; do
        case " $made " in *" $path "*) ;; *) continue ;; esac
        if [ -e "$path" ] || [ -L "$path" ]; then left+=" $path"; fi
    done
    for path in /etc/libvirt/hooks/qemu /etc/libvirt/hooks/qemu.d /etc/vfio-hook /var/lib/vfio-hook; do
        if [ -e "$path" ] || [ -L "$path" ]; then left+=" $path"; fi
    done
    [ -z "$left" ] || fail "dpkg -P left:$left"
    [ -z "$(deb_installed_version)" ] || fail "dpkg still lists vfio-hook after the purge: $(deb_installed_version)"
    echo "purge: none of the $(wc -w <<<"$made") paths the package made is left"

    # over another program's hooks/qemu: kept byte for byte, the hook goes into qemu.d
    vfio_tools_dispatcher /etc/libvirt/hooks/qemu
    cp -p /etc/libvirt/hooks/qemu /tmp/e2e.foreign
    foreign_sum=$(sha256sum </etc/libvirt/hooks/qemu)
    dpkg_step "dpkg -i beside a dispatcher" dpkg -i "$deb"
    said "the hook: /etc/libvirt/hooks/qemu.d/vfio-hook -> /usr/sbin/vfio-hook" "postinst beside a dispatcher"
    cmp -s /tmp/e2e.foreign /etc/libvirt/hooks/qemu && [ ! -L /etc/libvirt/hooks/qemu ] ||
        fail "the foreign hooks/qemu changed"
    # (a start through qemu.d/vfio-hook is install-beside-dispatcher's: the same placement code)
    dpkg_step "dpkg -P beside a dispatcher" dpkg -P vfio-hook
    [ ! -e /etc/libvirt/hooks/qemu.d/vfio-hook ] && [ ! -L /etc/libvirt/hooks/qemu.d/vfio-hook ] ||
        fail "dpkg -P left qemu.d/vfio-hook"
    [ ! -e /etc/libvirt/hooks/qemu.d ] || fail "dpkg -P left the qemu.d it made"
    [ "$(sha256sum </etc/libvirt/hooks/qemu)" = "$foreign_sum" ] || fail "the foreign hooks/qemu changed after the purge"
    echo "the foreign hooks/qemu is byte for byte what it was ($foreign_sum)"
    rm -f /etc/libvirt/hooks/qemu /tmp/e2e.foreign
    harness_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd to give it the harness's hook back"
    pass
}

# An upgrade while a VM holds the GPU: dpkg renames the new binary over the old one, and the VM's
# release runs the new binary, which reads the record the old one wrote.
sc_deb_upgrade_while_running() {
    local old new inode rc
    old=$(deb_first) new=$(deb_last)
    [ -n "$old" ] || fail "no vfio-hook_*.deb in $DEB_DIR: build them (tests/deb/build) or pass --debs DIR"
    [ "$old" != "$new" ] || fail "only one package in $DEB_DIR ($old): an upgrade needs a second, newer one (tests/deb/build --version)"
    [ -z "$(deb_installed_version)" ] || fail "vfio-hook is installed before the scenario: $(deb_installed_version)"
    umask 022
    expect_unchanged before
    without_any_hook
    dpkg_step "dpkg -i ${old##*/}" dpkg -i "$old"
    said "the hook: /etc/libvirt/hooks/qemu -> /usr/sbin/vfio-hook" "postinst"
    echo "installed: $(deb_installed_version)"
    vstart e2e-gpu
    expect_vfio "running on the old package"
    [ -n "$(records)" ] || fail "no record while e2e-gpu runs"
    inode=$(stat -c %i /usr/sbin/vfio-hook)
    dpkg_step "dpkg -i ${new##*/} while e2e-gpu runs" dpkg -i "$new"
    echo "installed: $(deb_installed_version)"
    [ "$(deb_installed_version)" = "ii  $(dpkg-deb -f "$new" Version)" ] || fail "the upgrade did not install $new: $(deb_installed_version)"
    [ "$(stat -c %i /usr/sbin/vfio-hook)" != "$inode" ] || fail "/usr/sbin/vfio-hook kept its inode: not replaced by rename"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/sbin/vfio-hook ] || fail "the upgrade moved the hook: $(ls -l /etc/libvirt/hooks/qemu 2>&1)"
    grep -qF "removed the hook" <<<"$OUT" && fail "the upgrade took the hook out"
    expect_vfio "still running after the upgrade"
    # a remove while the VM holds the devices would strand them on vfio-pci: prerm refuses it
    rc=0
    OUT=$(cd / && DEBIAN_FRONTEND=noninteractive timeout 180 dpkg -r vfio-hook 2>&1) || rc=$?
    echo "dpkg -r while e2e-gpu runs: exit $rc"
    sed 's/^/  | /' <<<"$OUT"
    [ "$rc" != 0 ] || fail "dpkg -r went through while e2e-gpu holds the GPU"
    said "devices are still given to VMs or parked (1 record(s) in /run/vfio-hook/records)" "prerm while running"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/sbin/vfio-hook ] && [ -x /usr/sbin/vfio-hook ] ||
        fail "the refused remove took the hook or the binary: $(ls -l /etc/libvirt/hooks/qemu /usr/sbin/vfio-hook 2>&1)"
    # dpkg keeps the wish to remove ("r"), with the package installed and configured ("i")
    case $(deb_installed_version) in ?i\ *) ;; *) fail "vfio-hook is not installed after the refused remove: $(deb_installed_version)" ;; esac
    vdestroy e2e-gpu
    wait_home "after destroy, released by the new package's binary"
    no_records "after destroy" e2e-gpu
    dpkg_step "dpkg -P" dpkg -P vfio-hook
    harness_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd to give it the harness's hook back"
    pass
}

# ---------------------------------------------------------------- assign / unassign (issue 15)
# hostdevs_in: "MANAGED ADDRESS" per <hostdev> of a domain XML (stdin), e.g. "no 0000:01:00.0"
hostdevs_in() {
    awk '
    /<hostdev / { h = 1; m = "?"; if (match($0, /managed=.[a-z]*/)) m = substr($0, RSTART + 9, RLENGTH - 9) }
    h && /<source>/ { s = 1 }
    h && s && /<address / {
        split("domain bus slot function", k, " ")
        out = ""
        for (i = 1; i <= 4; i++) {
            v = "?"
            if (match($0, k[i] "=.0x[0-9a-fA-F]*")) v = substr($0, RSTART + length(k[i]) + 4, RLENGTH - length(k[i]) - 4)
            out = out v
        }
        printf "%s %s:%s:%s.%s\n", m, substr(out, 1, 4), substr(out, 5, 2), substr(out, 7, 2), substr(out, 9)
        s = 0
    }
    /<\/hostdev>/ { h = 0 }'
}
# display_in: the display and sound elements of a domain XML (stdin), one summary line each
display_in() {
    grep -oE "<(graphics|video|sound|audio)[ >][^>]*>|<model type='[a-z0-9-]+'" | tr -s ' ' | sort
}
devices_of() { sed -n '/<devices>/,/<\/devices>/p'; }

# A SPICE domain as virt-manager makes it (the VNC one above does not show this): libvirt gives
# it <audio id='1' type='spice'/>, and after assign --headless puts <audio id='1' type='none'/>
# in its place. unassign --restore-display must replace that backend, not add a second id 1
# (virsh define refuses it). Both definitions are printed whole: the unit tests' fixtures
# (tests/unit/fixtures/libvirt-*-spice-*.xml) are these. Soft failures only.
spice_restore_display() {
    local out rc orig xml ids
    out=$(timeout 30 virsh define "$DOMS/headless-spice.xml" 2>&1) ||
        { soft_fail "virsh define headless-spice.xml: $(oneline "$out")"; return; }
    orig=$(timeout 30 virsh dumpxml --inactive --security-info e2e-spice 2>&1) ||
        { soft_fail "virsh dumpxml e2e-spice: $(oneline "$orig")"; return; }
    echo "libvirt's definition of e2e-spice (fixture: before):"
    sed 's/^/  spice-before| /' <<<"$orig"
    rc=0
    out=$(timeout 60 vfio-hook assign e2e-spice 01:00.0 --headless 2>&1) || rc=$?
    echo "assign e2e-spice --headless: exit $rc: $(oneline "$out")"
    [ "$rc" = 0 ] || { soft_fail "assign e2e-spice --headless exited $rc: $(oneline "$out")"; return; }
    xml=$(timeout 30 virsh dumpxml --inactive --security-info e2e-spice 2>&1) ||
        { soft_fail "virsh dumpxml e2e-spice: $(oneline "$xml")"; return; }
    echo "libvirt's definition of e2e-spice after assign --headless (fixture: headless):"
    sed 's/^/  spice-headless| /' <<<"$xml"
    rc=0
    out=$(timeout 60 vfio-hook unassign e2e-spice --restore-display 2>&1) || rc=$?
    echo "unassign e2e-spice --restore-display: exit $rc"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || { soft_fail "unassign e2e-spice --restore-display exited $rc: $(oneline "$out")"; return; }
    xml=$(timeout 30 virsh dumpxml --inactive --security-info e2e-spice 2>&1) ||
        { soft_fail "virsh dumpxml e2e-spice: $(oneline "$xml")"; return; }
    ids=$(grep -c "<audio id='1'" <<<"$xml" || true)
    echo "after the restore: $ids <audio id='1'>: $(oneline "$(grep '<audio' <<<"$xml")")"
    [ "$ids" = 1 ] || soft_fail "virsh dumpxml e2e-spice holds $ids <audio id='1'> after the restore"
    grep -qF "<audio id='1' type='spice'/>" <<<"$xml" ||
        soft_fail "the restored e2e-spice has no SPICE audio backend: $(oneline "$(grep '<audio' <<<"$xml")")"
    [ "$(display_in <<<"$xml")" = "$(display_in <<<"$orig")" ] ||
        soft_fail "display and sound of e2e-spice after the restore [$(oneline "$(display_in <<<"$xml")")] differ from libvirt's first definition [$(oneline "$(display_in <<<"$orig")")]"
    # What a user would do next with it: libvirt takes its own dump back.
    printf '%s\n' "$xml" >/tmp/e2e.spice.xml
    out=$(timeout 30 virsh define /tmp/e2e.spice.xml 2>&1) ||
        soft_fail "virsh define of the restored e2e-spice refused: $(oneline "$out")"
    echo "virsh define of the restored definition: $(oneline "$out")"
    timeout 30 virsh undefine e2e-spice >/dev/null 2>&1 || true
}

sc_assign_headless() {
    local out rc conf=/etc/libvirt/qemu/e2e-headless.xml orig xml uuid backup hd disp
    expect_unchanged before
    uuid=$(awk '$1 == "e2e-headless" { print $2 }' /tmp/e2e.uuids)
    orig=$(timeout 30 virsh dumpxml --inactive e2e-headless 2>&1) || fail "virsh dumpxml e2e-headless: $(oneline "$orig")"
    for disp in "<graphics type='vnc'" "<video>" "<sound model='ich9'"; do
        grep -qF "$disp" <<<"$orig" || fail "e2e-headless is not defined with $disp"
    done
    echo "defined with: $(oneline "$(display_in <<<"$orig")")"
    cp "$conf" /tmp/e2e.headless.0

    # --dry-run: a unified diff, nothing changed, no backup
    rc=0
    out=$(timeout 60 vfio-hook assign e2e-headless 01:00.0 --headless --dry-run 2>&1) || rc=$?
    echo "assign --headless --dry-run: exit $rc"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || fail "assign --dry-run exited $rc: $(oneline "$out")"
    grep -q '^--- ' <<<"$out" && grep -q '^+++ ' <<<"$out" && grep -q '^@@ ' <<<"$out" ||
        fail "assign --dry-run printed no unified diff"
    grep -q '^+.*<hostdev ' <<<"$out" || fail "the --dry-run diff adds no hostdev"
    grep -q '^-.*<graphics ' <<<"$out" || fail "the --dry-run diff removes no graphics"
    cmp -s "$conf" /tmp/e2e.headless.0 || fail "assign --dry-run changed the definition"
    ! ls /var/lib/vfio-hook/backups/"$uuid"-* >/dev/null 2>&1 || fail "assign --dry-run wrote a backup"

    # assign --headless
    rc=0
    out=$(timeout 60 vfio-hook assign e2e-headless 01:00.0 --headless 2>&1) || rc=$?
    echo "assign --headless: exit $rc"
    sed 's/^/  | /' <<<"$out"
    [ "$rc" = 0 ] || fail "assign exited $rc: $(oneline "$out")"
    for want in "removed sound ich9" "removed graphics vnc" "removed video vga" \
        "added hostdev $GPU" "added hostdev $AUD"; do
        grep -qxF "$want" <<<"$out" || fail "assign did not say '$want'"
    done
    backup=$(sed -n 's/^the earlier definition is kept in //p' <<<"$out")
    [[ $backup == /var/lib/vfio-hook/backups/$uuid-*.xml ]] || fail "assign named no backup of $uuid: '$backup'"
    grep -qF "<graphics type='vnc'" "$backup" && grep -qF "<sound model='ich9'" "$backup" ||
        fail "the backup $backup does not hold the earlier definition"
    xml=$(timeout 30 virsh dumpxml e2e-headless 2>&1) || fail "virsh dumpxml e2e-headless: $(oneline "$xml")"
    hd=$(hostdevs_in <<<"$xml" | sort | tr '\n' ' ')
    echo "hostdevs (managed, address): $hd"
    [ "$hd" = "no $GPU no $AUD " ] || fail "virsh dumpxml shows hostdevs [$hd], expected managed='no' $GPU and $AUD"
    disp=$(display_in <<<"$xml")
    echo "display and sound left: ${disp:-none}"
    ! grep -qE '<(graphics|video|sound)[ >]' <<<"$xml" ||
        fail "virsh dumpxml still shows: $(oneline "$(grep -E '<(graphics|video|sound)[ >]' <<<"$xml")")"
    echo "libvirt's definition after assign --headless:"
    devices_of <<<"$xml" | sed 's/^/  | /'

    vstart e2e-headless
    expect_vfio running
    vdestroy e2e-headless
    wait_home "after destroy"
    no_records "after destroy" e2e-headless

    # unassign --restore-display: the hostdevs out, the display and sound of the backup back
    # (soft failures from here: the check of assign run twice below still runs)
    rc=0
    out=$(timeout 60 vfio-hook unassign e2e-headless --restore-display 2>&1) || rc=$?
    echo "unassign --restore-display: exit $rc"
    sed 's/^/  | /' <<<"$out"
    if [ "$rc" != 0 ]; then
        soft_fail "unassign --restore-display exited $rc: $(oneline "$out")"
    else
        xml=$(timeout 30 virsh dumpxml e2e-headless 2>&1) || fail "virsh dumpxml e2e-headless: $(oneline "$xml")"
        hd=$(hostdevs_in <<<"$xml" | tr '\n' ' ')
        [ -z "$hd" ] || soft_fail "virsh dumpxml still shows hostdevs after unassign: $hd"
        disp=$(display_in <<<"$xml")
        echo "display and sound now: $(oneline "$disp")"
        [ "$disp" = "$(display_in <<<"$orig")" ] ||
            soft_fail "display and sound after unassign [$(oneline "$disp")] differ from the original [$(oneline "$(display_in <<<"$orig")")]"
        echo "definition now vs. the original:"
        diff <(devices_of <<<"$orig") <(devices_of <<<"$xml") | sed 's/^/  | /'
    fi

    spice_restore_display

    # Running assign twice changes nothing the second time (after an unassign above, the first
    # of these two is a full assign again).
    out=$(timeout 60 vfio-hook assign e2e-headless 01:00.0 --headless 2>&1) ||
        fail "assign after unassign failed: $(oneline "$out")"
    echo "assign --headless (after unassign): $(oneline "$out")"
    cp "$conf" /tmp/e2e.headless.1
    rc=0
    out=$(timeout 60 vfio-hook assign e2e-headless 01:00.0 --headless 2>&1) || rc=$?
    echo "assign --headless again: exit $rc: $(oneline "$out")"
    [ "$rc" = 0 ] || soft_fail "the second assign exited $rc: $(oneline "$out")"
    grep -qF "domain 'e2e-headless': nothing to change" <<<"$out" ||
        soft_fail "the second assign did not say 'nothing to change': $(oneline "$out")"
    cmp -s "$conf" /tmp/e2e.headless.1 || soft_fail "the second assign changed the definition"
    pass # (fails with the first soft failure, if any)
}

# ---------------------------------------------------------------- the README's path
# Issue 24: the README's "From install to a VM with the GPU" followed in order, its commands read
# from README.md's code spans at run time (a README edit that breaks a command breaks this), run
# as written but for the leading `sudo ` (root here) and NAME (e2e-readme: headless.xml renamed,
# a VNC display, VGA video and ich9 sound, no hostdevs). 01:00.0 is the guest's GPU as written.
README_SECTION='## From install to a VM with the GPU'
README_DOM=e2e-readme
README_SPANS=() # the section's code spans, in order
readme_spans() {
    local md=$E2E_INSTALL_SRC/README.md
    [ -r "$md" ] || fail "cannot read $md"
    mapfile -t README_SPANS < <(awk -v h="$README_SECTION" '$0 == h { on = 1; next } on && /^## / { exit } on' "$md" |
        tr '\n' ' ' | grep -o '`[^`]*`' | tr -d '`')
    [ "${#README_SPANS[@]}" -gt 0 ] || fail "README.md has no section '$README_SECTION' with code spans"
}
# readme_find REGEX: the index of the one span matching REGEX (README_AT), its text (README_CMD)
README_AT='' README_CMD=''
readme_find() {
    local i found=()
    for i in "${!README_SPANS[@]}"; do [[ ${README_SPANS[i]} =~ $1 ]] && found+=("$i"); done
    [ "${#found[@]}" = 1 ] ||
        fail "README's '$README_SECTION' shows ${#found[@]} code spans matching /$1/, expected one: $(printf '`%s` ' "${README_SPANS[@]}")"
    README_AT=${found[0]} README_CMD=${README_SPANS[${found[0]}]}
}
# readme_run EXTRA-WORD...: run $README_CMD as written (no shell: words split on blanks, `sudo `
# dropped, NAME replaced), the extra words after it; exit status in RC, output in OUT
RC='' OUT=''
readme_run() {
    local words=() w argv=()
    [[ $README_CMD != *[\;\|\&\$\<\>\'\"\(\)\\]* ]] || fail "README line \`$README_CMD\` is not a plain command"
    read -ra words <<<"$README_CMD"
    [ "${words[0]}" != sudo ] || words=("${words[@]:1}")
    for w in "${words[@]}" "$@"; do argv+=("${w//NAME/$README_DOM}"); done
    echo "README: \`$README_CMD\`$([ $# = 0 ] || printf ' + %s' "$*") -> ${argv[*]}"
    RC=0
    OUT=$(timeout 300 "${argv[@]}" 2>&1) || RC=$?
    echo "  exit $RC"
    prefixed '  | ' <<<"$OUT"
}
readme_fail() { fail "README line \`$README_CMD\`: $*"; }
readme_hostdevs() { timeout 30 virsh dumpxml --inactive "$README_DOM" 2>&1 | hostdevs_in | sort | tr '\n' ' '; }

sc_readme_path() {
    local orig xml hd at_install at_status at_assign at_check at_start at_journal at_shutdown flag
    local headless dryrun unassign mark t0 reason out
    [ -n "${E2E_INSTALL_BUILD:-}" ] || fail "no build directory for install.sh: ${E2E_INSTALL_PROBLEM:-?}"
    umask 022
    expect_unchanged before
    readme_spans
    echo "README spans: $(printf '`%s` ' "${README_SPANS[@]}")"
    # The commands the path runs, found before anything runs (one missing fails with its pattern)
    readme_find '^(sudo )?\./install\.sh$'; at_install=$README_AT
    readme_find '^sudo vfio-hook status$'; at_status=$README_AT
    readme_find '^(sudo )?vfio-hook assign '; at_assign=$README_AT
    readme_find '^--dry-run$'; dryrun=$README_CMD
    readme_find '^--headless$'; headless=$README_CMD
    readme_find '^(sudo )?vfio-hook unassign '; unassign=$README_AT
    readme_find '^(sudo )?vfio-hook check '; at_check=$README_AT
    readme_find '^(sudo )?virsh start '; at_start=$README_AT
    readme_find '^(sudo )?journalctl '; at_journal=$README_AT
    readme_find '^(sudo )?virsh shutdown '; at_shutdown=$README_AT
    [ "$at_install" -lt "$at_status" ] && [ "$at_status" -lt "$at_assign" ] && [ "$at_assign" -lt "$at_check" ] &&
        [ "$at_check" -lt "$at_start" ] && [ "$at_start" -lt "$at_journal" ] && [ "$at_journal" -lt "$at_shutdown" ] ||
        fail "README's section no longer gives install, status, assign, check, virsh start, journalctl, virsh shutdown in that order"

    # A machine without vfio-hook (as install-and-hook-d starts), and a VM with a display
    rm -rf /etc/libvirt/hooks /usr/local/sbin/vfio-hook "$HOOKD"
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd"
    sed "s|<name>e2e-headless</name>|<name>$README_DOM</name>|" "$DOMS/headless.xml" >/tmp/e2e.readme.xml
    xml=$(timeout 30 virsh define /tmp/e2e.readme.xml 2>&1) || fail "virsh define $README_DOM: $(oneline "$xml")"
    orig=$(timeout 30 virsh dumpxml --inactive "$README_DOM" 2>&1) || fail "virsh dumpxml $README_DOM: $(oneline "$orig")"
    mark=$(log_mark)

    # 1. install.sh, from the clone (the guest cannot build under TCG, and has no network: the
    # harness's build directory and --no-deps are added)
    README_CMD=${README_SPANS[at_install]}
    T0=$(now_ms)
    (cd "$E2E_INSTALL_SRC" && readme_run --builddir "$E2E_INSTALL_BUILD" --no-deps) >/tmp/e2e.readme.install 2>&1
    cat /tmp/e2e.readme.install
    echo "install.sh took $(since "$T0") s"
    grep -qx '  exit 0' /tmp/e2e.readme.install || readme_fail "install.sh did not exit 0"
    grep -qF "hook:       /etc/libvirt/hooks/qemu -> this vfio-hook " /tmp/e2e.readme.install ||
        readme_fail "install.sh's closing vfio-hook status does not name the hook"
    [ "$(readlink /etc/libvirt/hooks/qemu)" = /usr/local/sbin/vfio-hook ] ||
        readme_fail "no hook after install.sh: $(ls -l /etc/libvirt/hooks/qemu 2>&1)"
    README_CMD=${README_SPANS[at_status]}
    readme_run
    [ "$RC" = 0 ] || [ "$RC" = 1 ] || readme_fail "exit $RC (0 ready, 1 not ready)"
    grep -qF "hook:       /etc/libvirt/hooks/qemu -> this vfio-hook " <<<"$OUT" || readme_fail "does not name the hook"
    grep -qE '^libvirt:    (libvirtd|virtqemud) answers' <<<"$OUT" || readme_fail "does not report libvirt reachable"

    # 2. assign: --dry-run changes nothing; then --headless puts the group in and the display out
    README_CMD=${README_SPANS[at_assign]}
    readme_run "$dryrun"
    [ "$RC" = 0 ] || readme_fail "with $dryrun: exit $RC"
    grep -q '^+.*<hostdev ' <<<"$OUT" || readme_fail "with $dryrun: the diff adds no hostdev"
    hd=$(readme_hostdevs)
    [ -z "$hd" ] || readme_fail "with $dryrun changed the definition: hostdevs [$hd]"
    readme_run "$headless"
    [ "$RC" = 0 ] || readme_fail "with $headless: exit $RC"
    hd=$(readme_hostdevs)
    [ "$hd" = "no $GPU no $AUD " ] || readme_fail "with $headless: hostdevs [$hd], expected managed='no' $GPU and $AUD"
    xml=$(timeout 30 virsh dumpxml --inactive "$README_DOM" 2>&1)
    ! grep -qE '<(graphics|video|sound)[ >]' <<<"$xml" || readme_fail "with $headless: the display is still there"
    README_CMD=${README_SPANS[at_check]}
    readme_run
    [ "$RC" = 0 ] || readme_fail "exit $RC"
    tail -n 1 <<<"$OUT" | grep -qx 'ready to start' || readme_fail "does not end with 'ready to start'"
    for flag in "$GPU" "$AUD"; do
        grep -qE "^  move  $flag .* -> vfio-pci" <<<"$OUT" || readme_fail "does not say it would move $flag to vfio-pci"
    done
    expect_unchanged "after check"

    # 3. virsh start
    README_CMD=${README_SPANS[at_start]}
    readme_run
    [ "$RC" = 0 ] || readme_fail "exit $RC"
    active "$README_DOM" || readme_fail "$README_DOM is not running"
    expect_vfio "after \`$README_CMD\`"

    # 4. the log, then virsh shutdown (nothing boots in the VM, so nothing answers ACPI: QMP quit,
    # as gpu-only-shutdown does) and the way back in the log
    README_CMD=${README_SPANS[at_journal]}
    readme_journal "$mark" "$GPU: bochs-drm → vfio-pci" "$AUD: snd_hda_intel → vfio-pci"
    README_CMD=${README_SPANS[at_shutdown]}
    t0=$(now_ms)
    readme_run
    [ "$RC" = 0 ] || readme_fail "exit $RC"
    if ! wait_inactive "$README_DOM" 2; then
        echo "ACPI shutdown not honoured in 2 s (nothing booted); QMP quit"
        timeout 20 virsh qemu-monitor-command "$README_DOM" '{"execute":"quit"}' >/dev/null 2>&1
        wait_inactive "$README_DOM" 20 || readme_fail "$README_DOM still running 20 s after QMP quit"
    fi
    reason=$(timeout 20 virsh domstate --reason "$README_DOM" 2>&1 | head -n 1)
    echo "$README_DOM stopped in $(since "$t0") s: $reason"
    [ "$reason" = "shut off (shutdown)" ] || readme_fail "libvirt says '$reason', expected 'shut off (shutdown)'"
    wait_home "after \`$README_CMD\`" 10
    no_records "after \`$README_CMD\`" "$README_DOM"
    README_CMD=${README_SPANS[at_journal]}
    readme_journal "$mark" "$GPU: vfio-pci → bochs-drm" "$AUD: vfio-pci → snd_hda_intel"

    # unassign --restore-display: no hostdev, and the display and sound as before assign
    README_CMD=${README_SPANS[unassign]}
    readme_run
    [ "$RC" = 0 ] || readme_fail "exit $RC"
    hd=$(readme_hostdevs)
    [ -z "$hd" ] || readme_fail "hostdevs left: $hd"
    xml=$(timeout 30 virsh dumpxml --inactive "$README_DOM" 2>&1)
    [ "$(display_in <<<"$xml")" = "$(display_in <<<"$orig")" ] ||
        readme_fail "display and sound [$(oneline "$(display_in <<<"$xml")")], before assign [$(oneline "$(display_in <<<"$orig")")]"
    # (libvirt's own additions stay: the pcie-root-ports it made for the hostdevs, a new address
    # for the video device; see README.md, "What assign-headless shows")
    echo "definition now vs. before assign:"
    diff <(devices_of <<<"$orig") <(devices_of <<<"$xml") | prefixed '  | '

    # leave the guest as the other scenarios expect it (the reset does it too on a failure)
    timeout 30 virsh undefine "$README_DOM" >/dev/null 2>&1
    out=$(cd / && timeout 120 "$E2E_INSTALL_SRC/install.sh" --uninstall 2>&1) ||
        fail "install.sh --uninstall: $(oneline "$(tail -n 3 <<<"$out")")"
    harness_hook
    reload_libvirtd || fail "cannot send SIGHUP to libvirtd to give it the harness's hook back"
    pass
}
# readme_journal MARK LINE...: the README's journalctl command as written; where the guest has no
# journal (no journald runs here: the hook logs to stderr), the same lines from the hook's log
# libvirt keeps ($COMMAND_LOG, since MARK)
readme_journal() {
    local mark=$1 want from
    shift
    if command -v journalctl >/dev/null; then
        readme_run
    else
        RC=127 OUT="journalctl: command not found"
        echo "README: \`$README_CMD\`: no journalctl in this guest"
    fi
    if grep -qF "$1" <<<"$OUT"; then
        from="journalctl"
    else
        [ "$RC" = 0 ] || [ "$RC" = 1 ] || [ "$RC" = 127 ] || readme_fail "exit $RC"
        grep -qiE 'no journal files|no entries|not found' <<<"$OUT" || readme_fail "shows neither the moves nor an empty journal"
        from="the hook's log in $COMMAND_LOG (no journald in the guest)"
        OUT=$(hook_log_since "$mark" | sed 's/^vfio-hook: //')
        prefixed '  log| ' <<<"$OUT"
    fi
    for want in "$@"; do
        grep -qF "$want" <<<"$OUT" || readme_fail "$from has no '$want'"
    done
    echo "  $from shows: $*"
}

# ---------------------------------------------------------------- single GPU: the host's console
# fbcon draws the VTs on framebuffers: fb0 is 00:02.0's (bochs-drm), fb1 01:00.0's. The kernel
# moves VTs between them by itself: when a framebuffer goes away while fbcon is bound, its VTs
# go to another framebuffer that carries a VT, or, if there is none, the kernel unbinds fbcon
# (and unregisters it once no framebuffer is left). Whenever it moves a VT it also rewrites
# where that VT returns to, so a framebuffer that comes back gets no VT unless one still wants
# it. The guest boots with fbcon=map:01 (VT1 on fb0, VT2 on fb1), and the single-GPU scenarios
# set that map again with FBIOPUT_CON2FBMAP (earlier scenarios that took 01:00.0 left VT2 on
# fb0): with VT2 on fb1, fbcon stays bound when fb0 goes away, so a bind of 0 while the VM
# runs can only be vfio-hook's own write.
fbcon_vtcon() { # the vtconsole fbcon registered ("frame buffer device")
    local v n
    for v in /sys/class/vtconsole/vtcon*; do
        n=
        read -r n 2>/dev/null <"$v/name"
        case $n in *"frame buffer"*) echo "${v##*/}"; return 0 ;; esac
    done
    return 1
}
vt_bind() { # VTCON -> 0, 1, or "gone"
    local b=gone
    read -r b 2>/dev/null <"/sys/class/vtconsole/$1/bind"
    echo "$b"
}
fb_device() { # fbN -> the PCI address it belongs to, or none
    local l
    l=$(readlink "/sys/class/graphics/$1/device" 2>/dev/null) && echo "${l##*/}" || echo none
}
# VT -> framebuffer map, read and set with the fb ioctls (linux/fb.h: struct fb_con2fbmap
# { __u32 console; __u32 framebuffer; }), in perl: perl-base is in every Debian root.
# shellcheck disable=SC2016 # perl's own variables
CON2FB_PL='
my ($op, $dev, @arg) = @ARGV;
open(my $f, "+<", $dev) or die "open $dev: $!\n";
if ($op eq "get") {
    for my $vt (@arg) {
        my $m = pack("LL", $vt, 0);
        ioctl($f, 0x460F, $m) or die "FBIOGET_CON2FBMAP VT$vt: $!\n";
        my (undef, $fb) = unpack("LL", $m);
        print "VT$vt=", ($fb == 0xffffffff ? "none" : "fb$fb"), " ";
    }
} else {
    while (my ($vt, $fb) = splice(@arg, 0, 2)) {
        ioctl($f, 0x4610, pack("LL", $vt, $fb)) or die "FBIOPUT_CON2FBMAP VT$vt fb$fb: $!\n";
    }
}'
con2fb() { # "VT1=fbN VT2=fbM" (through any framebuffer there is)
    local f
    for f in /dev/fb[0-9]*; do
        [ -c "$f" ] || continue
        perl -e "$CON2FB_PL" get "$f" 1 2 2>&1
        return
    done
    echo "(no framebuffer)"
}
map_vt() { perl -e "$CON2FB_PL" put "/dev/fb$2" "$1" "$2"; } # VT FB
boot_map() { # VT1 on fb0 and VT2 on fb1 again, as fbcon=map:01 booted them
    if [ "$(fb_device fb0)" = "$VGA" ] && [ "$(fb_device fb1)" = "$GPU" ]; then
        map_vt 1 0 || soft_fail "FBIOPUT_CON2FBMAP VT1 fb0 failed"
        map_vt 2 1 || soft_fail "FBIOPUT_CON2FBMAP VT2 fb1 failed"
    fi
    echo "console now: $(console_facts)"
}
console_facts() { # one line: every vtconsole (name, bind), framebuffer (device), VT1/VT2's framebuffer
    local v n b f text=
    for v in /sys/class/vtconsole/vtcon*; do
        [ -e "$v" ] || continue
        n='?' b='?'
        read -r n 2>/dev/null <"$v/name"
        read -r b 2>/dev/null <"$v/bind"
        text+="${v##*/}=[$n, bind $b] "
    done
    for f in /sys/class/graphics/fb[0-9]*; do
        [ -e "$f" ] && text+="${f##*/}=$(fb_device "${f##*/}") "
    done
    echo "$text$(con2fb)"
}
console_as_found() { # fbcon's vtcon bound, fb0 on 00:02.0, fb1 on 01:00.0, as setup found them
    local found vt
    read -r found 2>/dev/null <"$CONSOLE_FOUND" || return 0 # setup found no fbcon: nothing to compare
    vt=${found%% *}
    [ "$(vt_bind "$vt")" = 1 ] && [ "$vt $(fb_device fb0) $(fb_device fb1)" = "$found" ]
}

# Every ~20 ms, with builtins only (an exec costs 0.1-0.3 s here): one line per change of
# 00:02.0's driver, fbcon's bind and fb0, stamped in ms. Runs until the scenario kills it.
watch_console() { # FILE VTCON
    local out=$1 vt=$2 last='' cur b d f t fd ff=/tmp/.e2e-watch.$$
    mkfifo "$ff" && exec {fd}<>"$ff" && rm -f "$ff"
    while :; do
        b=gone
        read -r b 2>/dev/null <"/sys/class/vtconsole/$vt/bind"
        if [ -e "/sys/bus/pci/drivers/bochs-drm/$VGA" ]; then
            d=bochs-drm
        elif [ -e "/sys/bus/pci/drivers/vfio-pci/$VGA" ]; then
            d=vfio-pci
        elif [ -e "$SYS/$VGA/driver" ]; then d=other; else d=none; fi
        if [[ /sys/class/graphics/fb0/device -ef $SYS/$VGA ]]; then
            f=$VGA
        elif [ -e /sys/class/graphics/fb0 ]; then f=other; else f=none; fi
        cur="$VGA=$d $vt.bind=$b fb0=$f"
        if [ "$cur" != "$last" ]; then
            t=${EPOCHREALTIME/./}
            echo "$((10#$t / 1000)) $cur" >>"$out"
            last=$cur
        fi
        read -r -t 0.02 -u "$fd" _
    done
}
show_watch() { # FILE T0: the changes seen, in ms since T0
    local t rest
    while read -r t rest; do echo "  +$((t - $2)) ms: $rest"; done <"$1"
}

# The hook's own log: no journald here, so it goes to the hook's stderr, which libvirt keeps in
# its util.command debug messages ($COMMAND_LOG).
log_mark() { stat -c %s "$COMMAND_LOG" 2>/dev/null || echo 0; }
hook_log_since() { # OFFSET
    # libvirt logs the same stderr more than once (the result, then the error): each line once
    tail -c +"$(($1 + 1))" "$COMMAND_LOG" 2>/dev/null | grep -a -o 'vfio-hook: .*' | sed "s/'\$//" | awk '!seen[$0]++'
}
dmesg_mark() { dmesg 2>/dev/null | wc -l; }
# From kernel log lines: how long after bochs-drm's fb0 fbcon took the VTs again. The kernel's
# own takeover happens inside fb0's registration (its "Console: switching" line can even come
# first); vfio-hook's FBIOPUT_CON2FBMAP comes after it waited 500 ms for the kernel.
fbcon_came_back() {
    awk 'function t(   s) { s = $0; sub(/^\[ */, "", s); sub(/\].*/, "", s); return s + 0 }
         /\] Console: switching to .*frame buffer device/ { con = t() }
         /fb0: .*frame buffer device/ { fb = t() }
         END {
             d = int((con - fb) * 1000)
             if (con && fb && d < 0) printf "fbcon took the VTs while fb0 registered (logged %d ms before bochs-drm'"'"'s fb0 line)\n", -d
             else if (con && fb) printf "fbcon took the VTs %d ms after bochs-drm registered fb0\n", d
             else if (fb) print "fb0 registered, fbcon did not take the VTs"
         }'
}
dmesg_since() { dmesg 2>/dev/null | tail -n +"$(($1 + 1))"; }

# hook.d for DOMAIN: prepare/begin/10-stop-dm, the display manager's stop, and release/end/90-note,
# which notes when it ran and what it found. MODE "stops": 10-stop-dm kills the stand-in named in
# $DM_PIDS and waits (at most 5 s) until nothing holds 00:02.0's DRM card, as
# hook.d/stop-display-manager does. MODE "ignored": it sends SIGTERM and trusts that (no wait).
install_dm_scripts() { # DOMAIN MODE
    local d=$HOOKD/vm/$1
    rm -rf "$d" "/run/$1.prepare" "/run/$1.release"
    # every directory from /etc/vfio-hook down: root's, not writable by group or others
    install -d -m 0755 /etc/vfio-hook "$HOOKD" "$HOOKD/vm" "$d" "$d/prepare" "$d/prepare/begin" \
        "$d/release" "$d/release/end"
    chmod 0755 /etc/vfio-hook "$HOOKD" "$HOOKD/vm"
    {
        printf '#!/bin/bash\n# e2e: a display manager'"'"'s stop for %s (mode %s)\n' "$1" "$2"
        printf 'MODE=%s VGA=%s PIDS=%s NOTE=/run/%s.prepare\n' "$2" "$VGA" "$DM_PIDS" "$1"
        cat <<'EOF'
console() {
    local l d=none v n vt=none b=none
    l=$(readlink "/sys/bus/pci/devices/$VGA/driver") && d=${l##*/}
    for v in /sys/class/vtconsole/vtcon*; do
        read -r n <"$v/name"
        case $n in *"frame buffer"*) vt=${v##*/}; read -r b <"$v/bind" ;; esac
    done
    echo "$VGA=$d $vt.bind=$b"
}
held() { # is 00:02.0's DRM card open anywhere?
    local c f
    for c in /sys/bus/pci/devices/"$VGA"/drm/card*; do
        for f in /proc/[0-9]*/fd/*; do
            [[ $f -ef /dev/dri/${c##*/} ]] && return 0
        done
    done
    return 1
}
echo "$EPOCHREALTIME start: $(console)" >>"$NOTE"
# What a real one runs first (hook.d/stop-display-manager); this guest has no systemd, so the
# stand-in display manager is sent SIGTERM as systemd would. `check` knows the script by this line.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl stop display-manager.service; fi
read -r pid <"$PIDS"
kill -TERM "$pid"
echo "sent SIGTERM to $pid"
if [ "$MODE" = stops ]; then
    for _ in {1..100}; do
        held || break
        sleep 0.05
    done
    if held; then
        echo "00:02.0's card is still held after 5 s" >&2
        exit 1
    fi
    echo "the card is free"
fi
echo "$EPOCHREALTIME end: $(console)" >>"$NOTE"
EOF
    } >"$d/prepare/begin/10-stop-dm"
    {
        printf '#!/bin/bash\n# e2e: notes when release/end ran and what it found\n'
        printf 'VGA=%s NOTE=/run/%s.release\n' "$VGA" "$1"
        cat <<'EOF'
l=$(readlink "/sys/bus/pci/devices/$VGA/driver") && d=${l##*/} || d=none
vt=none b=none
for v in /sys/class/vtconsole/vtcon*; do
    read -r n <"$v/name"
    case $n in *"frame buffer"*) vt=${v##*/}; read -r b <"$v/bind" ;; esac
done
r=absent
[ -e "/run/vfio-hook/records/$VFIO_HOOK_DOMAIN_UUID.record" ] && r=present
echo "$EPOCHREALTIME $VGA=$d $vt.bind=$b record=$r devices=[$VFIO_HOOK_PCI_ADDRESSES]" >>"$NOTE"
echo "noted: $VGA=$d $vt.bind=$b record=$r"
EOF
    } >"$d/release/end/90-note"
    chmod 0755 "$d/prepare/begin/10-stop-dm" "$d/release/end/90-note"
    echo "hook.d for $1 ($2): $(find "$HOOKD/vm/$1" -type f -printf '%p %m %u; ' 2>/dev/null)"
}

DM=
start_dm_standin() { # MODE: "plain" or "ignores-term". Sets DM; holds 00:02.0's card, as Xorg would
    local card
    card=$(drm_card $VGA) || fail "$VGA has no DRM card node"
    if [ "$1" = ignores-term ]; then
        # shellcheck disable=SC2217 # the point: a process that holds the card open
        (trap '' TERM; exec sleep 600) <"/dev/dri/$card" >/dev/null 2>&1 &
    else
        # shellcheck disable=SC2217
        sleep 600 <"/dev/dri/$card" >/dev/null 2>&1 &
    fi
    DM=$!
    echo "$DM" >"$DM_PIDS"
    sleep 0.2
    [[ /proc/$DM/fd/0 -ef /dev/dri/$card ]] || fail "the stand-in (pid $DM) does not hold /dev/dri/$card"
    echo "display-manager stand-in: pid $DM ($1) holds /dev/dri/$card"
}
stop_dm_standin() {
    [ -z "$DM" ] || kill -9 "$DM" 2>/dev/null
    wait "$DM" 2>/dev/null
    rm -f "$DM_PIDS"
    DM=
}

# What a single-GPU scenario needs: fbcon bound, fb0 on 00:02.0, fb1 on 01:00.0, and fbcon
# drawing VT1 on fb0 and VT2 on fb1 (set here: an earlier scenario may have moved VT2 to fb0).
VT=
single_gpu_premise() {
    VT=$(fbcon_vtcon) || fail "no vtconsole is fbcon's: $(console_facts)"
    echo "console before: $(console_facts); kernel: $(grep -o 'fbcon=[^ ]*' /proc/cmdline)"
    [ "$(vt_bind "$VT")" = 1 ] || fail "fbcon's $VT is not bound before the start"
    [ "$(fb_device fb0)" = "$VGA" ] || fail "fb0 is not $VGA's"
    [ "$(fb_device fb1)" = "$GPU" ] || fail "fb1 is not $GPU's (the second framebuffer)"
    map_vt 1 0 || fail "FBIOPUT_CON2FBMAP VT1 fb0 failed: $(console_facts)"
    map_vt 2 1 || fail "FBIOPUT_CON2FBMAP VT2 fb1 failed: $(console_facts)"
    [ "$(con2fb)" = "VT1=fb0 VT2=fb1 " ] || fail "VT1 and VT2 are not on fb0 and fb1: $(console_facts)"
    echo "console set: $(console_facts)"
}

# The kernel, by itself: bochs-drm letting go of 00:02.0 (by hand, no vfio-hook) leaves fbcon
# bound while fb1 carries a VT: the VTs of fb0 move there. Then bochs-drm is bound again and the
# map set as before.
fbcon_survives_fb0() {
    local t0
    bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/unbind 10 || fail "control: unbinding bochs-drm from $VGA"
    echo "control: bochs-drm unbound from $VGA by hand: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] ||
        fail "control: fbcon's $VT bind reads '$(vt_bind "$VT")' once fb0 is gone: a second framebuffer does not keep fbcon bound, the scenario cannot tell vfio-hook's write from the kernel's"
    bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/bind 10 || fail "control: binding bochs-drm to $VGA again"
    t0=$(now_ms)
    until [ "$(fb_device fb0)" = "$VGA" ]; do
        [ $(($(now_ms) - t0)) -lt 5000 ] || fail "control: no fb0 5 s after binding bochs-drm again: $(console_facts)"
        sleep 0.1
    done
    echo "control: bochs-drm bound again: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || fail "control: fbcon's $VT is not bound after bochs-drm came back"
    expect_unchanged "control"
    map_vt 1 0 || fail "FBIOPUT_CON2FBMAP VT1 fb0 failed"
    echo "control: VT1 mapped to fb0 again: $(console_facts)"
}

allow_boot_vga_with_set() { # DOMAIN: through the real virsh door (`vfio-hook set`, then `get`)
    local out rc=0
    out=$(timeout 30 vfio-hook get "$1" 2>&1) || rc=$?
    echo "vfio-hook get $1 (before set): exit $rc: $(oneline "$out")"
    out=$(timeout 30 vfio-hook set "$1" allow-boot-vga yes 2>&1) || fail "vfio-hook set: $(oneline "$out")"
    echo "vfio-hook set: $(oneline "$out")"
    rc=0
    out=$(timeout 30 vfio-hook get "$1" 2>&1) || rc=$?
    echo "vfio-hook get $1: exit $rc: $(oneline "$out")"
    if [ "$rc" != 0 ] || ! grep -qx 'allow-boot-vga = yes' <<<"$out"; then
        fail "vfio-hook get $1 does not show allow-boot-vga = yes after set"
    fi
}

# One start and destroy of DOMAIN (given 00:02.0) with the display-manager stand-in and hook.d
# set up: everything the single-GPU scenarios assert, and the evidence, printed.
# RUNNING is the expected drivers while the VM runs.
single_gpu_cycle() { # DOMAIN RUNNING
    local dom=$1 want=$2 got uuid rec watch=/tmp/e2e.$1.watch t0 mark dm0 w note lines k
    rm -f "$watch"
    start_dm_standin plain
    mark=$(log_mark) dm0=$(dmesg_mark)
    t0=$(now_ms)
    watch_console "$watch" "$VT" &
    w=$!

    vstart "$dom"
    got=$(state)
    [ "$got" = "$want" ] || fail "running: drivers are [$got], expected [$want]"
    echo "running: $got"
    echo "console while running: $(console_facts)"
    [ "$(vt_bind "$VT")" = 0 ] || soft_fail "fbcon's $VT bind reads '$(vt_bind "$VT")' while the VM has $VGA, expected 0"
    uuid=$(awk -v d="$dom" '$1 == d { print $2 }' /tmp/e2e.uuids)
    rec=$STATE_DIR/records/$uuid.record
    echo "record $rec: $(oneline "$(cat "$rec" 2>&1)")"
    grep -qx "console $VGA vtcon $VT" "$rec" 2>/dev/null || soft_fail "the record does not hold 'console $VGA vtcon $VT'"
    [ ! -e "/proc/$DM" ] || [ "$(cut -d' ' -f3 "/proc/$DM/stat" 2>/dev/null)" = Z ] ||
        soft_fail "the stand-in (pid $DM) still runs: the prepare script did not stop it"
    note=$(cat "/run/$dom.prepare" 2>/dev/null)
    echo "prepare script noted: $(oneline "$note")"
    grep -q "start: $VGA=bochs-drm $VT.bind=1" <<<"$note" ||
        soft_fail "when the prepare script started, the console was not [$VGA=bochs-drm $VT.bind=1]"
    timeout 30 vfio-hook status 2>&1 | grep -i -e console -e "^  group $(group_of $VGA) " | prefixed '  status | '

    vdestroy "$dom"
    wait_home "after destroy"
    echo "console after destroy: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || soft_fail "fbcon's $VT bind reads '$(vt_bind "$VT")' after destroy, expected 1"
    [ "$(fb_device fb0)" = "$VGA" ] || soft_fail "fb0 is not $VGA's after destroy"
    [ -z "$(records)" ] || soft_fail "records left after destroy: $(oneline "$(records)")"
    note=$(cat "/run/$dom.release" 2>/dev/null)
    echo "release script noted: $(oneline "$note")"
    grep -q "$VGA=bochs-drm $VT.bind=1 record=absent" <<<"$note" ||
        soft_fail "the release script did not run after the console was back (it noted: '$(oneline "$note")', expected $VGA=bochs-drm $VT.bind=1 record=absent)"

    kill "$w" 2>/dev/null
    wait "$w" 2>/dev/null
    echo "what the console did (ms since just before virsh start):"
    show_watch "$watch" "$t0"
    echo "the hook's log (its stderr, from libvirt's debug log):"
    lines=$(hook_log_since "$mark")
    prefixed '  | ' <<<"$lines"
    echo "kernel log meanwhile:"
    k=$(dmesg_since "$dm0")
    prefixed '  k ' <<<"$k"
    fbcon_came_back <<<"$k"
    grep -q "took fbcon on $VT" <<<"$lines" || soft_fail "the hook's log does not say it took fbcon on $VT"
    grep -q "gave back fbcon on $VT" <<<"$lines" || soft_fail "the hook's log does not say it gave back fbcon on $VT"
    stop_dm_standin
}

# Issue 24: `check --domain` models the real start: with the display-manager stand-in holding
# 00:02.0's card, the start is refused without a prepare script and possible with the script that
# stops the display manager (its holder "cleared by hook.d script"), the console steps shown.
single_gpu_check() { # DOMAIN SCRIPTS: "none" or "installed"
    local out rc=0
    start_dm_standin plain
    out=$(timeout 60 vfio-hook check --domain "$1" 2>&1) || rc=$?
    stop_dm_standin
    echo "vfio-hook check --domain $1 ($2 hook.d scripts): exit $rc"
    prefixed '  check | ' <<<"$out"
    if [ "$2" = none ]; then
        [ "$rc" = 1 ] && grep -q "would refuse to start" <<<"$out" && grep -q "is held open by pid" <<<"$out" ||
            soft_fail "check --domain $1 without a prepare script did not refuse for the held card (exit $rc)"
        return
    fi
    [ "$rc" = 0 ] && grep -qx "ready to start" <<<"$out" ||
        soft_fail "check --domain $1 with its stop-display-manager script does not report the start as possible (exit $rc)"
    grep -q "cleared by hook.d script $HOOKD/vm/$1/prepare/begin/10-stop-dm" <<<"$out" ||
        soft_fail "check --domain $1 does not say the display manager's hold is cleared by its script"
    grep -q "console $VGA: take fbcon on $VT" <<<"$out" ||
        soft_fail "check --domain $1 does not show the console step (fbcon on $VT)"
}

sc_single_gpu() {
    expect_unchanged before
    single_gpu_premise
    fbcon_survives_fb0
    allow_boot_vga_with_set e2e-single
    single_gpu_check e2e-single none
    install_dm_scripts e2e-single stops
    single_gpu_check e2e-single installed
    single_gpu_cycle e2e-single "$VGA=vfio-pci $GPU=bochs-drm $AUD=snd_hda_intel $PB_HOME"
    rm -rf "$HOOKD/vm/e2e-single"
    boot_map
    pass
}

# fbcon's way back, through `vfio-hook --allow-boot-vga yes bind 00:02.0` and `restore` (the
# same console steps as a VM's prepare and release, in seconds instead of a VM's start), in the
# two cases where fbcon does not simply follow fb0:
# (a) no VT wants fb0 (every VT mapped to fb1): when fb0 registers again the kernel leaves fbcon
#     unbound (shown first by hand); vfio-hook must bind it with FBIOPUT_CON2FBMAP.
# (b) one framebuffer (01:00.0 parked on vfio-pci), every VT mapped to fb0: when fb0 goes, the
#     kernel unregisters fbcon altogether (its vtcon disappears) and registers it again when fb0
#     comes back.
console_round() { # LABEL RUNNING-STATE: bind and restore 00:02.0 by hand
    local out rc=0 got dm0
    dm0=$(dmesg_mark)
    out=$(timeout 30 vfio-hook --allow-boot-vga yes bind "$VGA" 2>&1) ||
        fail "$1: vfio-hook bind $VGA: $(oneline "$out")"
    echo "$1: vfio-hook bind $VGA: $(oneline "$out")"
    got=$(state)
    [ "$got" = "$2" ] || fail "$1: drivers are [$got], expected [$2]"
    echo "$1: taken: $(console_facts); record: $(oneline "$(cat "$STATE_DIR/records/manual.record" 2>&1)")"
    grep -qx "console $VGA vtcon $VT" "$STATE_DIR/records/manual.record" 2>/dev/null ||
        soft_fail "$1: the record does not hold 'console $VGA vtcon $VT'"
    out=$(timeout 30 vfio-hook restore "$VGA" 2>&1) || rc=$?
    echo "$1: vfio-hook restore $VGA: exit $rc: $(oneline "$out")"
    [ "$rc" = 0 ] || soft_fail "$1: vfio-hook restore $VGA exited $rc: $(oneline "$out")"
    if [ "$(drv $VGA)" != bochs-drm ] || [ -n "$(ovr $VGA)" ]; then
        fail "$1: $VGA is on $(drv $VGA) (override '$(ovr $VGA)') after restore"
    fi
    echo "$1: given back: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || soft_fail "$1: fbcon's $VT bind reads '$(vt_bind "$VT")' after restore, expected 1"
    [ "$(fb_device fb0)" = "$VGA" ] || soft_fail "$1: fb0 is not $VGA's after restore"
    dmesg_since "$dm0" | prefixed "  $1 k "
    dmesg_since "$dm0" | fbcon_came_back | prefixed "$1: "
}
map_all_vts() { # FB: VT1..VT63 to fbFB, in one perl
    local vt pairs=()
    for vt in {1..63}; do pairs+=("$vt" "$1"); done
    perl -e "$CON2FB_PL" put "/dev/fb$1" "${pairs[@]}"
}

sc_single_gpu_console_comes_back() {
    local out t0 b
    expect_unchanged before
    single_gpu_premise
    # (a) the kernel alone first: fbcon unbound by hand, fb0 away and back
    map_all_vts 1 || fail "(a) FBIOPUT_CON2FBMAP of every VT to fb1 failed"
    echo "(a) every VT on fb1: $(console_facts)"
    bounded_write 0 "/sys/class/vtconsole/$VT/bind" 10 || fail "(a) writing 0 to $VT/bind"
    echo "(a) control: 0 written to $VT/bind: $(console_facts)"
    bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/unbind 10 || fail "(a) control: unbinding bochs-drm from $VGA"
    bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/bind 10 || fail "(a) control: binding bochs-drm to $VGA again"
    t0=$(now_ms)
    until [ "$(fb_device fb0)" = "$VGA" ]; do
        [ $(($(now_ms) - t0)) -lt 5000 ] || fail "(a) control: no fb0 5 s after binding bochs-drm again"
        sleep 0.1
    done
    sleep 1
    b=$(vt_bind "$VT")
    echo "(a) control: fb0 back for 1 s: $(console_facts)"
    [ "$b" = 0 ] || fail "(a) control: the kernel bound fbcon again by itself ($VT bind reads '$b'): the hook's FBIOPUT_CON2FBMAP would not be exercised"
    bounded_write 1 "/sys/class/vtconsole/$VT/bind" 10
    echo "(a) control: 1 written to $VT/bind: reads $(vt_bind "$VT")"
    map_vt 1 0 || fail "(a) control: FBIOPUT_CON2FBMAP VT1 fb0 failed"
    echo "(a) control: after FBIOPUT_CON2FBMAP VT1 fb0: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || fail "(a) control: FBIOPUT_CON2FBMAP did not bind fbcon"
    map_all_vts 1 || fail "(a) FBIOPUT_CON2FBMAP of every VT to fb1 failed"
    echo "(a) every VT on fb1 again: $(console_facts)"
    console_round "(a)" "$VGA=vfio-pci $GPU=bochs-drm $AUD=snd_hda_intel $PB_HOME"
    # (b) every VT wants fb0 again, as on a host that booted with one framebuffer. (The kernel
    # records where a VT wants to be only when it moves it: through fb1 and back.)
    map_all_vts 1 || fail "(b) FBIOPUT_CON2FBMAP of every VT to fb1 failed"
    map_all_vts 0 || fail "(b) FBIOPUT_CON2FBMAP of every VT to fb0 failed"
    out=$(timeout 30 vfio-hook bind "$GPU" 2>&1) || fail "(b) vfio-hook bind $GPU: $(oneline "$out")"
    expect_vfio "(b) $GPU parked"
    echo "(b) one framebuffer, every VT on fb0: $(console_facts)"
    console_round "(b)" "$VGA=vfio-pci $GPU=vfio-pci $AUD=vfio-pci $PB_HOME"
    # (bind moved the audio function with the GPU; restore gives back the addresses it is given)
    out=$(timeout 30 vfio-hook restore "$GPU" "$AUD" 2>&1) || fail "(b) vfio-hook restore $GPU $AUD: $(oneline "$out")"
    wait_home "(b) $GPU given back"
    [ -z "$(records)" ] || soft_fail "records left: $(oneline "$(records)")"
    boot_map
    console_as_found || soft_fail "the console is not as found: $(console_facts)"
    pass
}

# The display manager ignores the stop: the holder check refuses the start, naming it, before
# the console is touched.
sc_single_gpu_dm_does_not_stop() {
    local out rc=0 watch=/tmp/e2e.stuck.watch t0 mark dm0 w note lines before
    expect_unchanged before
    VT=$(fbcon_vtcon) || fail "no vtconsole is fbcon's: $(console_facts)"
    before=$(console_facts)
    echo "console before: $before"
    [ "$(vt_bind "$VT")" = 1 ] || fail "fbcon's $VT is not bound before the start"
    # this domain allows the boot VGA in its own definition
    out=$(timeout 30 vfio-hook get e2e-single-meta 2>&1) || rc=$?
    echo "vfio-hook get e2e-single-meta: exit $rc: $(oneline "$out")"
    if [ "$rc" != 0 ] || ! grep -qx 'allow-boot-vga = yes' <<<"$out"; then
        fail "vfio-hook get e2e-single-meta does not show allow-boot-vga = yes (from its XML)"
    fi
    install_dm_scripts e2e-single-meta ignored
    start_dm_standin ignores-term
    mark=$(log_mark) dm0=$(dmesg_mark)
    t0=$(now_ms)
    rm -f "$watch"
    watch_console "$watch" "$VT" &
    w=$!

    vstart_refused e2e-single-meta
    grep -qw "$DM" <<<"$ERR" || soft_fail "the error does not name the holder pid $DM"
    grep -qF "$VGA" <<<"$ERR" || soft_fail "the error does not name $VGA"
    [[ /proc/$DM/fd/0 -ef /dev/dri/$(drm_card $VGA) ]] ||
        soft_fail "the stand-in (pid $DM) no longer holds $VGA's card: it did stop"
    note=$(cat /run/e2e-single-meta.prepare 2>/dev/null)
    echo "prepare script noted: $(oneline "$note")"
    [ -n "$note" ] || soft_fail "the prepare script did not run"
    expect_unchanged "after the refusal"
    echo "console after the refusal: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || soft_fail "fbcon's $VT bind reads '$(vt_bind "$VT")' after the refusal, expected 1"
    [ "$(console_facts)" = "$before" ] || soft_fail "the console changed: before [$before], after [$(console_facts)]"
    no_records "after the refusal" e2e-single-meta
    # libvirt calls release after a failed start too: the release scripts (which would start the
    # display manager again) run, and find the console where it was
    note=$(cat /run/e2e-single-meta.release 2>/dev/null)
    echo "release script noted: $(oneline "$note")"
    grep -q "$VGA=bochs-drm $VT.bind=1 record=absent" <<<"$note" ||
        soft_fail "the release script did not run after the refused start, or found the console moved (it noted: '$(oneline "$note")')"

    kill "$w" 2>/dev/null
    wait "$w" 2>/dev/null
    echo "what the console did (ms since just before virsh start):"
    show_watch "$watch" "$t0"
    if [ "$(wc -l <"$watch")" != 1 ] || ! grep -q "$VGA=bochs-drm $VT.bind=1 fb0=$VGA" "$watch"; then
        soft_fail "the console moved during the refused start: $(oneline "$(show_watch "$watch" "$t0")")"
    fi
    echo "the hook's log (its stderr, from libvirt's debug log):"
    lines=$(hook_log_since "$mark")
    prefixed '  | ' <<<"$lines"
    echo "kernel log meanwhile:"
    dmesg_since "$dm0" | prefixed '  k '
    ! grep -q -e 'took fbcon' -e 'gave back fbcon' <<<"$lines$ERR" ||
        soft_fail "the hook touched the console during a refused start"
    stop_dm_standin
    rm -rf "$HOOKD/vm/e2e-single-meta"
    pass
}

# ---------------------------------------------------------------- the firmware framebuffer (issue 25)
# Booted by OVMF (tests/e2e/run --firmware uefi, Debian 13's default), the kernel finds the GOP's
# framebuffer on 00:02.0 and sysfb gives it to efifb: platform device efi-framebuffer.0, driver
# efi-framebuffer, /proc/iomem region "efifb" inside 00:02.0's BAR, /dev/fb0. With e2e_vga_unbound
# the initramfs kept bochs-drm off 00:02.0, so that framebuffer carries the console as on an
# NVIDIA host without fbdev.
FWFB_DEV='' FWFB_DRV='' FWFB_REGIONS=''
fwfb_find() { # sets FWFB_DEV (the platform device), FWFB_DRV (its driver), FWFB_REGIONS (iomem, under $VGA)
    local d l
    FWFB_DEV='' FWFB_DRV='' FWFB_REGIONS=''
    for d in /sys/bus/platform/devices/*-framebuffer.[0-9]*; do
        [ -e "$d" ] || continue
        FWFB_DEV=${d##*/}
        l=$(readlink "$d/driver" 2>/dev/null) && FWFB_DRV=${l##*/}
        break
    done
    # the regions nested under 00:02.0's BAR, outermost first
    FWFB_REGIONS=$(awk -v a="$VGA" '
        { match($0, /^ */); ind = RLENGTH; name = $0; sub(/^[^:]*: /, "", name) }
        in_bar && ind <= bar { in_bar = 0 }
        in_bar { printf "%s%s", sep, name; sep = " " }
        name == a && !done { in_bar = 1; bar = ind; done = 1 }' /proc/iomem)
}
fwfb_facts() {
    fwfb_find
    echo "platform device ${FWFB_DEV:-none} (driver ${FWFB_DRV:-none}), iomem under $VGA: [${FWFB_REGIONS:-none}], fb0 $(fb_device fb0), $(console_facts)"
}
# After single-gpu-firmware-fb (or in its place): 00:02.0 to bochs-drm, the console as the
# other scenarios expect it (fb0 on 00:02.0, fb1 on 01:00.0, VT1 on fb0, VT2 on fb1).
vga_to_bochs() {
    local vt t0
    echo "# reset: giving $VGA to bochs-drm (it was kept driverless for the firmware framebuffer)"
    bounded_write "" "$SYS/$VGA/driver_override" 5 | prefixed '# reset: '
    [ "$(drv $VGA)" = none ] || bounded_write "$VGA" "$SYS/$VGA/driver/unbind" 10 | prefixed '# reset: '
    # 00:02.0 first: framebuffers take the lowest free number, and fb0 must be 00:02.0's
    bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/bind 10 | prefixed '# reset: '
    t0=$(now_ms)
    until [ "$(fb_device fb0)" = "$VGA" ]; do
        [ $(($(now_ms) - t0)) -lt 5000 ] || break
        sleep 0.1
    done
    # single-gpu-firmware-fb took 01:00.0 off bochs-drm (one framebuffer only)
    [ "$(drv $GPU)" = bochs-drm ] || { bounded_write "" "$SYS/$GPU/driver_override" 5; bounded_write "$GPU" /sys/bus/pci/drivers/bochs-drm/bind 10; } | prefixed '# reset: '
    until [ "$(fb_device fb0)" = "$VGA" ] && [ "$(fb_device fb1)" = "$GPU" ]; do
        [ $(($(now_ms) - t0)) -lt 5000 ] || break
        sleep 0.1
    done
    map_vt 1 0 2>/dev/null
    map_vt 2 1 2>/dev/null
    vt=$(fbcon_vtcon) && echo "$vt $(fb_device fb0) $(fb_device fb1)" >"$CONSOLE_FOUND"
    rm -f "$FWFB_MODE"
    echo "# reset: console now: $(console_facts)"
}
# The names the guest's kernel uses for its firmware framebuffer must be those of the product's
# list (src/core/console.hpp) and of the fake tree (tests/unit/fake_host.cpp), which the host side
# copies into the test share: a wrong name there passed every unit test once.
fwfb_names_check() { # KERNEL-DRIVER (the region's own name: efifb, simpledrm, ...)
    local k=$1 fake hpp regions
    fake=$(grep -F "{\"$k\", {" "$E2E/names/fake_host.cpp") || { soft_fail "the fake tree has no firmware framebuffer '$k'"; return; }
    echo "fake tree: $(oneline "$fake")"
    grep -qF "{\"$k\", {\"$FWFB_DEV\", \"$FWFB_DRV\", {" <<<"$fake" ||
        soft_fail "the fake tree names $k's device and driver differently from this kernel ($FWFB_DEV, $FWFB_DRV): $(oneline "$fake")"
    regions=$(sed 's/.*{\([^{}]*\)}}},*$/\1/; s/[",]//g' <<<"$fake")
    [ "$(oneline "$regions")" = "$FWFB_REGIONS" ] ||
        soft_fail "the fake tree nests [$(oneline "$regions")] under the GPU's BAR, this kernel [$FWFB_REGIONS]"
    hpp=$(grep -F "{\"$FWFB_DRV\", {" "$E2E/names/console.hpp") || { soft_fail "console.hpp does not list the platform driver $FWFB_DRV"; return; }
    echo "console.hpp: $(oneline "$hpp")"
    grep -qF "\"${FWFB_REGIONS##* }\"" <<<"$hpp" ||
        soft_fail "console.hpp's entry for $FWFB_DRV lacks the region ${FWFB_REGIONS##* }"
    echo "names agree: $k = $FWFB_DEV, driver $FWFB_DRV, regions [$FWFB_REGIONS]"
}
# A builtin-only poll (~20 ms): 00:02.0's driver, the firmware framebuffer's device and driver,
# fbcon's bind; one stamped line per change.
watch_fwfb() { # FILE VTCON
    local out=$1 vt=$2 last='' cur b d f fd ff=/tmp/.e2e-fwwatch.$$ t
    mkfifo "$ff" && exec {fd}<>"$ff" && rm -f "$ff"
    while :; do
        b=gone
        read -r b 2>/dev/null <"/sys/class/vtconsole/$vt/bind"
        if [ -e "/sys/bus/pci/drivers/vfio-pci/$VGA" ]; then d=vfio-pci
        elif [ -e "$SYS/$VGA/driver" ]; then d=other; else d=none; fi
        if [ -e "/sys/bus/platform/devices/$FWFB_DEV/driver" ]; then f=bound
        elif [ -e "/sys/bus/platform/devices/$FWFB_DEV" ]; then f=unbound; else f=gone; fi
        cur="$VGA=$d $FWFB_DEV=$f $vt.bind=$b"
        if [ "$cur" != "$last" ]; then
            t=${EPOCHREALTIME/./}
            echo "$((10#$t / 1000)) $cur" >>"$out"
            last=$cur
        fi
        read -r -t 0.02 -u "$fd" _
    done
}
# Single GPU on the UEFI guest: the boot VGA has no native driver, its console is the firmware's
# framebuffer (and only that: 01:00.0's bochs-drm, which would offer fbcon a second framebuffer,
# lets go first). The hook must detach the firmware framebuffer (and fbcon) before the move; after
# destroy the console is back, or, since the kernel deletes the firmware framebuffer for good once
# vfio-pci has had a VGA device (sysfb_disable) and 00:02.0 has no driver to register another,
# the hook says so and `status` shows it.
sc_single_gpu_firmware_fb() {
    local kdrv mark w watch=/tmp/e2e.fwfb.watch t0 lines out uuid rec st
    [ -e "$FWFB_MODE" ] || fail "00:02.0 was not kept driverless at boot (tests/e2e/run sets e2e_vga_unbound=1 for this scenario with --firmware uefi)"
    [ -d /sys/firmware/efi ] || fail "no /sys/firmware/efi: the guest was not booted by UEFI"
    echo "EFI: $(ls /sys/firmware/efi | tr '\n' ' ')"
    echo "before: $(fwfb_facts)"
    fwfb_find # (in this shell: $(fwfb_facts) set them in a subshell)
    [ -n "$FWFB_DEV" ] || fail "no firmware framebuffer platform device (/sys/bus/platform/devices/*-framebuffer.0)"
    [ -n "$FWFB_DRV" ] || fail "$FWFB_DEV has no driver"
    [ -n "$FWFB_REGIONS" ] || fail "no /proc/iomem region under $VGA's BAR"
    [ "$(fb_device fb0)" = "$FWFB_DEV" ] || fail "fb0 is not $FWFB_DEV's: $(console_facts)"
    kdrv=${FWFB_REGIONS##* }
    [ -e /e2e-out ] && echo "$(uname -r) $kdrv $FWFB_DEV $FWFB_DRV $FWFB_REGIONS" >"/e2e-out/fwfb-facts"
    fwfb_names_check "$kdrv"
    # single GPU: the firmware framebuffer alone carries the console
    bounded_write "$GPU" /sys/bus/pci/drivers/bochs-drm/unbind 10 || fail "unbinding bochs-drm from $GPU"
    VT=$(fbcon_vtcon) || fail "no vtconsole is fbcon's: $(console_facts)"
    [ "$(vt_bind "$VT")" = 1 ] || fail "fbcon's $VT is not bound on $FWFB_DEV"
    echo "single GPU: $(console_facts)"
    uuid=$(awk '$1 == "e2e-single-meta" { print $2 }' /tmp/e2e.uuids)
    rec=$STATE_DIR/records/$uuid.record
    mark=$(log_mark)
    rm -f "$watch"
    t0=$(now_ms)
    watch_fwfb "$watch" "$VT" &
    w=$!
    vstart e2e-single-meta
    st=$(state)
    [ "${st%% *}" = "$VGA=vfio-pci" ] || soft_fail "running: $VGA is not on vfio-pci: $st"
    echo "running: $st; $(fwfb_facts)"
    echo "record: $(oneline "$(cat "$rec" 2>&1)")"
    grep -q "$FWFB_DEV" "$rec" 2>/dev/null || soft_fail "the record does not hold $FWFB_DEV"
    vdestroy e2e-single-meta
    sleep 1
    kill "$w" 2>/dev/null
    wait "$w" 2>/dev/null
    echo "after destroy: $(state); $VGA override '$(ovr $VGA)'; $(fwfb_facts)"
    echo "what the console did (ms since just before virsh start):"
    show_watch "$watch" "$t0"
    # the firmware framebuffer let go of 00:02.0 before vfio-pci had it
    awk -v v="$VGA=vfio-pci" -v f="$FWFB_DEV=bound" '
        index($0, f) && index($0, v) { bad = 1 } END { exit bad }' "$watch" ||
        soft_fail "$FWFB_DEV was still bound while $VGA was on vfio-pci"
    grep -q "$VGA=vfio-pci" "$watch" || soft_fail "the poll never saw $VGA on vfio-pci"
    lines=$(hook_log_since "$mark")
    echo "the hook's log (its stderr, from libvirt's debug log):"
    prefixed '  | ' <<<"$lines"
    awk -v f="$FWFB_DEV" '/took/ && index($0, f) { took = NR } /→ vfio-pci/ && !moved { moved = NR }
        END { exit !(took && moved && took < moved) }' <<<"$lines" ||
        soft_fail "the hook's log does not show $FWFB_DEV taken before the move to vfio-pci"
    [ "$(drv $VGA)" = none ] || soft_fail "$VGA is on $(drv $VGA) after destroy, expected no driver (as found)"
    out=$(timeout 30 vfio-hook status 2>&1)
    echo "vfio-hook status:"
    prefixed '  | ' <<<"$out"
    if [ "$(vt_bind "$VT")" = 1 ] && [ -n "$(fb_device fb0 | grep -v none)" ]; then
        echo "the console is back: $(console_facts)"
    else
        echo "the console is not back: $(console_facts)"
        grep -qi -e 'console' <<<"$lines" | grep -qi -e 'not back' -e cannot ||
            grep -qi -e 'not back' -e 'cannot' <<<"$lines" ||
            soft_fail "the release does not say the console could not come back"
        grep -F "$VGA" <<<"$out" | grep -qi -e console -e framebuffer ||
            grep -qi -e 'console' <<<"$out" ||
            soft_fail "status does not say the console is not back"
    fi
    pass
}

# ---------------------------------------------------------------- the stand-in NVIDIA driver (issue 25)
# tests/e2e/standin/nvidia.ko, built by the host side for this guest's own kernel, drives $NV
# (QEMU's secondary QXL, which nothing else here claims) the way NVIDIA's driver holds a GPU:
# /dev/nvidiaN (195:N) pins it and its remove waits while that is open; /dev/nvidiactl (195:255)
# and /dev/nvidia-modeset (195:254) pin nothing; its DDC bus is an I2C adapter under the PCI
# device, so an open /dev/i2c-N blocks the remove in the i2c core; the module parameter
# pmu_firmware_missing makes its probe fail as nouveau's does without the PMU firmware.
STANDIN_KO=$E2E/standin/nvidia.ko
NV_PARAMS=/sys/module/nvidia/parameters
STANDIN_PIDS=/run/e2e-standin.pids # holders of the stand-in's nodes, killed by the reset
NV_NODE='' NV_I2C=''
nv_minor() { sed -n 's/^Device Minor:[[:space:]]*//p' "/proc/driver/nvidia/gpus/$NV/information" 2>/dev/null; }
nv_i2c() { # the /dev/i2c-N whose adapter lies under $NV in sysfs
    local d real
    real=$(readlink -f "$SYS/$NV")
    for d in /sys/class/i2c-dev/i2c-*; do
        [ -e "$d" ] || continue
        [[ $(readlink -f "$d/device") == "$real"/* ]] && { echo "/dev/${d##*/}"; return 0; }
    done
    return 1
}
standin_home() { # $NV on the stand-in, as a host with NVIDIA's driver has it (bounded writes)
    [ "$(drv $NV)" = nvidia ] && return 0
    [ -z "$(ovr $NV)" ] || bounded_write "" "$SYS/$NV/driver_override" 5 || return 1
    [ "$(drv $NV)" = none ] || bounded_write "$NV" "$SYS/$NV/driver/unbind" 10 || return 1
    bounded_write "$NV" /sys/bus/pci/drivers/nvidia/bind 10
}
standin_up() { # load the stand-in once per boot, $NV on it, its nodes made (as nvidia-modprobe does)
    local minor
    [ -z "${E2E_STANDIN_PROBLEM:-}" ] || fail "$E2E_STANDIN_PROBLEM"
    if [ ! -d /sys/module/nvidia ]; then
        [ -f "$STANDIN_KO" ] || fail "no stand-in module in the test share"
        modprobe i2c-dev || fail "modprobe i2c-dev failed"
        # shellcheck disable=SC2086 # VFIO_HOOK_E2E_STANDIN_ARGS: module parameters, one word each
        insmod "$STANDIN_KO" ${E2E_STANDIN_ARGS:-} || fail "insmod $STANDIN_KO failed: $(oneline "$(dmesg | tail -n 3)")"
        echo "stand-in loaded on $(uname -r): vermagic $(modinfo -F vermagic "$STANDIN_KO"), built with ${E2E_STANDIN_HEADERS:-?}${E2E_STANDIN_ARGS:+, parameters $E2E_STANDIN_ARGS}"
    fi
    echo N >"$NV_PARAMS/pmu_firmware_missing"
    standin_home || fail "$NV is not on the stand-in: $(drv $NV)"
    minor=$(nv_minor)
    [ -n "$minor" ] || fail "/proc/driver/nvidia/gpus/$NV/information has no Device Minor"
    NV_NODE=/dev/nvidia$minor
    [ -c "$NV_NODE" ] || mknod "$NV_NODE" c 195 "$minor"
    [ -c /dev/nvidiactl ] || mknod /dev/nvidiactl c 195 255
    [ -c /dev/nvidia-modeset ] || mknod /dev/nvidia-modeset c 195 254
    NV_I2C=$(nv_i2c) || NV_I2C=
    echo "stand-in: $NV on $(drv $NV), $NV_NODE, DDC bus ${NV_I2C:-none}; $(grep '^Model' "/proc/driver/nvidia/gpus/$NV/information" | tr -s ' \t' ' ')"
}
hold() { # NODE [NAME]: a process (named NAME) holding NODE open; sets HOLDER
    local name=${2:-sleep}
    if [ "$name" != sleep ]; then
        # the process name is the name it was executed under (comm: 15 characters)
        ln -sf "$(command -v sleep)" "/usr/local/bin/$name"
    fi
    # shellcheck disable=SC2217 # the point: a process that holds the node open
    "$name" 600 <"$1" >/dev/null 2>&1 &
    HOLDER=$!
    echo "$HOLDER" >>"$STANDIN_PIDS"
    sleep 0.2
    [[ /proc/$HOLDER/fd/0 -ef $1 ]] || fail "pid $HOLDER ($name) does not hold $1"
    echo "pid $HOLDER ($(cat "/proc/$HOLDER/comm")) holds $1"
}
unhold() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
nv_expect() { # PHASE DRIVER: $NV's driver (the link only: never the override while a remove may block)
    [ "$(drv $NV)" = "$2" ] || fail "$1: $NV is on $(drv $NV), expected $2"
    echo "$1: $NV on $2"
}
nv_record() { # the record file of e2e-nv
    echo "$STATE_DIR/records/$(awk '$1 == "e2e-nv" { print $2 }' /tmp/e2e.uuids).record"
}
# After a start that failed with the device in the middle (a blocked remove): the holder gone,
# `vfio-hook recover` must bring $NV home with no record left.
nv_recover() { # PHASE
    local out rc=0
    out=$(timeout 60 vfio-hook recover 2>&1) || rc=$?
    echo "$1: vfio-hook recover: exit $rc: $(oneline "$out")"
    [ "$rc" != 124 ] || fail "$1: vfio-hook recover did not return within 60 s"
    nv_expect "$1" nvidia
    [ -z "$(ovr $NV)" ] || fail "$1: $NV's driver_override is '$(ovr $NV)'"
    [ ! -e "$(nv_record)" ] || fail "$1: the record of e2e-nv is left: $(oneline "$(cat "$(nv_record)")")"
}

# (a) Only the GPU's DDC bus is open (a brightness daemon's /dev/i2c-N): nothing shows in
# `lsof /dev/nvidia0`, yet the real i2c core blocks the stand-in's remove. The start must be
# refused naming the pid and the node, and nothing may hang.
sc_standin_ddc_holder() {
    local t0 k0
    standin_up
    [ -n "$NV_I2C" ] || fail "the stand-in registered no DDC bus under $NV (no /dev/i2c-N whose device lies under it)"
    hold "$NV_I2C"
    k0=$(dmesg_mark)
    t0=$(now_ms)
    vstart_refused e2e-nv 60
    grep -qw "$HOLDER" <<<"$ERR" || soft_fail "the error does not name the holder pid $HOLDER"
    grep -qF "$NV_I2C" <<<"$ERR" || soft_fail "the error does not name $NV_I2C"
    grep -qi 'hung\|did not return' <<<"$ERR" &&
        soft_fail "the hook did not see the holder: it tried the unbind and the i2c core blocked it"
    t0=$(now_ms)
    timeout 10 virsh list >/dev/null 2>&1 || soft_fail "virsh list did not answer within 10 s (one virsh call costs 1-4 s here)"
    echo "virsh list answered in $(since "$t0") s; $NV on $(drv $NV)"
    [ "$(drv $NV)" = nvidia ] || soft_fail "$NV left the stand-in though the start was refused"
    echo "kernel log meanwhile:"
    dmesg_since "$k0" | prefixed '  k '
    unhold "$HOLDER"
    if [ -e "$(nv_record)" ] || [ "$(drv $NV)" != nvidia ]; then
        nv_recover "after the holder let go"
    fi
    pass
}

# A process put into a systemd service's cgroup, as systemd-run --unit=UNIT would: this guest
# runs no systemd, so the cgroup is made by hand on a private cgroup2 mount; the kernel then
# shows `0::/system.slice/UNIT` in /proc/PID/cgroup exactly as on a systemd host.
E2E_CGROUP=/run/e2e-cgroup
in_service_cgroup() { # PID UNIT
    mkdir -p "$E2E_CGROUP"
    mountpoint -q "$E2E_CGROUP" || mount -t cgroup2 none "$E2E_CGROUP" || fail "cannot mount cgroup2"
    mkdir -p "$E2E_CGROUP/system.slice/$2"
    echo "$1" >"$E2E_CGROUP/system.slice/$2/cgroup.procs" || fail "cannot move pid $1 into $2"
    grep -qx "0::/system.slice/$2" "/proc/$1/cgroup" || fail "pid $1's cgroup is $(oneline "$(cat "/proc/$1/cgroup")")"
    echo "pid $1 runs in $(cat "/proc/$1/cgroup")"
}
leave_service_cgroups() { # after its processes are gone
    rmdir "$E2E_CGROUP"/system.slice/*.service "$E2E_CGROUP/system.slice" 2>/dev/null
    umount "$E2E_CGROUP" 2>/dev/null
    rmdir "$E2E_CGROUP" 2>/dev/null || :
}

# (b) nvidia-persistenced holds /dev/nvidia0 (it keeps every GPU initialised): refused, named,
# with the systemd unit it runs in to stop (issue 26: a killed service comes back).
sc_standin_persistenced() {
    standin_up
    hold "$NV_NODE" nvidia-persistenced
    in_service_cgroup "$HOLDER" e2e-holder.service
    vstart_refused e2e-nv 60
    grep -qw "$HOLDER" <<<"$ERR" || soft_fail "the error does not name the holder pid $HOLDER"
    grep -q 'nvidia-persist' <<<"$ERR" || soft_fail "the error does not name nvidia-persistenced"
    grep -qF '`systemctl stop e2e-holder.service`' <<<"$ERR" ||
        soft_fail "the fix does not say \`systemctl stop e2e-holder.service\`"
    nv_expect "after the refusal" nvidia
    [ ! -e "$(nv_record)" ] || soft_fail "a record of e2e-nv is left after the refusal"
    unhold "$HOLDER"
    leave_service_cgroups
    pass
}

# (c) /dev/nvidiactl and /dev/nvidia-modeset are every NVIDIA GPU's: holding them pins no GPU,
# the start goes on, and the stand-in's remove does not wait for them.
sc_standin_shared_nodes() {
    local ctl modeset
    standin_up
    hold /dev/nvidiactl
    ctl=$HOLDER
    hold /dev/nvidia-modeset
    modeset=$HOLDER
    vstart e2e-nv
    nv_expect running vfio-pci
    [ -e "/proc/$ctl" ] && [ -e "/proc/$modeset" ] || fail "a holder of the shared nodes is gone"
    vdestroy e2e-nv
    local t0
    t0=$(now_ms)
    while [ "$(drv $NV)" != nvidia ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do sleep 0.1; done
    nv_expect "after destroy" nvidia
    [ -z "$(ovr $NV)" ] || fail "$NV's driver_override is '$(ovr $NV)' after destroy"
    [ ! -e "$(nv_record)" ] || fail "the record of e2e-nv is left after destroy"
    unhold "$ctl"
    unhold "$modeset"
    pass
}

# (e) A holder that appears after the check: it opens /dev/nvidia0 the moment the hook writes its
# record (after every check, before the first move), so the stand-in's remove finds it and waits,
# as nv-pci.c does. The unbind's deadline must hold: the start fails cleanly within it, naming
# the device and the unbind, and libvirt answers meanwhile.
sc_standin_remove_race() {
    local rec t0 el k0 lurker mark lines prep
    standin_up
    rec=$(nv_record)
    rm -f "$rec" /tmp/e2e.lurker
    # builtins only while it waits: an exec costs 0.1-0.3 s here
    (
        f=/tmp/.e2e-lurk.$BASHPID
        mkfifo "$f" && exec {w}<>"$f" && rm -f "$f"
        until [ -e "$rec" ]; do read -r -t 0.002 -u "$w" _; done
        exec 3<"$NV_NODE"
        echo "opened $NV_NODE at $EPOCHREALTIME" >/tmp/e2e.lurker
        exec sleep 600
    ) &
    lurker=$!
    echo "$lurker" >>"$STANDIN_PIDS"
    k0=$(dmesg_mark) mark=$(log_mark)
    t0=$(now_ms)
    vstart_refused e2e-nv 90
    el=$(since "$t0")
    echo "lurker (pid $lurker): $(cat /tmp/e2e.lurker 2>/dev/null || echo 'never opened')"
    # libvirt runs release after the failed start, before `virsh start` returns: its writes to the
    # device whose unbind is stuck each wait for the write deadline too
    lines=$(hook_log_since "$mark")
    echo "the hook's log, prepare and release (its stderr, from libvirt's debug log):"
    prefixed '  | ' <<<"$lines"
    prep=$(sed -n 's/.*prepare failed: [0-9]* device(s) in \([0-9]*\) ms.*/\1/p' <<<"$lines$ERR" | head -n 1)
    echo "the prepare gave up after ${prep:-?} ms; virsh start returned after $el s"
    echo "kernel log meanwhile:"
    dmesg_since "$k0" | prefixed '  k '
    dmesg_since "$k0" | grep -q "Attempting to remove device $NV with non-zero usage count" ||
        fail "the stand-in's remove never waited (the lurker lost the race or the remove does not wait): the test proved nothing"
    grep -qF "$NV" <<<"$ERR" || soft_fail "the error does not name $NV"
    grep -qi unbind <<<"$ERR" || soft_fail "the error does not say 'unbind'"
    [ -n "$prep" ] && [ "$prep" -lt 10000 ] || soft_fail "the prepare did not give up within 10 s (write deadline 5 s): ${prep:-no 'prepare failed' line}"
    t0=$(now_ms)
    timeout 10 virsh list >/dev/null 2>&1 || soft_fail "virsh list did not answer within 10 s (one virsh call costs 1-4 s here)"
    echo "virsh list answered in $(since "$t0") s"
    echo "the record now: $(oneline "$(cat "$rec" 2>&1)")"
    unhold "$lurker"
    nv_recover "after the lurker let go"
    pass
}

# (d) The stand-in's probe fails at give-back (its firmware "went missing" while the VM ran): the
# release reports the device, the kernel's firmware line and the fix; the record stays and
# `status` shows it; once the firmware is back (the parameter cleared) `recover` brings it home.
sc_standin_probe_fails() {
    local mark k0 lines out rc=0 rec
    standin_up
    rec=$(nv_record)
    vstart e2e-nv
    nv_expect running vfio-pci
    echo Y >"$NV_PARAMS/pmu_firmware_missing"
    mark=$(log_mark) k0=$(dmesg_mark)
    vdestroy e2e-nv
    sleep 2
    echo "after destroy: $NV on $(drv $NV), driver_override '$(ovr $NV)'"
    echo "kernel log:"
    dmesg_since "$k0" | prefixed '  k '
    dmesg_since "$k0" | grep -q "nvidia $NV: pmu: firmware unavailable" ||
        soft_fail "the stand-in's probe did not log 'nvidia $NV: pmu: firmware unavailable'"
    lines=$(hook_log_since "$mark")
    echo "the hook's log (its stderr, from libvirt's debug log):"
    prefixed '  | ' <<<"$lines"
    grep -F "$NV" <<<"$lines" | grep -qi 'firmware unavailable' ||
        soft_fail "the release does not report $NV with the firmware line"
    grep -qi 'recover\|firmware package\|install' <<<"$lines" || soft_fail "the release names no fix"
    [ -e "$rec" ] || soft_fail "the record of e2e-nv is gone though $NV is not home"
    echo "record: $(oneline "$(cat "$rec" 2>&1)")"
    out=$(timeout 30 vfio-hook status 2>&1) || rc=$?
    echo "vfio-hook status: exit $rc"
    prefixed '  | ' <<<"$out"
    grep -F "$NV" <<<"$out" | grep -qi -e record -e 'not home' -e stranded -e 'e2e-nv' ||
        grep -q 'e2e-nv' <<<"$out" || soft_fail "status does not show $NV's record"
    echo N >"$NV_PARAMS/pmu_firmware_missing"
    nv_recover "firmware back"
    pass
}

# ---------------------------------------------------------------- status sees the chain (issue 24)
# `status` as root names the hook libvirt runs and the daemon that answers; without the hook it is
# not ready and says to run install.sh; as an ordinary user (uid 1000) it says first what it could
# not see and never "ready", and a command that changes the host says "needs root" in one line.
sc_status_chain() {
    local out rc t0 user=(setpriv --reuid=1000 --regid=1000 --clear-groups)
    expect_unchanged before
    harness_hook_in_place || fail "the harness's hook is not in place: $(ls -l /etc/libvirt/hooks/qemu 2>&1)"
    rc=0
    t0=$(now_ms)
    out=$(timeout 30 vfio-hook status 2>&1) || rc=$?
    echo "vfio-hook status as root: exit $rc ($(since "$t0") s)"
    grep -e '^hook:' -e '^libvirt:' -e '^last ' -e '^not ready' -e '^ready' -e '^  [a-z]' <<<"$out" | prefixed '  | '
    grep -qF "hook:       /etc/libvirt/hooks/qemu -> this vfio-hook " <<<"$out" ||
        soft_fail "status does not report the hook installed: $(oneline "$(grep '^hook:' <<<"$out")")"
    grep -qE '^libvirt:    (libvirtd|virtqemud) answers, [0-9]+ VM\(s\) defined$' <<<"$out" ||
        soft_fail "status does not report libvirt reachable: $(oneline "$(grep '^libvirt:' <<<"$out")")"

    rc=0
    t0=$(now_ms)
    out=$(timeout 30 "${user[@]}" vfio-hook status 2>&1) || rc=$?
    echo "vfio-hook status as uid 1000: exit $rc ($(since "$t0") s)"
    head -n 1 <<<"$out" | prefixed '  | '
    [ "$rc" = 1 ] || soft_fail "status as uid 1000 exited $rc, expected 1 (a partial view is never ready)"
    head -n 1 <<<"$out" | grep -q '^partial view, needs root: could not see .*; run it with sudo, or as root$' ||
        soft_fail "status as uid 1000 does not say first what it could not see: $(oneline "$(head -n 1 <<<"$out")")"
    ! grep -qx 'ready' <<<"$out" || soft_fail "status as uid 1000 says ready"
    rc=0
    out=$(timeout 30 "${user[@]}" vfio-hook bind "$GPU" 2>&1) || rc=$?
    echo "vfio-hook bind as uid 1000: exit $rc: $out"
    if [ "$rc" != 1 ] || [ "$out" != "vfio-hook bind: needs root (run it with sudo, or as root)" ]; then
        soft_fail "bind as uid 1000 does not say it needs root: exit $rc: $(oneline "$out")"
    fi
    expect_unchanged "after bind as uid 1000"

    rm -f /etc/libvirt/hooks/qemu
    rc=0
    t0=$(now_ms)
    out=$(timeout 30 vfio-hook status 2>&1) || rc=$?
    harness_hook  # back before any verdict: the scenarios after this one need it
    echo "vfio-hook status without the hook: exit $rc ($(since "$t0") s)"
    grep -e '^hook:' -e 'libvirt runs no vfio-hook' <<<"$out" | prefixed '  | '
    [ "$rc" = 1 ] || soft_fail "status without the hook exited $rc, expected 1 (not ready)"
    grep -qx "hook:       not installed" <<<"$out" || soft_fail "status does not say the hook is missing"
    grep -qF "libvirt runs no vfio-hook: neither /etc/libvirt/hooks/qemu nor /etc/libvirt/hooks/qemu.d/vfio-hook is one; run install.sh as root" <<<"$out" ||
        soft_fail "status does not give the missing hook's fix"
    pass
}

# ---------------------------------------------------------------- guest setup and main loop
setup_fail() { SETUP_ERROR=$*; return 1; }

setup() {
    local g d out i t0
    echo "# kernel $(uname -r), Debian $(cat /etc/debian_version), $(nproc) cpus, up $(cut -d' ' -f1 /proc/uptime) s"
    for d in $VGA $GPU $AUD $RP $PB_BRIDGE $PB_AUD $PB_NIC; do
        [ -e "$SYS/$d" ] || setup_fail "no PCI device $d" || return
        echo "# $d class $(cat "$SYS/$d/class") driver $(drv "$d") group $(group_of "$d")"
    done
    [ "$(cat $SYS/$VGA/boot_vga 2>/dev/null)" = 1 ] || setup_fail "$VGA is not boot_vga" || return
    if [ -e "$FWFB_MODE" ]; then
        [ "$(state)" = "$VGA=none ${HOME_STATE#* }" ] || setup_fail "unexpected drivers at boot: $(state)" || return
        echo "# $VGA kept driverless (UEFI boot, for single-gpu-firmware-fb): $(fwfb_facts)"
    else
        is_home || setup_fail "unexpected drivers at boot: $(state), $(overrides)" || return
    fi
    echo "# firmware: $([ -d /sys/firmware/efi ] && echo "UEFI ($(cat /sys/firmware/efi/fw_platform_size 2>/dev/null)-bit)" || echo BIOS)"
    g=$(group_of $GPU)
    [ -n "$g" ] || setup_fail "no IOMMU groups (is the IOMMU on?)" || return
    [ "$g" = "$(group_of $AUD)" ] || setup_fail "$GPU and $AUD are not in one IOMMU group" || return
    [ "$g" != "$(group_of $VGA)" ] || setup_fail "$VGA shares the GPU's group" || return
    echo "# group $(group_members "$g")"
    g=$(group_of $PB_AUD)
    [ -n "$g" ] && [ "$g" = "$(group_of $PB_NIC)" ] ||
        setup_fail "$PB_AUD and $PB_NIC (behind the PCI bridge) are not in one IOMMU group" || return
    [ "$g" != "$(group_of $GPU)" ] || setup_fail "$PB_AUD shares the GPU's group" || return
    echo "# group $(group_members "$g")"
    echo "# GPU card: $(drm_card $GPU), boot VGA card: $(drm_card $VGA)"
    echo "# console: $(console_facts); kernel $(grep -o 'fbcon=[^ ]*' /proc/cmdline)"
    local vt
    [ -e "$FWFB_MODE" ] || { vt=$(fbcon_vtcon) && echo "$vt $(fb_device fb0) $(fb_device fb1)" >"$CONSOLE_FOUND"; }

    [ -x "$E2E/vfio-hook" ] || setup_fail "no hook binary in the test share" || return
    # Symlinks, not copies: copying a 37 MB static binary costs seconds under TCG.
    rm -rf /etc/libvirt/hooks
    harness_hook
    echo "# hook: ${E2E_HOOK_SOURCE:-?} (as $E2E/vfio-hook); /etc/libvirt/hooks/qemu and /usr/local/sbin/vfio-hook link to it"

    cat >>/etc/libvirt/qemu.conf <<'EOF'
# vfio-hook e2e guest: no systemd, no cgroups, no namespaces
user = "root"
group = "root"
cgroup_controllers = [ ]
namespaces = [ ]
EOF
    # Nothing from the underlying root: no domains, no autostarted networks.
    rm -f /etc/libvirt/qemu/*.xml /etc/libvirt/qemu/autostart/* /etc/libvirt/qemu/networks/autostart/*
    rm -rf /var/lib/libvirt/qemu/* /var/cache/libvirt/qemu/*
    mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/run/libvirt

    echo "# up $(cut -d' ' -f1 /proc/uptime) s: starting virtlogd and libvirtd"
    t0=$(now_ms)
    # libvirt's QEMU capabilities from an earlier run (libvirt re-probes if they are stale)
    mkdir -p /var/cache/libvirt/qemu/capabilities
    cp "$E2E"/libvirt-caps/*.xml /var/cache/libvirt/qemu/capabilities/ 2>/dev/null &&
        echo "# reusing libvirt's QEMU capabilities cache"
    virtlogd -d || setup_fail "virtlogd -d failed" || return
    start_libvirtd || setup_fail "libvirtd -d failed" || return
    i=0
    until timeout 10 virsh list >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 60 ] || setup_fail "libvirtd does not answer" || return
        sleep 0.5
    done
    out=$(virsh version 2>&1 | grep -i -e library -e hypervisor | tr '\n' ';')
    echo "# $out"
    echo "# libvirtd answered after $(since "$t0") s"
    define_all || setup_fail "cannot define the test domains" || return
    local n cmds=
    for n in $DOMAIN_NAMES; do
        cmds+="domuuid $n; "
    done
    # shellcheck disable=SC2086 # one name per line
    paste -d' ' <(printf '%s\n' $DOMAIN_NAMES) <(virsh "$cmds" | awk 'NF') >/tmp/e2e.uuids
    echo "# libvirtd ready after $(since "$t0") s"
    if [ -d /e2e-out ]; then
        mkdir -p /e2e-out/libvirt-caps
        cp /var/cache/libvirt/qemu/capabilities/*.xml /e2e-out/libvirt-caps/ 2>/dev/null
    fi
}

# The command log only when a scenario reads it (the single-GPU ones): the others, and bench/'s
# guest script, get libvirtd exactly as before.
start_libvirtd() {
    if [ -e "$COMMAND_LOG_WANTED" ]; then
        LIBVIRT_LOG_OUTPUTS="3:file:$LIBVIRTD_LOG 1:file:$COMMAND_LOG" LIBVIRT_LOG_FILTERS="1:util.command" \
            libvirtd -d
    else
        LIBVIRT_LOG_OUTPUTS="3:file:$LIBVIRTD_LOG" libvirtd -d
    fi
}

restart_libvirtd() {
    local p
    p=$(cat /run/libvirtd.pid 2>/dev/null) && kill -9 "$p" 2>/dev/null
    sleep 1
    start_libvirtd
    sleep 2
}

# Between scenarios: no domains, devices home, no records; whatever the scenario left.
reset_all() {
    local d running p
    # the single-GPU scenarios' display-manager stand-ins (one ignores SIGTERM) and hook.d
    if [ -s "$DM_PIDS" ]; then
        while read -r p; do kill -9 "$p" 2>/dev/null && echo "# reset: killed stand-in $p"; done <"$DM_PIDS"
        rm -f "$DM_PIDS"
    fi
    rm -rf "$HOOKD/vm"
    # the stand-in NVIDIA driver's scenarios: their holders, its firmware, $NV on it
    if [ -s "$STANDIN_PIDS" ]; then
        while read -r p; do kill -9 "$p" 2>/dev/null && echo "# reset: killed stand-in holder $p"; done <"$STANDIN_PIDS"
        rm -f "$STANDIN_PIDS"
        sleep 0.5
    fi
    [ ! -d "$NV_PARAMS" ] || echo N >"$NV_PARAMS/pmu_firmware_missing"
    if ! running=$(timeout 30 virsh list --name 2>/dev/null); then
        echo "# reset: libvirtd does not answer; restarting it"
        restart_libvirtd
        running=$(timeout 30 virsh list --name 2>/dev/null)
    fi
    for d in $running; do
        echo "# reset: destroying $d"
        timeout 60 virsh destroy "$d" >/dev/null 2>&1
    done
    [ ! -e "$FWFB_MODE" ] || vga_to_bochs
    if ! is_home; then
        echo "# reset: not home: $(state), $(overrides); forcing it with sysfs writes"
        for d in $GPU $AUD $VGA $PB_AUD $PB_NIC; do
            [ -z "$(ovr "$d")" ] || bounded_write "" "$SYS/$d/driver_override" 5 | sed 's/^/# reset: /'
        done
        for d in $VGA $GPU $AUD $PB_AUD $PB_NIC; do
            case $(drv "$d") in
                bochs-drm | snd_hda_intel | e1000) continue ;;
                none) ;;
                *) bounded_write "$d" "$SYS/$d/driver/unbind" 10 | sed 's/^/# reset: /' ;;
            esac
            bounded_write "$d" /sys/bus/pci/drivers_probe 10 | sed 's/^/# reset: /'
        done
        echo "# reset: now $(state), $(overrides)"
    fi
    # fbcon, once unbound, comes back only when a framebuffer registers: bochs-drm binding 00:02.0
    if ! console_as_found; then
        echo "# reset: console not as found [$(cat "$CONSOLE_FOUND")]: $(console_facts); binding bochs-drm to $VGA again"
        if [ "$(drv $VGA)" = bochs-drm ]; then
            bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/unbind 10 | sed 's/^/# reset: /'
        fi
        bounded_write "$VGA" /sys/bus/pci/drivers/bochs-drm/bind 10 | sed 's/^/# reset: /'
        sleep 1
        echo "# reset: console now: $(console_facts)"
    fi
    if [ -d "$NV_PARAMS" ] && [ "$(drv $NV)" != nvidia ]; then
        echo "# reset: $NV on $(drv $NV); putting it back on the stand-in"
        standin_home | sed 's/^/# reset: /'
    fi
    if [ -n "$(records)" ]; then
        echo "# reset: removing records: $(records | tr '\n' ' ')"
        find "$STATE_DIR/records" -mindepth 1 -delete 2>/dev/null
    fi
    # what install-and-hook-d may have left: its hook.d scripts, another hook than the harness's
    if [ -e "$HOOKD" ]; then
        echo "# reset: removing $HOOKD"
        rm -rf "$HOOKD"
    fi
    # what install-beside-dispatcher may have left: the dispatcher's qemu.d, a "packaged" vfio-hook
    if [ -e /etc/libvirt/hooks/qemu.d ] || [ -e "$PACKAGED" ]; then
        echo "# reset: removing /etc/libvirt/hooks/qemu.d and $PACKAGED"
        rm -rf /etc/libvirt/hooks/qemu.d "$PACKAGED"
    fi
    rm -rf /usr/local/lib/e2e-hookd /home/e2e-alice
    udevd_stop
    # what the deb-* scenarios may have left: the package (whatever its records say)
    if dpkg-query -W vfio-hook >/dev/null 2>&1; then
        echo "# reset: purging the vfio-hook package"
        VFIO_HOOK_REMOVE_ANYWAY=yes DEBIAN_FRONTEND=noninteractive timeout 120 dpkg -P vfio-hook 2>&1 | sed 's/^/# reset: /'
        rm -f /etc/libvirt/hooks/qemu
    fi
    if ! harness_hook_in_place; then
        echo "# reset: putting the harness's hook back and reloading libvirtd"
        harness_hook
        reload_libvirtd || echo "# reset: cannot send SIGHUP to libvirtd"
    fi
}

diagnostics() {
    local f
    echo "# -- processes"
    ps -eo pid,ppid,stat,etimes,args 2>/dev/null | grep -v -e '\[.*\]$' -e ' ps -eo' | cut -c1-200 | sed 's/^/#   /'
    echo "# -- /run/vfio-hook: $(find "$STATE_DIR" -mindepth 1 2>/dev/null | tr '\n' ' ')"
    for f in /var/log/libvirt/qemu/*.log; do
        [ -s "$f" ] || continue
        echo "# -- $f (last 5 lines)"
        tail -n 5 "$f" | cut -c1-300 | sed 's/^/#   /'
    done
    echo "# -- libvirtd log (last 15 lines)"
    tail -n 15 "$LIBVIRTD_LOG" 2>/dev/null | sed 's/^/#   /'
    echo "# -- kernel log (last 15 lines)"
    dmesg 2>/dev/null | tail -n 15 | sed 's/^/#   /'
}

scenario_limit() { awk -v n="$1" '$1 == n { print $2 }' <<<"$SCENARIOS"; }

main() {
    local t_all name limit res log rc line t0 tp
    t_all=$(now_ms)
    # shellcheck disable=SC1091 # written by the host side
    [ -r "$E2E/params" ] && . "$E2E/params"
    local selected=${E2E_ONLY:-$(awk 'NF { print $1 }' <<<"$SCENARIOS")} n
    # canonical order, whatever order --only named them in
    selected=$(for n in $(awk 'NF { print $1 }' <<<"$SCENARIOS"); do
        tr ' ' '\n' <<<"$selected" | grep -qx -- "$n" && echo "$n"
    done)
    case " $(tr '\n' ' ' <<<"$selected")" in *" single-gpu"* | *" standin-"* | *" shutoff-reason"* | *" power-guard"* | *" readme-path"*) : >"$COMMAND_LOG_WANTED" ;; esac
    [ "$(cat "$SYS/$VGA/driver_override" 2>/dev/null)" != e2e-none ] || : >"$FWFB_MODE"
    SETUP_ERROR=
    if ! setup; then
        echo "# setup failed: $SETUP_ERROR"
        diagnostics
        for name in $selected; do echo "FAIL $name: guest setup failed: $SETUP_ERROR"; done
        echo "E2E-DONE"
        return 1
    fi
    echo "# setup took $(since "$t_all") s"
    if [ -n "${E2E_GUEST_SCRIPT:-}" ]; then
        # tests/e2e/run --guest-script: that script instead of the scenarios (bench/run uses it)
        bash "$E2E/$E2E_GUEST_SCRIPT" </dev/null 2>&1
        echo "# guest script done in $(since "$t_all") s"
        echo "E2E-DONE"
        return 0
    fi
    for name in $selected; do
        limit=$(scenario_limit "$name")
        if [ -z "$limit" ]; then
            echo "FAIL $name: no such scenario"
            continue
        fi
        echo "# ---- $name (bound $limit s)"
        res=/tmp/e2e.$name.result log=/tmp/e2e.$name.log
        rm -f "$res" "$log"
        : >"$log"
        t0=$(now_ms)
        timeout -k 5 "$limit" bash "$0" run-one "$name" "$res" >"$log" 2>&1 </dev/null &
        tp=$!
        tail -n +1 -s 0.2 -f --pid="$tp" "$log" | sed -u 's/^/#   /'
        rc=0
        wait "$tp" || rc=$?
        if [ -s "$res" ]; then
            line=$(head -n 1 "$res")
        elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            line="FAIL $name: timed out after $limit s"
        else
            line="FAIL $name: no verdict (exit status $rc)"
        fi
        echo "$line"
        echo "# $name took $(since "$t0") s"
        case $line in FAIL*) diagnostics ;; esac
        # A reset that hangs (a sysfs read stuck behind a device lock) must not hang the run.
        bash "$0" reset >/tmp/e2e.reset.log 2>&1 </dev/null &
        tp=$!
        timeout 150 tail -n +1 -s 0.2 -f --pid="$tp" /tmp/e2e.reset.log
        [ -e "/proc/$tp" ] || continue
        echo "# reset still running after its bound; carrying on"
    done
    echo "# all scenarios done in $(since "$t_all") s"
    echo "E2E-DONE"
}

run_one() { # NAME RESFILE
    NAME=$1 RES=$2
    # shellcheck disable=SC1091 # written by the host side
    [ -r "$E2E/params" ] && . "$E2E/params"
    trap 'kill $(jobs -p) 2>/dev/null' EXIT
    local fn=sc_${NAME//-/_}
    declare -F "$fn" >/dev/null || fail "no such scenario"
    "$fn"
    fail "scenario ended without a verdict"
}

case ${1:-} in
    list) awk 'NF' <<<"$SCENARIOS" ;;
    main) main ;;
    run-one) run_one "$2" "$3" ;;
    reset) reset_all ;;
    *) echo "usage: $0 list | main | run-one NAME RESULTFILE" >&2; exit 2 ;;
esac
