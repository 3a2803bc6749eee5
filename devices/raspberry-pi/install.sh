#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install edgefer on Raspberry Pi OS (bookworm, 64-bit): picamera2 + OpenCV from apt, edgefer[litert,serve]
# in a venv that sees them, /etc/edgefer/config.toml and the systemd service. --help for options.
# On another arm64 Debian (no Raspberry Pi archive, so no picamera2) it installs the rest and
# configures a USB camera.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$HERE/../lib/common.sh"

BOARD=raspberry-pi
DEFAULT_SOURCE=picamera2
DEFAULT_BACKEND=litert
EXTRAS=litert,serve
APT_PACKAGES=(python3-venv python3-pip python3-opencv opencv-data)
# Only Raspberry Pi OS's archive has picamera2.
APT_OPTIONAL=("python3-picamera2|the Pi camera source (picamera2) will not be available")

board_checks() {
    local model=/proc/device-tree/model
    if [ -r "$model" ] && ! tr -d '\0' <"$model" | grep -q "Raspberry Pi"; then
        printf 'warning: this does not look like a Raspberry Pi (%s)\n' "$(tr -d '\0' <"$model")" >&2
    fi
}

board_lacks() {  # board_lacks PACKAGE: an APT_OPTIONAL package the archives do not have
    if [ "$1" = python3-picamera2 ] && [ "$SOURCE_DEFAULTED" = 1 ]; then
        SOURCE=/dev/video0
        printf 'note: the configuration reads a USB camera (/dev/video0) instead; --source chooses another\n' >&2
    fi
}

install_main "$@"
