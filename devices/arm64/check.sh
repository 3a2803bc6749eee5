#!/usr/bin/env bash
# The device kits on a real arm64 userland, under qemu-user: build (or reuse) an arm64 Debian root
# file system, run devices/raspberry-pi/install.sh and devices/jetson/install.sh in it as a user would
# on a board (a plain pip install from a copy of this checkout), then each kit's verify.sh, then
# `edgefer detect` on ../shared/media with LiteRT (Pi kit) and onnxruntime (Jetson kit). The same runs
# in an amd64 root file system of the same Debian (natively) are the reference: every event must match,
# so only the architecture differs (devices/arm64/compare.py writes the report).
# Needs root (chroot, mounts, binfmt). Exit status: 0 same results, 1 a failed step (install, verify,
# detect), 3 the kits work but arm64 events differ from amd64, 2 bad usage, 77 (0 with
# --skip-unsupported) when this machine cannot run arm64 binaries. --help.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

SUITES=()
CACHE=${EDGEFER_ARM64_CACHE:-/var/cache/edgefer/arm64}
MIRROR=http://deb.debian.org/debian
MEDIA=${EDGEFER_SHARED:-$REPO/../shared}/media
MAX_FRAMES=20
OUT_DIR=$REPO/devices/results
SKIP_OK=0
# The root file system holds what a Raspberry Pi OS image has (python3) plus the packages both
# install.sh require, so that a warm run does not unpack OpenCV under the emulator again; install.sh
# still runs its apt-get steps (update, install: then a no-op, the vendor-only packages' checks).
INCLUDE=python3,python3-venv,python3-pip,python3-opencv,opencv-data,ca-certificates

usage() {
    cat <<EOF
Usage: $(basename "$0") [options]

  --suite NAME         Debian suite to test; repeat for several (default: bookworm, as Raspberry Pi OS 12)
  --cache DIR          root file systems and downloaded wheels, kept between runs
                       (default: $CACHE, or EDGEFER_ARM64_CACHE)
  --media DIR          photos and clips to detect on (default: $MEDIA)
  --max-frames N       frames per clip (default: $MAX_FRAMES)
  --out-dir DIR        report: DIR/arm64-SUITE.json (default: $OUT_DIR)
  --skip-unsupported   exit 0 (after saying why) where arm64 binaries cannot run here, as in CI
  -h, --help           this help
EOF
}

die() { printf 'arm64-check: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'arm64-check: %s\n' "$*"; }
skip() {
    printf 'arm64-check: SKIP: %s\n' "$*"
    [ "$SKIP_OK" = 1 ] && exit 0
    exit 77
}
need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value (see --help)"; fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --suite) need_value "$@"; SUITES+=("$2"); shift 2 ;;
        --cache) need_value "$@"; CACHE=$2; shift 2 ;;
        --media) need_value "$@"; MEDIA=$2; shift 2 ;;
        --max-frames) need_value "$@"; MAX_FRAMES=$2; shift 2 ;;
        --out-dir) need_value "$@"; OUT_DIR=$2; shift 2 ;;
        --skip-unsupported) SKIP_OK=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
