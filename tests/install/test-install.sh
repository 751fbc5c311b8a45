#!/usr/bin/env bash
# install.sh staged into temporary directories with --destdir, from an already-built tree: the
# files it installs, re-running it, upgrading the binary by rename, the config the user edited,
# a foreign libvirt hook, and --uninstall. Needs no root and no network, and touches nothing
# outside a temporary directory (commands that would change the system are replaced by fakes
# that record being called).
#   tests/install/test-install.sh [SOURCE_DIR [BUILD_DIR]]     (meson test runs it as "install")
set -euo pipefail
source_dir=$(cd "${1:-$(dirname "$0")/../..}" && pwd -P)
build_dir=$(cd "${2:-$source_dir/build}" && pwd -P)
install_sh=$source_dir/install.sh
[[ -x $build_dir/vfio-hook ]] || { echo "no $build_dir/vfio-hook: build first (meson compile -C $build_dir)"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fake_bin=$work/fake-bin
system_calls=$work/system-calls
mkdir "$fake_bin"
: > "$system_calls"
for command in systemctl apt-get dnf pacman rpm sudo; do
    printf '#!/bin/sh\necho "%s $*" >> "%s"\nexit 1\n' "$command" "$system_calls" > "$fake_bin/$command"
    chmod +x "$fake_bin/$command"
done
export PATH=$fake_bin:$PATH

passed=0
failed=0
current=
begin() { current=$1; }
fail() {
    echo "FAIL [$current]: $*"
    failed=$((failed + 1))
}
pass() {
    echo "ok   [$current]"
    passed=$((passed + 1))
}
# Runs install.sh, keeping its exit status in $rc and its output in $out.
run() {
    rc=0
    out=$("$install_sh" "$@" 2>&1) || rc=$?
}
expect_rc() {
    [[ $rc == "$1" ]] && return 0
    fail "install.sh exited $rc, expected $1; its output:"
    printf '%s\n' "$out" | sed 's/^/    /'
    return 1
}
expect_line() {
    grep -qxF -- "$1" <<<"$out" && return 0
    fail "no line '$1' in the output:"
    printf '%s\n' "$out" | sed 's/^/    /'
    return 1
}

# Every entry under a directory: type, mode, path, and a symlink's target; files by content.
listing() {
    (cd "$1" && find . -mindepth 1 \( -type l -printf 'l %P -> %l\n' \) -o \( -type d -printf 'd %P\n' \) \
                                   -o \( -type f -printf 'f %m %P\n' \) | sort)
}
contents() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}
same_listing() {  # WANT_FILE GOT_DIR
    if ! diff -u "$1" <(listing "$2") > "$work/diff"; then
        fail "the tree under $2 differs from the expected one (- expected, + found):"
        sed 's/^/    /' "$work/diff"
        return 1
    fi
}

# The tree install.sh --destdir stages with the default prefix, the hook at HOOK, plus EXTRA
# lines (entries that were there before). Directories are derived from the files.
prefix=/usr/local
man_page=no
[[ -f $build_dir/vfio-hook.8 ]] && man_page=yes
examples=()
if [[ -d $source_dir/hook.d ]]; then
    while IFS= read -r -d '' example; do examples+=("${example#./}"); done \
        < <(cd "$source_dir/hook.d" && find . -type f -print0 | sort -z)
