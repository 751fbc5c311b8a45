#!/bin/bash
# bench/script_output.sh: what a hook.d script's output costs the hook, in time and memory.
#
#   bench/script_output.sh [--hook PATH] [--mib N] [--rounds R]
#
# A script in a fake root's hook.d/all/started/begin writes N MiB (default 64) with `cat`: once
# as 80-byte lines, once without a newline at all. The built hook runs it as libvirt would
# (`vfio-hook --root FAKE hook bench started begin -`, the domain XML on stdin, its log on
# stderr into a file) under /usr/bin/time: wall time and peak RSS, median of R rounds (default
# 3), the cases alternated. The floor is the same script run alone, its output to /dev/null.
# Before the fix, output without a newline cost quadratic time (issue 23: 32 MiB 5.6 s and
# 168 MB, 64 MiB 42 s); now both cases should cost what their bytes cost. A benchmark, not a
# test: it asserts no time and exits 0 when it measured. Needs no root.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
HOOK=$REPO/build/vfio-hook
MIB=64
ROUNDS=3

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 2; }
need_cmd() { command -v "$1" >/dev/null || die "needs $1 (apt-get install $2)"; }

measure() {  # measure NAME COMMAND...: appends "NAME seconds kilobytes" to $WORK/samples
    local name=$1
    shift
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" <"$WORK/domain.xml" >/dev/null 2>"$WORK/log.$name" || true
    echo "$name $(cat "$WORK/time")" >>"$WORK/samples"
}

make_case() {  # make_case NAME DATA: a fake root whose one started/begin script cats DATA
    local root=$WORK/$1 dir
    dir=$root/etc/vfio-hook/hook.d/all/started/begin
    mkdir -p "$dir"
    printf '#!/bin/sh\nexec cat %s\n' "$2" >"$dir/10-output"
    chmod 0755 "$dir/10-output"
    chmod 0755 "$root" "$root/etc" "$root/etc/vfio-hook" "$root/etc/vfio-hook/hook.d"
}

report() {
    python3 - "$WORK/samples" "$MIB" <<'EOF'
import statistics, sys
samples = {}
for line in open(sys.argv[1]):
    name, seconds, kb = line.split()
    samples.setdefault(name, []).append((float(seconds), int(kb)))
def median(name, i): return statistics.median(s[i] for s in samples[name])
print(f"Script output: {sys.argv[2]} MiB through the hook (median of {len(samples['lines'])} rounds)")
print(f"  {'case':<44}{'wall':>9}{'peak RSS':>12}")
rows = [("floor: the script alone, output to /dev/null", "floor"),
        ("hook, 80-byte lines", "lines"), ("hook, no newline at all", "no-newline")]
for label, name in rows:
    print(f"  {label:<44}{median(name, 0):>8.2f}s{median(name, 1) / 1024:>9.1f} MB")
ratio = median("no-newline", 0) / max(median("lines", 0), 0.01)
print(f"  no newline / lines: {ratio:.2f}x (target: <= 2x); peak RSS no newline: "
      f"{median('no-newline', 1) / 1024:.1f} MB")
EOF
}

main() {
    while [ $# -gt 0 ]; do
        case $1 in
            --hook) HOOK=$2; shift 2 ;;
            --mib) MIB=$2; shift 2 ;;
            --rounds) ROUNDS=$2; shift 2 ;;
            -h | --help) sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) die "unknown argument: $1" ;;
        esac
    done
    need_cmd python3 python3
    [ -x /usr/bin/time ] || die "needs /usr/bin/time (apt-get install time)"
    [ -x "$HOOK" ] || die "no hook at $HOOK: build it (meson setup build && meson compile -C build) or give --hook"
    WORK=$(mktemp -d /tmp/vfio-hook-bench-output.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
    sed 's/<name>[^<]*</<name>bench</' "$HERE/data/virt-manager-win11.xml" >"$WORK/domain.xml"
    python3 - "$WORK" "$MIB" <<'EOF'
import sys
work, size = sys.argv[1], int(sys.argv[2]) << 20
line = b"x" * 79 + b"\n"
with open(f"{work}/lines.data", "wb") as out:
    out.write(line * (size // len(line)) + b"x" * (size % len(line)))
with open(f"{work}/no-newline.data", "wb") as out:
    out.write(b"x" * size)
EOF
    make_case lines "$WORK/lines.data"
    make_case no-newline "$WORK/no-newline.data"
    : >"$WORK/samples"
    for ((round = 0; round < ROUNDS; round++)); do
        local order=(floor lines no-newline) name
        ((round % 2 == 0)) || order=(no-newline lines floor)
        for name in "${order[@]}"; do
            case $name in
                floor) measure floor sh -c "cat '$WORK/lines.data' >/dev/null" ;;
                *) measure "$name" "$HOOK" --root "$WORK/$name" hook bench started begin - ;;
            esac
        done
    done
    report
    say "log of the last no-newline run: $(wc -l <"$WORK/log.no-newline") line(s), $(wc -c <"$WORK/log.no-newline") bytes;" \
        "of the last lines run: $(wc -l <"$WORK/log.lines") line(s)"
    grep -q 'line cut to' "$WORK/log.no-newline" || say "the no-newline run's log has no cut note: $(head -c 300 "$WORK/log.no-newline")"
}

main "$@" || exit 1