[ ${#SUITES[@]} -gt 0 ] || SUITES=(bookworm)
case "$MAX_FRAMES" in ''|*[!0-9]*|0) die "--max-frames must be a positive integer, not '$MAX_FRAMES'" ;; esac
[ -d "$MEDIA" ] || skip "media folder $MEDIA not found (../shared beside the checkout, or --media DIR)"

# --- Can this machine run arm64 binaries? -------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root (chroot, mounts, binfmt registration); run it with sudo"
[ "$(uname -m)" = x86_64 ] || skip "compares emulated arm64 with native amd64 runs; this machine is $(uname -m)"
tools=()
command -v qemu-aarch64-static >/dev/null 2>&1 || tools+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || tools+=(binfmt-support)
command -v mmdebstrap >/dev/null 2>&1 || tools+=(mmdebstrap)
# mmdebstrap only recommends arch-test, but cannot build a foreign-architecture root file system without it.
command -v arch-test >/dev/null 2>&1 || tools+=(arch-test)
if [ ${#tools[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || skip "needs ${tools[*]}, and this machine has no apt-get"
    say "installing ${tools[*]}"
    # An install stopped half-way (a budget's timeout, Ctrl-C) leaves dpkg "interrupted" and every later
    # apt-get refusing to run: finish it first.
    [ -z "$(dpkg --audit 2>/dev/null)" ] || DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tools[@]}" >/dev/null
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
        || skip "cannot mount binfmt_misc (a container without the privilege?), so arm64 binaries cannot run"
fi
# An installed qemu-user-static whose format never reached update-binfmts' database (its package trigger
# did not run, as in some container images) cannot be enabled until it is imported from /usr/share/binfmts.
if ! update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 && [ -e /usr/share/binfmts/qemu-aarch64 ]; then
    if update-binfmts --import qemu-aarch64 >/dev/null 2>&1; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || :
    fi
fi
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
    || skip "cannot register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64 failed)"
# F (fix binary): the kernel opens the interpreter at registration, so it also runs inside a chroot.
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || skip "qemu-aarch64 is registered without binfmt's F flag, so it cannot run inside a chroot"

# --- The root file system, cached outside the checkout -----------------------------------------------
rootfs() {  # rootfs SUITE ARCH: print the cached root file system's path, building it when missing or stale
    local suite=$1 arch=$2 dir=$CACHE/$1-$2
    local build=(mmdebstrap "--arch=$arch" --variant=minbase "--include=$INCLUDE" "$suite")
    if [ "$(cat "$dir/.edgefer-recipe" 2>/dev/null)" != "${build[*]} $MIRROR" ]; then
        say "building the $suite $arch root file system in $dir (arm64: about 10 minutes; log: $dir.log)" >&2
        rm -rf "$dir.tmp"
        mkdir -p "$CACHE"
        if ! nice -n 10 "${build[@]}" "$dir.tmp" "$MIRROR" >"$dir.log" 2>&1; then
            tail -n 20 "$dir.log" >&2
            die "mmdebstrap failed for $suite $arch (log: $dir.log)"
        fi
        printf '%s\n' "${build[*]} $MIRROR" >"$dir.tmp/.edgefer-recipe"
        rm -rf "$dir"
        mv "$dir.tmp" "$dir"
    fi
    printf '%s\n' "$dir"
}

# The /proc/cpuinfo a kernel shows on that core: onnxruntime reads it at import and aborts under
# qemu 7.2 when it describes the x86 host.
cpuinfo() {  # cpuinfo QEMU_CPU
    local part variant revision features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" i
    case "$1" in
        cortex-a72) part=0xd08; variant=0x0; revision=3 ;;
        cortex-a76) part=0xd0b; variant=0x4; revision=1
            features="$features atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp" ;;
        *) die "no /proc/cpuinfo template for $1" ;;
    esac
    for i in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$i" "$features"
        printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            "$variant" "$part" "$revision"
    done
}

