#!/usr/bin/env bash
# install.sh: build vfio-hook and install it as libvirt's QEMU hook. `./install.sh --help` says how.
#
# meson decides where every file goes (meson.build: the binary, the man page, the default config
# as vfio-hook.conf.default, the hook.d examples). This script adds only what meson cannot do:
# installing each file atomically, creating /etc/vfio-hook/vfio-hook.conf without ever touching
# one the user has, choosing the hook's slot in /etc/libvirt/hooks (hook-placement.sh, shared with
# the Debian package), making libvirt's daemon look for hooks again, and recording all of it in a
# manifest that --uninstall reads.
#
# Laid out as rustup-init.sh is: helpers, then one function per step, and `main "$@" || exit 1`
# at the bottom, so that a download cut short runs nothing. The options are the only globals set
# after start-up (by parse_args), besides the manifest being read and written and the temporary
# paths that the exit trap removes.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo ./install.sh [--prefix DIR] [--builddir DIR] [--no-deps]
       ./install.sh --destdir DIR [--prefix DIR] [--builddir DIR]
       sudo ./install.sh --uninstall [--force] [--destdir DIR]

Builds vfio-hook (static, release, in build-install/) and installs it with `meson install`:
  PREFIX/sbin/vfio-hook                          the binary (PREFIX: /usr/local)
  PREFIX/share/man/man8/vfio-hook.8              its man page
  /etc/vfio-hook/vfio-hook.conf.default          the shipped settings, replaced on upgrade
  /etc/vfio-hook/vfio-hook.conf                  created from the default only when absent
  PREFIX/share/vfio-hook/hook.d-examples/        example user scripts, installed disabled
  /etc/libvirt/hooks/qemu -> PREFIX/sbin/vfio-hook   the hook (a symlink)
  /var/lib/vfio-hook/install-manifest            what was installed, for --uninstall
then makes libvirt's daemon (libvirtd or virtqemud, whichever runs) look for hooks again and
runs `vfio-hook status`.

An /etc/libvirt/hooks/qemu that is not vfio-hook's is never overwritten: the hook goes into
/etc/libvirt/hooks/qemu.d/vfio-hook instead (libvirt runs it after hooks/qemu), and the scripts in
qemu.d/VM/OPERATION/SUB-OP/ are left to that program (VFIO-Tools' dispatcher runs them). A second
vfio-hook is never installed: when hooks/qemu or an entry of qemu.d/ is or leads to another
vfio-hook binary (a package's, an older install's), install.sh names it and changes nothing. Running VMs are
not affected by installing, upgrading (the binary is replaced atomically) or the daemon reload.
Re-running is harmless. Without libvirt, only the CLI is installed.

Options:
  --prefix DIR     install under DIR instead of /usr/local
  --destdir DIR    stage everything under DIR; touches nothing outside it: no packages, no
                   daemon reload, no status (for images and packages)
  --builddir DIR   install from this meson build directory instead of build-install/ (its
                   install paths are set to --prefix and sysconfdir=/etc if they differ)
  --no-deps        do not install build dependencies
  --uninstall      remove exactly what the manifest lists and reload the daemon; a
                   vfio-hook.conf the user edited is kept (and said so)
  --force          uninstall even while devices are given to VMs (/run/vfio-hook/records)
  -h, --help       this help

Build dependencies are installed with apt-get on Debian and Ubuntu; dnf (Fedora) and pacman
(Arch) package names are included but untested. Tested on Debian 12 and Debian 13; Ubuntu needs
24.04 or newer (meson >= 1.0).
EOF
}

