#!/usr/bin/env bash
# Installs the Debian 12 packages hubnode needs to build and test, when any is missing.
# Needs root (or passwordless sudo) only when something is actually missing.
set -euo pipefail

pkgs=(cmake ninja-build g++ clang libclang-rt-14-dev ccache git pkg-config curl
      librocksdb-dev libcpp-httplib-dev libcurl4-openssl-dev libzstd-dev libssl-dev
      nlohmann-json3-dev libyaml-cpp-dev libgtest-dev libgmock-dev libcli11-dev libbenchmark-dev
      libpcre2-dev libicu-dev python3 python3-numpy python3-jinja2 python3-yaml
      python3-requests python3-filelock python3-fsspec python3-tqdm python3-packaging python3-typing-extensions
      python3-httpx git-lfs libcmark-gfm-dev libcmark-gfm-extensions-dev chromium
      ceph-mon ceph-osd radosgw uuid-runtime)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run 'apt-get install ${missing[*]}' as root, or run make as root." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
