#!/usr/bin/env bash
# Installs the system packages thumbd builds against, when they are missing.
# thumbcore links the operating system's libjpeg-turbo (SIMD included) through a small C shim:
# it needs the libjpeg headers and a C compiler. Debian/Ubuntu only; elsewhere, install the
# equivalent (libjpeg-turbo development files) by hand. AVIF renditions are encoded by rav1e,
# whose assembly is built with nasm. Tested on Debian 12; Ubuntu's package name is handled,
# not tested here.
set -euo pipefail
if [ -f /usr/include/jpeglib.h ] && command -v cc >/dev/null && command -v nasm >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "thumbd needs libjpeg-turbo headers (jpeglib.h), a C compiler and nasm; install them" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# Debian names libjpeg-turbo's development package libjpeg62-turbo-dev, Ubuntu
# libjpeg-turbo8-dev.
pkg=libjpeg62-turbo-dev
apt-cache show "$pkg" >/dev/null 2>&1 || pkg=libjpeg-turbo8-dev
$SUDO apt-get install -y -qq "$pkg" gcc nasm