program=install.sh
say() { printf '%s: %s\n' "$program" "$*"; }
die() { printf '%s: %s\n' "$program" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s (see --help)\n' "$program" "$*" >&2; exit 2; }
need_cmd() {  # COMMAND...: each one is on PATH, or a one-line error naming the first missing one
    local command
    for command in "$@"; do
        command -v "$command" >/dev/null 2>&1 || die "needs '$command' (command not found): install it and run install.sh again"
    done
}

source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

# The options, set by parse_args.
prefix=/usr/local
destdir=
root=
build_dir=
install_deps=yes
uninstall=no
force=no

# Fixed paths: vfio-hook reads its config from /etc/vfio-hook whatever the prefix, and
# distributions build libvirt with its hook directory in /etc/libvirt/hooks (hook-placement.sh).
config=/etc/vfio-hook/vfio-hook.conf
default_config=/etc/vfio-hook/vfio-hook.conf.default
manifest_dir=/var/lib/vfio-hook
manifest=$manifest_dir/install-manifest
records_dir=/run/vfio-hook/records

# What the exit trap removes: a staging directory, a temporary file not yet renamed into place.
stage=
pending=
cleanup() {
    [[ -z $pending ]] || rm -f -- "$pending"
    [[ -z $stage ]] || rm -rf -- "$stage"
}
trap cleanup EXIT

parse_args() {
    while (($#)); do
        case $1 in
            --prefix=*|--destdir=*|--builddir=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        esac
        case $1 in
            --prefix|--destdir|--builddir)
                if (($# < 2)) || [[ -z $2 ]]; then usage_error "$1 needs a value"; fi
                case $1 in
                    --prefix) prefix=$2 ;;
                    --destdir) destdir=$2 ;;
                    --builddir) build_dir=$2 ;;
                esac
                shift 2 ;;
            --no-deps) install_deps=no; shift ;;
            --uninstall) uninstall=yes; shift ;;
            --force) force=yes; shift ;;
            -h|--help) usage; exit 0 ;;
            *) usage_error "unknown argument '$1'" ;;
        esac
    done
    [[ $prefix == /* ]] || usage_error "--prefix must be an absolute path, not '$prefix'"
    prefix=$(realpath -m "$prefix")
    if [[ -n $destdir ]]; then
        mkdir -p "$destdir" || die "cannot create the staging directory $destdir"
        root=$(cd "$destdir" && pwd -P)
        [[ $root != / ]] || usage_error "--destdir / is the system itself: leave --destdir out"
    else
        [[ $(id -u) == 0 ]] || die "installing into the system needs root: sudo ./install.sh (or --destdir DIR to stage)"
    fi
}

# --- the manifest -----------------------------------------------------------------------------
# One entry a line, tab-separated, paths as on the running system (without --destdir's DIR):
#   file PATH            a file meson installed
#   link PATH TARGET     the hook symlink
#   config PATH SHA256   the vfio-hook.conf this script created, and its content when created
#   dir PATH             a directory this script created (removed at --uninstall when empty)
declare -A old_kind=() old_extra=()
old_paths=()
read_manifest() {
    [[ -f $root$manifest ]] || return 0
    local kind path extra
    while IFS=$'\t' read -r kind path extra; do
        case $kind in
            file|link|config|dir) ;;
            *) continue ;;
        esac
        old_kind[$path]=$kind
        old_extra[$path]=$extra
        old_paths+=("$path")
    done < "$root$manifest"
}

declare -A new_kind=() new_extra=()
new_paths=()
record() {  # KIND PATH [EXTRA]
    [[ -n ${new_kind[$2]:-} ]] || new_paths+=("$2")
    new_kind[$2]=$1
    new_extra[$2]=${3:-}
}

write_manifest() {  # PREFIX (named in the manifest's first line)
    make_dirs "$manifest_dir"
    local path tmp
    tmp=$(mktemp "$root$manifest_dir/.install-manifest.XXXXXX")
    pending=$tmp
    {
        printf '# vfio-hook install manifest, written by install.sh (prefix %s); read by install.sh --uninstall\n' "$1"
        for path in "${new_paths[@]}"; do
            [[ -n ${new_kind[$path]:-} ]] || continue
            printf '%s\t%s\t%s\n' "${new_kind[$path]}" "$path" "${new_extra[$path]}"
        done
    } > "$tmp"
    chmod 0644 "$tmp"
    mv -fT "$tmp" "$root$manifest"
    pending=
}

# The links the last install put in the hook slots, as hook-placement.sh's OWN arguments.
own_links() {
    local path
    for path in "${old_paths[@]}"; do
        [[ ${old_kind[$path]} == link ]] && printf '%s=%s\n' "$path" "${old_extra[$path]}"
    done
    return 0
}

# --- files --------------------------------------------------------------------------------------
make_dirs() {  # PATH: create PATH and its missing parents under $root, recording each one
    local dir=$1 missing=()
    while [[ $dir != / && ! -e $root$dir && ! -L $root$dir ]]; do
        missing=("$dir" "${missing[@]}")
        dir=$(dirname "$dir")
    done
    for dir in "${missing[@]}"; do
        mkdir -m 0755 "$root$dir" || die "cannot create $root$dir"
        record dir "$dir"
    done
}

sha256_of() { sha256sum < "$1" | cut -d' ' -f1; }

# Replace PATH with a copy of SOURCE without a moment where PATH is missing, partly written or
# truncated: copy to a temporary file in the same directory (same filesystem), then rename(2) it
# over PATH (mv -T). A hook that libvirt is running keeps executing the old inode, and the next
# call execs the new binary whole. (meson install itself copies over the installed file, which is
# why it only ever installs into the staging directory.)
place_file() {  # SOURCE PATH
    local source=$1 path=$2 target=$root$2 tmp
    make_dirs "$(dirname "$path")"
    if [[ -f $target && ! -L $target ]] && cmp -s "$source" "$target" &&
       [[ $(stat -c %a "$source") == $(stat -c %a "$target") ]]; then
        return 0  # already this content and mode: leave the inode alone
    fi
    tmp=$(mktemp "$(dirname "$target")/.vfio-hook-new.XXXXXX")
    pending=$tmp
    cp -- "$source" "$tmp" || die "cannot write $tmp"
    chmod "$(stat -c %a "$source")" "$tmp"
    mv -fT -- "$tmp" "$target" || die "cannot replace $target"
    pending=
}

remove_dirs_if_empty() {  # every recorded directory that is now empty, deepest first
    local dir
    while IFS= read -r dir; do
        [[ -n $dir && ${new_kind[$dir]:-} == dir && $dir != "$manifest_dir" ]] || continue
        if [[ -d $root$dir && ! -L $root$dir ]] && rmdir -- "$root$dir" 2>/dev/null; then
            unset "new_kind[$dir]"
        elif [[ ! -e $root$dir ]]; then
            unset "new_kind[$dir]"
        fi
    done < <(printf '%s\n' "${new_paths[@]}" | sort -r)
}

# --- build dependencies -------------------------------------------------------------------------
# libxml2 is not among them: meson builds it from Debian's source (subprojects/libxml2.wrap, fetched
# from deb.debian.org at the first `meson setup`; docs/lean-binary.md), applying Debian's patches
# with `patch`.
apt_packages=(meson ninja-build pkg-config g++ patch libcli11-dev libspdlog-dev libfmt-dev
              libboost-test-dev scdoc)
# Untested: the names as Fedora and Arch spell them. A fully static binary needs static glibc and
# libstdc++; Arch ships neither.
dnf_packages=(meson ninja-build pkgconf-pkg-config gcc-c++ patch cli11-devel spdlog-devel fmt-devel
              boost-devel scdoc glibc-static libstdc++-static)
pacman_packages=(meson ninja pkgconf gcc patch cli11 spdlog fmt boost scdoc)

missing_packages() {  # prints the manager's name, then the packages it lacks
    local package
    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
        echo apt-get
        for package in "${apt_packages[@]}"; do
            dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q "install ok installed" || echo "$package"
        done
    elif command -v dnf >/dev/null 2>&1; then
        echo dnf
        for package in "${dnf_packages[@]}"; do
            rpm -q "$package" >/dev/null 2>&1 || echo "$package"
        done
    elif command -v pacman >/dev/null 2>&1; then
        echo pacman
        for package in "${pacman_packages[@]}"; do
            pacman -Q "$package" >/dev/null 2>&1 || echo "$package"
        done
    else
        echo none
    fi
}

ensure_build_dependencies() {
    local lines manager missing
    mapfile -t lines < <(missing_packages)
    manager=${lines[0]}
    missing=("${lines[@]:1}")
    if [[ $manager == none ]]; then
        say "no apt-get, dnf or pacman here: building with what is installed (needs meson, ninja, a C++20 compiler, patch, CLI11, spdlog, fmt, Boost.Test, scdoc)"
        return 0
    fi
    ((${#missing[@]})) || return 0
    if [[ -n $destdir || $install_deps == no ]]; then
        die "missing build dependencies: ${missing[*]} (install them with $manager, or run as root without --destdir/--no-deps)"
    fi
    say "installing build dependencies with $manager: ${missing[*]}"
    case $manager in
        apt-get)
            apt-get update -q
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ;;
        dnf) dnf install -y "${missing[@]}" ;;
        pacman) pacman -S --needed --noconfirm "${missing[@]}" ;;
    esac
}

# --- build and stage ----------------------------------------------------------------------------
build_info() {  # BUILD_DIR: its prefix, sysconfdir and sbindir (tab-separated), then the names
                # of the targets it installs, one a line; one meson call for both
    meson introspect "$1" --buildoptions --targets | python3 -c '
import json, sys
info = json.load(sys.stdin)
options = {o["name"]: o["value"] for o in info["buildoptions"]}
print("\t".join(str(options[k]) for k in ("prefix", "sysconfdir", "sbindir")))
for target in info["targets"]:
    if target["installed"]:
        print(target["name"])'
}

build_info_line() {  # BUILD_DIR: prefix, sysconfdir and sbindir, tab-separated
    build_info "$1" | head -n 1
}

# Configures BUILD_DIR if it is not yet, and sets its install paths to PREFIX and /etc.
configure_build() {  # BUILD_DIR GIVEN(yes|no)
    local build_dir=$1 given=$2 current_prefix current_sysconfdir sbindir
    if [[ ! -f $build_dir/meson-private/coredata.dat ]]; then
        [[ $given == no ]] || die "--builddir $build_dir is not a configured meson build directory"
        say "configuring $build_dir (release, static, prefix $prefix)"
        meson setup --buildtype=release --prefix="$prefix" --sysconfdir=/etc "$build_dir" "$source_dir" ||
            die "meson setup failed in $build_dir (see above)"
    fi
    IFS=$'\t' read -r current_prefix current_sysconfdir sbindir < <(build_info_line "$build_dir") ||
        die "cannot read the options of the build directory $build_dir"
    if [[ $current_prefix != "$prefix" || $current_sysconfdir != /etc ]]; then
        say "setting $build_dir's install paths: prefix $prefix (was $current_prefix), sysconfdir /etc (was $current_sysconfdir)"
        meson configure "$build_dir" -Dprefix="$prefix" -Dsysconfdir=/etc >/dev/null ||
            die "meson configure failed in $build_dir"
    fi
}

installed_binary() {  # BUILD_DIR: where its vfio-hook goes on the target system
    local current_prefix current_sysconfdir sbindir
    IFS=$'\t' read -r current_prefix current_sysconfdir sbindir < <(build_info_line "$1") ||
        die "cannot read the options of the build directory $1"
    [[ $sbindir == /* ]] || sbindir=$prefix/$sbindir
    printf '%s/vfio-hook\n' "$sbindir"
}

# Compiles what BUILD_DIR installs (the binary, the man page: not the unit tests) and stages it
# with meson install into STAGE.
compile_and_stage() {  # BUILD_DIR STAGE BINARY
    local build_dir=$1 stage=$2 binary=$3 targets
    mapfile -t targets < <(build_info "$build_dir" | tail -n +2)
    ((${#targets[@]})) || die "$build_dir has no target to install"
    meson compile -C "$build_dir" "${targets[@]}" || die "the build failed in $build_dir (see above)"
    meson install -C "$build_dir" --no-rebuild --quiet --destdir "$stage" >/dev/null ||
        die "meson install into the staging directory $stage failed"
    [[ -x $stage$binary ]] || die "the build did not produce $binary (staged in $stage)"
    [[ -f $stage$default_config ]] ||
        die "meson did not install $default_config: is $build_dir's sysconfdir /etc?"
    "$stage$binary" --version >/dev/null 2>&1 || die "the built $binary does not run: not installing it"
}

# --- install ------------------------------------------------------------------------------------
place_staged_files() {  # STAGE: everything meson staged, moved into place file by file
    local relative
    while IFS= read -r -d '' relative; do
        relative=${relative#.}
        place_file "$1$relative" "$relative"
        record file "$relative"
    done < <(cd "$1" && find . \( -type f -o -type l \) -print0 | sort -z)
}

install_config() {
    local config_sha default_sha recorded
    default_sha=$(sha256_of "$root$default_config")
    recorded=
    [[ ${old_kind[$config]:-} == config ]] && recorded=${old_extra[$config]}
    if [[ ! -e $root$config && ! -L $root$config ]]; then
        place_file "$root$default_config" "$config"
        record config "$config" "$default_sha"
        say "installed $config (the defaults)"
        return
    fi
    config_sha=$(sha256_of "$root$config" 2>/dev/null || echo unreadable)
    if [[ -n $recorded && $config_sha == "$recorded" ]]; then
        # Ours and never edited: it follows the shipped defaults.
        if [[ $config_sha != "$default_sha" ]]; then
            place_file "$root$default_config" "$config"
            say "updated $config to the new defaults (it had not been edited)"
        fi
        record config "$config" "$default_sha"
        return
    fi
    [[ -n $recorded ]] && record config "$config" "$recorded"
    if [[ $config_sha == "$default_sha" ]]; then
        say "kept $config (the same as the defaults)"
    else
        say "kept $config (edited; the shipped defaults are in $default_config)"
    fi
}

# A second vfio-hook would act on every start twice: the second gives the VM's devices back to
# their drivers and takes them again. Refused before anything is installed.
refuse_second_vfio_hook() {  # BINARY
    [[ -n $root ]] || libvirt_present || return 0
    local first own
    mapfile -t own < <(own_links)
    first=$(other_vfio_hook "$1" "${own[@]}") || return 0
    die "vfio-hook is already libvirt's hook: $first; a second one would act on every VM start twice: nothing installed (remove that one first: its package, or its install.sh --uninstall; or install with its --prefix to upgrade it)"
}

install_hook() {  # BINARY: the link in its slot (hook-placement.sh), recorded; false if none was free
    local binary=$1 own slot
    mapfile -t own < <(own_links)
    install_hook_link "$binary" "${own[@]}" || return 1
    slot=$(installed_hook_slot "$binary") || return 0  # no libvirt: CLI only
    record link "$slot" "$binary"
}

remove_stale() {  # what the last install put in place and this one did not
    local path
    for path in "${old_paths[@]}"; do
        [[ -z ${new_kind[$path]:-} ]] || continue
        case ${old_kind[$path]} in
            file) [[ -f $root$path && ! -L $root$path ]] && rm -f -- "$root$path" ;;
            link)
                if [[ -L $root$path && $(readlink "$root$path") == "${old_extra[$path]}" ]]; then
                    rm -f -- "$root$path"
                fi ;;
            dir) [[ -d $root$path ]] && record dir "$path" ;;
        esac
    done
    return 0
}

report_status() {  # BINARY: `vfio-hook status`, and what its exit status means
    local status=0
    echo
    "$1" status || status=$?
    echo
    case $status in
        0) say "vfio-hook status: this host is ready" ;;
        1) say "vfio-hook status: not ready yet: see the problems and fixes above (vfio-hook is installed)" ;;
        *) say "vfio-hook status failed (exit $status): see above (vfio-hook is installed)" ;;
    esac
}

do_install() {
    local given=yes dir=$build_dir binary hook_status=0 slots_before slot version
    if [[ -z $dir ]]; then
        given=no
        dir=$source_dir/build-install
    fi
    read_manifest
    # Before the build: a refusal must not even install build dependencies.
    refuse_second_vfio_hook "$prefix/sbin/vfio-hook"
    [[ $given == yes ]] || ensure_build_dependencies
    need_cmd meson python3
    configure_build "$dir" "$given"
    binary=$(installed_binary "$dir")
    stage=$(mktemp -d)
    compile_and_stage "$dir" "$stage" "$binary"
    slots_before=$(hook_slots_state)
    place_staged_files "$stage"
    install_config
    install_hook "$binary" || hook_status=1
    remove_stale
    remove_dirs_if_empty
    write_manifest "$prefix"
    version=$("$root$binary" --version 2>/dev/null || echo "vfio-hook")
    say "installed $version into ${root:-/} (manifest: $root$manifest)"
    [[ -n $root ]] && return "$hook_status"
    slot=$(installed_hook_slot "$binary" || true)
    if [[ $(hook_slots_state) != "$slots_before" ]]; then
        reload_libvirt "runs the hook at ${slot:-its new place}"
    elif [[ -n $slot ]]; then
        say "libvirt already had the hook at $slot: no daemon reload needed"
    fi
    report_status "$binary"
    return "$hook_status"
}

# --- uninstall ----------------------------------------------------------------------------------
do_uninstall() {
    [[ -f $root$manifest ]] || die "no install manifest at $root$manifest: nothing to uninstall"
    read_manifest
    if [[ -z $root && $force == no ]]; then
        local records=()
        [[ -d $records_dir ]] && mapfile -t records < <(find "$records_dir" -maxdepth 1 -name '*.record' 2>/dev/null)
        if ((${#records[@]})); then
            die "devices are still given to VMs or parked (${#records[@]} record(s) in $records_dir): stop those VMs and run 'vfio-hook recover' (or 'vfio-hook restore ADDRESS' for parked ones) first, or pass --force"
        fi
    fi
    local path removed_hook=no
    # The hook first, so that libvirt stops calling vfio-hook before the binary goes.
    for path in "${old_paths[@]}"; do
        [[ ${old_kind[$path]} == link ]] || continue
        if [[ -L $root$path && $(readlink "$root$path") == "${old_extra[$path]}" ]]; then
            rm -f -- "$root$path"
            removed_hook=yes
            say "removed the hook $path"
        elif [[ -e $root$path || -L $root$path ]]; then
            say "kept $path: it is no longer vfio-hook's ($(describe "$path"))"
        fi
    done
    if [[ -z $root && $removed_hook == yes ]]; then
        reload_libvirt "stops running the hook"
    fi
    for path in "${old_paths[@]}"; do
        case ${old_kind[$path]} in
            file) [[ -f $root$path || -L $root$path ]] && rm -f -- "$root$path" ;;
            config)
                [[ -e $root$path ]] || continue
                if [[ $(sha256_of "$root$path") == "${old_extra[$path]}" ]]; then
                    rm -f -- "$root$path"
                else
                    say "kept $path: it was edited (remove it by hand if it is no longer wanted)"
                fi ;;
        esac
    done
    rm -f -- "$root$manifest"
    local dir
    while IFS= read -r dir; do
        [[ -n $dir && ${old_kind[$dir]:-} == dir ]] || continue
        [[ -d $root$dir && ! -L $root$dir ]] || continue
        rmdir -- "$root$dir" 2>/dev/null || true  # not empty: something not ours is in it
    done < <(printf '%s\n' "${old_paths[@]}" | sort -r)
    say "uninstalled vfio-hook from ${root:-/}"
}

main() {
    need_cmd realpath mktemp sha256sum cut cmp stat cp chmod mv ln readlink grep find sort head tr \
        dirname rmdir id
    # shellcheck source=hook-placement.sh
    . "$source_dir/hook-placement.sh" || die "cannot read $source_dir/hook-placement.sh: run install.sh from its source tree"
    parse_args "$@"
    if [[ $uninstall == yes ]]; then
        do_uninstall
    else
        do_install
    fi
}

main "$@" || exit 1
