# Cross-compiles the addon for 64-bit ARM Linux (Jetson, Raspberry Pi 4/5, i.MX8, RK3588...) with
# Debian's g++-aarch64-linux-gnu:
#   npx cmake-js compile -d native -O build-arm64 --CDCMAKE_TOOLCHAIN_FILE=$PWD/native/toolchains/aarch64-linux-gnu.cmake
# The addon links only libc/libstdc++/libdl (ONNX Runtime is dlopen'ed at run time), so no arm64
# sysroot beyond the cross compiler's own is needed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
