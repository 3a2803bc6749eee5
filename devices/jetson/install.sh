#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Install edgefer on a Jetson (JetPack 6): OpenCV, and from JetPack's archive the CSI camera's GStreamer
# plugin and TensorRT, from apt; edgefer[onnx,serve] in a venv that sees them, /etc/edgefer/config.toml
# and the systemd service. Without JetPack's archive the JetPack-only packages are skipped, saying what
# that leaves out.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
. "$HERE/../lib/common.sh"

BOARD=jetson
DEFAULT_SOURCE=csi:0
DEFAULT_BACKEND=onnx
EXTRAS=onnx,serve
APT_PACKAGES=(python3-venv python3-pip python3-opencv opencv-data)
# JetPack only: nvidia-l4t-gstreamer provides nvarguscamerasrc; python3-libnvinfer the TensorRT bindings.
APT_OPTIONAL=(
    "nvidia-l4t-gstreamer|the CSI camera source (csi:N, nvarguscamerasrc) will not be available"
    "python3-libnvinfer|the TensorRT backend will not be available (the onnx backend is)"
)

board_checks() {
    if [ ! -r /etc/nv_tegra_release ]; then
        printf 'warning: /etc/nv_tegra_release is missing; this does not look like a Jetson with JetPack\n' >&2
    fi
}

board_lacks() {  # board_lacks PACKAGE: an APT_OPTIONAL package the archives do not have
    case "$1" in
        nvidia-l4t-gstreamer)
            if [ "$SOURCE_DEFAULTED" = 1 ]; then
                SOURCE=/dev/video0
                printf 'note: the configuration reads a USB camera (/dev/video0) instead; --source chooses another\n' >&2
            fi ;;
        python3-libnvinfer)
            [ "$BACKEND" != tensorrt ] || die "--backend tensorrt needs TensorRT (python3-libnvinfer, JetPack's archive)" ;;
    esac
}

install_main "$@"
