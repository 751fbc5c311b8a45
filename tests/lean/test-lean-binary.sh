#!/usr/bin/env bash
# The shipped binary stays lean (docs/lean-binary.md, issue 30): statically linked, under 8 MiB,
# and its link map (meson.build writes BUILD_DIR/vfio-hook.map) names no ICU, no libxml2 network
# or compression code, no zlib or liblzma. The map, not the symbol table: it says what the linker
# took from where, whether the binary is stripped or not.
#   tests/lean/test-lean-binary.sh BUILD_DIR      (meson test runs it as "lean binary")
set -euo pipefail
build_dir=${1:?usage: test-lean-binary.sh BUILD_DIR}
binary=$build_dir/vfio-hook
map=$build_dir/vfio-hook.map
limit=$((8 * 1024 * 1024))
failed=0
fail() { echo "FAIL: $*"; failed=1; }

[[ -f $binary && -f $map ]] || { echo "FAIL: no $binary or $map: build first"; exit 1; }
file -b "$binary" | grep -q "statically linked" || fail "$binary is not statically linked: $(file -b "$binary")"
size=$(stat -c %s "$binary")
((size < limit)) || fail "$binary is $size bytes, over $limit"
# libxml2's own objects are named after their sources (nanohttp.c.o); libraries by their file.
for unwanted in 'libicu' 'nanohttp' 'nanoftp' 'xzlib' 'catalog\.c' 'liblzma' '/libz\.a'; do
    found=$(grep -m1 -E "$unwanted" "$map" || true)
    [[ -z $found ]] || fail "the link map names $unwanted: ${found## }"
done
((failed == 0)) && echo "lean binary: $binary is $size bytes, statically linked, no ICU, HTTP, FTP, zlib or lzma"
exit "$failed"
