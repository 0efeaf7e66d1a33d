#!/usr/bin/env bash
# Installs what kbench needs on Debian 12 (bookworm), only what is missing. Idempotent.
# Then a newer shader compiler for the optional cooperative-matrix shaders: Debian 13 (trixie)'s
# glslang 15 with its own C/C++ runtime, unpacked into .toolchain/glslang15/ (owned by the build,
# ignored by git; nothing is installed into the system), together with Debian 13's Vulkan
# headers (for the KHR / NV2 cooperative-matrix structures). Debian 12's glslang 12 cannot compile
# GL_KHR_cooperative_matrix or GL_NV_cooperative_matrix2. When trixie cannot be reached, this step
# only warns: CMake then uses Debian 12's glslangValidator and builds the shaders it can.
#   KB_NO_GLSLANG15=1   skip the newer compiler (the build falls back to Debian 12's)
#   KB_TRIXIE_MIRROR=URL  Debian mirror for it (default http://deb.debian.org/debian)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(build-essential cmake pkg-config libvulkan-dev mesa-vulkan-drivers glslang-tools
      libhwloc-dev libcmocka-dev gnuplot-nox python3 clang libclang-rt-14-dev)
# Installed or not, read from dpkg's database itself: a development machine once had a dpkg-query that
# never returned (a wrapper that ran itself), which would hang this script (and CI) for good.
installed() {
  awk -v want="$1" 'BEGIN { RS = ""; FS = "\n" }
    { pk = ""; st = ""
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^Package: /) pk = substr($i, 10)
        else if ($i ~ /^Status: /) st = substr($i, 9)
      }
      if (pk == want && st == "install ok installed") { found = 1; exit } }
    END { exit !found }' /var/lib/dpkg/status 2>/dev/null
}
missing=()
for p in "${pkgs[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian 12 packages present"
else
  echo "install-deps: installing ${missing[*]}"
  # sudo drops exported variables, hence `env` after it; wait for another apt's lock
  # instead of failing (unattended upgrades on a fresh machine)
  if [ "$(id -u)" -eq 0 ]; then
    as_root=(env DEBIAN_FRONTEND=noninteractive)
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo env DEBIAN_FRONTEND=noninteractive)
  else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    echo "install-deps: run as root, or install them: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  # every apt step bounded: a hang becomes a message and a failure, not a CI timeout
  apt=(timeout 1500 apt-get -o DPkg::Lock::Timeout=600)
  # DPkg::Lock::Timeout covers dpkg's lock, not the lists lock `update` takes: retry that
  err=$(mktemp)
  for wait in $(seq 0 10 600); do
    if "${as_root[@]}" "${apt[@]}" update -q 2>"$err"; then break; fi
    if ! grep -q "Could not get lock" "$err" || [ "$wait" -ge 600 ]; then
      cat "$err" >&2; rm -f "$err"; exit 1
    fi
    echo "install-deps: another apt holds the package lists; waiting"
    sleep 10
  done
  cat "$err" >&2; rm -f "$err"
  "${as_root[@]}" "${apt[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

# ---- glslang 15 from Debian 13 ---------------------------------------------------------------
# Debian 13 packages whose files the compiler needs: glslang links SPIRV-Tools statically but
# the package depends on spirv-tools (whose spirv-val checks new shaders); libc6 brings the
# loader that runs it (usr/lib64/ld-linux-x86-64.so.2) with trixie's libc; libstdc++6 and
# libgcc-s1 the C++ runtime it was built against; libvulkan-dev the Vulkan 1.4 headers.
tc_pkgs=(glslang-tools spirv-tools libc6 libstdc++6 libgcc-s1 libvulkan-dev)
tc=$root/.toolchain/glslang15
stamp="glslang15 v1: ${tc_pkgs[*]}"

glslang15_ok() {
  [ -x "$tc/bin/glslang" ] && [ "$(cat "$tc/STAMP" 2>/dev/null)" = "$stamp" ] &&
    "$tc/bin/glslang" --version 2>/dev/null | grep -q "^Glslang Version: .*:1[5-9]\."
}

# $new/bin/NAME runs $new/usr/bin/NAME through trixie's loader and libraries; it finds its folder
# from its own path, so the tree may move.
write_wrapper() {
  cat > "$new/bin/$1" <<EOF || return 1
#!/bin/sh
# Debian 13's $1 through Debian 13's loader and libraries (written by scripts/install-deps.sh)
d=\$(cd "\$(dirname "\$0")/.." && pwd)
exec "\$d/usr/lib64/ld-linux-x86-64.so.2" \\
  --library-path "\$d/lib/x86_64-linux-gnu:\$d/usr/lib/x86_64-linux-gnu" "\$d/usr/bin/$1" "\$@"
EOF
  chmod +x "$new/bin/$1"
}

