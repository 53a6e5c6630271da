# Cross-compiles the addon for 64-bit ARM Linux (Jetson, Raspberry Pi 4/5, i.MX8, RK3588...) with
# Debian's g++-aarch64-linux-gnu:
#   npx cmake-js compile -d native -O build-arm64 --CDCMAKE_TOOLCHAIN_FILE=$PWD/native/toolchains/aarch64-linux-gnu.cmake
# The addon links libc/libstdc++/libdl and libturbojpeg (ONNX Runtime is dlopen'ed at run time). The
# arm64 libturbojpeg comes the way test:arm64 gets its other arm64 libraries: Debian's arm64
# packages (libturbojpeg0, libturbojpeg0-dev) unpacked with `dpkg -x` into a directory named by the
# environment variable LVUNET_ARM64_ROOT (deploy/arm64/prepare-node.sh does it), which is searched
# as a find root for libraries and headers.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
if(DEFINED ENV{LVUNET_ARM64_ROOT})
  list(APPEND CMAKE_FIND_ROOT_PATH "$ENV{LVUNET_ARM64_ROOT}")
endif()
