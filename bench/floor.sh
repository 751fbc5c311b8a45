#!/bin/bash
# The floor of row 4: the bare sysfs writes that hand the e2e guest's GPU + HDMI-audio pair to
# vfio-pci and back, the same writes vfio-hook makes, with nothing around them (no checks, no
# record, no lock, no deadline). bash builtins only: no process besides this one.
#   floor.sh prepare | release      (or source it and call floor_prepare / floor_release)
#   floor.sh noop                   (only what starting the script costs)
SYS=/sys/bus/pci/devices
FLOOR_GPU=0000:01:00.0 FLOOR_GPU_DRIVER=bochs-drm
FLOOR_AUD=0000:01:00.1 FLOOR_AUD_DRIVER=snd_hda_intel

floor_write() { printf '%s\n' "$2" >"$1"; }

# The audio function first, as vfio-hook does: it is a runtime-PM consumer of the GPU.
floor_prepare() {
    local d drv
    for d in $FLOOR_AUD:$FLOOR_AUD_DRIVER $FLOOR_GPU:$FLOOR_GPU_DRIVER; do
        drv=${d##*:} d=${d%:*}
        floor_write "$SYS/$d/driver_override" vfio-pci || return
        floor_write "/sys/bus/pci/drivers/$drv/unbind" "$d" || return
        floor_write /sys/bus/pci/drivers_probe "$d" || return
    done
    [ -e "/sys/bus/pci/drivers/vfio-pci/$FLOOR_GPU" ] && [ -e "/sys/bus/pci/drivers/vfio-pci/$FLOOR_AUD" ]
}

# The GPU first, the audio after it; each bound back by name to the driver it came from.
floor_release() {
    local d drv
    for d in $FLOOR_GPU:$FLOOR_GPU_DRIVER $FLOOR_AUD:$FLOOR_AUD_DRIVER; do
        drv=${d##*:} d=${d%:*}
        floor_write "$SYS/$d/driver_override" "" || return
        floor_write /sys/bus/pci/drivers/vfio-pci/unbind "$d" || return
        floor_write "/sys/bus/pci/drivers/$drv/bind" "$d" || return
    done
    [ -e "/sys/bus/pci/drivers/$FLOOR_GPU_DRIVER/$FLOOR_GPU" ] && [ -e "/sys/bus/pci/drivers/$FLOOR_AUD_DRIVER/$FLOOR_AUD" ]
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        prepare) floor_prepare ;;
        release) floor_release ;;
        noop) ;;
        *) echo "usage: $0 prepare|release|noop" >&2; exit 2 ;;
    esac
fi