# Downloads and unpacks into a fresh folder next to $tc, then swaps it in (a failed or interrupted
# run leaves the old one, or none). Apt runs on a private state, list and cache directory with a
# private sources list naming only trixie: the system's sources and package state are untouched.
# Runs in a condition, where set -e is off: every step that matters says `|| return 1`.
fetch_glslang15() {
  local mirror=${KB_TRIXIE_MIRROR:-http://deb.debian.org/debian}
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  local work=$root/.toolchain/apt
  new=$tc.new
  rm -rf "$work" "$new"
  mkdir -p "$work"/{lists/partial,cache/archives/partial,parts,prefs,debs} "$new/bin" || return 1
  : > "$work/status"
  echo "deb [signed-by=$keyring] $mirror trixie main" > "$work/sources.list"
  local A=(-q -o Dir::State="$work" -o Dir::State::Lists="$work/lists"
           -o Dir::State::status="$work/status" -o Dir::Cache="$work/cache"
           -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
           -o Dir::Etc::Preferences="$work/prefs/none" -o Dir::Etc::PreferencesParts="$work/prefs"
           -o APT::Architecture=amd64 -o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)"
           -o Acquire::Retries=1 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30)
  echo "install-deps: fetching Debian 13 ${tc_pkgs[*]} into .toolchain/glslang15 ($mirror)"
  timeout 600 apt-get "${A[@]}" --error-on=any update >"$work/log" 2>&1 || {
    tail -3 "$work/log" >&2; return 1; }
  (cd "$work/debs" && timeout 600 apt-get "${A[@]}" download "${tc_pkgs[@]}") >>"$work/log" 2>&1 || {
    tail -3 "$work/log" >&2; return 1; }
  local deb
  for deb in "$work"/debs/*.deb; do
    echo "install-deps:   $(basename "$deb")"
    if [[ $(basename "$deb") == libvulkan-dev_* ]]; then
      # headers only (its libvulkan.so link would point at trixie's loader, not unpacked)
      dpkg -x "$deb" "$work/vkdev" && mkdir -p "$new/usr/include" &&
        cp -a "$work/vkdev/usr/include/vulkan" "$work/vkdev/usr/include/vk_video" \
              "$new/usr/include/" || return 1
    else
      dpkg -x "$deb" "$new" || return 1
    fi
  done
  # what nobody runs: documentation, SPIRV-Tools' static libraries and CMake files (90 -> 25 MB)
  rm -rf "$new/usr/share" "$new/usr/lib/x86_64-linux-gnu/cmake" \
         "$new/usr/lib/x86_64-linux-gnu/pkgconfig" "$new"/usr/lib/x86_64-linux-gnu/*.a
  write_wrapper glslang && write_wrapper spirv-val || return 1
  (cd "$work/debs" && ls -- *.deb) > "$new/PACKAGES"
  echo "$stamp" > "$new/STAMP"
  "$new/bin/glslang" --version >"$work/version" 2>&1 || {
    echo "install-deps: the unpacked glslang does not run:" >&2; cat "$work/version" >&2
    return 1; }
  rm -rf "$tc" && mv "$new" "$tc" || return 1
  rm -rf "$work"
}

if [ "${KB_NO_GLSLANG15:-0}" = 1 ]; then
  echo "install-deps: KB_NO_GLSLANG15=1: Debian 13's glslang not fetched"
elif glslang15_ok; then
  echo "install-deps: $("$tc/bin/glslang" --version | head -1) present in .toolchain/glslang15"
elif [ "$(dpkg --print-architecture)" != amd64 ]; then
  echo "install-deps: Debian 13's glslang is fetched for amd64 only; the build uses Debian 12's"
elif fetch_glslang15; then
  echo "install-deps: $("$tc/bin/glslang" --version | head -1) in .toolchain/glslang15"
else
  rm -rf "$tc.new" "$root/.toolchain/apt"
  echo "install-deps: WARNING: could not fetch Debian 13's glslang (network, mirror or trixie" \
       "signing key unavailable); the build falls back to Debian 12's glslangValidator and" \
       "skips the KHR / NV2 cooperative-matrix shaders" >&2
fi
