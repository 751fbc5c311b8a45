#!/bin/bash
# Rows 4 and 5 of bench/run, inside the real-kernel e2e guest. bench/run stages this file as
# bench-guest.sh, with floor.sh, domains/ and tools/, and boots the guest with
# `tests/e2e/run --guest-script …/bench-guest.sh`: tests/e2e/guest.sh has set up libvirtd with
# vfio-hook installed as /etc/libvirt/hooks/qemu, then runs this instead of its scenarios.
#
# Output (serial console, read by bench/run): one line per measurement,
#   BENCH<TAB>row<TAB>group<TAB>case<TAB>role<TAB>unit<TAB>v1,v2,…<TAB>key=value;…
# "BENCHMETA key value" facts, "#" comments, and "PASS bench-guest" or "FAIL bench-guest: why".
set -uo pipefail

X=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROUNDS=10 CYCLES=10
# shellcheck disable=SC1091 # written by bench/run: ROUNDS, CYCLES
[ -r "$X/bench.params" ] && . "$X/bench.params"
# shellcheck source=floor.sh source-path=SCRIPTDIR
. "$X/floor.sh"
HOOK=/usr/local/sbin/vfio-hook
GPU=0000:01:00.0 AUD=0000:01:00.1
DRV=/sys/bus/pci/drivers
XML=$X/domains/bench-hook.xml
STRACE=("$X/tools/strace/ld-linux-x86-64.so.2" --library-path "$X/tools/strace" "$X/tools/strace/strace")
export PATH=$X/tools:$PATH   # driverctl (a copy of the host's), runner, empty
ERR=/tmp/bench.err

fail() {
    local d
    echo "FAIL bench-guest: $*"
    [ -s "$ERR" ] && sed 's/^/#   stderr: /' "$ERR" | tail -n 20
    for d in $GPU $AUD; do
        echo "#   $d: driver $(readlink "/sys/bus/pci/devices/$d/driver" 2>/dev/null || echo none)," \
            "override '$(timeout 5 cat "/sys/bus/pci/devices/$d/driver_override" 2>&1)'"
    done
    echo "#   running: $(timeout 20 virsh list --name 2>&1 | tr '\n' ' ')"
    echo "#   records: $(find /run/vfio-hook/records -mindepth 1 2>&1 | tr "\n" " ")"
    echo "#   /etc/libvirt/hooks: $(find /etc/libvirt/hooks -mindepth 1 -printf "%p -> %l " 2>&1)"
    tail -n 15 /var/log/libvirt/libvirtd.log 2>/dev/null | sed 's/^/#   libvirtd: /'
    dmesg 2>/dev/null | tail -n 10 | sed 's/^/#   kernel: /'
    exit 1
}
emit() { # ROW GROUP CASE ROLE UNIT VALUES [EXTRAS]
    printf 'BENCH\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}"
}
now_us() { echo "${EPOCHREALTIME/./}"; }

