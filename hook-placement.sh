# shellcheck shell=bash
# hook-placement.sh: where vfio-hook goes among libvirt's QEMU hooks, and making libvirt's daemon
# see it. The one implementation of these rules: install.sh sources it from the source tree, and
# the Debian package installs it as /usr/share/vfio-hook/hook-placement.sh for its maintainer
# scripts (debian/postinst, debian/prerm).
#
# The rules:
#   - /etc/libvirt/hooks/qemu when it is free (or already this vfio-hook's link);
#   - else /etc/libvirt/hooks/qemu.d/vfio-hook, beside another program's hook (libvirt runs it
#     after hooks/qemu); another program's hook is never overwritten;
#   - never a second vfio-hook: when hooks/qemu or an entry of qemu.d/ is, or leads to, another
#     vfio-hook binary, nothing is placed;
#   - our link in the slot not chosen is removed (it would run vfio-hook twice);
#   - libvirt's daemon is reloaded through the init system when it runs, else told nothing.
#
# The caller sets `root` (a staging directory, or empty for the system) before sourcing, and
# defines `say MESSAGE` (one line for the user), `rerun_command` (what places the hook again: "install.sh",
# "dpkg-reconfigure vfio-hook") and `make_dirs PATH` (create PATH and its missing
# parents under $root; install.sh records each one in its manifest). An OWN argument is
# "SLOT=TARGET": a link the caller put in SLOT earlier, to TARGET (install.sh's manifest), which
# counts as this vfio-hook's own even when TARGET is not the binary being installed.

root=${root:-}
rerun_command=${rerun_command:-install.sh}  # what places the hook again, for the advice
hooks_dir=/etc/libvirt/hooks
main_hook=$hooks_dir/qemu
dropin_hook=$hooks_dir/qemu.d/vfio-hook
# The vfio-hook metadata namespace: a string every vfio-hook binary contains.
vfio_hook_marker=https://vfio-hook.org/xmlns/domain/1

exists_or_link() { [[ -e $root$1 || -L $root$1 ]]; }

# Is SLOT vfio-hook's own: a symlink to BINARY, or one of the OWN links?
is_own_link() {  # SLOT BINARY [OWN...]
    local slot=$1 binary=$2 target own
    shift 2
    [[ -L $root$slot ]] || return 1
    target=$(readlink "$root$slot")
    [[ $target == "$binary" ]] && return 0
    for own in "$@"; do
        [[ $own == "$slot=$target" ]] && return 0
    done
    return 1
}

