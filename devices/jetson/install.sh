#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install edgefer on a Jetson (JetPack 6): JetPack's OpenCV (GStreamer, CUDA) and TensorRT from apt,
# edgefer[onnx,serve] in a venv that sees them, /etc/edgefer/config.toml and the systemd service.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$HERE/../lib/common.sh"

BOARD=jetson
DEFAULT_SOURCE=csi:0
DEFAULT_BACKEND=onnx
EXTRAS=onnx,serve
# nvidia-l4t-gstreamer provides nvarguscamerasrc; python3-libnvinfer the TensorRT bindings.
APT_PACKAGES=(python3-venv python3-pip python3-opencv opencv-data nvidia-l4t-gstreamer python3-libnvinfer)

board_checks() {
    if [ ! -r /etc/nv_tegra_release ]; then
        printf 'warning: /etc/nv_tegra_release is missing; this does not look like a Jetson with JetPack\n' >&2
    fi
}

install_main "$@"