ROOT=""
WORK=""
cleanup() {
    local root
    for root in "$WORK"/root-*; do
        if [ -n "$WORK" ] && mountpoint -q "$root"; then
            umount -R "$root" 2>/dev/null || umount -R -l "$root" || :
        fi
    done
    # Remove the scratch folder only when nothing is mounted under it (the media and wheel cache are).
    if [ -n "$WORK" ] && ! grep -qF " $WORK/" /proc/self/mounts; then
        rm -rf "$WORK"
    fi
    ROOT=""
    WORK=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_root() {  # mount_root SUITE ARCH: a scratch layer over the cached root file system, in ROOT
    local suite=$1 arch=$2 dir
    dir=$(rootfs "$suite" "$arch")
    ROOT=$WORK/root-$arch
    mkdir -p "$WORK/upper-$arch" "$WORK/overlay-work-$arch" "$ROOT"
    # The cached root stays as built: this run's changes go to the scratch layer.
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$WORK/upper-$arch,workdir=$WORK/overlay-work-$arch" "$ROOT"
    mount -t proc proc "$ROOT/proc"
    mount --bind /dev "$ROOT/dev"
    mount --bind /sys "$ROOT/sys"
    mkdir -p "$ROOT/media/edgefer" "$ROOT/root/.cache/pip" "$ROOT/root/edgefer" "$CACHE/pip-$suite-$arch"
    mount --bind -o ro "$MEDIA" "$ROOT/media/edgefer"
    mount --bind "$CACHE/pip-$suite-$arch" "$ROOT/root/.cache/pip"  # downloaded wheels, kept between runs
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    # The host's trusted certificates, which include a TLS-inspecting proxy's CA where there is one
    # (in_chroot points pip at them: a pip upgraded from PyPI would use its own bundle).
    cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
    # A copy of the checkout as a clone of it would be (tracked and new files, no ignored ones).
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
        | tar --null -T - -cf -) | tar -C "$ROOT/root/edgefer" -xf -
    rm -f "$WORK/cpuinfo.core"
}

in_chroot() {  # in_chroot CORE COMMAND...: run in ROOT as root; CORE: the emulated arm64 core, or native
    local cpu=$1 emulate=()
    shift
    if [ "$cpu" != native ] && [ "$(cat "$WORK/cpuinfo.core" 2>/dev/null)" != "$cpu" ]; then
        umount "$ROOT/proc/cpuinfo" 2>/dev/null || :
        cpuinfo "$cpu" >"$WORK/cpuinfo"
        mount --bind "$WORK/cpuinfo" "$ROOT/proc/cpuinfo"
        printf '%s\n' "$cpu" >"$WORK/cpuinfo.core"
    fi
    # qemu's default core ('max') has SME, on which LiteRT computes wrong scores: name a real core.
    [ "$cpu" = native ] || emulate=(QEMU_CPU="$cpu")
    # PIP_NO_COMPILE: pip leaves byte-compiling to the first import, which emulated takes minutes per venv.
    env -i "${emulate[@]}" HOME=/root LANG=C.UTF-8 PIP_DEFAULT_TIMEOUT=120 PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_NO_COMPILE=1 \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        nice -n 10 chroot "$ROOT" "$@"
}

# The media: every photo, and the first MAX_FRAMES frames of every clip.
MEDIA_FILES=()
for f in "$MEDIA"/*; do
    case "${f,,}" in *.jpg|*.jpeg|*.png|*.mp4|*.avi|*.mkv) MEDIA_FILES+=("${f##*/}") ;; esac
