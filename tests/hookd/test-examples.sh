#!/usr/bin/env bash
# The shipped hook.d examples, run as the hook runs them (domain XML on stdin, VFIO_HOOK_*), with
# systemctl, fuser and nproc replaced by stubs on PATH and the GPU's sysfs in a temporary tree
# (SYSFS), so nothing on this machine changes. No root.
#   tests/hookd/test-examples.sh [SOURCE_DIR]     (meson test runs it as "hook.d examples")
set -euo pipefail
source_dir=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
examples=$source_dir/hook.d
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stubs=$work/bin
mkdir -p "$stubs"
failures=0
checks=0
check() { # DESCRIPTION COMMAND...: the command must succeed
    checks=$((checks + 1))
    if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi
}

# systemctl: logs its arguments; `is-active display-manager.service` says active.
cat >"$stubs/systemctl" <<'STUB'
#!/bin/sh
echo "systemctl $*" >>"$STUB_LOG"
case "$*" in
    "show -p Id --value display-manager.service") echo gdm.service ;;
    "is-active display-manager.service") echo active ;;
    "is-active "*) echo inactive; exit 3 ;;
esac
exit 0
STUB
# fuser: the card is held while $HELD exists.
cat >"$stubs/fuser" <<'STUB'
#!/bin/sh
[ -e "$HELD" ] || exit 1
case "$1" in -v) echo "USER PID ACCESS COMMAND"; echo "$* gdm 1234 F.... gnome-shell" ;; esac
exit 0
STUB
printf '#!/bin/sh\necho 8\n' >"$stubs/nproc"
chmod +x "$stubs"/*
export STUB_LOG=$work/calls HELD=$work/held RUN_DIR=$work/run PATH=$stubs:$PATH
mkdir -p "$RUN_DIR"

# --- stop-display-manager: waits for the card, not a fixed time ----------------------------------
sysfs=$work/sys
mkdir -p "$sysfs/bus/pci/devices/0000:01:00.0/drm/card1" "$sysfs/bus/pci/devices/0000:01:00.0/drm/renderD129"
run_stop_dm() {
    SYSFS=$sysfs VFIO_HOOK_PCI_ADDRESSES="0000:01:00.0 0000:01:00.1" \
        bash "$examples/stop-display-manager" </dev/null >"$work/out" 2>&1
}
: >"$HELD"
(sleep 1.5; rm -f "$HELD") &
check "stop-display-manager waits until the display manager lets go of the card (1.5 s)" run_stop_dm
wait
check "stop-display-manager stopped display-manager.service" grep -qx "systemctl stop display-manager.service" "$STUB_LOG"
: >"$STUB_LOG"
check "start-display-manager starts what stop-display-manager stopped" \
    sh -c 'bash "$1" </dev/null >/dev/null && grep -qx "systemctl start display-manager.service" "$STUB_LOG"' sh "$examples/start-display-manager"
: >"$HELD"
held_for_good() { ! SYSFS=$sysfs VFIO_HOOK_PCI_ADDRESSES=0000:01:00.0 timeout 40 bash "$examples/stop-display-manager" \
    </dev/null >"$work/out" 2>&1 && grep -q "still held after 20 s: .*gnome-shell" "$work/out"; }
check "stop-display-manager fails naming the holder when the card stays held" held_for_good
rm -f "$HELD"

# --- isolate-cpus: the host keeps the CPUs the VM is not pinned to -------------------------------
isolate() { # XML EXPECTED-CPUS
    : >"$STUB_LOG"
    printf '%s' "$1" | bash "$examples/isolate-cpus" >"$work/out" 2>&1 &&
        grep -qx "systemctl set-property --runtime -- system.slice AllowedCPUs=$2" "$STUB_LOG"
}
check "isolate-cpus: VM on 2-3,6 and its emulator on 7 leaves 0,1,4,5" isolate \
    "<domain><cputune><vcpupin vcpu='0' cpuset='2-3'/><vcpupin vcpu='1' cpuset=\"6\"/><emulatorpin cpuset='7'/></cputune></domain>" 0,1,4,5
nothing_pinned() { : >"$STUB_LOG"; echo "<domain/>" | bash "$examples/isolate-cpus" >/dev/null 2>&1 && [ ! -s "$STUB_LOG" ]; }
check "isolate-cpus: a VM that pins nothing changes nothing" nothing_pinned

echo "hook.d examples: $checks checks, $failures failed"
((failures == 0))
