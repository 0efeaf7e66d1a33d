#!/usr/bin/env bash
# Installs what kbench needs on Debian 12 (bookworm), only what is missing. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libvulkan-dev mesa-vulkan-drivers glslang-tools
      libhwloc-dev libcmocka-dev gnuplot-nox python3 clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
