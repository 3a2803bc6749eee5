#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install edgefer on Raspberry Pi OS (bookworm, 64-bit): picamera2 + OpenCV from apt, edgefer[litert,serve]
# in a venv that sees them, /etc/edgefer/config.toml and the systemd service. --help for options.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$HERE/../lib/common.sh"

BOARD=raspberry-pi
DEFAULT_SOURCE=picamera2
DEFAULT_BACKEND=litert
EXTRAS=litert,serve
APT_PACKAGES=(python3-venv python3-pip python3-picamera2 python3-opencv opencv-data)

board_checks() {
    local model=/proc/device-tree/model
    if [ -r "$model" ] && ! tr -d '\0' <"$model" | grep -q "Raspberry Pi"; then
        printf 'warning: this does not look like a Raspberry Pi (%s)\n' "$(tr -d '\0' <"$model")" >&2
    fi
}

install_main "$@"