fi
expected_tree() {  # HOOK [EXTRA...]
    local hook=$1 entries=() entry path dir
    shift
    entries+=("f 755 ${prefix#/}/sbin/vfio-hook")
    entries+=("f 644 etc/vfio-hook/vfio-hook.conf" "f 644 etc/vfio-hook/vfio-hook.conf.default")
    entries+=("f 644 var/lib/vfio-hook/install-manifest")
    [[ $man_page == yes ]] && entries+=("f 644 ${prefix#/}/share/man/man8/vfio-hook.8")
    for entry in "${examples[@]}"; do
        local mode
        mode=$(stat -c %a "$source_dir/hook.d/$entry")
        entries+=("f $(printf '%o' $((8#$mode & ~8#022))) ${prefix#/}/share/vfio-hook/hook.d-examples/$entry")
    done
    entries+=("l ${hook#/} -> $prefix/sbin/vfio-hook")
    entries+=("$@")
    {
        for entry in "${entries[@]}"; do
            printf '%s\n' "$entry"
            path=${entry#? }
            path=${path#[0-7][0-7][0-7] }
            path=${path%% -> *}
            dir=$(dirname "$path")
            while [[ $dir != . ]]; do
                printf 'd %s\n' "$dir"
                dir=$(dirname "$dir")
            done
        done
    } | sort -u
}

# --- a fresh install ----------------------------------------------------------------------------
begin "install --destdir stages the binary, hook, config, man page, examples and manifest"
d=$work/fresh
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 && expect_line "install.sh: the hook: /etc/libvirt/hooks/qemu -> $prefix/sbin/vfio-hook" &&
   expect_line "install.sh: installed /etc/vfio-hook/vfio-hook.conf (the defaults)"; then
    expected_tree /etc/libvirt/hooks/qemu > "$work/want"
    ok=yes
    same_listing "$work/want" "$d" || ok=no
    cmp -s "$d$prefix/sbin/vfio-hook" "$build_dir/vfio-hook" || { fail "the staged binary is not build/vfio-hook"; ok=no; }
    cmp -s "$d/etc/vfio-hook/vfio-hook.conf" "$source_dir/config/vfio-hook.conf" || { fail "vfio-hook.conf is not config/vfio-hook.conf"; ok=no; }
    cmp -s "$d/etc/vfio-hook/vfio-hook.conf.default" "$source_dir/config/vfio-hook.conf" || { fail "vfio-hook.conf.default is not config/vfio-hook.conf"; ok=no; }
    if [[ $man_page == yes ]] && ! cmp -s "$d$prefix/share/man/man8/vfio-hook.8" "$build_dir/vfio-hook.8"; then
        fail "the man page is not the built one"; ok=no
    fi
    for example in "${examples[@]}"; do
        cmp -s "$d$prefix/share/vfio-hook/hook.d-examples/$example" "$source_dir/hook.d/$example" ||
            { fail "example $example differs from hook.d/$example"; ok=no; }
    done
    "$d$prefix/sbin/vfio-hook" --version | grep -q "vfio-hook" || { fail "the staged binary does not run"; ok=no; }
    [[ $ok == yes ]] && pass
fi

begin "the manifest lists every file, link and directory installed, as paths on the target system"
manifest=$d/var/lib/vfio-hook/install-manifest
{
    (cd "$d" && find . -mindepth 1 -type f ! -path ./var/lib/vfio-hook/install-manifest ! -path ./etc/vfio-hook/vfio-hook.conf -printf 'file\t/%P\t\n')
    printf 'config\t/etc/vfio-hook/vfio-hook.conf\t%s\n' "$(sha256sum < "$source_dir/config/vfio-hook.conf" | cut -d' ' -f1)"
    printf 'link\t/etc/libvirt/hooks/qemu\t%s\n' "$prefix/sbin/vfio-hook"
    (cd "$d" && find . -mindepth 1 -type d -printf 'dir\t/%P\t\n')
} | sort > "$work/want-manifest"
if [[ -f $manifest ]] && diff -u "$work/want-manifest" <(grep -v '^#' "$manifest" | sort) > "$work/diff"; then
    pass
else
    fail "the manifest is not what was installed (- expected, + manifest):"
    sed 's/^/    /' "$work/diff"
fi

# --- re-running ---------------------------------------------------------------------------------
begin "re-running install keeps the tree, leaves unchanged files alone and keeps an edited config"
sed -i 's/^log-level = info$/log-level = debug/' "$d/etc/vfio-hook/vfio-hook.conf"
before_listing=$(listing "$d")
before_contents=$(contents "$d" | grep -v ' \./var/lib/vfio-hook/install-manifest$')
before_inode=$(stat -c %i "$d$prefix/sbin/vfio-hook")
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 &&
   expect_line "install.sh: kept /etc/vfio-hook/vfio-hook.conf (edited; the shipped defaults are in /etc/vfio-hook/vfio-hook.conf.default)"; then
    ok=yes
    [[ $(listing "$d") == "$before_listing" ]] || { fail "the tree changed"; ok=no; }
    [[ $(contents "$d" | grep -v ' \./var/lib/vfio-hook/install-manifest$') == "$before_contents" ]] ||
        { fail "a file's content changed"; ok=no; }
    grep -qx 'log-level = debug' "$d/etc/vfio-hook/vfio-hook.conf" || { fail "the user's edit is gone"; ok=no; }
    [[ $(stat -c %i "$d$prefix/sbin/vfio-hook") == "$before_inode" ]] || { fail "an unchanged binary was rewritten"; ok=no; }
    diff -q "$work/want-manifest" <(grep -v '^#' "$manifest" | sort) >/dev/null || { fail "the manifest changed"; ok=no; }
    [[ $ok == yes ]] && pass
fi

begin "an upgrade renames the new binary into place: a running hook's old inode stays whole"
binary=$d$prefix/sbin/vfio-hook
cp "$build_dir/vfio-hook" "$work/older"
printf 'an older build' >> "$work/older"
mv -f "$work/older" "$binary"
ln "$binary" "$work/running"   # what a hook libvirt started before the upgrade is executing
old_sum=$(sha256sum < "$work/running")
old_inode=$(stat -c %i "$binary")
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0; then
    ok=yes
    cmp -s "$binary" "$build_dir/vfio-hook" || { fail "the binary was not upgraded"; ok=no; }
    [[ $(sha256sum < "$work/running") == "$old_sum" ]] || { fail "the old binary was written in place"; ok=no; }
    [[ $(stat -c %i "$binary") != "$old_inode" ]] || { fail "the binary kept its inode: not replaced by rename"; ok=no; }
    leftovers=$(find "$d" -name '.vfio-hook-new.*' -o -name '.install-manifest.*')
    [[ -z $leftovers ]] || { fail "temporary files left behind: $leftovers"; ok=no; }
    [[ $ok == yes ]] && pass
fi
rm -f "$work/running"

begin "a config install.sh created and nobody edited follows new shipped defaults"
printf 'log-level = info\n' > "$d/etc/vfio-hook/vfio-hook.conf"
old_default_sum=$(sha256sum < "$d/etc/vfio-hook/vfio-hook.conf" | cut -d' ' -f1)
sed -i "s|^config\t/etc/vfio-hook/vfio-hook.conf\t.*|config\t/etc/vfio-hook/vfio-hook.conf\t$old_default_sum|" "$manifest"
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 && expect_line "install.sh: updated /etc/vfio-hook/vfio-hook.conf to the new defaults (it had not been edited)"; then
    if cmp -s "$d/etc/vfio-hook/vfio-hook.conf" "$source_dir/config/vfio-hook.conf"; then pass; else fail "the config was not updated"; fi
fi

# --- uninstall ----------------------------------------------------------------------------------
begin "--uninstall removes everything installed but a config the user edited, and says so"
sed -i 's/^log-level = info$/log-level = warn/' "$d/etc/vfio-hook/vfio-hook.conf"
run --uninstall --destdir "$d"
if expect_rc 0 &&
   expect_line "install.sh: kept /etc/vfio-hook/vfio-hook.conf: it was edited (remove it by hand if it is no longer wanted)"; then
    printf '%s\n' "d etc" "d etc/vfio-hook" "f 644 etc/vfio-hook/vfio-hook.conf" > "$work/want"
    same_listing "$work/want" "$d" && pass
fi

begin "installing over a config that was there before keeps it, and --uninstall keeps it too"
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 &&
   expect_line "install.sh: kept /etc/vfio-hook/vfio-hook.conf (edited; the shipped defaults are in /etc/vfio-hook/vfio-hook.conf.default)"; then
    grep -qx 'log-level = warn' "$d/etc/vfio-hook/vfio-hook.conf" || fail "the user's config was changed"
    grep -q "vfio-hook.conf	" "$manifest" && fail "the manifest claims the user's config"
    run --uninstall --destdir "$d"
    if expect_rc 0; then
        printf '%s\n' "d etc" "d etc/vfio-hook" "f 644 etc/vfio-hook/vfio-hook.conf" > "$work/want"
        same_listing "$work/want" "$d" && pass
    fi
fi

begin "--uninstall of an install nobody edited leaves nothing"
d=$work/clean
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0; then
    run --uninstall --destdir "$d"
    if expect_rc 0 && expect_line "install.sh: removed the hook /etc/libvirt/hooks/qemu"; then
        : > "$work/want"
        same_listing "$work/want" "$d" && pass
    fi
fi

begin "--uninstall with no manifest says so"
run --uninstall --destdir "$d"
expect_rc 1 && expect_line "install.sh: no install manifest at $d/var/lib/vfio-hook/install-manifest: nothing to uninstall" && pass

# --- another program's hook ---------------------------------------------------------------------
begin "a foreign hooks/qemu is kept and vfio-hook goes into hooks/qemu.d, saying so"
d=$work/foreign
mkdir -p "$d/etc/libvirt/hooks"
printf '#!/bin/sh\n# a VFIO-Tools style dispatcher\nexit 0\n' > "$d/etc/libvirt/hooks/qemu"
chmod 755 "$d/etc/libvirt/hooks/qemu"
foreign_sum=$(sha256sum < "$d/etc/libvirt/hooks/qemu")
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 &&
   expect_line "install.sh: /etc/libvirt/hooks/qemu is another program's hook (a script: #!/bin/sh); installed into /etc/libvirt/hooks/qemu.d/vfio-hook instead (libvirt runs it after hooks/qemu)" &&
   expect_line "install.sh: the scripts in /etc/libvirt/hooks/qemu.d/VM/OPERATION/SUB-OP/ are left to /etc/libvirt/hooks/qemu (VFIO-Tools' dispatcher runs them; if it does not, nothing does); vfio-hook runs /etc/vfio-hook/hook.d/ only, and a script that needs the GPU home goes into /etc/vfio-hook/hook.d/vm/VM/release/end/ (the dispatcher runs release/end before vfio-hook gives the devices back)"; then
    expected_tree /etc/libvirt/hooks/qemu.d/vfio-hook "f 755 etc/libvirt/hooks/qemu" > "$work/want"
    if same_listing "$work/want" "$d"; then
        if [[ $(sha256sum < "$d/etc/libvirt/hooks/qemu") == "$foreign_sum" ]]; then pass; else fail "the foreign hook was changed"; fi
    fi
fi

begin "re-running over a foreign hook changes nothing"
before_listing=$(listing "$d")
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0; then
    if [[ $(listing "$d") == "$before_listing" && $(sha256sum < "$d/etc/libvirt/hooks/qemu") == "$foreign_sum" ]]; then
        pass
    else
        fail "the tree changed"
    fi
fi

begin "--uninstall removes only vfio-hook's qemu.d entry and keeps the foreign hook"
run --uninstall --destdir "$d"
if expect_rc 0 && expect_line "install.sh: removed the hook /etc/libvirt/hooks/qemu.d/vfio-hook"; then
    printf '%s\n' "d etc" "d etc/libvirt" "d etc/libvirt/hooks" "f 755 etc/libvirt/hooks/qemu" > "$work/want"
    if same_listing "$work/want" "$d"; then
        if [[ $(sha256sum < "$d/etc/libvirt/hooks/qemu") == "$foreign_sum" ]]; then pass; else fail "the foreign hook was changed"; fi
    fi
fi

begin "a foreign symlink at hooks/qemu is kept too"
d=$work/foreign-link
mkdir -p "$d/etc/libvirt/hooks"
ln -s /opt/other/dispatcher "$d/etc/libvirt/hooks/qemu"
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 &&
   expect_line "install.sh: /etc/libvirt/hooks/qemu is another program's hook (a symlink to /opt/other/dispatcher); installed into /etc/libvirt/hooks/qemu.d/vfio-hook instead (libvirt runs it after hooks/qemu)"; then
    if [[ $(readlink "$d/etc/libvirt/hooks/qemu") == /opt/other/dispatcher ]]; then pass; else fail "the foreign symlink was changed"; fi
fi

begin "once the foreign hook is gone, a re-run moves vfio-hook to hooks/qemu and clears qemu.d"
rm "$d/etc/libvirt/hooks/qemu"
run --destdir "$d" --builddir "$build_dir"
if expect_rc 0 && expect_line "install.sh: the hook: /etc/libvirt/hooks/qemu -> $prefix/sbin/vfio-hook"; then
    expected_tree /etc/libvirt/hooks/qemu > "$work/want"
    same_listing "$work/want" "$d" && pass
fi

# A second vfio-hook would act on every start twice. Whichever slot holds the first, and however
# it gets there (a copy, a package's binary through a symlink, a relative link), install.sh names
# it in one line, exits 1 and changes nothing.
expect_refusal_naming() {  # DIR WHAT: install.sh refused, naming WHAT, and DIR is as it was
    local before
    before=$(listing "$1"; contents "$1")
    run --destdir "$1" --builddir "$build_dir"
    expect_rc 1 || return 1
    local want="install.sh: vfio-hook is already libvirt's hook: $2; a second one would act on every VM start twice: nothing installed (remove that one first: its package, or its install.sh --uninstall; or install with its --prefix to upgrade it)"
    if [[ $out != "$want" ]]; then
        fail "expected exactly the one line '$want', got:"
        printf '%s\n' "$out" | sed 's/^/    /'
        return 1
    fi
    [[ $(listing "$1"; contents "$1") == "$before" ]] || { fail "the tree under $1 changed"; return 1; }
}

begin "a copied vfio-hook binary at hooks/qemu (a manual install) is named, and nothing is installed"
d=$work/copied
mkdir -p "$d/etc/libvirt/hooks"
cp "$build_dir/vfio-hook" "$d/etc/libvirt/hooks/qemu"
expect_refusal_naming "$d" "/etc/libvirt/hooks/qemu (a copy of vfio-hook)" && pass

begin "hooks/qemu a symlink to a packaged vfio-hook: named, and no second one goes into qemu.d"
d=$work/packaged
mkdir -p "$d/etc/libvirt/hooks" "$d/usr/sbin"
cp "$build_dir/vfio-hook" "$d/usr/sbin/vfio-hook"
ln -s /usr/sbin/vfio-hook "$d/etc/libvirt/hooks/qemu"
expect_refusal_naming "$d" "/etc/libvirt/hooks/qemu -> /usr/sbin/vfio-hook" && pass

begin "hooks/qemu a relative symlink through another link to an older install: named"
d=$work/older
mkdir -p "$d/etc/libvirt/hooks" "$d/opt/vfio-hook-0.0.9/sbin"
cp "$build_dir/vfio-hook" "$d/opt/vfio-hook-0.0.9/sbin/vfio-hook"
ln -s vfio-hook-0.0.9 "$d/opt/vfio-hook"
ln -s ../../../opt/vfio-hook/sbin/vfio-hook "$d/etc/libvirt/hooks/qemu"
expect_refusal_naming "$d" "/etc/libvirt/hooks/qemu -> /opt/vfio-hook-0.0.9/sbin/vfio-hook" && pass

begin "a vfio-hook already in qemu.d beside a dispatcher: named, nothing installed"
d=$work/dropin-present
mkdir -p "$d/etc/libvirt/hooks/qemu.d" "$d/usr/sbin"
printf '#!/bin/sh\nexit 0\n' > "$d/etc/libvirt/hooks/qemu"
chmod 755 "$d/etc/libvirt/hooks/qemu"
cp "$build_dir/vfio-hook" "$d/usr/sbin/vfio-hook"
ln -s /usr/sbin/vfio-hook "$d/etc/libvirt/hooks/qemu.d/50-vfio-hook"
expect_refusal_naming "$d" "/etc/libvirt/hooks/qemu.d/50-vfio-hook -> /usr/sbin/vfio-hook" && pass

begin "a foreign hooks/qemu and a foreign qemu.d/vfio-hook: both kept, no hook installed"
d=$work/both-foreign
mkdir -p "$d/etc/libvirt/hooks/qemu.d"
printf '#!/bin/sh\nexit 0\n' > "$d/etc/libvirt/hooks/qemu"
printf '#!/bin/bash\nexit 0\n' > "$d/etc/libvirt/hooks/qemu.d/vfio-hook"
chmod 755 "$d/etc/libvirt/hooks/qemu" "$d/etc/libvirt/hooks/qemu.d/vfio-hook"
run --destdir "$d" --builddir "$build_dir"
if expect_rc 1 &&
   expect_line "install.sh: /etc/libvirt/hooks/qemu is another program's hook (a script: #!/bin/sh) and /etc/libvirt/hooks/qemu.d/vfio-hook is not vfio-hook's either (a script: #!/bin/bash): hook not installed; remove one of them and run install.sh again"; then
    if [[ $(head -1 "$d/etc/libvirt/hooks/qemu.d/vfio-hook") == '#!/bin/bash' && ! -L $d/etc/libvirt/hooks/qemu.d/vfio-hook ]]; then
        pass
    else
        fail "the foreign qemu.d/vfio-hook was changed"
    fi
fi

# --- the command line ---------------------------------------------------------------------------
begin "--help names the tested distributions; bad arguments get one line and exit 2"
run --help
if expect_rc 0 && grep -q "Tested on Debian 12 and Debian 13" <<<"$out"; then
    run --frobnicate
    if expect_rc 2 && expect_line "install.sh: unknown argument '--frobnicate' (see --help)"; then
        run --destdir
        expect_rc 2 && expect_line "install.sh: --destdir needs a value (see --help)" && pass
    fi
fi

begin "installing into the system is refused without root"
if [[ $(id -u) != 0 ]]; then
    run --builddir "$build_dir"
    expect_rc 1 && expect_line "install.sh: installing into the system needs root: sudo ./install.sh (or --destdir DIR to stage)" && pass
elif command -v setpriv >/dev/null; then
    rc=0
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$install_sh" --builddir "$build_dir" 2>&1) || rc=$?
    expect_rc 1 && expect_line "install.sh: installing into the system needs root: sudo ./install.sh (or --destdir DIR to stage)" && pass
else
    echo "skip [$current]: root and no setpriv"
fi

begin "nothing outside the staging directories was touched (no systemctl, package manager or sudo)"
if [[ -s $system_calls ]]; then
    fail "install.sh ran: $(tr '\n' ';' < "$system_calls")"
else
    pass
fi

begin "install.sh, hook-placement.sh and this test pass shellcheck"
if command -v shellcheck >/dev/null; then
    if shellcheck -x "$install_sh" "$source_dir/hook-placement.sh" "$0" > "$work/shellcheck" 2>&1; then pass; else fail "shellcheck:"; sed 's/^/    /' "$work/shellcheck"; fi
else
    echo "skip [$current]: no shellcheck"
fi

echo "$passed passed, $failed failed"
((failed == 0))
