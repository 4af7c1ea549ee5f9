#!/usr/bin/env bash
# Install the Debian packages the build and the tests need, only those that are missing.
set -euo pipefail

# command -> Debian package that provides it
declare -A NEED=(
  [arm-none-eabi-gcc]=gcc-arm-none-eabi
  [qemu-system-arm]=qemu-system-arm
  [curl]=curl
  [openssl]=openssl
  [chromium]=chromium
  [certutil]=libnss3-tools
  [ip]=iproute2
  [testssl]=testssl.sh
  [patch]=patch
  [make]=make
  [gcc]=gcc
  # netsec flash: STM32 over USB DFU, ST-LINK (st-flash), OpenOCD
  [dfu-util]=dfu-util
  [st-flash]=stlink-tools
  [openocd]=openocd
  # rp2 boards: the pico-sdk is built with CMake, and its host tools (pioasm, picotool) with g++.
  [cmake]=cmake
  [g++]=g++
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
# The C library for the Cortex-M images has no command to look for.
[ -e /usr/lib/arm-none-eabi/include/stdlib.h ] || missing+=(libnewlib-arm-none-eabi)
# Nor have the C++ headers the pico-sdk compiles against (rp2 boards).
[ -d /usr/include/newlib/c++ ] || missing+=(libstdc++-arm-none-eabi-dev)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing packages: ${missing[*]}; install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  apt-get -q update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
