#!/usr/bin/env bash
# Packs what bench/gpu/run.sh runs on the device, built HERE, into .gpu/bundle.tar.xz: the
# device machine has CUDA (driver, toolkit, python3 with numpy) but none of the Debian libraries
# hubnode links (RocksDB, ICU, libcurl, libgit2, ...) and can fetch nothing, so building there
# cannot work. The bundle holds the four programs stripped (hubnode, cuda_backend_test,
# cuda_membw, membw), each behind a wrapper that points the loader at the bundle's lib/, and every
# shared library they load but glibc's (the device's glibc is newer, and glibc is forward
# compatible). ~22 MB; with the repository it stays under the device tool's 64 MiB.
# Usage: bench/gpu/pack.sh [BUILD]   (default build/; it must have been configured with CUDA for
#        sm_90, the default). Then, with the device tool: carry [".gpu"], command bench/gpu/run.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
PROGRAMS=(hub/hubnode tests/runtime/cuda_backend_test bench/cuda_membw bench/membw)
for p in "${PROGRAMS[@]}"; do
  [[ -x $BUILD/$p ]] || { echo "pack.sh: $BUILD/$p is missing (a build with CUDA: cmake finds nvcc)" >&2; exit 1; }
done
arch=$(sed -n 's/^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
[[ -z $arch || $arch == *90* ]] || { echo "pack.sh: $BUILD is built for CUDA $arch, not sm_90 (an H100/H200)" >&2; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/bin" "$STAGE/lib" "$ROOT/.gpu"
for p in "${PROGRAMS[@]}"; do
  name=$(basename "$p")
  strip -o "$STAGE/bin/$name.real" "$BUILD/$p"
  cat > "$STAGE/bin/$name" <<WRAP
#!/bin/sh
# $name from the bundle, with the bundle's libraries (bench/gpu/pack.sh).
d=\$(dirname "\$(readlink -f "\$0")")
LD_LIBRARY_PATH="\$d/../lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "\$d/$name.real" "\$@"
WRAP
  chmod +x "$STAGE/bin/$name"
  ldd "$BUILD/$p" | awk '$3 ~ /^\// {print $3}' >> "$STAGE/libs"
done
# Every library but glibc's own (libc, libm, libpthread, libdl, librt, libresolv, the loader).
sort -u "$STAGE/libs" | grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv)\.so|/ld-linux' |
  while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
rm "$STAGE/libs"
git -C "$ROOT" log -1 --format='%H %s' > "$STAGE/COMMIT" 2> /dev/null || true
tar -cJf "$ROOT/.gpu/bundle.tar.xz" -C "$STAGE" .
echo "$ROOT/.gpu/bundle.tar.xz: $(du -h "$ROOT/.gpu/bundle.tar.xz" | cut -f1) ($(ls "$STAGE/lib" | wc -l) libraries)"