# state checks with builtins only (no fork: every exec costs 0.1-0.3 s under TCG)
on_vfio() { [ -e "$DRV/vfio-pci/$GPU" ] && [ -e "$DRV/vfio-pci/$AUD" ]; }
at_home() { [ -e "$DRV/bochs-drm/$GPU" ] && [ -e "$DRV/snd_hda_intel/$AUD" ]; }
overrides_clear() {
    local a b
    read -r a <"/sys/bus/pci/devices/$GPU/driver_override" || return 1
    read -r b <"/sys/bus/pci/devices/$AUD/driver_override" || return 1
    [ "$a" = "(null)" ] && [ "$b" = "(null)" ]
}
wait_home() { # SECONDS
    local until=$(($(now_us) + $1 * 1000000))
    until at_home; do
        [ "$(now_us)" -lt "$until" ] || return 1
        read -r -t 0.02 -u "$SLEEP_FD" || true   # a sleep without a fork
    done
}
mkfifo /tmp/bench.sleep
exec {SLEEP_FD}<>/tmp/bench.sleep
records() { local r=(/run/vfio-hook/records/*); [ -e "${r[0]}" ]; }

# ---------------------------------------------------------------- row 4: one hand-over each way
hook_prepare() { "$HOOK" hook bench-hook prepare begin - <"$XML" 2>>"$ERR"; }
hook_release() { "$HOOK" hook bench-hook release end - <"$XML" 2>>"$ERR"; }
script_prepare() { bash "$X/floor.sh" prepare 2>>"$ERR"; }
script_release() { bash "$X/floor.sh" release 2>>"$ERR"; }
driverctl_prepare() {
    driverctl --nosave set-override "$AUD" vfio-pci 2>>"$ERR" &&
        driverctl --nosave set-override "$GPU" vfio-pci 2>>"$ERR"
}
driverctl_release() {
    driverctl --nosave unset-override "$GPU" 2>>"$ERR" &&
        driverctl --nosave unset-override "$AUD" 2>>"$ERR"
}
inproc_prepare() { floor_prepare 2>>"$ERR"; }
inproc_release() { floor_release 2>>"$ERR"; }

declare -A PREP REL BOTH
handover() { # TOOL [record]: prepare, check, release, check; the times into PREP/REL/BOTH
    local t0 t1 t2 t3
    t0=$(now_us)
    "$1_prepare" || fail "$1: prepare failed"
    t1=$(now_us)
    on_vfio || fail "$1: the pair is not on vfio-pci after prepare"
    t2=$(now_us)
    "$1_release" || fail "$1: release failed"
    t3=$(now_us)
    at_home || fail "$1: the pair is not home after release"
    overrides_clear || fail "$1: driver_override not cleared after release"
    [ "${2:-}" = record ] || return 0
    PREP[$1]+=${PREP[$1]:+,}$((t1 - t0))
    REL[$1]+=${REL[$1]:+,}$((t3 - t2))
    BOTH[$1]+=${BOTH[$1]:+,}$((t1 - t0 + t3 - t2))
}

# One traced run of a phase: strace -f into one file (lines start with the pid); -y names the
# file behind each fd, so the writes to sysfs can be told from the rest.
traced() { # OUTFILE [<STDIN] COMMAND...
    local out=$1
    shift
    "${STRACE[@]}" -f -qq -y -o "$out" "$@" 2>>"$ERR"
}
count_trace() { # FILE... -> "syscalls sysfs_writes processes execs"
    awk '
        /^[0-9]+ +[a-z_0-9]+\(/ { calls++ }
        /^[0-9]+ +write\([0-9]+<\/sys\// { sysfs++ }
        /^[0-9]+ +execve\(/ { execs++ }
        /^[0-9]+ / { pids[FILENAME ":" $1] = 1 }
        END { n = 0; for (p in pids) n++; printf "%d %d %d %d\n", calls, sysfs, n, execs }' "$@"
}
trace_phase() { # TOOL PHASE
    local calls sysfs procs execs
    rm -f /tmp/trace.*
    case $1:$2 in
        hook:prepare) traced /tmp/trace.1 "$HOOK" hook bench-hook prepare begin - <"$XML" ;;
        hook:release) traced /tmp/trace.1 "$HOOK" hook bench-hook release end - <"$XML" ;;
        script:*) traced /tmp/trace.1 bash "$X/floor.sh" "$2" ;;
        driverctl:prepare)
            traced /tmp/trace.1 bash "$X/tools/driverctl" --nosave set-override "$AUD" vfio-pci &&
                traced /tmp/trace.2 bash "$X/tools/driverctl" --nosave set-override "$GPU" vfio-pci ;;
        driverctl:release)
            traced /tmp/trace.1 bash "$X/tools/driverctl" --nosave unset-override "$GPU" &&
                traced /tmp/trace.2 bash "$X/tools/driverctl" --nosave unset-override "$AUD" ;;
    esac || fail "$1: traced $2 failed"
    read -r calls sysfs procs execs <<<"$(count_trace /tmp/trace.*)"
    emit 4 syscalls "$1 $2" info count "$calls" \
        "per_device=$((calls / 2));sysfs_writes=$sysfs;processes=$procs;execve=$execs"
}
trace_tool() { # TOOL: one traced hand-over, counted per phase
    trace_phase "$1" prepare
    on_vfio || fail "$1: not on vfio-pci after the traced prepare"
    trace_phase "$1" release
    at_home || fail "$1: not home after the traced release"
}

hook_log() { # REGEX-WITH-ONE-GROUP LABEL: the numbers (ms) the hook logged, as a row-4 info case
    local line values=
    while read -r line; do
        [[ $line =~ $1 ]] && values+=${values:+,}$((BASH_REMATCH[1] * 1000))
    done <"$ERR"
    [ -z "$values" ] || emit 4 "vfio-hook's log" "$2" info us "$values"
}

# Where the hook's time goes, by system call (wall time, all its processes): for the README.
syscall_times() { # PHASE
    "${STRACE[@]}" -f -c -w -o /tmp/strace.c "$HOOK" hook bench-hook "$1" "$([ "$1" = prepare ] && echo begin || echo end)" - \
        <"$XML" 2>>"$ERR" || fail "strace -c of the hook's $1 failed"
    head -n 14 /tmp/strace.c | sed "s/^/# strace -c -w -f vfio-hook $1: /"
}

row4() {
    local tools=(hook script driverctl inproc) r k t
    echo "# row 4: $ROUNDS rounds of prepare+release, order rotated each round"
    : >"$ERR"
    for t in "${tools[@]}"; do handover "$t"; done   # warm-up: first binds load caches
    : >"$ERR"
    for ((r = 0; r < ROUNDS; r++)); do
        for ((k = 0; k < ${#tools[@]}; k++)); do
            handover "${tools[(k + r) % ${#tools[@]}]}" record
        done
    done
    # vfio-hook's own account of the same runs (its log lines): from taking the lock to the end,
    # and each device's move
    hook_log 'prepare done: [0-9]+ device\(s\) in ([0-9]+) ms' "vfio-hook prepare, its log: lock to end"
    hook_log 'release done: [0-9]+ device\(s\) home in ([0-9]+) ms' "vfio-hook release, its log: lock to end"
    hook_log ' → vfio-pci in ([0-9]+) ms' "vfio-hook, its log: one device to vfio-pci"
    hook_log 'vfio-pci → [a-z_-]+ in ([0-9]+) ms' "vfio-hook, its log: one device home"
    emit 4 "prepare+release" "vfio-hook prepare + release" subject us "${BOTH[hook]}"
    emit 4 "prepare+release" "bare sysfs writes, script (floor)" floor us "${BOTH[script]}"
    emit 4 "prepare+release" "driverctl --nosave set/unset-override" compare us "${BOTH[driverctl]}"
    emit 4 "prepare+release" "bare sysfs writes, no exec" info us "${BOTH[inproc]}"
    emit 4 prepare "vfio-hook prepare" subject us "${PREP[hook]}"
    emit 4 prepare "bare sysfs writes, script (floor)" floor us "${PREP[script]}"
    emit 4 prepare "driverctl set-override x2" compare us "${PREP[driverctl]}"
    emit 4 prepare "bare sysfs writes, no exec" info us "${PREP[inproc]}"
    emit 4 release "vfio-hook release" subject us "${REL[hook]}"
    emit 4 release "bare sysfs writes, script (floor)" floor us "${REL[script]}"
    emit 4 release "driverctl unset-override x2" compare us "${REL[driverctl]}"
    emit 4 release "bare sysfs writes, no exec" info us "${REL[inproc]}"
    # what one exec costs here, beside the above
    runner -n 20 -w 2 :: /bin/true - /bin/true :: "static int main(){}" - "$X/tools/empty" \
        :: "bash floor.sh noop" - /bin/bash "$X/floor.sh" noop \
        :: "vfio-hook started begin (null path)" "$XML" /etc/libvirt/hooks/qemu bench-hook started begin - \
        >/tmp/runner.out 2>>"$ERR" || fail "runner failed"
    while IFS=$'\t' read -r label nonzero _ samples; do
        emit 4 exec "$label" "$([ "$label" = "static int main(){}" ] && echo floor || echo info)" us "$samples" "nonzero_exits=$nonzero"
    done </tmp/runner.out
    for t in hook script driverctl; do trace_tool "$t"; done
    syscall_times prepare
    on_vfio || fail "not on vfio-pci after the strace -c prepare"
    syscall_times release
    at_home || fail "not home after the strace -c release"
}

# ---------------------------------------------------------------- row 5: VM cycles
# The two domains alternate, A B B A A B …, so drift (other load on the host, a slow moment of
# TCG) falls on both. Before the hook's cycles the hook is installed, before libvirt's own it is
# removed: libvirt re-scans its hooks on SIGHUP (virHookCall for the daemon's reload).
# libvirt 9 remembers a device it ran unmanaged: a later managed='yes' run of the same device in
# the same daemon left it on vfio-pci at stop (measured here). `virsh nodedev-reattach` drops
# that memory (the devices are home already: it moves nothing), so it runs, untimed, before a
# managed='yes' cycle that follows a managed='no' one.
wait_libvirtd() {
    local i
    for ((i = 0; i < 120; i++)); do
        timeout 10 virsh list >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    fail "libvirtd does not answer"
}
HOOK_STATE=on
UNMANAGED_SEEN=
set_hook() { # on|off
    [ "$HOOK_STATE" = "$1" ] && return 0
    if [ "$1" = on ]; then
        ln -sf /usr/local/sbin/vfio-hook /etc/libvirt/hooks/qemu
    else
        rm -f /etc/libvirt/hooks/qemu
    fi
    kill -HUP "$(cat /run/libvirtd.pid)" || fail "cannot signal libvirtd"
    sleep 2
    wait_libvirtd
    HOOK_STATE=$1
}
before_cycle() { # DOMAIN
    local out
    if [ "$1" = bench-hook ]; then
        set_hook on
        UNMANAGED_SEEN=1
        return
    fi
    set_hook off
    if [ -n "$UNMANAGED_SEEN" ]; then
        out=$(timeout 60 virsh "nodedev-reattach pci_${GPU//[:.]/_}; nodedev-reattach pci_${AUD//[:.]/_}" 2>&1) ||
            fail "virsh nodedev-reattach: $out"
        UNMANAGED_SEEN=
    fi
}

declare -A START STOP CYCLE
cycle() { # DOMAIN [record]
    local d=$1 t0 t1 t2 t3 out
    before_cycle "$d"
    at_home || fail "$d: the pair is not home before the start"
    t0=$(now_us)
    out=$(timeout 120 virsh start "$d" 2>&1) || fail "virsh start $d: $out"
    t1=$(now_us)
    on_vfio || fail "$d is running but the pair is not on vfio-pci"
    if [ "$d" = bench-hook ]; then
        records || fail "$d is running with no vfio-hook record: did the hook run?"
    else
        ! records || fail "$d (no hook) is running and vfio-hook has a record: the hook ran"
    fi
    t2=$(now_us)
    out=$(timeout 120 virsh destroy "$d" 2>&1) || fail "virsh destroy $d: $out"
    wait_home 60 || fail "$d: the pair is not home 60 s after destroy"
    t3=$(now_us)
    overrides_clear || fail "$d: driver_override not cleared after destroy"
    [ "${2:-}" = record ] || return 0
    START[$d]+=${START[$d]:+,}$((t1 - t0))
    STOP[$d]+=${STOP[$d]:+,}$((t3 - t2))
    CYCLE[$d]+=${CYCLE[$d]:+,}$((t1 - t0 + t3 - t2))
    out=$(start_to_exec "$d")
    [ -z "$out" ] || TO_EXEC[$d]+=${TO_EXEC[$d]:+,}$out
}

# The part of a start where the two paths differ (the prepare hook runs in qemuProcessInit,
# libvirt's own detach in qemuProcessPrepareHost): from qemuProcessStart's first line to
# "Building emulator command line" in libvirtd's debug log of qemu_process. The rest of a start
# is QEMU booting under TCG, the same code for both, and most of the spread.
LIBVIRT_BENCH_LOG=/tmp/libvirtd-bench.log
restart_libvirtd_with_log() {
    local pid i
    pid=$(cat /run/libvirtd.pid 2>/dev/null) && kill "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
    [ ! -e "/proc/$pid" ] || kill -9 "$pid" 2>/dev/null
    LIBVIRT_LOG_FILTERS="1:qemu.qemu_process" \
        LIBVIRT_LOG_OUTPUTS="1:file:$LIBVIRT_BENCH_LOG 3:file:/var/log/libvirt/libvirtd.log" \
        libvirtd -d || fail "libvirtd -d failed"
    wait_libvirtd
}
declare -A TO_EXEC
start_to_exec() { # DOMAIN: ms from qemuProcessStart to the emulator's command line, last start
    awk -v d="$1" '
        function ms(t,   p) { split($2, p, /[:+]/); return (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 }
        / qemuProcessStart:/ && index($0, "name=" d " ") { begin = ms(); end = "" }
        /Building emulator command line/ && begin != "" && end == "" { end = ms() }
        END { if (begin != "" && end != "") printf "%d\n", (end - begin) * 1000 }' "$LIBVIRT_BENCH_LOG"
}

row5() {
    local i out
    echo "# row 5: $CYCLES start+destroy cycles of each domain, alternating"
    restart_libvirtd_with_log
    out=$(virsh "define $X/domains/bench-hook.xml; define $X/domains/bench-managed.xml" 2>&1) ||
        fail "cannot define the bench domains: $out"
    cycle bench-managed   # warm-up of each: the first start of a domain
    cycle bench-hook
    for ((i = 0; i < CYCLES; i++)); do
        if ((i % 2 == 0)); then
            cycle bench-hook record
            cycle bench-managed record
        else
            cycle bench-managed record
            cycle bench-hook record
        fi
        echo "# cycle $((i + 1)) of $CYCLES done"
    done
    set_hook on
    emit 5 cycle "managed='no' through vfio-hook" subject us "${CYCLE[bench-hook]}"
    emit 5 cycle "managed='yes', no hook (libvirt's own path)" floor us "${CYCLE[bench-managed]}"
    emit 5 start "managed='no' through vfio-hook: virsh start" subject us "${START[bench-hook]}"
    emit 5 start "managed='yes', no hook: virsh start" floor us "${START[bench-managed]}"
    emit 5 stop "managed='no' through vfio-hook: virsh destroy until home" subject us "${STOP[bench-hook]}"
    emit 5 stop "managed='yes', no hook: virsh destroy until home" floor us "${STOP[bench-managed]}"
    if [ -n "${TO_EXEC[bench-hook]:-}" ] && [ -n "${TO_EXEC[bench-managed]:-}" ]; then
        emit 5 "start, libvirt's log: qemuProcessStart to QEMU's command line" \
            "managed='no' through vfio-hook (its prepare)" subject us "${TO_EXEC[bench-hook]}"
        emit 5 "start, libvirt's log: qemuProcessStart to QEMU's command line" \
            "managed='yes', no hook (libvirt's detach)" floor us "${TO_EXEC[bench-managed]}"
    else
        echo "# no qemuProcessStart / command-line lines in $LIBVIRT_BENCH_LOG"
    fi
}

main() {
    local t0
    t0=$(now_us)
    echo "BENCHMETA kernel $(uname -r)"
    echo "BENCHMETA debian $(cat /etc/debian_version)"
    echo "BENCHMETA libvirt $(virsh --version 2>/dev/null)"
    echo "BENCHMETA cpus $(nproc)"
    if ! at_home || ! overrides_clear; then fail "the pair is not home at the start"; fi
    [ -x "$X/tools/driverctl" ] || fail "no driverctl in $X/tools"
    "${STRACE[@]}" -V >/dev/null 2>&1 || fail "the staged strace does not run"
    case ${BENCH_ROWS:-4 5} in *4*) row4 ;; esac
    case ${BENCH_ROWS:-4 5} in *5*) row5 ;; esac
    echo "# bench-guest took $((($(now_us) - t0) / 1000000)) s"
    echo "PASS bench-guest"
}

main