done
[ ${#MEDIA_FILES[@]} -gt 0 ] || skip "no photo or clip in $MEDIA"

detect_all() {  # detect_all OUT EDGEFER BACKEND MEDIA_DIR RUNNER...: edgefer detect on each media file
    local out=$1 edgefer=$2 backend=$3 media=$4 f
    shift 4
    mkdir -p "$out"
    for f in "${MEDIA_FILES[@]}"; do
        if ! "$@" "$edgefer" detect --source "$media/$f" --backend "$backend" --max-frames "$MAX_FRAMES" \
                --quiet >"$out/${f%.*}.jsonl" 2>"$out/${f%.*}.err"; then
            say "  detect failed on $f ($backend): $(tail -n 3 "$out/${f%.*}.err")"
        fi
    done
}

# Versions in a kit's venv, for the report.
VERSIONS_PY='
import json, platform
from importlib import metadata
import cv2, numpy
out = {"python": platform.python_version(), "machine": platform.machine(),
       "opencv": cv2.__version__ + " (" + cv2.__file__ + ")", "numpy": numpy.__version__}
for dist in ("edgefer", "ai-edge-litert", "onnxruntime"):
    try:
        out[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps(out))'

# kit, prefix, config dir, backend, then per architecture the cores: on arm64 the Pi 5's and the Pi 4's
# for the Pi kit, the A76 for the Jetson kit (Orin's A78AE is not in qemu 7.2).
PLAN=(
    "raspberry-pi /opt/edgefer /etc/edgefer litert cortex-a76,cortex-a72"
    "jetson /opt/edgefer-jetson /etc/edgefer-jetson onnx cortex-a76"
)

run_kits() {  # run_kits SUITE ARCH RESULTS: both kits' install.sh, verify.sh and detect runs in ROOT
    local suite=$1 arch=$2 results=$3 entry kit prefix config_dir backend cpus cpu rc
    for entry in "${PLAN[@]}"; do
        read -r kit prefix config_dir backend cpus <<<"$entry"
        [ "$arch" = arm64 ] || cpus=native
        cpu=${cpus%%,*}
        say "$suite $arch: $kit: install.sh --no-service ($cpu)"
        rc=0
        in_chroot "$cpu" bash "/root/edgefer/devices/$kit/install.sh" --no-service --prefix "$prefix" \
            --config-dir "$config_dir" >"$results/$arch-$kit-install.log" 2>&1 || rc=$?
        grep -E '^(note|warning): ' "$results/$arch-$kit-install.log" | sed 's/^/    /' || :
        if [ "$rc" != 0 ]; then
            tail -n 20 "$results/$arch-$kit-install.log"
            say "$suite $arch: $kit: install.sh failed with status $rc"
            printf '%s %s %s none\n' "$arch" "$kit" "$rc" >>"$results/kits.txt"
            continue
        fi
        in_chroot "$cpu" "$prefix/bin/python" -c "$VERSIONS_PY" >"$results/$arch-$kit-versions.json" || :
        say "$suite $arch: $kit: verify.sh"
        rc=0
        in_chroot "$cpu" bash "/root/edgefer/devices/$kit/verify.sh" --prefix "$prefix" \
            --config "$config_dir/config.toml" --frames 3 >"$results/$arch-$kit-verify.log" 2>&1 || rc=$?
        printf '%s %s 0 %s\n' "$arch" "$kit" "$rc" >>"$results/kits.txt"
        grep -E '^(PASS|FAIL|SKIP) ' "$results/$arch-$kit-verify.log" | sed 's/^/    /' || :
        for cpu in ${cpus//,/ }; do
            say "$suite $arch: $kit: edgefer detect --backend $backend on ${#MEDIA_FILES[@]} files ($cpu)"
            detect_all "$results/$arch/$kit+$backend+$cpu" "$prefix/bin/edgefer" "$backend" /media/edgefer \
                in_chroot "$cpu"
        done
    done
}

check_suite() {
    local suite=$1 start results arch rc
    start=$(date +%s)
    WORK=$(mktemp -d /var/tmp/edgefer-arm64.XXXXXX)
    results=$WORK/results
    mkdir -p "$results"
    : >"$results/kits.txt"
    for arch in arm64 amd64; do
        mount_root "$suite" "$arch"
        run_kits "$suite" "$arch" "$results"
    done
    # The logs stay beside the cache until the next run: install.sh's, verify.sh's, each detect's stderr.
    rm -rf "$CACHE/logs-$suite"
    cp -r "$results" "$CACHE/logs-$suite"
    mkdir -p "$OUT_DIR"
    rc=0
    python3 "$HERE/compare.py" --work "$results" --suite "$suite" --rootfs "$CACHE/$suite-arm64" \
        --out "$OUT_DIR/arm64-$suite.json" || rc=$?
    if [ "$rc" = 1 ] || { [ "$rc" != 0 ] && [ "$STATUS" = 0 ]; }; then STATUS=$rc; fi
    say "$suite: $(case $rc in 0) echo OK ;; 3) echo "kits OK, events DIFFER" ;; *) echo FAILED ;; esac);" \
        "report $OUT_DIR/arm64-$suite.json," \
        "logs in $CACHE/logs-$suite ($(($(date +%s) - start)) s)"
    cleanup
}

# Called plainly (not as `check_suite || ...`, which would switch off set -e inside it).
STATUS=0
for suite in "${SUITES[@]}"; do
    check_suite "$suite"
done
exit "$STATUS"