# Where PATH leads once every symlink on it is followed, component by component, inside $root (a
# link's absolute target is a path on the target system: under a staging directory, in it).
resolve_links() {  # PATH
    local rest=${1#/} resolved='' part target hops=0
    while [[ -n $rest ]]; do
        part=${rest%%/*}
        if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
        case $part in
            ''|.) continue ;;
            ..) resolved=${resolved%/*}; continue ;;
        esac
        if [[ -L $root$resolved/$part ]] && ((hops++ < 40)); then
            target=$(readlink "$root$resolved/$part")
            [[ $target != /* ]] || resolved=
            rest=${target#/}${rest:+/$rest}
        else
            resolved=$resolved/$part
        fi
    done
    printf '%s\n' "${resolved:-/}"
}

is_vfio_hook_binary() {  # PATH: a regular file holding the marker every vfio-hook binary contains
    [[ -f $root$1 && ! -L $root$1 ]] && grep -qF "$vfio_hook_marker" "$root$1" 2>/dev/null
}

# The vfio-hook that already answers libvirt, other than BINARY: hooks/qemu or an entry of
# hooks/qemu.d that is, or links to, a vfio-hook binary (a package's /usr/sbin/vfio-hook, an older
# manual install, a copy). Prints "SLOT -> FILE" (or "SLOT (a copy of vfio-hook)"); false if none.
other_vfio_hook() {  # BINARY [OWN...]
    local binary=$1 slots=("$main_hook") entry slot resolved
    for entry in "$root$hooks_dir"/qemu.d/*; do
        [[ -e $entry || -L $entry ]] && slots+=("${entry#"$root"}")
    done
    for slot in "${slots[@]}"; do
        exists_or_link "$slot" || continue
        is_own_link "$slot" "$@" && continue
        resolved=$(resolve_links "$slot")
        [[ $resolved != "$binary" ]] || continue
        is_vfio_hook_binary "$resolved" || continue
        if [[ $resolved == "$slot" ]]; then
            printf '%s (a copy of vfio-hook)\n' "$slot"
        else
            printf '%s -> %s\n' "$slot" "$resolved"
        fi
        return 0
    done
    return 1
}

describe() {  # PATH: what a foreign hook is, for the messages
    local path=$root$1 first
    if [[ -L $path ]]; then
        printf 'a symlink to %s' "$(readlink "$path")"
    elif [[ -f $path ]]; then
        first=$(head -c 200 "$path" 2>/dev/null | head -n 1 | tr -cd '[:print:]' || true)
        if [[ $first == '#!'* ]]; then printf 'a script: %s' "$first"; else printf 'a regular file'; fi
    else
        printf 'not a regular file'
    fi
}

# The slot vfio-hook goes into: hooks/qemu when free or ours, else qemu.d/vfio-hook when free or
# ours. Prints it; false when both hold another program's hook.
choose_hook_slot() {  # BINARY [OWN...]
    if ! exists_or_link "$main_hook" || is_own_link "$main_hook" "$@"; then
        printf '%s\n' "$main_hook"
    elif ! exists_or_link "$dropin_hook" || is_own_link "$dropin_hook" "$@"; then
        printf '%s\n' "$dropin_hook"
    else
        return 1
    fi
}

the_other_slot() {  # SLOT
    if [[ $1 == "$main_hook" ]]; then printf '%s\n' "$dropin_hook"; else printf '%s\n' "$main_hook"; fi
}

# Replace PATH with a symlink to TARGET without a moment where PATH is missing: a new link beside
# it, renamed over it. A link already there with that target is left alone.
link_atomically() {  # PATH TARGET
    local path=$root$1 target=$2 tmp
    [[ -L $path && $(readlink "$path") == "$target" ]] && return 0
    tmp=$(mktemp -u "$(dirname "$path")/.vfio-hook-new.XXXXXX")
    ln -s -- "$target" "$tmp" || { say "cannot create the symlink $tmp"; return 1; }
    mv -fT -- "$tmp" "$path" || { rm -f -- "$tmp"; say "cannot replace $path"; return 1; }
}

# Puts BINARY's link into the slot the rules choose, takes our link out of the other one, and says
# where it went. False, having said why in one line, when no slot is free. Without libvirt on the
# system (not a staging directory) it places nothing and says how to get the hook later.
install_hook_link() {  # BINARY [OWN...]
    local binary=$1 slot other
    if [[ -z $root ]] && ! libvirt_present; then
        say "libvirt is not installed (no /etc/libvirt, no libvirtd or virtqemud): installed the CLI only; install libvirt (Debian: apt-get install libvirt-daemon-system) and run $rerun_command again for the hook"
        return 0
    fi
    if ! slot=$(choose_hook_slot "$@"); then
        say "$main_hook is another program's hook ($(describe "$main_hook")) and $dropin_hook is not vfio-hook's either ($(describe "$dropin_hook")): hook not installed; remove one of them and run $rerun_command again"
        return 1
    fi
    if [[ $slot == "$dropin_hook" ]]; then
        say "$main_hook is another program's hook ($(describe "$main_hook")); installed into $dropin_hook instead (libvirt runs it after hooks/qemu)"
        # VFIO-Tools' dispatcher runs that layout itself, and vfio-hook running it too ran every script twice.
        say "the scripts in $hooks_dir/qemu.d/VM/OPERATION/SUB-OP/ are left to $main_hook (VFIO-Tools' dispatcher runs them; if it does not, nothing does); vfio-hook runs /etc/vfio-hook/hook.d/ only, and a script that needs the GPU home goes into /etc/vfio-hook/hook.d/vm/VM/release/end/ (the dispatcher runs release/end before vfio-hook gives the devices back)"
    fi
    make_dirs "$(dirname "$slot")" || return 1
    link_atomically "$slot" "$binary" || return 1
    # Our link in the other slot, from an earlier install, would run vfio-hook twice.
    other=$(the_other_slot "$slot")
    if is_own_link "$other" "$@"; then
        rm -f -- "$root$other"
    fi
    say "the hook: $slot -> $binary"
}

# The slot that holds a link to BINARY; false if none.
installed_hook_slot() {  # BINARY
    local slot
    for slot in "$main_hook" "$dropin_hook"; do
        is_own_link "$slot" "$1" || continue
        printf '%s\n' "$slot"
        return 0
    done
    return 1
}

# Takes BINARY's link (and the OWN ones) out of both slots, saying so.
remove_hook_links() {  # BINARY [OWN...]
    local slot
    for slot in "$main_hook" "$dropin_hook"; do
        is_own_link "$slot" "$@" || continue
        rm -f -- "$root$slot"
        say "removed the hook $slot"
    done
}

# What both slots hold, to tell whether an install changed them (and libvirt must look again).
hook_slots_state() {
    local slot
    for slot in "$main_hook" "$dropin_hook"; do
        if [[ -L $root$slot ]]; then
            printf '%s -> %s\n' "$slot" "$(readlink "$root$slot")"
        elif [[ -e $root$slot ]]; then
            printf '%s %s\n' "$slot" "$(stat -c %i "$root$slot")"
        fi
    done
}

# --- libvirt's daemon ---------------------------------------------------------------------------
libvirt_present() {  # its config directory, or a daemon that runs QEMU hooks
    [[ -d /etc/libvirt ]] && return 0
    local dir name directories
    IFS=: read -r -a directories <<<"$PATH:/usr/sbin:/sbin:/usr/local/sbin"
    for dir in "${directories[@]}"; do
        for name in libvirtd virtqemud; do
            [[ -f $dir/$name && -x $dir/$name ]] && return 0
        done
    done
    return 1
}

# libvirt decides which hooks exist when its daemon starts, and again on SIGHUP (virHookCall
# re-runs virHookInitialize for the daemon's reload event), so a reload is enough: a restart is
# only the fallback. Neither stops running VMs: QEMU processes are not the daemon's children, and
# a restarted daemon reconnects to them (vfio-hook answers that `reconnect` call with 0).
# QEMU hooks run in the monolithic libvirtd or, on modular setups, in virqemud: reload whichever
# runs, through systemd when it manages it, else by SIGHUP to the pid in its pid file. A daemon
# that does not run is left alone (it reads the hooks when it starts); nothing here fails.
reload_libvirt() {  # WHY
    local why=$1 daemon done_daemons=" " reloaded=no
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        for daemon in virtqemud libvirtd; do
            systemctl is-active --quiet "$daemon.service" 2>/dev/null || continue
            if systemctl reload "$daemon.service" 2>/dev/null; then
                say "reloaded $daemon (systemctl reload $daemon) so that it $why; running VMs are not affected"
            elif systemctl try-restart "$daemon.service"; then
                say "restarted $daemon (systemctl try-restart $daemon) so that it $why; running VMs are not affected"
            else
                say "could not reload or restart $daemon: run 'systemctl restart $daemon' so that it $why"
                continue
            fi
            done_daemons+="$daemon "
            reloaded=yes
        done
    fi
    local pid_file pid comm
    for daemon in virtqemud libvirtd; do
        [[ $done_daemons != *" $daemon "* ]] || continue
        pid_file=/run/$daemon.pid
        [[ -r $pid_file ]] || continue
        pid=$(head -n 1 "$pid_file" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] || continue
        # A stale pid file may name another process by now: signal only the daemon itself.
        comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
        [[ $comm == "$daemon" ]] || continue
        if kill -HUP "$pid" 2>/dev/null; then
            say "sent SIGHUP to $daemon (pid $pid, from $pid_file) so that it $why; running VMs are not affected"
            reloaded=yes
        else
            say "could not signal $daemon (pid $pid): restart it so that it $why"
        fi
    done
    if [[ $reloaded == no ]]; then
        say "neither libvirtd nor virtqemud is running: the daemon will see the change when it starts"
    fi
    return 0
}
