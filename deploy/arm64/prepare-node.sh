#!/usr/bin/env bash
# Unpacks Debian's arm64 Node.js (and the libraries it needs) into DIR, so that
#   qemu-aarch64-static -L DIR DIR/usr/bin/node script.mjs
# runs JavaScript, the native addon and ONNX Runtime's arm64 library on an x86-64 machine. The arm64
# libjpeg-turbo (libturbojpeg0, and libturbojpeg0-dev for its header and link symlink) goes there
# too: the cross-build links against it (LVUNET_ARM64_ROOT=DIR, native/toolchains/aarch64-linux-gnu.cmake).
# Needs: dpkg --add-architecture arm64 && apt-get update (done here if missing; run as root).
set -euo pipefail
dir=${1:?usage: prepare-node.sh DIR}
pkgs=(nodejs libnode108 libc6 libstdc++6 libgcc-s1 libuv1 libbrotli1 libc-ares2 libnghttp2-14 libssl3 zlib1g libicu72 libturbojpeg0 libturbojpeg0-dev)
noarch=(node-acorn node-cjs-module-lexer node-undici node-busboy)
write_cpuinfo() {
  # qemu-user serves absolute paths from the -L prefix when the file exists there. ONNX Runtime's
  # cpuinfo library parses /proc/cpuinfo at load time and crashes (NULL dereference) on the x86
  # host's text, so give the emulated process an arm64 one (two Cortex-A72 cores).
  mkdir -p "$dir/proc"
  for i in 0 1; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
  done > "$dir/proc/cpuinfo"
}
# A root made before libturbojpeg was added is completed rather than rebuilt.
if [ -x "$dir/usr/bin/node" ] && [ -e "$dir/usr/include/turbojpeg.h" ]; then write_cpuinfo; echo "arm64 node already in $dir"; exit 0; fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "adding the arm64 architecture to dpkg (apt-get update follows)"
  dpkg --add-architecture arm64
  apt-get update -qq
fi
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
( cd "$dl" && apt-get download -qq "${pkgs[@]/%/:arm64}" "${noarch[@]}" )
mkdir -p "$dir"
for deb in "$dl"/*.deb; do dpkg -x "$deb" "$dir"; done
write_cpuinfo
echo "arm64 node: $(qemu-aarch64-static -L "$dir" "$dir/usr/bin/node" --version) in $dir"
